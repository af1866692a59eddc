"""The VirtualMachine aggregate: lifecycle invariants, event replay, config validation.

The lifecycle model below is written from the lifecycle specification
(created -> running <-> paused -> stopped, restore onto a non-running VM,
no start of a stopped VM); hypothesis drives random command sequences
through the aggregate and the model and checks they agree, then checks the
recorded events replay to the same state.
"""

from __future__ import annotations

import random
import signal

import pytest
from eventsourcing.application import project_aggregate
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_core.domainmodel import (
    DuplicateSnapshotError,
    ExitRecord,
    InvalidOutcomeError,
    InvalidTransitionError,
    NameInUseError,
    UnknownSnapshotError,
    VirtualMachine,
    VmConfig,
    VmName,
    VmRemovedError,
    VmState,
    event_details,
    generate_name,
    name_index_id,
    validate_name,
)
from vm_core.errors import ConfigurationError, DomainError


def make_config(**changes: object) -> VmConfig:
    fields: dict[str, object] = {
        "name": "test_vm",
        "isa": "riscv64",
        "memory_size": 64 << 20,
        "engine": "interp",
        "program": "/guest/hello",
        "arguments": ("a", "b c"),
    }
    fields.update(changes)
    return VmConfig(**fields)  # type: ignore[arg-type]


def test_created_vm_carries_its_config_and_starts_in_created_state() -> None:
    vm = VirtualMachine.create(make_config(accelerator="kvm"))
    assert vm.state is VmState.CREATED
    assert vm.config == make_config(accelerator="kvm")
    assert vm.name == "test_vm"
    assert vm.short_id == vm.id.hex[:12]
    assert vm.version == 1
    assert [type(e).__name__ for e in vm.collect_events()] == ["Created"]


def test_full_lifecycle_records_each_event_in_order() -> None:
    vm = VirtualMachine.create(make_config())
    vm.start()
    vm.pause()
    vm.resume()
    vm.record_snapshot("snap1", "sha256:" + "ab" * 32, 4096)
    vm.stop(exit_status=3, instructions_retired=1234, wall_time_s=0.25)
    vm.restore_from("snap1")
    vm.resume()
    vm.stop(signal=int(signal.SIGSEGV), instructions_retired=99, wall_time_s=1.5)
    vm.remove()
    kinds = [type(e).__name__ for e in vm.collect_events()]
    assert kinds == [
        "Created", "Started", "Paused", "Resumed", "SnapshotTaken", "Stopped",
        "RestoredFrom", "Resumed", "Stopped", "Removed",
    ]  # fmt: skip
    assert vm.last_exit == ExitRecord(exit_status=None, signal=11, instructions_retired=99, wall_time_s=1.5)
    assert vm.restored_from == "snap1"
    assert vm.removed


@pytest.mark.parametrize(
    ("prepare", "action", "state"),
    [
        ([], "pause", VmState.CREATED),
        ([], "resume", VmState.CREATED),
        ([], "stop", VmState.CREATED),
        (["start"], "start", VmState.RUNNING),
        (["start"], "resume", VmState.RUNNING),
        (["start", "pause"], "start", VmState.PAUSED),
        (["start", "pause"], "pause", VmState.PAUSED),
        (["start", "stop"], "start", VmState.STOPPED),
        (["start", "stop"], "pause", VmState.STOPPED),
        (["start", "stop"], "resume", VmState.STOPPED),
        (["start", "stop"], "stop", VmState.STOPPED),
        (["start"], "restore", VmState.RUNNING),
        (["start"], "remove", VmState.RUNNING),
        (["start", "pause"], "remove", VmState.PAUSED),
    ],
)
def test_invalid_transitions_raise_domain_errors_and_record_nothing(
    prepare: list[str], action: str, state: VmState
) -> None:
    vm = VirtualMachine.create(make_config())
    vm.record_snapshot("s", "d", 1)
    for step in prepare:
        apply_command(vm, step, "s")
    before = vm.version
    with pytest.raises(InvalidTransitionError) as caught:
        apply_command(vm, action, "s")
    assert isinstance(caught.value, DomainError)
    assert caught.value.state is state
    assert f"cannot {action} VM 'test_vm'" in str(caught.value)
    assert state.value in str(caught.value)
    assert vm.version == before


