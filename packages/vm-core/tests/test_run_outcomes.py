"""How runs end (failed, interrupted, lost), the runner identity and its liveness check."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.application import project_aggregate
from vm_core.application import VmApplication
from vm_core.domainmodel import (
    ExitRecord,
    InvalidOutcomeError,
    InvalidTransitionError,
    RunOutcome,
    VirtualMachine,
    VmConfig,
    VmState,
)
from vm_core.runner import (
    RunnerIdentity,
    RunnerLiveness,
    current_runner,
    process_start_ticks,
    runner_liveness,
)

CONFIG = VmConfig(name="run", isa="riscv64", memory_size=1 << 20, engine="interp", program="/p")


def running_vm(runner: RunnerIdentity | None = None) -> VirtualMachine:
    vm = VirtualMachine.create(CONFIG)
    vm.start(runner or current_runner())
    return vm


def replayed(vm: VirtualMachine) -> VirtualMachine:
    events = vm.collect_events()
    rebuilt = project_aggregate(None, events)
    assert rebuilt is not None
    return rebuilt


def test_the_runner_is_recorded_with_the_start_and_forgotten_at_the_end() -> None:
    me = current_runner()
    vm = running_vm(me)
    assert vm.runner == me
    vm.interrupt(int(signal.SIGTERM), instructions_retired=5, wall_time_s=0.5)
    again = replayed(vm)
    assert again.state is VmState.STOPPED and again.runner is None
    assert again.last_exit == ExitRecord(None, 15, 5, 0.5, RunOutcome.INTERRUPTED)
    assert again.last_exit.describe() == "interrupted (SIGTERM)"


def test_failed_and_lost_runs() -> None:
    vm = running_vm()
    vm.fail("bad --snapshot-at", instructions_retired=0, wall_time_s=0.0)
    assert vm.last_exit is not None and vm.last_exit.describe() == "failed: bad --snapshot-at"
    with pytest.raises(InvalidTransitionError):
        vm.fail("again")
    lost = running_vm()
    lost.mark_lost()
    rebuilt = replayed(lost)
    assert rebuilt.last_exit is not None and rebuilt.last_exit.outcome is RunOutcome.LOST
    with pytest.raises(InvalidTransitionError):
        rebuilt.mark_lost()


@pytest.mark.parametrize(
    "command",
    [
        lambda vm: vm.fail(""),
        lambda vm: vm.fail("x", instructions_retired=-1),
        lambda vm: vm.interrupt(0),
        lambda vm: vm.interrupt(True),
        lambda vm: vm.interrupt(2, wall_time_s=float("nan")),
    ],
)
def test_impossible_outcomes_are_refused(command: object) -> None:
    vm = running_vm()
    with pytest.raises(InvalidOutcomeError):
        command(vm)  # type: ignore[operator]
    assert vm.state is VmState.RUNNING


def test_exit_records_default_their_outcome_from_status_or_signal() -> None:
    assert ExitRecord(0, None, 0, 0.0).outcome is RunOutcome.EXITED
    assert ExitRecord(None, 11, 0, 0.0).outcome is RunOutcome.KILLED


def test_a_started_event_recorded_before_runners_existed_still_replays() -> None:
    vm = VirtualMachine.create(CONFIG)
    vm.start()
    created, started = vm.collect_events()
    del started.__dict__["runner"]  # as stored by an older vm: the event had no fields
    rebuilt = project_aggregate(None, [created, started])
    assert rebuilt is not None and rebuilt.state is VmState.RUNNING and rebuilt.runner is None


def test_this_process_is_alive_and_a_finished_one_is_gone() -> None:
    me = current_runner()
    assert me.pid > 0 and me.host == socket.gethostname()
    assert runner_liveness(me) is RunnerLiveness.ALIVE
    child = subprocess.Popen(["true"])
    ticks = process_start_ticks(child.pid)
    child.wait()
    finished = RunnerIdentity(host=me.host, boot_id=me.boot_id, pid=child.pid, start_ticks=ticks)
    assert runner_liveness(finished) is RunnerLiveness.GONE


def test_a_reused_pid_another_boot_and_another_host() -> None:
    me = current_runner()
    if me.start_ticks is None:
        pytest.skip("no /proc here")
    assert runner_liveness(RunnerIdentity(me.host, me.boot_id, me.pid, me.start_ticks + 1)) is RunnerLiveness.GONE
    if me.boot_id is not None:
        assert runner_liveness(RunnerIdentity(me.host, "another-boot", me.pid, me.start_ticks)) is RunnerLiveness.GONE
    assert runner_liveness(RunnerIdentity(me.host + "-elsewhere", None, 1, None)) is RunnerLiveness.ELSEWHERE
    assert RunnerIdentity.from_json(me.to_json()) == me


def test_process_start_ticks_reads_a_command_name_with_spaces_and_parentheses(tmp_path: Path) -> None:
    script = tmp_path / "a b) (c"
    script.write_text("#!/bin/sh\nsleep 5\n")
    script.chmod(0o755)
    child = subprocess.Popen([str(script)])
    try:
        ticks = process_start_ticks(child.pid)
        assert isinstance(ticks, int) and ticks > 0
    finally:
        child.kill()
        child.wait()


def test_the_application_creates_and_starts_in_one_write_and_records_each_ending(tmp_path: Path) -> None:
    app = VmApplication({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "s.db")})
    me = current_runner()
    vm_id = app.create_vm(name="one", isa="riscv64", memory_size=1, engine="interp", program="/p", runner=me)
    assert [r.kind for r in app.history(vm_id)] == ["Created", "Started"]
    assert app.get(vm_id).runner == me
    app.interrupt(vm_id, 1)
    other = app.create_vm(isa="riscv64", memory_size=1, engine="interp", program="/p", runner=me)
    app.fail(other, "no")
    third = app.create_vm(isa="riscv64", memory_size=1, engine="interp", program="/p", runner=me)
    app.mark_lost(third)
    outcomes = [vm.last_exit.outcome for vm in app.list_vms() if vm.last_exit is not None]
    assert outcomes == [RunOutcome.INTERRUPTED, RunOutcome.FAILED, RunOutcome.LOST]
    app.remove(third)
    assert app.removed_vm_ids() == [third]
    assert isinstance(third, UUID)
    app.close()
