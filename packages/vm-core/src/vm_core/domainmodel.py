"""The VM lifecycle as event-sourced aggregates.

:class:`VirtualMachine` records what happened to one virtual machine: it was
created with a :class:`VmConfig`, started and resumed (by a host process,
whose :class:`~vm_core.runner.RunnerIdentity` is recorded), paused, ended
(with an :class:`ExitRecord` whose :class:`RunOutcome` says how: exited with
a status, killed by a signal, failed with a reason, interrupted by a signal
sent to ``vm``, or lost when its process vanished), snapshotted
(:class:`SnapshotRecord`), restored from a snapshot, removed. Its state is rebuilt by replaying those events; the
public command methods check the lifecycle invariants first and raise a
:class:`vm_core.errors.DomainError` subclass instead of recording an event
that makes no sense (starting a stopped VM, pausing one that is not running,
restoring onto a running one, ...).

The lifecycle::

    created --start--> running --pause--> paused --resume--> running
    running/paused --stop/fail/interrupt--> stopped
    running --mark_lost--> stopped        (its runner process is gone)
    created/paused/stopped --restore--> paused (at the snapshot's state)

:class:`VmName` is the index aggregate that maps a human-friendly name to the
VM that holds it. Its id is derived from the name (UUID5), so two writers
that claim the same name write the same aggregate and the event store
refuses the second one. :func:`generate_name` makes docker-like names
(``brave_hopper``) for VMs created without one.

The persistence wiring lives in :mod:`vm_core.application`.
"""

from __future__ import annotations

import enum
import math
import random
import re
import signal as _signal
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import attrs
from eventsourcing.domain import Aggregate, event

from vm_core.errors import ConfigurationError, DomainError
from vm_core.runner import RunnerIdentity

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_NAME_NAMESPACE = uuid5(NAMESPACE_URL, "https://vm.invalid/names")


class InvalidTransitionError(DomainError):
    """A lifecycle command is not allowed in the VM's current state."""

    def __init__(self, vm_label: str, action: str, state: VmState, *, hint: str | None = None) -> None:
        super().__init__(f"cannot {action} VM {vm_label}: it is {state.value}", hint=hint)
        self.action = action
        self.state = state


class VmRemovedError(DomainError):
    """The VM was removed; its history is kept but nothing more can happen to it."""


class UnknownSnapshotError(DomainError):
    """The VM has no snapshot with that id."""


class DuplicateSnapshotError(DomainError):
    """The VM already has a snapshot with that id."""


class InvalidOutcomeError(DomainError):
    """A stop or snapshot report carries impossible values (negative counts, two outcomes, ...)."""


class NameInUseError(DomainError):
    """Another VM already has that name."""


class AmbiguousReferenceError(DomainError):
    """A short id prefix matches more than one VM (a bad reference on the command line: exit status 2)."""

    exit_code = 2


def _as_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