def test_starting_a_stopped_vm_says_why() -> None:
    vm = VirtualMachine.create(make_config())
    vm.start()
    vm.stop(exit_status=0)
    with pytest.raises(InvalidTransitionError, match="cannot be started again"):
        vm.start()


def test_removed_vm_refuses_every_command() -> None:
    vm = VirtualMachine.create(make_config())
    vm.record_snapshot("s", "d", 1)
    vm.remove()
    for action in ["start", "pause", "resume", "stop", "restore", "snapshot", "remove"]:
        with pytest.raises(VmRemovedError, match="it was removed"):
            apply_command(vm, action, "t")


def test_force_removes_a_running_vm() -> None:
    vm = VirtualMachine.create(make_config())
    vm.start()
    vm.remove(force=True)
    assert vm.removed


def test_snapshot_ids_are_unique_and_restore_needs_a_known_one() -> None:
    vm = VirtualMachine.create(make_config())
    vm.record_snapshot("one", "sha256:00", 10)
    with pytest.raises(DuplicateSnapshotError):
        vm.record_snapshot("one", "sha256:11", 20)
    with pytest.raises(UnknownSnapshotError, match="its snapshots: one"):
        vm.restore_from("two")
    assert vm.snapshots["one"].size == 10


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"exit_status": 0, "signal": 9},
        {"exit_status": 256},
        {"exit_status": -1},
        {"signal": 0},
        {"signal": 65},
        {"exit_status": 0, "instructions_retired": -1},
        {"exit_status": 0, "wall_time_s": -0.5},
        {"exit_status": 0, "wall_time_s": float("nan")},
        {"exit_status": 0, "wall_time_s": float("inf")},
        {"exit_status": 0, "instructions_retired": 1.5},
    ],
)
def test_impossible_stop_outcomes_are_refused(kwargs: dict[str, object]) -> None:
    vm = VirtualMachine.create(make_config())
    vm.start()
    with pytest.raises(InvalidOutcomeError):
        vm.stop(**kwargs)  # type: ignore[arg-type]
    assert vm.state is VmState.RUNNING


@pytest.mark.parametrize(("snapshot_id", "digest", "size"), [("", "d", 1), ("s", "", 1), ("s", "d", -1)])
def test_impossible_snapshots_are_refused(snapshot_id: str, digest: str, size: int) -> None:
    vm = VirtualMachine.create(make_config())
    with pytest.raises(InvalidOutcomeError):
        vm.record_snapshot(snapshot_id, digest, size)


def test_exit_record_names_signals_as_the_kernel_numbers_them() -> None:
    assert ExitRecord(0, None, 0, 0.0).describe() == "exit 0"
    assert ExitRecord(None, 11, 0, 0.0).describe() == "signal 11 (SIGSEGV)"
    assert ExitRecord(None, 9, 0, 0.0).describe() == "signal 9 (SIGKILL)"
    assert ExitRecord(None, 4, 0, 0.0).describe() == "signal 4 (SIGILL)"


