"""Every run ends in a recorded terminal state; ``vm stop``, ``lost`` runs, and the signals ``vm`` gets.

A long-running guest (``tests/c/wait_forever.c``: prints ``ready`` and
sleeps) is run with ``vm run`` and ended every way a run can end: SIGTERM,
SIGHUP and SIGINT to ``vm`` (recorded ``interrupted``, then ``vm`` dies as
the signal's default action would), SIGKILL (nothing can be recorded: the
liveness check shows it ``lost``), ``vm stop`` (recorded), a refused
argument and a crash (recorded ``failed``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vm_cli.main import main
from vm_core.application import VmApplication
from vm_core.domainmodel import RunOutcome, VmState
from vm_core.runner import RunnerIdentity, current_runner, process_start_ticks

HERE = Path(__file__).parent
CC = "riscv64-linux-gnu-gcc"
VM = [sys.executable, "-m", "vm_cli"]
HELLO = HERE.parents[2] / "examples" / "hello-riscv64"


@pytest.fixture(scope="module")
def wait_forever(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which(CC) is None:
        message = f"{CC} is missing (apt-get install gcc-riscv64-linux-gnu)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path_factory.mktemp("bin") / "wait_forever"
    subprocess.run([CC, "-static", "-O2", "-o", str(out), str(HERE / "c" / "wait_forever.c")], check=True)
    return out


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("VM_") or key in ("PERSISTENCE_MODULE", "SQLITE_DBNAME"):
            monkeypatch.delenv(key)
    path = tmp_path / "home"
    monkeypatch.setenv("VM_HOME", str(path))
    return path


def environment(home: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "VM_HOME": str(home)}


def vm(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VM, *args], env=environment(home), capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def started(wait_forever: Path, home: Path) -> Iterator[Any]:
    """Start ``vm run --name NAME wait_forever`` and return once the guest printed ``ready``."""
    running: list[subprocess.Popen[str]] = []

    def start(name: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [*VM, "run", "--engine", "python", "--name", name, str(wait_forever)],
            env=environment(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        running.append(process)
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        return process

    yield start
    for process in running:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def listed(home: Path) -> dict[str, dict[str, Any]]:
    done = vm("ls", "--json", home=home)
    assert done.returncode == 0, done.stderr
    return {row["name"]: row for row in json.loads(done.stdout)}


@pytest.mark.parametrize("signo", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_to_vm_is_recorded_interrupted_then_ends_vm(signo: signal.Signals, started: Any, home: Path) -> None:
    process = started("target")
    process.send_signal(signo)
    _, err = process.communicate(timeout=60)
    if signo == signal.SIGINT:
        assert (process.returncode, err) == (130, "vm: interrupted\n")
    else:
        assert (process.returncode, err) == (-signo, "")  # as the signal's default action ends a process
    vm_record = VmApplication().get("target")
    assert vm_record.state is VmState.STOPPED
    assert vm_record.last_exit is not None
    assert (vm_record.last_exit.outcome, vm_record.last_exit.signal) == (RunOutcome.INTERRUPTED, signo)
    assert vm_record.last_exit.instructions_retired > 0
    assert listed(home)["target"]["last_exit"] == f"interrupted ({signo.name})"


def test_a_vm_process_killed_outright_shows_as_lost(started: Any, home: Path) -> None:
    process = started("victim")
    assert listed(home)["victim"]["state"] == "running"
    process.kill()
    process.communicate(timeout=30)
    assert listed(home)["victim"]["state"] == "lost"
    assert VmApplication().get("victim").state is VmState.RUNNING  # shown lost, recorded as it was
    done = vm("stop", "victim", home=home)
    assert done.returncode == 0 and "lost" in done.stdout
    vm_record = VmApplication().get("victim")
    assert vm_record.last_exit is not None and vm_record.last_exit.outcome is RunOutcome.LOST


def test_vm_stop_stops_a_running_vm_and_it_is_recorded(started: Any, home: Path) -> None:
    process = started("svc")
    other = started("bystander")
    done = vm("stop", "svc", home=home)
    assert (done.returncode, done.stdout, done.stderr) == (0, "svc\n", "")
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGTERM
    rows = listed(home)
    assert (rows["svc"]["state"], rows["svc"]["last_exit"]) == ("stopped", "interrupted (SIGTERM)")
    assert rows["bystander"]["state"] == "running" and other.poll() is None
    again = vm("stop", "svc", home=home)
    assert again.returncode == 1 and again.stderr.startswith("vm: error: cannot stop VM 'svc'")
    assert len(again.stderr.splitlines()) == 1


def test_vm_stop_never_signals_a_process_that_only_reuses_the_pid(home: Path) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        ticks = process_start_ticks(bystander.pid)
        assert ticks is not None
        here = current_runner()
        impostor = RunnerIdentity(host=here.host, boot_id=here.boot_id, pid=bystander.pid, start_ticks=ticks + 1)
        app = VmApplication()
        app.create_vm(name="old", isa="riscv64", memory_size=1 << 20, engine="interp", program="/p", runner=impostor)
        assert listed(home)["old"]["state"] == "lost"
        done = vm("stop", "old", home=home)
        assert done.returncode == 0 and "lost" in done.stdout
        time.sleep(0.2)
        assert bystander.poll() is None  # never signalled
    finally:
        bystander.kill()
        bystander.wait()


def test_a_refused_argument_is_recorded_failed(home: Path) -> None:
    done = vm("run", "--name", "refused", "--snapshot-at", "0", str(HELLO), home=home)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("vm: error: --snapshot-at 0") and len(done.stderr.splitlines()) == 1
    vm_record = VmApplication().get("refused")
    assert vm_record.last_exit is not None and vm_record.last_exit.outcome is RunOutcome.FAILED
    assert "--snapshot-at 0" in (vm_record.last_exit.reason or "")
    taken = vm("run", "--name", "refused", str(HELLO), home=home)
    assert taken.returncode == 1 and "already in use" in taken.stderr and taken.stdout == ""
    assert len(VmApplication().list_vms()) == 1


def test_a_crash_inside_a_run_is_recorded_failed_and_reported_in_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from vm_linux.process import LinuxProcess

    def crash(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(LinuxProcess, "run", crash)
    assert main(["run", "--engine", "interp", "--name", "crashed", str(HELLO)]) == 70
    _, err = capfd.readouterr()
    assert err.splitlines() == ["vm: error: internal error: RuntimeError: boom (a bug in vm; `vm -vv` shows where)"]
    vm_record = VmApplication().get("crashed")
    assert vm_record.last_exit is not None and vm_record.last_exit.outcome is RunOutcome.FAILED
    assert vm_record.last_exit.reason == "internal error: RuntimeError: boom"


def test_ctrl_c_during_a_snapshot_save_leaves_no_snapshot_and_no_running_vm(
    home: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from vm_cli.recording import RunInterrupted
    from vm_cli.snapshot import SnapshotStore

    real_write = SnapshotStore._write_atomically
    writes = 0

    def interrupted_half_way(path: Path, data: bytes) -> None:
        nonlocal writes
        writes += 1
        if writes == 5:
            raise RunInterrupted(signal.SIGINT)
        real_write(path, data)

    monkeypatch.setattr(SnapshotStore, "_write_atomically", staticmethod(interrupted_half_way))
    assert main(["run", "--engine", "interp", "--name", "cut", "--snapshot-at", "3000", str(HELLO)]) == 130
    assert capfd.readouterr().err == "vm: interrupted\n"
    store = SnapshotStore(home)
    assert store.snapshot_ids() == []
    assert not [p for p in store.page_dir.iterdir() if p.name.startswith(".")]  # no temporary file left
    vm_record = VmApplication().get("cut")
    assert vm_record.state is VmState.STOPPED and vm_record.snapshots == {}
    assert vm_record.last_exit is not None and vm_record.last_exit.outcome is RunOutcome.INTERRUPTED