class VmState(enum.Enum):
    """Where a VM is in its lifecycle."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


@attrs.frozen
class VmConfig:
    """What a VM is: its name, guest ISA, memory, engine and what it runs.

    Exactly one of ``program`` (a user-mode guest executable) and ``kernel``
    (a system-mode kernel image) is set. ``accelerator`` is ``None`` when the
    VM runs on a software engine only.
    """

    name: str
    isa: str
    memory_size: int
    engine: str
    accelerator: str | None = None
    program: str | None = None
    kernel: str | None = None
    arguments: tuple[str, ...] = attrs.field(default=(), converter=lambda values: _as_tuple(values))

    def validate(self) -> None:
        """Raise :class:`ConfigurationError` naming the first invalid field."""
        validate_name(self.name)
        if not self.isa:
            raise ConfigurationError("VM config: the ISA must not be empty")
        if not self.engine:
            raise ConfigurationError("VM config: the engine must not be empty")
        if isinstance(self.memory_size, bool) or not isinstance(self.memory_size, int):
            raise ConfigurationError(f"VM config: memory size must be an integer, not {self.memory_size!r}")
        if self.memory_size <= 0:
            raise ConfigurationError(f"VM config: memory size must be positive, not {self.memory_size}")
        if (self.program is None) == (self.kernel is None):
            raise ConfigurationError(
                "VM config: give exactly one of a program and a kernel",
                hint="a program runs in user mode, a kernel in system mode",
            )
        if not (self.program or self.kernel):
            raise ConfigurationError("VM config: the program or kernel path must not be empty")
        if not all(isinstance(arg, str) for arg in self.arguments):
            raise ConfigurationError("VM config: arguments must be strings")


class RunOutcome(enum.Enum):
    """How a run ended."""

    EXITED = "exited"  # the guest exited with a status
    KILLED = "killed"  # the guest was killed by a signal
    FAILED = "failed"  # vm could not go on (an error, a crash); ``reason`` says why
    INTERRUPTED = "interrupted"  # ``vm`` itself got SIGINT, SIGTERM or SIGHUP (``signal``)
    LOST = "lost"  # the recording process vanished (SIGKILL, power loss) without recording an end


def _default_outcome(record: ExitRecord) -> RunOutcome:
    return RunOutcome.KILLED if record.signal is not None else RunOutcome.EXITED


def signal_name(signo: int) -> str:
    """``signal 11 (SIGSEGV)``, or ``signal 99`` for a number the host does not name."""
    try:
        return f"signal {signo} ({_signal.Signals(signo).name})"
    except ValueError:
        return f"signal {signo}"


@attrs.frozen
class ExitRecord:
    """How a VM's run ended (its :class:`RunOutcome`, exit status, signal or reason) and what it cost."""

    exit_status: int | None
    signal: int | None
    instructions_retired: int
    wall_time_s: float
    outcome: RunOutcome = attrs.field(default=attrs.Factory(_default_outcome, takes_self=True))
    reason: str | None = None

    def describe(self) -> str:
        """``exit 0``, ``signal 11 (SIGSEGV)``, ``failed: REASON``, ``interrupted (SIGTERM)``, ``lost ...``."""
        if self.outcome is RunOutcome.FAILED:
            return f"failed: {self.reason}"
        if self.outcome is RunOutcome.INTERRUPTED:
            if self.signal is None:
                return "interrupted"
            try:
                return f"interrupted ({_signal.Signals(self.signal).name})"
            except ValueError:
                return f"interrupted (signal {self.signal})"
        if self.outcome is RunOutcome.LOST:
            return "lost (its vm process vanished)"
        if self.signal is not None:
            return signal_name(self.signal)
        return f"exit {self.exit_status}"


@attrs.frozen
class SnapshotRecord:
    """A snapshot of a VM's state: its id, the content digest and size in bytes."""

    snapshot_id: str
    digest: str
    size: int


