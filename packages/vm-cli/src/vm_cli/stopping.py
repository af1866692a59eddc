"""Stopping a recorded, running VM: signalling the very ``vm`` process that runs it.

The ``vm`` process that runs the VM (its identity was recorded when the run
started: pid, start time, boot id) gets SIGTERM, records the run
``interrupted`` and ends; after the timeout it gets SIGKILL and
:func:`stop_vm` records the end itself. The signal goes only to that very
process: it is opened as a pidfd and its start time checked first, so a
pid reused by another process is never signalled. A VM whose process
already vanished is recorded ``lost``; one that runs on another host is
refused. Used by ``vm stop`` and ``vm rm -f``.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager

from vm_core.application import VmApplication
from vm_core.domainmodel import InvalidTransitionError, VirtualMachine, VmState
from vm_core.errors import UnsupportedError
from vm_core.runner import RunnerIdentity, RunnerLiveness, process_start_ticks, runner_liveness

#: Seconds a VM's process has to record its end after SIGTERM before it gets SIGKILL.
STOP_TIMEOUT = 10.0
_POLL_S = 0.05


class _Runner:
    """A verified handle on a runner process: a pidfd where the host has them, else the pid."""

    def __init__(self, runner: RunnerIdentity, pidfd: int | None) -> None:
        self.runner = runner
        self.pidfd = pidfd

    def alive(self) -> bool:
        if self.pidfd is not None:
            readable, _, _ = select.select([self.pidfd], [], [], 0)
            return not readable
        return runner_liveness(self.runner) is RunnerLiveness.ALIVE

    def send(self, signo: int) -> None:
        try:
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signo)
            else:
                os.kill(self.runner.pid, signo)
        except ProcessLookupError:
            pass
        except PermissionError:
            raise UnsupportedError(
                f"not permitted to signal {self.runner.describe()}", hint="stop it as the user who started it"
            ) from None

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the process to end; whether it did."""
        deadline = time.monotonic() + max(0.0, timeout)
        while self.alive():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.pidfd is not None:
                select.select([self.pidfd], [], [], left)
            else:
                time.sleep(min(_POLL_S, left))
        return True


@contextmanager
def _open_runner(runner: RunnerIdentity) -> Iterator[_Runner | None]:
    """The runner process, if it is still the one recorded (``None`` when it is gone)."""
    pidfd: int | None = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(runner.pid)
        except ProcessLookupError:
            yield None
            return
        except OSError:
            pidfd = None  # a kernel without pidfds
    try:
        # checked after the pidfd is open: if it still matches, the pidfd is the recorded process
        if runner_liveness(runner) is not RunnerLiveness.ALIVE or (
            runner.start_ticks is not None and process_start_ticks(runner.pid) != runner.start_ticks
        ):
            yield None
        else:
            yield _Runner(runner, pidfd)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def stop_vm(app: VmApplication, vm: VirtualMachine, timeout: float) -> str:
    """Stop the running ``vm``; ``"stopped"``, or ``"lost"`` when its process had already vanished."""
    if vm.state is not VmState.RUNNING:
        raise InvalidTransitionError(vm.label, "stop", vm.state, hint="only a running VM can be stopped")
    runner = vm.runner
    if runner is None:
        raise UnsupportedError(
            f"VM {vm.label} does not record which process runs it (recorded by an older vm)",
            hint="`vm rm -f` removes its record",
        )
    if runner_liveness(runner) is RunnerLiveness.ELSEWHERE:
        raise UnsupportedError(f"VM {vm.label} runs on host {runner.host}", hint="stop it there")
    with _open_runner(runner) as process:
        if process is None:
            app.mark_lost(vm.id)
            return "lost"
        process.send(signal.SIGTERM)
        killed = not process.wait(timeout)
        if killed:
            process.send(signal.SIGKILL)
            process.wait(STOP_TIMEOUT)
    if app.get(vm.id).state is VmState.RUNNING:  # it could not record its end: SIGKILL, or its store failed
        app.interrupt(vm.id, int(signal.SIGKILL if killed else signal.SIGTERM))
    return "stopped"
