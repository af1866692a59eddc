"""VmApplication on every backend (in-memory, SQLite, PostgreSQL; see conftest.py).

Each test runs once per backend: the VM registry must behave the same
whichever event store keeps it, including refusing a concurrent writer with
ConflictError without losing the winner's events.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vm_core.application import VmApplication
from vm_core.domainmodel import (
    AmbiguousReferenceError,
    InvalidTransitionError,
    NameInUseError,
    VmState,
)
from vm_core.errors import ConfigurationError, ConflictError, NotFoundError

if TYPE_CHECKING:
    from .conftest import Backend

VM_ARGS = {"isa": "riscv64", "memory_size": 16 << 20, "engine": "interp", "program": "/guest/prog"}


def test_created_vm_can_be_fetched_by_name_full_id_and_prefix(app: VmApplication) -> None:
    vm_id = app.create_vm(name="web", arguments=["--port", "80"], **VM_ARGS)  # type: ignore[arg-type]
    refs: list[str | UUID] = ["web", vm_id, str(vm_id), vm_id.hex, vm_id.hex[:12], vm_id.hex[:12].upper()]
    for ref in refs:
        assert app.resolve(ref) == vm_id
    vm = app.get("web")
    assert vm.id == vm_id
    assert vm.state is VmState.CREATED
    assert vm.config.arguments == ("--port", "80")
    assert vm.config.memory_size == 16 << 20


def test_a_name_is_generated_when_none_is_given(app: VmApplication) -> None:
    ids = [app.create_vm(**VM_ARGS) for _ in range(5)]  # type: ignore[arg-type]
    names = [app.get(vm_id).name for vm_id in ids]
    assert len(set(names)) == 5
    assert all("_" in name for name in names)
    assert [app.resolve(name) for name in names] == ids


def test_names_are_unique_until_their_vm_is_removed(app: VmApplication) -> None:
    first = app.create_vm(name="db", **VM_ARGS)  # type: ignore[arg-type]
    with pytest.raises(NameInUseError, match="'db' is already in use"):
        app.create_vm(name="db", **VM_ARGS)  # type: ignore[arg-type]
    app.remove("db")
    second = app.create_vm(name="db", **VM_ARGS)  # type: ignore[arg-type]
    assert second != first
    assert app.resolve("db") == second


def test_lifecycle_commands_persist_and_reload_in_another_instance(backend: Backend) -> None:
    app = backend.open()
    vm_id = app.create_vm(name="life", **VM_ARGS)  # type: ignore[arg-type]
    app.start("life")
    app.pause("life")
    app.resume("life")
    app.record_snapshot("life", "snap-1", "sha256:" + "00" * 32, 8192)
    app.stop("life", signal=int(signal.SIGSEGV), instructions_retired=123_456, wall_time_s=2.5)
    app.restore_from("life", "snap-1")

    reader = backend.open_another(app)
    vm = reader.get(vm_id)
    assert vm.state is VmState.PAUSED
    assert vm.restored_from == "snap-1"
    assert vm.snapshots["snap-1"].size == 8192
    assert vm.last_exit is not None
    assert vm.last_exit.describe() == "signal 11 (SIGSEGV)"
    assert vm.last_exit.instructions_retired == 123_456
    assert vm.last_exit.wall_time_s == 2.5
    kinds = [record.kind for record in reader.history("life")]
    assert kinds == ["Created", "Started", "Paused", "Resumed", "SnapshotTaken", "Stopped", "RestoredFrom"]
    assert [record.version for record in reader.history(vm_id)] == list(range(1, 8))


def test_history_carries_event_payloads(app: VmApplication) -> None:
    vm_id = app.create_vm(name="hist", accelerator="kvm", **VM_ARGS)  # type: ignore[arg-type]
    app.start(vm_id)
    app.stop(vm_id, exit_status=42, instructions_retired=7, wall_time_s=0.125)
    created, started, stopped = app.history(vm_id)
    assert created.details["name"] == "hist"
    assert created.details["accelerator"] == "kvm"
    assert list(created.details["arguments"]) == []
    assert started.details == {"runner": None}
    assert stopped.details == {"exit_status": 42, "signal": None, "instructions_retired": 7, "wall_time_s": 0.125}
    assert created.timestamp <= started.timestamp <= stopped.timestamp


def test_invalid_transition_saves_nothing(app: VmApplication) -> None:
    vm_id = app.create_vm(**VM_ARGS)  # type: ignore[arg-type]
    app.start(vm_id)
    app.stop(vm_id, exit_status=0)
    with pytest.raises(InvalidTransitionError, match="stopped"):
        app.start(vm_id)
    with pytest.raises(InvalidTransitionError):
        app.resume(vm_id)
    assert len(app.history(vm_id)) == 3


def test_list_shows_live_vms_oldest_first_and_removed_ones_vanish(app: VmApplication) -> None:
    ids = [app.create_vm(name=f"vm{i}", **VM_ARGS) for i in range(4)]  # type: ignore[arg-type]
    assert [vm.id for vm in app.list_vms()] == ids
    app.remove("vm1")
    assert [vm.name for vm in app.list_vms()] == ["vm0", "vm2", "vm3"]
    removed_refs: list[str | UUID] = ["vm1", ids[1], ids[1].hex]
    for ref in removed_refs:
        with pytest.raises(NotFoundError):
            app.get(ref)
    with pytest.raises(NotFoundError):
        app.start(ids[1])


def test_removing_a_running_vm_needs_force(app: VmApplication) -> None:
    app.create_vm(name="busy", **VM_ARGS)  # type: ignore[arg-type]
    app.start("busy")
    with pytest.raises(InvalidTransitionError, match="remove"):
        app.remove("busy")
    assert app.remove("busy", force=True) not in {vm.id for vm in app.list_vms()}
    assert app.list_vms() == []


def test_ambiguous_prefix_is_a_clear_error(app: VmApplication) -> None:
    # 17 ids over 16 hex digits: at least two share their first digit.
    ids = [app.create_vm(**VM_ARGS) for _ in range(17)]  # type: ignore[arg-type]
    by_digit: dict[str, list[UUID]] = {}
    for vm_id in ids:
        by_digit.setdefault(vm_id.hex[0], []).append(vm_id)
    digit, shared = next((d, group) for d, group in by_digit.items() if len(group) > 1)
    with pytest.raises(AmbiguousReferenceError, match=f"matches {len(shared)} VMs"):
        app.resolve(digit)
    for vm_id in shared:
        assert app.resolve(vm_id.hex[:12]) == vm_id


def test_unknown_references_raise_not_found(app: VmApplication) -> None:
    app.create_vm(name="known", **VM_ARGS)  # type: ignore[arg-type]
    unknown_refs: list[str | UUID] = ["unknown", "zz-not-hex", "", uuid4(), str(uuid4())]
    for ref in unknown_refs:
        with pytest.raises(NotFoundError):
            app.resolve(ref)


def test_a_name_wins_over_an_id_prefix(app: VmApplication) -> None:
    other = app.create_vm(**VM_ARGS)  # type: ignore[arg-type]
    prefix = other.hex[:4]
    named = app.create_vm(name=prefix, **VM_ARGS)  # type: ignore[arg-type]
    assert app.resolve(prefix) == named
    assert app.resolve(other.hex[:12]) == other


def test_invalid_config_is_refused_before_anything_is_saved(app: VmApplication) -> None:
    with pytest.raises(ConfigurationError):
        app.create_vm(name="bad name", **VM_ARGS)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        app.create_vm(isa="riscv64", memory_size=0, engine="interp", program="/p")
    assert app.list_vms() == []


def test_concurrent_writers_conflict_and_no_event_is_lost(backend: Backend) -> None:
    first = backend.open()
    second = backend.open_another(first)
    vm_id = first.create_vm(name="shared", **VM_ARGS)  # type: ignore[arg-type]

    mine = first.get(vm_id)
    theirs = second.get(vm_id)
    mine.start()
    theirs.start()
    first.save(mine)
    with pytest.raises(ConflictError, match="retry"):
        second.save(theirs)

    # The winner's events are all there, exactly once; the loser can reload and continue.
    assert [r.kind for r in second.history(vm_id)] == ["Created", "Started"]
    reloaded = second.get(vm_id)
    assert reloaded.state is VmState.RUNNING
    reloaded.pause()
    second.save(reloaded)
    assert [r.kind for r in first.history(vm_id)] == ["Created", "Started", "Paused"]


def test_concurrent_claims_of_one_name_conflict(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    first = backend.open()
    second = backend.open_another(first)
    looked_up_before_first_saved = second._name_index("twin")
    first.create_vm(name="twin", **VM_ARGS)  # type: ignore[arg-type]
    # The second writer decides on what it saw before the first one saved.
    monkeypatch.setattr(second, "_name_index", lambda name: looked_up_before_first_saved)
    with pytest.raises(ConflictError):
        second.create_vm(name="twin", **VM_ARGS)  # type: ignore[arg-type]
    monkeypatch.undo()
    assert [vm.name for vm in second.list_vms()] == ["twin"]


STOPS = st.one_of(
    st.builds(lambda status: {"exit_status": status}, st.integers(0, 255)),
    st.builds(lambda signo: {"signal": signo}, st.integers(1, 64)),
)


@given(
    stop=STOPS,
    retired=st.integers(0, 2**63 - 1),
    wall=st.floats(0, 1e9, allow_nan=False),
    args=st.lists(st.text(max_size=20), max_size=4),
)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_values_round_trip_through_the_store(
    backend: Backend, stop: dict[str, int], retired: int, wall: float, args: list[str]
) -> None:
    app, reader = backend.writer_and_reader()
    vm_id = app.create_vm(arguments=args, **VM_ARGS)  # type: ignore[arg-type]
    app.start(vm_id)
    app.stop(vm_id, instructions_retired=retired, wall_time_s=wall, **stop)
    vm = reader.get(vm_id)
    assert vm.config.arguments == tuple(args)
    assert vm.last_exit is not None
    assert vm.last_exit.instructions_retired == retired
    assert vm.last_exit.wall_time_s == wall
    assert vm.last_exit.exit_status == stop.get("exit_status")
    assert vm.last_exit.signal == stop.get("signal")