def validate_name(name: str) -> None:
    """Raise :class:`ConfigurationError` unless ``name`` is a valid VM name (docker's rules)."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigurationError(
            f"invalid VM name {name!r}",
            hint="use 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit",
        )


def _check_costs(instructions_retired: int, wall_time_s: float) -> None:
    if isinstance(instructions_retired, bool) or not isinstance(instructions_retired, int) or instructions_retired < 0:
        raise InvalidOutcomeError(
            f"instructions retired must be a non-negative integer, not {instructions_retired!r}"
        )
    if not isinstance(wall_time_s, int | float) or not (math.isfinite(wall_time_s) and wall_time_s >= 0):
        raise InvalidOutcomeError(f"wall time must be a finite, non-negative number of seconds, not {wall_time_s!r}")


def _check_signal(signal: int) -> None:
    if isinstance(signal, bool) or not (isinstance(signal, int) and 1 <= signal <= 64):
        raise InvalidOutcomeError(f"signal must be an integer in 1..64, not {signal!r}")


def _check_stop_outcome(
    exit_status: int | None, signal: int | None, instructions_retired: int, wall_time_s: float
) -> None:
    if (exit_status is None) == (signal is None):
        raise InvalidOutcomeError("a stopped VM has exactly one of an exit status and a signal")
    if exit_status is not None and not (isinstance(exit_status, int) and 0 <= exit_status <= 255):
        raise InvalidOutcomeError(f"exit status must be an integer in 0..255, not {exit_status!r}")
    if signal is not None:
        _check_signal(signal)
    _check_costs(instructions_retired, wall_time_s)


class VirtualMachine(Aggregate):
    """One virtual machine's lifecycle, rebuilt from its events."""

    @classmethod
    def create(cls, config: VmConfig) -> VirtualMachine:
        """Validate ``config`` and return a new VM (its ``Created`` event pending)."""
        config.validate()
        return cls(
            name=config.name,
            isa=config.isa,
            memory_size=config.memory_size,
            engine=config.engine,
            accelerator=config.accelerator,
            program=config.program,
            kernel=config.kernel,
            arguments=list(config.arguments),
        )

    @event("Created")
    def __init__(
        self,
        name: str,
        isa: str,
        memory_size: int,
        engine: str,
        accelerator: str | None,
        program: str | None,
        kernel: str | None,
        arguments: list[str],
    ) -> None:
        self.config = VmConfig(
            name=name,
            isa=isa,
            memory_size=memory_size,
            engine=engine,
            accelerator=accelerator,
            program=program,
            kernel=kernel,
            arguments=tuple(arguments),
        )
        self.state = VmState.CREATED
        self.removed = False
        self.last_exit: ExitRecord | None = None
        self.snapshots: dict[str, SnapshotRecord] = {}
        self.restored_from: str | None = None
        self.runner: RunnerIdentity | None = None

    # -- queries -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def short_id(self) -> str:
        """The first 12 hex digits of the id, as docker shows container ids."""
        return self.id.hex[:12]

    @property
    def label(self) -> str:
        return f"{self.config.name!r} ({self.short_id})"

    # -- commands ------------------------------------------------------------------------------

    def start(self, runner: RunnerIdentity | None = None) -> None:
        """Start a freshly created VM; ``runner`` is the host process that runs it (for liveness checks)."""
        self._require("start", {VmState.CREATED}, self._start_hint)
        self._started(runner=None if runner is None else runner.to_json())

    def pause(self) -> None:
        """Pause a running VM."""
        self._require("pause", {VmState.RUNNING}, lambda s: "only a running VM can be paused")
        self._paused()

    def resume(self, runner: RunnerIdentity | None = None) -> None:
        """Resume a paused VM; ``runner`` is the host process that runs it from now on."""
        self._require("resume", {VmState.PAUSED}, lambda s: "only a paused VM can be resumed")
        self._resumed(runner=None if runner is None else runner.to_json())

    def stop(
        self,
        *,
        exit_status: int | None = None,
        signal: int | None = None,
        instructions_retired: int = 0,
        wall_time_s: float = 0.0,
    ) -> None:
        """Record that the VM stopped with an exit status or a fatal signal."""
        self._require("stop", {VmState.RUNNING, VmState.PAUSED}, lambda s: "only a running or paused VM stops")
        _check_stop_outcome(exit_status, signal, instructions_retired, wall_time_s)
        self._stopped(
            exit_status=exit_status,
            signal=signal,
            instructions_retired=instructions_retired,
            wall_time_s=float(wall_time_s),
        )

    def fail(self, reason: str, *, instructions_retired: int = 0, wall_time_s: float = 0.0) -> None:
        """Record that the run could not go on (an error, a crash in vm): ``reason`` says why."""
        self._require("fail", {VmState.RUNNING, VmState.PAUSED}, lambda s: "only a running or paused VM fails")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidOutcomeError("a failure needs a non-empty reason")
        _check_costs(instructions_retired, wall_time_s)
        self._failed(reason=reason, instructions_retired=instructions_retired, wall_time_s=float(wall_time_s))

    def interrupt(self, signal: int, *, instructions_retired: int = 0, wall_time_s: float = 0.0) -> None:
        """Record that the ``vm`` process running this VM got ``signal`` (SIGINT, SIGTERM, SIGHUP) and ended."""
        self._require(
            "interrupt", {VmState.RUNNING, VmState.PAUSED}, lambda s: "only a running or paused VM is interrupted"
        )
        _check_signal(signal)
        _check_costs(instructions_retired, wall_time_s)
        self._interrupted(signal=signal, instructions_retired=instructions_retired, wall_time_s=float(wall_time_s))

    def mark_lost(self) -> None:
        """Record that the process running this VM vanished without recording an end (see vm_core.runner)."""
        self._require("mark lost", {VmState.RUNNING}, lambda s: "only a running VM can be lost")
        self._lost()

    def record_process(
        self, kind: str, pid: int, *, parent_pid: int | None = None, program: str | None = None,
        exit_status: int | None = None, signal: int | None = None,
    ) -> None:
        """Record what a guest process of this VM did: ``forked`` (from ``parent_pid``), ``executed``
        ``program``, or ``exited`` (``exit_status`` or ``signal``). Guest processes outlive the VM's
        first one, so any state but removed takes them."""
        self._require_not_removed("record a guest process")
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            raise InvalidOutcomeError(f"a guest pid must be a positive integer, not {pid!r}")
        if kind == "forked":
            self._process_forked(pid=pid, parent_pid=parent_pid)
        elif kind == "executed":
            self._process_executed(pid=pid, program=program)
        elif kind == "exited":
            self._process_exited(pid=pid, exit_status=exit_status, signal=signal)
        else:
            raise InvalidOutcomeError(f"unknown guest process event {kind!r}")

    def record_snapshot(self, snapshot_id: str, digest: str, size: int) -> None:
        """Record a snapshot of this VM (taken by an engine) by its id, content digest and size."""
        self._require_not_removed("snapshot")
        if not isinstance(snapshot_id, str) or not snapshot_id:
            raise InvalidOutcomeError("a snapshot id must be a non-empty string")
        if not isinstance(digest, str) or not digest:
            raise InvalidOutcomeError("a snapshot digest must be a non-empty string")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidOutcomeError(f"a snapshot size must be a non-negative integer, not {size!r}")
        if snapshot_id in self.snapshots:
            raise DuplicateSnapshotError(f"VM {self.label} already has a snapshot {snapshot_id!r}")
        self._snapshot_taken(snapshot_id=snapshot_id, digest=digest, size=size)

    def restore_from(self, snapshot_id: str) -> None:
        """Restore one of this VM's snapshots; the VM is then paused at the snapshot's state."""
        self._require(
            "restore",
            {VmState.CREATED, VmState.PAUSED, VmState.STOPPED},
            lambda s: "stop or pause it first",
        )
        if snapshot_id not in self.snapshots:
            known = ", ".join(sorted(self.snapshots)) or "none"
            raise UnknownSnapshotError(
                f"VM {self.label} has no snapshot {snapshot_id!r}", hint=f"its snapshots: {known}"
            )
        self._restored_from(snapshot_id=snapshot_id)

    def remove(self, *, force: bool = False) -> None:
        """Mark the VM removed; a running or paused VM only with ``force``."""
        self._require_not_removed("remove")
        if self.state in (VmState.RUNNING, VmState.PAUSED) and not force:
            raise InvalidTransitionError(
                self.label, "remove", self.state, hint="stop it first, or force the removal"
            )
        self._removed()

    # -- invariants ----------------------------------------------------------------------------

    def _require_not_removed(self, action: str) -> None:
        if self.removed:
            raise VmRemovedError(f"cannot {action} VM {self.label}: it was removed")

    def _require(self, action: str, allowed: set[VmState], hint: Callable[[VmState], str]) -> None:
        self._require_not_removed(action)
        if self.state not in allowed:
            raise InvalidTransitionError(self.label, action, self.state, hint=hint(self.state))

    @staticmethod
    def _start_hint(state: VmState) -> str:
        if state is VmState.STOPPED:
            return "a stopped VM cannot be started again; restore a snapshot or create a new VM"
        if state is VmState.PAUSED:
            return "resume it instead"
        return "it is already running"

    # -- events --------------------------------------------------------------------------------

    # Started and Resumed carry the runner as a JSON object; events recorded before it existed have none.

    @event("Started")
    def _started(self, runner: dict[str, Any] | None = None) -> None:
        self.state = VmState.RUNNING
        self.runner = None if runner is None else RunnerIdentity.from_json(runner)

    @event("Paused")
    def _paused(self) -> None:
        self.state = VmState.PAUSED
        self.runner = None

    @event("Resumed")
    def _resumed(self, runner: dict[str, Any] | None = None) -> None:
        self.state = VmState.RUNNING
        self.runner = None if runner is None else RunnerIdentity.from_json(runner)

    @event("Stopped")
    def _stopped(
        self, exit_status: int | None, signal: int | None, instructions_retired: int, wall_time_s: float
    ) -> None:
        self._ended(ExitRecord(exit_status, signal, instructions_retired, wall_time_s))

    @event("Failed")
    def _failed(self, reason: str, instructions_retired: int, wall_time_s: float) -> None:
        self._ended(ExitRecord(None, None, instructions_retired, wall_time_s, RunOutcome.FAILED, reason))

    @event("Interrupted")
    def _interrupted(self, signal: int, instructions_retired: int, wall_time_s: float) -> None:
        self._ended(ExitRecord(None, signal, instructions_retired, wall_time_s, RunOutcome.INTERRUPTED))

    @event("Lost")
    def _lost(self) -> None:
        self._ended(ExitRecord(None, None, 0, 0.0, RunOutcome.LOST))

    def _ended(self, record: ExitRecord) -> None:
        self.state = VmState.STOPPED
        self.last_exit = record
        self.runner = None

    @event("ProcessForked")
    def _process_forked(self, pid: int, parent_pid: int | None) -> None:
        pass

    @event("ProcessExecuted")
    def _process_executed(self, pid: int, program: str | None) -> None:
        pass

    @event("ProcessExited")
    def _process_exited(self, pid: int, exit_status: int | None, signal: int | None) -> None:
        pass

    @event("SnapshotTaken")
    def _snapshot_taken(self, snapshot_id: str, digest: str, size: int) -> None:
        self.snapshots[snapshot_id] = SnapshotRecord(snapshot_id=snapshot_id, digest=digest, size=size)

    @event("RestoredFrom")
    def _restored_from(self, snapshot_id: str) -> None:
        self.state = VmState.PAUSED
        self.restored_from = snapshot_id

    @event("Removed")
    def _removed(self) -> None:
        self.removed = True


