"""The VM registry: an eventsourcing application over :mod:`vm_core.domainmodel`.

:class:`VmApplication` loads a :class:`~vm_core.domainmodel.VirtualMachine`
from its events, runs one lifecycle command on it and saves the new events.
VMs are referred to the way docker refers to containers: by full id, by
name, or by a unique prefix of the id's hex digits (see :meth:`resolve`).

Persistence follows eventsourcing's own environment settings. When
``PERSISTENCE_MODULE`` is not set, VMs are kept in SQLite in
``$VM_HOME/vm.sqlite3`` (``VM_HOME`` defaults to ``$XDG_DATA_HOME/vm``, i.e.
``~/.local/share/vm``). ``PERSISTENCE_MODULE=eventsourcing.postgres`` with
the ``POSTGRES_*`` variables selects PostgreSQL (``pip install
'vm-core[postgres]'``); ``eventsourcing.popo`` keeps everything in memory.
The application never overrides what the user set.

Listing uses the application's notification log, filtered on the topic of
the ``Created`` event, so it works on every backend without extra tables.
Names are kept unique by :class:`~vm_core.domainmodel.VmName` index
aggregates saved atomically with the VM's own events.

Two writers that change the same VM concurrently cannot both win: the event
store refuses the second write and :class:`~vm_core.errors.ConflictError`
is raised; no event is lost and the loser can reload and retry.

A store that cannot be used raises :class:`StorageError`, one line that names
the store and says what to do (:mod:`vm_core.store_health`): a damaged or
non-SQLite file, a directory where the file should be, a read-only or locked
store, a full disk. The application never recreates, truncates or deletes an
existing store file; a damaged one is refused before SQLite touches it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import attrs
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import EventSourcingError
from eventsourcing.persistence import PersistenceError, RecordConflictError
from eventsourcing.utils import Environment, EnvType, get_topic

from vm_core.domainmodel import (
    NAME_PATTERN,
    AmbiguousReferenceError,
    NameInUseError,
    VirtualMachine,
    VmConfig,
    VmName,
    event_details,
    generate_name,
    name_index_id,
    validate_name,
)
from vm_core.errors import ConfigurationError, ConflictError, NotFoundError
from vm_core.logging import get_logger
from vm_core.runner import RunnerIdentity
from vm_core.store_health import StorageError as StorageError  # re-exported: where callers always found it
from vm_core.store_health import check_sqlite_store, storage_error

log = get_logger("vm_core.application")

DEFAULT_PERSISTENCE_MODULE = "eventsourcing.sqlite"
DATABASE_FILENAME = "vm.sqlite3"
_CREATED_TOPIC = get_topic(VirtualMachine.Created)
_PAGE = 500
_HEX_DIGITS = frozenset("0123456789abcdef")
_LONGEST_REFERENCE = 64  # a name is at most 63 characters, an id 36


@attrs.frozen
class VmEventRecord:
    """One entry of a VM's history: its position, kind, time and payload."""

    version: int
    kind: str
    timestamp: datetime
    details: Mapping[str, Any]


def vm_home(environ: Mapping[str, str] | None = None) -> Path:
    """The directory vm keeps its data in: ``$VM_HOME``, else ``$XDG_DATA_HOME/vm``, else ``~/.local/share/vm``."""
    env = os.environ if environ is None else environ
    if env.get("VM_HOME"):
        return Path(env["VM_HOME"]).expanduser()
    data_home = env.get("XDG_DATA_HOME") or str(Path("~/.local/share").expanduser())
    return Path(data_home).expanduser() / "vm"


@contextmanager
def _storage_errors(app: VmApplication) -> Iterator[None]:
    """Turn eventsourcing's persistence exceptions (and SQLite's own) into vm errors naming the app's store."""
    try:
        yield
    except RecordConflictError as err:
        raise ConflictError(
            "another writer changed this VM at the same time; nothing of this change was saved",
            hint="reload the VM and retry",
        ) from err
    except (PersistenceError, sqlite3.Error) as err:
        raise storage_error(err, app.store_location) from err