@pytest.mark.parametrize(
    "changes",
    [
        {"name": ""},
        {"name": "-leading-dash"},
        {"name": "has space"},
        {"name": "x" * 64},
        {"isa": ""},
        {"engine": ""},
        {"memory_size": 0},
        {"memory_size": -4096},
        {"memory_size": "64M"},
        {"memory_size": True},
        {"program": None},
        {"kernel": "/boot/vmlinux"},
        {"program": ""},
    ],
)
def test_invalid_config_raises_configuration_error(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        VirtualMachine.create(make_config(**changes))


def test_kernel_config_without_program_is_valid() -> None:
    vm = VirtualMachine.create(make_config(program=None, kernel="/boot/Image"))
    assert vm.config.kernel == "/boot/Image"


@given(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z"))
@settings(max_examples=100, deadline=None)
def test_docker_style_names_are_accepted(name: str) -> None:
    validate_name(name)
    assert VirtualMachine.create(make_config(name=name)).name == name


def test_generated_names_are_docker_like_and_avoid_taken_ones() -> None:
    rng = random.Random(1234)
    taken: set[str] = set()
    for _ in range(200):
        name = generate_name(taken.__contains__, rng)
        validate_name(name)
        assert "_" in name
        assert name not in taken
        taken.add(name)


def test_name_generation_gives_up_clearly_when_everything_is_taken() -> None:
    with pytest.raises(NameInUseError):
        generate_name(lambda name: True, random.Random(0))


def test_name_index_ids_are_deterministic_per_name() -> None:
    assert VmName(name="web", vm_id=None).id == name_index_id("web")
    assert name_index_id("web") != name_index_id("db")


def test_event_details_are_the_event_payload() -> None:
    vm = VirtualMachine.create(make_config())
    vm.start()
    vm.stop(exit_status=7, instructions_retired=5, wall_time_s=0.5)
    stopped = vm.collect_events()[-1]
    assert event_details(stopped) == {
        "exit_status": 7,
        "signal": None,
        "instructions_retired": 5,
        "wall_time_s": 0.5,
    }


# -- model-based check of the lifecycle ------------------------------------------------------------

ACTIONS = ["start", "pause", "resume", "stop", "stop_signal", "snapshot", "restore", "remove", "force_remove"]

# The lifecycle specification, written independently of the aggregate.
MODEL_ALLOWED = {
    "start": {"created"},
    "pause": {"running"},
    "resume": {"paused"},
    "stop": {"running", "paused"},
    "stop_signal": {"running", "paused"},
    "restore": {"created", "paused", "stopped"},
    "snapshot": {"created", "running", "paused", "stopped"},
    "remove": {"created", "stopped"},
    "force_remove": {"created", "running", "paused", "stopped"},
}
MODEL_NEXT = {
    "start": "running",
    "pause": "paused",
    "resume": "running",
    "stop": "stopped",
    "stop_signal": "stopped",
    "restore": "paused",
    "remove": "removed",
    "force_remove": "removed",
}


def apply_command(vm: VirtualMachine, action: str, snapshot_id: str) -> None:
    if action == "start":
        vm.start()
    elif action == "pause":
        vm.pause()
    elif action == "resume":
        vm.resume()
    elif action == "stop":
        vm.stop(exit_status=1, instructions_retired=10, wall_time_s=0.1)
    elif action == "stop_signal":
        vm.stop(signal=int(signal.SIGILL), instructions_retired=20, wall_time_s=0.2)
    elif action == "snapshot":
        vm.record_snapshot(snapshot_id, f"sha256:{snapshot_id}", len(snapshot_id))
    elif action == "restore":
        vm.restore_from(snapshot_id)
    elif action == "remove":
        vm.remove()
    elif action == "force_remove":
        vm.remove(force=True)
    else:
        raise AssertionError(action)


@given(st.lists(st.tuples(st.sampled_from(ACTIONS), st.sampled_from(["a", "b"])), max_size=25))
@settings(max_examples=300, deadline=None)
def test_aggregate_follows_the_lifecycle_model_and_replays_to_the_same_state(
    steps: list[tuple[str, str]],
) -> None:
    vm = VirtualMachine.create(make_config())
    model_state = "created"
    model_snapshots: set[str] = set()
    for action, snapshot_id in steps:
        allowed = model_state != "removed" and model_state in MODEL_ALLOWED[action]
        if action == "snapshot":
            allowed = allowed and snapshot_id not in model_snapshots
        if action == "restore":
            allowed = allowed and snapshot_id in model_snapshots
        if allowed:
            apply_command(vm, action, snapshot_id)
            model_state = MODEL_NEXT.get(action, model_state)
            if action == "snapshot":
                model_snapshots.add(snapshot_id)
        else:
            version = vm.version
            with pytest.raises(DomainError):
                apply_command(vm, action, snapshot_id)
            assert vm.version == version
        current = "removed" if vm.removed else vm.state.value
        if model_state == "removed":
            assert vm.removed
        else:
            assert current == model_state
        assert set(vm.snapshots) == model_snapshots

    replayed = project_aggregate(None, vm.collect_events())
    assert isinstance(replayed, VirtualMachine)
    assert replayed.version == vm.version
    assert (replayed.state, replayed.removed, replayed.last_exit) == (vm.state, vm.removed, vm.last_exit)
    assert (replayed.snapshots, replayed.restored_from, replayed.config) == (
        vm.snapshots,
        vm.restored_from,
        vm.config,
    )