class VmName(Aggregate):
    """The index entry for one VM name: which VM holds it (``None`` once that VM was removed)."""

    @staticmethod
    def create_id(name: str) -> UUID:
        return name_index_id(name)

    @event("Created")
    def __init__(self, name: str, vm_id: UUID | None) -> None:
        self.name = name
        self.vm_id = vm_id

    @event("Reassigned")
    def reassign(self, vm_id: UUID | None) -> None:
        """Point the name at another VM, or at none (``None``) to release it."""
        self.vm_id = vm_id


def name_index_id(name: str) -> UUID:
    """The id of the :class:`VmName` aggregate for ``name`` (deterministic, so names stay unique)."""
    return uuid5(_NAME_NAMESPACE, name)


def event_details(domain_event: Any) -> dict[str, Any]:
    """The payload of a stored VM event: its fields without the eventsourcing bookkeeping ones."""
    skip = {"originator_id", "originator_version", "timestamp", "originator_topic"}
    return {key: value for key, value in vars(domain_event).items() if key not in skip}


_ADJECTIVES: Sequence[str] = (
    "admiring", "agile", "amazing", "awesome", "blissful", "bold", "brave", "busy", "calm", "clever",
    "cool", "dazzling", "eager", "elastic", "epic", "festive", "focused", "friendly", "gallant", "gentle",
    "happy", "hopeful", "jolly", "keen", "kind", "lucid", "modest", "nifty", "nimble", "optimistic",
    "patient", "quirky", "relaxed", "serene", "sharp", "stoic", "sweet", "tender", "upbeat", "vibrant",
    "wizardly", "zealous",
)  # fmt: skip

_PIONEERS: Sequence[str] = (
    "allen", "babbage", "backus", "bell", "brooks", "cerf", "clarke", "conway", "cray", "dijkstra",
    "engelbart", "hamilton", "hennessy", "hoare", "hopper", "kahan", "kernighan", "knuth", "lamport",
    "liskov", "lovelace", "mccarthy", "moore", "neumann", "noyce", "patterson", "perlman", "ritchie",
    "shannon", "sutherland", "thompson", "torvalds", "turing", "wilkes", "wirth", "wozniak", "yonath",
)  # fmt: skip


def generate_name(is_taken: Callable[[str], bool], rng: random.Random | None = None) -> str:
    """A docker-like ``adjective_pioneer`` name for which ``is_taken`` is false.

    After a few collisions a number is appended (``brave_hopper7``), as docker does.
    """
    chooser = rng or random.SystemRandom()
    for attempt in range(64):
        name = f"{chooser.choice(_ADJECTIVES)}_{chooser.choice(_PIONEERS)}"
        if attempt >= 8:
            name += str(chooser.randrange(1, 10_000))
        if not is_taken(name):
            return name
    raise NameInUseError("could not find a free VM name", hint="give the VM a name explicitly")