class VmApplication(Application[UUID]):
    """The registry of virtual machines and their lifecycle events."""

    name = "vm"

    def __init__(self, env: EnvType | None = None) -> None:
        self.store_location: str | None = None
        try:
            with _storage_errors(self):
                super().__init__(env)
        except (OSError, EventSourcingError) as err:
            raise ConfigurationError(
                f"cannot open the VM store: {err}",
                hint="check PERSISTENCE_MODULE and its settings (SQLITE_DBNAME or POSTGRES_*); "
                "PostgreSQL needs `pip install 'vm-core[postgres]'`",
            ) from err
        log.debug("vm.store_opened", persistence=self.env.get("PERSISTENCE_MODULE"))

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """eventsourcing's environment, defaulting to SQLite under :func:`vm_home`."""
        environment = super().construct_env(name, env)
        module = environment.get("PERSISTENCE_MODULE") or ""
        if not module:
            module = DEFAULT_PERSISTENCE_MODULE
            environment["PERSISTENCE_MODULE"] = module
        if module == "eventsourcing.sqlite":
            if not environment.get("SQLITE_DBNAME"):
                environment["SQLITE_DBNAME"] = str(vm_home(environment) / DATABASE_FILENAME)
            self.store_location = check_sqlite_store(environment["SQLITE_DBNAME"])
        elif module == "eventsourcing.postgres":
            host = environment.get("POSTGRES_HOST") or "localhost"
            port = environment.get("POSTGRES_PORT") or "5432"
            self.store_location = f"(PostgreSQL database {environment.get('POSTGRES_DBNAME')!r} on {host}:{port})"
        return environment

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """Save pending events; a concurrent change raises :class:`ConflictError`."""
        with _storage_errors(self):
            return super().save(*objs, **kwargs)

    # -- creating and resolving ----------------------------------------------------------------

    def create_vm(
        self,
        *,
        isa: str,
        memory_size: int,
        engine: str,
        name: str | None = None,
        accelerator: str | None = None,
        program: str | None = None,
        kernel: str | None = None,
        arguments: tuple[str, ...] | list[str] = (),
        runner: RunnerIdentity | None = None,
    ) -> UUID:
        """Create a VM and return its id; a docker-like name is generated when none is given.

        With ``runner`` the VM is also started by that process, in the same write (so no VM is
        left ``created`` by a run that was interrupted between the two).
        """
        if name is None:
            name = generate_name(self._name_taken)
        validate_name(name)
        config = VmConfig(
            name=name,
            isa=isa,
            memory_size=memory_size,
            engine=engine,
            accelerator=accelerator,
            program=program,
            kernel=kernel,
            arguments=tuple(arguments),
        )
        vm = VirtualMachine.create(config)
        if runner is not None:
            vm.start(runner)
        index = self._name_index(name)
        if index is None:
            index = VmName(name=name, vm_id=vm.id)
        elif index.vm_id is not None:
            raise NameInUseError(f"the name {name!r} is already in use by VM {index.vm_id.hex[:12]}")
        else:
            index.reassign(vm.id)
        self.save(vm, index)
        log.info("vm.created", vm_id=str(vm.id), name=name, isa=isa, engine=engine)
        return vm.id

    def resolve(self, ref: str | UUID) -> UUID:
        """The id of the VM ``ref`` names: a full id, a name, or a unique prefix of the id's hex digits."""
        if isinstance(ref, UUID):
            self._load(ref)
            return ref
        text = ref.strip()
        if not text:
            raise NotFoundError("no VM given", hint="name a VM by its name or id")
        if len(text) > _LONGEST_REFERENCE:
            raise NotFoundError(f"no VM named {text[:40]!r}... ({len(text)} characters)", hint="see `vm ls`")
        try:
            full = UUID(text)
        except ValueError:
            pass
        else:
            self._load(full)
            return full
        index = self._name_index(text) if NAME_PATTERN.match(text) else None
        if index is not None and index.vm_id is not None:
            return index.vm_id
        prefix = text.lower().replace("-", "")
        if prefix and set(prefix) <= _HEX_DIGITS:
            matches = [vm_id for vm_id in self._all_vm_ids() if vm_id.hex.startswith(prefix)]
            live = [vm_id for vm_id in matches if not self._load_raw(vm_id).removed]
            if len(live) == 1:
                return live[0]
            if len(live) > 1:
                shown = ", ".join(vm_id.hex[:12] for vm_id in live[:5])
                raise AmbiguousReferenceError(
                    f"the id prefix {text!r} matches {len(live)} VMs ({shown})",
                    hint="give more digits or the VM's name",
                )
        raise NotFoundError(f"no VM named {text!r} or with an id starting with it", hint="see `vm ls`")

    def get(self, ref: str | UUID) -> VirtualMachine:
        """The current state of the VM ``ref`` names (see :meth:`resolve`)."""
        return self._load(self.resolve(ref))

    def list_vms(self) -> list[VirtualMachine]:
        """Every VM that has not been removed, oldest first."""
        vms = [self._load_raw(vm_id) for vm_id in self._all_vm_ids()]
        return [vm for vm in vms if not vm.removed]

    def removed_vm_ids(self) -> list[UUID]:
        """The ids of every VM that was removed, oldest first (their histories are kept)."""
        return [vm_id for vm_id in self._all_vm_ids() if self._load_raw(vm_id).removed]

    def history(self, ref: str | UUID) -> list[VmEventRecord]:
        """The recorded events of the VM ``ref`` names, oldest first."""
        vm_id = self.resolve(ref)
        with _storage_errors(self):
            stored: list[Any] = list(self.events.get(vm_id))
        return [
            VmEventRecord(
                version=domain_event.originator_version,
                kind=type(domain_event).__name__,
                timestamp=domain_event.timestamp,
                details=event_details(domain_event),
            )
            for domain_event in stored
        ]

    # -- lifecycle commands --------------------------------------------------------------------

    def start(self, ref: str | UUID, runner: RunnerIdentity | None = None) -> None:
        """Start the VM (it must be freshly created); ``runner`` is the host process running it."""
        vm = self.get(ref)
        vm.start(runner)
        self.save(vm)
        log.info("vm.started", vm_id=str(vm.id))

    def pause(self, ref: str | UUID) -> None:
        """Pause the running VM."""
        vm = self.get(ref)
        vm.pause()
        self.save(vm)
        log.info("vm.paused", vm_id=str(vm.id))

    def resume(self, ref: str | UUID, runner: RunnerIdentity | None = None) -> None:
        """Resume the paused VM; ``runner`` is the host process running it from now on."""
        vm = self.get(ref)
        vm.resume(runner)
        self.save(vm)
        log.info("vm.resumed", vm_id=str(vm.id))

    def stop(
        self,
        ref: str | UUID,
        *,
        exit_status: int | None = None,
        signal: int | None = None,
        instructions_retired: int = 0,
        wall_time_s: float = 0.0,
    ) -> None:
        """Record that the VM stopped with ``exit_status`` or was killed by ``signal``."""
        vm = self.get(ref)
        vm.stop(
            exit_status=exit_status,
            signal=signal,
            instructions_retired=instructions_retired,
            wall_time_s=wall_time_s,
        )
        self.save(vm)
        log.info("vm.stopped", vm_id=str(vm.id), exit_status=exit_status, signal=signal)

    def fail(self, ref: str | UUID, reason: str, *, instructions_retired: int = 0, wall_time_s: float = 0.0) -> None:
        """Record that the VM's run failed (``reason`` says why)."""
        vm = self.get(ref)
        vm.fail(reason, instructions_retired=instructions_retired, wall_time_s=wall_time_s)
        self.save(vm)
        log.info("vm.failed", vm_id=str(vm.id), reason=reason)

    def interrupt(
        self, ref: str | UUID, signal: int, *, instructions_retired: int = 0, wall_time_s: float = 0.0
    ) -> None:
        """Record that the ``vm`` process running the VM got ``signal`` and ended the run."""
        vm = self.get(ref)
        vm.interrupt(signal, instructions_retired=instructions_retired, wall_time_s=wall_time_s)
        self.save(vm)
        log.info("vm.interrupted", vm_id=str(vm.id), signal=signal)

    def mark_lost(self, ref: str | UUID) -> None:
        """Record that the process running the VM vanished (check :func:`vm_core.runner.runner_liveness` first)."""
        vm = self.get(ref)
        vm.mark_lost()
        self.save(vm)
        log.info("vm.lost", vm_id=str(vm.id))

    def record_process(self, ref: str | UUID, kind: str, pid: int, *, attempts: int = 20, **details: Any) -> None:
        """Record a guest process event (see ``VirtualMachine.record_process``); several guest processes
        write to one VM, so a conflicting write is retried (``attempts`` times) on the VM as it now is."""
        for attempt in range(attempts):
            vm = self.get(ref)
            vm.record_process(kind, pid, **details)
            try:
                self.save(vm)
                break
            except ConflictError:
                if attempt == attempts - 1:
                    raise
        log.debug("vm.process_recorded", vm_id=str(vm.id), kind=kind, pid=pid)

    def record_snapshot(self, ref: str | UUID, snapshot_id: str, digest: str, size: int) -> None:
        """Record a snapshot of the VM by id, content digest and size in bytes."""
        vm = self.get(ref)
        vm.record_snapshot(snapshot_id, digest, size)
        self.save(vm)
        log.info("vm.snapshot_recorded", vm_id=str(vm.id), snapshot_id=snapshot_id, size=size)

    def restore_from(self, ref: str | UUID, snapshot_id: str) -> None:
        """Record that the VM was restored from one of its snapshots (it is then paused)."""
        vm = self.get(ref)
        vm.restore_from(snapshot_id)
        self.save(vm)
        log.info("vm.restored", vm_id=str(vm.id), snapshot_id=snapshot_id)

    def remove(self, ref: str | UUID, *, force: bool = False) -> UUID:
        """Remove the VM (running or paused only with ``force``); its name becomes free."""
        vm = self.get(ref)
        vm.remove(force=force)
        index = self._name_index(vm.name)
        if index is not None and index.vm_id == vm.id:
            index.reassign(None)
        self.save(vm, index)
        log.info("vm.removed", vm_id=str(vm.id), name=vm.name)
        return vm.id

    # -- internals -----------------------------------------------------------------------------

    def _load_raw(self, vm_id: UUID) -> VirtualMachine:
        try:
            with _storage_errors(self):
                vm: object = self.repository.get(vm_id)
        except AggregateNotFoundError:
            raise NotFoundError(f"no VM with id {vm_id}", hint="see `vm ls`") from None
        if not isinstance(vm, VirtualMachine):
            raise NotFoundError(f"no VM with id {vm_id}", hint="see `vm ls`")
        return vm

    def _load(self, vm_id: UUID) -> VirtualMachine:
        vm = self._load_raw(vm_id)
        if vm.removed:
            raise NotFoundError(f"VM {vm.label} was removed", hint="see `vm ls`")
        return vm

    def _name_index(self, name: str) -> VmName | None:
        try:
            with _storage_errors(self):
                index: object = self.repository.get(name_index_id(name))
        except AggregateNotFoundError:
            return None
        return index if isinstance(index, VmName) else None

    def _name_taken(self, name: str) -> bool:
        index = self._name_index(name)
        return index is not None and index.vm_id is not None

    def _all_vm_ids(self) -> list[UUID]:
        ids: list[UUID] = []
        start: int | None = None
        with _storage_errors(self):
            while True:
                page = self.recorder.select_notifications(
                    start=start, limit=_PAGE, topics=[_CREATED_TOPIC], inclusive_of_start=False
                )
                ids.extend(UUID(str(notification.originator_id)) for notification in page)
                if len(page) < _PAGE:
                    return ids
                start = page[-1].id
