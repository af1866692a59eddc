"""How a guest run is recorded on its VM, from start to a terminal state, whatever ends it.

:class:`RunRecord` creates and starts the VM of a ``vm run`` in one write,
with this process's :class:`~vm_core.runner.RunnerIdentity` (so ``vm ls`` can
tell a run whose process vanished: ``lost``). :class:`RecordedRun` is the
part shared with ``vm resume``: inside :meth:`RecordedRun.running` every way
a run ends is recorded before the process ends:

* the guest exited or was killed by a signal: :meth:`RecordedRun.guest_ended`
  (the caller then ends ``vm`` with the guest's signal, :func:`die_like_the_guest`);
* ``vm`` got SIGINT, SIGTERM or SIGHUP that the guest does not catch or
  ignore (a guest that does gets it, through :attr:`InterruptGuard.forward`,
  as under qemu-user): the handlers installed by
  :class:`InterruptGuard` raise :class:`RunInterrupted`, the VM is recorded
  ``interrupted`` with that signal, and :mod:`vm_cli.main` ends the process
  as the signal's default action would (SIGINT: ``vm: interrupted``, 130);
* an error refused the run or stopped it (a :class:`~vm_core.errors.VmError`)
  or vm crashed (any other exception): recorded ``failed`` with the reason,
  then reported as one line by :mod:`vm_cli.main`.

Signals that arrive while a record is being written are held until the
write is done (:meth:`InterruptGuard.deferred`), so a record is never torn.

The store never stops a guest: when it cannot be opened or written (damaged,
read-only, locked, a full disk) one ``vm: warning:`` line says this run is
not (or not completely) recorded, and the guest's outcome stands.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from vm_core.domainmodel import NameInUseError, validate_name
from vm_core.errors import ConflictError, VmError
from vm_core.logging import get_logger
from vm_core.runner import current_runner

from vm_cli.messages import one_line, warning_line

log = get_logger("vm_cli.recording")

#: What a riscv64 user-mode guest can address (the lower half of Sv39), recorded as its memory size.
USER_ADDRESS_SPACE = 1 << 38

#: The signals that end a run as ``interrupted`` (their default action ends the process).
INTERRUPTING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class RunInterrupted(KeyboardInterrupt):
    """``vm`` got ``signo`` (SIGINT, SIGTERM or SIGHUP) during a run; raised by :class:`InterruptGuard`."""

    def __init__(self, signo: int) -> None:
        super().__init__(signal.Signals(signo).name)
        self.signo = signo


class InterruptGuard:
    """Turns SIGINT, SIGTERM and SIGHUP into :class:`RunInterrupted` while a run is recorded.

    A signal that arrives inside :meth:`deferred` is held and raised when the
    outermost deferral ends (a flag, not a signal mask: the handler runs in
    the main thread whichever thread the kernel chose).
    """

    def __init__(self) -> None:
        self.depth = 0
        self.pending: int | None = None
        self.previous: dict[int, Any] = {}
        #: while a guest runs: offers it the signal (True: the guest took it, the run goes on)
        self.forward: Callable[[int], bool] | None = None

    def handle(self, signo: int, frame: FrameType | None) -> None:
        if self.forward is not None and self.forward(signo):
            return
        if self.depth:
            self.pending = self.pending or signo
            return
        raise RunInterrupted(signo)

    def install(self) -> None:
        for signo in INTERRUPTING_SIGNALS:
            if signo not in self.previous:
                self.previous[signo] = signal.signal(signo, self.handle)

    def uninstall(self) -> None:
        for signo, handler in self.previous.items():
            signal.signal(signo, handler)
        self.previous.clear()

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if not self.depth and self.pending is not None:
            signo, self.pending = self.pending, None
            raise RunInterrupted(signo)


GUARD = InterruptGuard()


def die_like_the_guest(signo: int) -> None:
    """End this process with ``signo``, as qemu-user does for a guest killed by a signal.

    Like qemu-user without a core dump, nothing is printed: the guest's
    stderr stays its own, and the parent sees the signal in the exit status
    (``vm -v`` logs the signal and the guest pc). Record the run first.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):
        pass
    if signo not in (signal.SIGKILL, signal.SIGSTOP):  # those two have no disposition to reset
        signal.signal(signo, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signo])
    os.kill(os.getpid(), signo)
    os._exit(128 + signo)  # only if the signal did not end us


def describe_crash(err: BaseException) -> str:
    """``internal error: TypeError: ...``: how a crash of vm itself is recorded and reported."""
    return one_line(f"internal error: {type(err).__name__}: {err}")


#: How many times a record is written again when another guest process of the VM wrote first.
WRITE_ATTEMPTS = 20

#: The runs this vm process records: a guest fork's copy of them is not the child's to write.
LIVE_RUNS: weakref.WeakSet[RecordedRun] = weakref.WeakSet()
#: Store connections a guest fork inherited: never used nor closed in the child (SQLite forbids both).
INHERITED: list[Any] = []


def _forget_runs_in_child() -> None:
    """After a guest fork, in the child: the parent's run and its store connection stay the parent's;
    the child records its own process events (``ProcessForked`` now) through a connection of its own."""
    for run in list(LIVE_RUNS):
        if run.app is not None:
            INHERITED.append(run.app)
            run.process_events = ProcessEvents(run.vm_id) if run.started else None
        run.app = None
        run.started = False
        if run.process_events is not None:
            run.process_events.record("forked", parent_pid=os.getppid())


