"""Guest processes against qemu-riscv64: fork/exec/wait programs on every engine, busybox shell scripts.

qemu-user cannot exec a riscv64 program without binfmt_misc, so the oracle
for anything that execs is ``guest/build.py``'s :func:`exec_capable_qemu`:
qemu-riscv64 behind a binfmt_misc instance private to a new user and mount
namespace (skipped with the reason where the host cannot, a failure under
``CI=true``). The busybox scripts run Debian's static busybox from the
``debian_sysroot`` fixture: ``vm run --root SYSROOT`` against qemu running
the same file (busybox runs its applets by exec'ing ``/proc/self/exe``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .test_guest_programs import qemu_command, run_in_fresh_dir

PROCESS_PROGRAMS = ("fork_wait_tree", "exec_chain", "pgrp_session")
TIMEOUT_S = 300.0

#: Pipelines, command substitution, subshells, background jobs and wait, traps (signal and EXIT), exit statuses
#: of killed children, applets exec'd through /proc/self/exe, and busybox timeout killing a sleep.
SHELL_SCRIPT = r"""
echo start
x=$(echo sub | tr a-z A-Z); echo "subst $x"
(echo in subshell; exit 3); echo "subshell status $?"
sleep 0.1 & p=$!; wait $p; echo "bg status $?"
(exit 4) & wait $!; echo "bg exit $?"
false | true; echo "pipe status $?"
trap 'echo trapped USR1' USR1; kill -USR1 $$; echo after trap
trap 'echo exit trap' EXIT
seq 1 5 | sort -r | head -n 2
timeout 1 sleep 5; echo "timeout status $?"
sh -c 'kill -TERM $$'; echo "killed child status $?"
{ for i in 1 2 3; do (echo "job $i"; exit $i) & done; wait; } | sort
echo end
"""

#: Job-control-free process tree shapes: nested subshells, a pipeline of four, background work joined by wait.
PIPELINE_SCRIPT = r"""
echo alpha beta gamma | tr ' ' '\n' | sort -r | wc -l
( ( echo nested; exit 7 ); echo "inner $?"; exit 2 ); echo "outer $?"
a=$(seq 1 3 | (while true; do sleep 0; break; done; cat) | tr '\n' ,); echo "collected $a"
sh -c 'exit 9' & w=$!; wait $w; echo "waited $?"
echo done
"""


def exec_capable_prefix(guest_build: ModuleType) -> list[str]:
    try:
        return list(guest_build.exec_capable_qemu())
    except guest_build.ToolchainMissing as missing:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"needs an exec-capable qemu oracle: {missing}")


@pytest.mark.full
@pytest.mark.parametrize("engine", ["interp", "python"])
@pytest.mark.parametrize("name", PROCESS_PROGRAMS)
def test_process_programs_on_engine(
    name: str, engine: str, guest_build: ModuleType, guest_binaries: dict[str, Path], tmp_path: Path
) -> None:
    program = next(p for p in guest_build.load_manifest() if p.name == name)
    binary = guest_binaries[name]
    expected = run_in_fresh_dir(
        guest_build,
        [*qemu_command(guest_build, program), str(binary), *program.args],
        tmp_path / "qemu",
        timeout=60.0,
    )
    command = [sys.executable, "-m", "vm_cli", "run", "--engine", engine, str(binary), *program.args]
    actual = run_in_fresh_dir(guest_build, command, tmp_path / "vm", timeout=TIMEOUT_S)
    assert (actual.returncode, actual.stdout, actual.stderr) == (
        expected.returncode,
        expected.stdout,
        expected.stderr,
    )
    assert actual.files == expected.files


def run_busybox_script(
    guest_build: ModuleType, sysroot: Path, script: str, tmp_path: Path, engine: str | None
) -> None:
    busybox = sysroot / "usr" / "bin" / "busybox"
    expected = run_in_fresh_dir(
        guest_build,
        [*exec_capable_prefix(guest_build), str(busybox), "sh", "-c", script],
        tmp_path / "qemu",
        timeout=60.0,
    )
    assert expected.returncode == 0, expected.stderr
    engine_options = ["--engine", engine] if engine else []
    command = [sys.executable, "-m", "vm_cli", "run", *engine_options, "--root", str(sysroot), str(busybox),
               "sh", "-c", script]  # fmt: skip
    actual = run_in_fresh_dir(guest_build, command, tmp_path / "vm", timeout=TIMEOUT_S)
    assert (actual.returncode, actual.stdout, actual.stderr) == (
        expected.returncode,
        expected.stdout,
        expected.stderr,
    )


def test_busybox_shell_script(guest_build: ModuleType, debian_sysroot: Path, tmp_path: Path) -> None:
    run_busybox_script(guest_build, debian_sysroot, SHELL_SCRIPT, tmp_path, None)


@pytest.mark.full
@pytest.mark.parametrize("engine", ["interp", "python", "llvm"])
@pytest.mark.parametrize("script", [SHELL_SCRIPT, PIPELINE_SCRIPT], ids=["shell", "pipelines"])
def test_busybox_scripts_on_engine(
    script: str, engine: str, guest_build: ModuleType, debian_sysroot: Path, tmp_path: Path
) -> None:
    run_busybox_script(guest_build, debian_sysroot, script, tmp_path, engine)


def test_exec_capable_oracle_leaves_the_host_binfmt_alone(guest_build: ModuleType, tmp_path: Path) -> None:
    """The oracle's registration lives in its own namespace: the host's binfmt_misc is as it was."""
    host_entry = Path("/proc/sys/fs/binfmt_misc/qemu-riscv64")
    before = host_entry.exists()
    prefix = exec_capable_prefix(guest_build)
    stdout, _stderr, returncode = guest_build.run_guest_command(
        [*prefix[:-1], "cat", "/proc/sys/fs/binfmt_misc/qemu-riscv64"], tmp_path, timeout=30.0
    )
    assert returncode == 0 and b"enabled" in stdout
    assert host_entry.exists() == before


def test_guest_processes_in_the_event_history(
    guest_build: ModuleType, guest_binaries: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """exec_chain execs itself three times, then forks a child that execs and exits 7: all in `vm show`."""
    home = tmp_path / "home"
    monkeypatch.setenv("VM_HOME", str(home))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    binary = guest_binaries["exec_chain"]
    env = {**guest_build.launcher_env(), "VM_HOME": str(home)}
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "vm_cli", "run", "--name", "chain", str(binary)],
        cwd=cwd, env=env, capture_output=True, timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    from vm_core.application import VmApplication

    app = VmApplication()
    try:
        history = app.history("chain")
    finally:
        app.close()
    kinds = [record.kind for record in history]
    assert kinds == ["Created", "Started", *["ProcessExecuted"] * 3, "ProcessForked", "ProcessExecuted",
                     "ProcessExited", "Stopped"]  # fmt: skip
    first_pid = history[1].details["runner"]["pid"]
    forked = history[5].details
    assert forked["parent_pid"] == first_pid and forked["pid"] != first_pid
    assert all(record.details["pid"] == first_pid for record in history[2:5])
    assert history[6].details["pid"] == forked["pid"] and history[6].details["program"] == str(binary)
    assert history[7].details == {"pid": forked["pid"], "exit_status": 7, "signal": None}


def test_snapshot_of_a_forked_guest_is_refused(
    guest_build: ModuleType, guest_binaries: dict[str, Path], tmp_path: Path
) -> None:
    """A snapshot holds one process: a guest that has forked is refused, with the reason, not half-saved."""
    binary = str(guest_binaries["pgrp_session"])
    env = {**guest_build.launcher_env(), "VM_HOME": str(tmp_path / "home")}
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    stats = guest_build.run_guest_command(
        [sys.executable, "-m", "vm_cli", "run", "--engine", "interp", "--stats", binary],
        cwd,
        timeout=TIMEOUT_S,
    )
    total = int(stats[1].split(b"instructions retired ")[1].split()[0])
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "vm_cli", "run", "--snapshot-at", str(total - 100), binary],
        cwd=cwd, env=env, capture_output=True, timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert b"cannot snapshot a guest that has forked" in done.stderr