class ProcessEvents:
    """Writes one VM's guest process events (fork, exec, exit) from whichever guest process does them.

    Each vm process opens its own store connection when it first writes. A
    store that cannot be written costs the event (logged), never the guest.
    """

    def __init__(self, vm_id: Any) -> None:
        self.vm_id = vm_id
        self.app: Any = None

    def record(self, kind: str, **details: Any) -> None:
        try:
            if self.app is None:
                from vm_core.application import VmApplication

                self.app = VmApplication()
            self.app.record_process(self.vm_id, kind, os.getpid(), **details)
        except VmError as err:
            log.info("process_event_not_recorded", vm_id=str(self.vm_id), kind=kind, reason=str(err))


os.register_at_fork(after_in_child=_forget_runs_in_child)


class RecordedRun:
    """A guest run recorded on a VM in the event store, from start to a terminal state.

    Subclasses say how the run begins (:meth:`begin`: create, or restore and
    resume, the VM); once it has begun, every way out of :meth:`running` is
    recorded. Recording must never cost the guest its run: if the store
    cannot be written, one warning line says so and the guest's outcome stands.
    """

    not_recorded_warning = "the end of this run is not recorded"

    def __init__(self) -> None:
        self.app: Any = None
        self.vm_id: Any = None
        self.started = False  # this process started (or resumed) the VM: its end is ours to record
        self.ended = False
        self.icount: Callable[[], int] = lambda: 0
        self.started_at = time.perf_counter()
        #: This process's guest process events (set in a forked guest; the first process's exec uses the run's app).
        self.process_events: ProcessEvents | None = None
        LIVE_RUNS.add(self)

    def process_event(self, kind: str, **details: Any) -> None:
        """Record a guest process event of this run (``executed``, or a forked guest's ``exited``)."""
        if self.process_events is not None:
            self.process_events.record(kind, **details)
        elif self.app is not None and self.started:
            self._write(lambda: self.app.record_process(self.vm_id, kind, os.getpid(), **details))

    def begin(self) -> None:
        """Create or resume the VM (the store's refusals of the run itself propagate)."""

    def _write(self, action: Callable[[], None]) -> None:
        """Write one record (signals held until it is written); warn once if the store refuses it."""
        if self.app is None or not self.started:
            return
        with GUARD.deferred():
            try:
                for attempt in range(WRITE_ATTEMPTS):  # guest processes write to the same VM: retry a conflict
                    try:
                        action()
                        break
                    except ConflictError:
                        if attempt == WRITE_ATTEMPTS - 1:
                            raise
            except VmError as err:
                warning_line(f"{self.not_recorded_warning}: {err}")
                log.info("run_end_not_recorded", vm_id=str(self.vm_id), reason=str(err))
                self.close()

    def _costs(self) -> dict[str, Any]:
        return {"instructions_retired": max(0, int(self.icount())), "wall_time_s": time.perf_counter() - self.started_at}

    def guest_ended(self, exit_status: int | None, signo: int | None, instructions: int, wall: float) -> None:
        """Record that the guest exited with ``exit_status`` or was killed by ``signo``."""
        self.ended = True
        self._write(
            lambda: self.app.stop(
                self.vm_id, exit_status=exit_status, signal=signo, instructions_retired=instructions, wall_time_s=wall
            )
        )

    def snapshot_taken(self) -> None:
        """The run ended at a snapshot: the VM is paused there (recorded with the snapshot), not ended."""
        self.ended = True

    def failed(self, reason: str) -> None:
        """Record that the run could not go on, and why."""
        self.ended = True
        self._write(lambda: self.app.fail(self.vm_id, reason, **self._costs()))

    def interrupted(self, signo: int) -> None:
        """Record that ``vm`` got ``signo`` and is ending the run."""
        self.ended = True
        self._write(lambda: self.app.interrupt(self.vm_id, signo, **self._costs()))

    def close(self) -> None:
        if self.app is not None:
            app, self.app = self.app, None
            app.close()

    @contextmanager
    def running(self, icount: Callable[[], int] | None = None) -> Iterator[None]:
        """Begin the run and run it: whatever ends it (but a snapshot, which pauses the VM) is recorded.

        ``icount`` reads the instructions retired so far (for a run that is
        interrupted or fails half-way).
        """
        if icount is not None:
            self.icount = icount
        GUARD.install()
        try:
            with GUARD.deferred():
                self.begin()
            self.started_at = time.perf_counter()
            yield
        except RunInterrupted as err:
            if not self.ended:
                self.interrupted(err.signo)
            raise
        except VmError as err:
            if not self.ended:
                self.failed(one_line(str(err)))
            raise
        except Exception as err:
            if not self.ended:
                self.failed(describe_crash(err))
            raise
        finally:
            GUARD.uninstall()


class RunRecord(RecordedRun):
    """Records one ``vm run`` as a VM, created and started by this process in one write.

    If the store cannot be opened or written, one warning line says the run
    is not recorded and the program runs anyway. A ``--name`` that is
    invalid or already taken refuses the run (nothing is recorded).
    """

    def __init__(self, args: argparse.Namespace, isa: str, engine: str) -> None:
        super().__init__()
        if args.name is not None:
            validate_name(args.name)
        self.name: str | None = args.name
        self.isa = isa
        self.engine = engine
        self.program = os.path.abspath(args.program)
        self.arguments = tuple(args.args)

    def begin(self) -> None:
        try:
            from vm_core.application import VmApplication

            self.app = VmApplication()
            self.vm_id = self.app.create_vm(
                name=self.name,
                isa=self.isa,
                memory_size=USER_ADDRESS_SPACE,
                engine=self.engine,
                program=self.program,
                arguments=self.arguments,
                runner=current_runner(),
            )
        except NameInUseError:
            self.close()
            raise
        except VmError as err:
            warning_line(f"this run is not recorded: {err}")
            log.info("run_not_recorded", reason=str(err))
            self.close()
            return
        self.started = True
