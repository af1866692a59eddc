"""Snapshots restore exactly: every guest program, cut at three points, ends as qemu-riscv64 runs it whole.

For each program of the RV64 suite: qemu-riscv64 runs it uninterrupted (the
oracle), ``vm run --stats`` counts its instructions, then a chain of fresh
``vm`` processes runs it in four pieces in one working directory::

    vm run --engine python --snapshot-at P1 PROGRAM ARGS   ->  snapshot: A
    vm resume --engine interp --snapshot-at P2 A           ->  snapshot: B
    vm resume --engine python --snapshot-at P3 B           ->  snapshot: C
    vm resume --engine interp C                            ->  the program's own ending

The concatenated stdout and stderr (without the ``snapshot: ID`` lines), the
last process's returncode and the files left in the directory must equal
qemu's. Every run sees the same environment, including ``VM_HOME`` (the
snapshot store), so the guests' stacks are laid out the same.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SNAPSHOT_LINE = re.compile(rb"snapshot: ([0-9a-f]{16})\n\Z")
STATS_LINE = re.compile(rb"^vm: instructions retired (\d+)$", re.MULTILINE)
VM = [sys.executable, "-m", "vm_cli"]
#: The engine of each piece: snapshots are engine-independent, and both engines must stop exactly at N.
ENGINES = ("python", "interp", "python", "interp")
# qemu's report of an uncaught guest signal, and vm's imitation of it (see test_guest_programs.py).
UNCAUGHT_SIGNAL_LINE = re.compile(rb"^[\w.-]+: uncaught target signal \d+ \([^)\n]*\)[^\n]*\n?", re.MULTILINE)


def tree(root: Path) -> dict[str, tuple[str, int, bytes]]:
    """Relative path -> (kind, permission bits, contents or link target) for everything under ``root``."""
    entries: dict[str, tuple[str, int, bytes]] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        kind = "link" if stat.S_ISLNK(info.st_mode) else "dir" if stat.S_ISDIR(info.st_mode) else "file"
        content = os.readlink(path).encode() if kind == "link" else path.read_bytes() if kind == "file" else b""
        entries[path.relative_to(root).as_posix()] = (kind, stat.S_IMODE(info.st_mode), content)
    return entries


def run_in(guest_build: ModuleType, command: list[str], cwd: Path, env: dict[str, str]) -> tuple[bytes, bytes, int]:
    result = subprocess.run(
        command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=300,
        umask=guest_build.GUEST_UMASK, preexec_fn=guest_build.guest_process_setup, check=False,
    )
    return result.stdout, result.stderr, result.returncode


def split_snapshot_line(stderr: bytes) -> tuple[bytes, str]:
    """The guest's stderr and the snapshot id from the last line ``snapshot: ID``."""
    match = SNAPSHOT_LINE.search(stderr)
    assert match is not None, f"no `snapshot: ID` last line in {stderr[-500:]!r}"
    return stderr[: match.start()], match.group(1).decode()


def cut_points(total: int) -> list[int]:
    """Three points spread over the run: early, middle, late (distinct and inside it)."""
    return sorted({max(1, total // 7), total // 2, max(1, total - total // 9)})


def run_chain(
    guest_build: ModuleType, binary: str, args: list[str], points: list[int], cwd: Path, env: dict[str, str]
) -> tuple[bytes, bytes, int]:
    """Run the program in pieces cut at ``points`` (a fresh ``vm`` process each); the joined outcome."""
    stdout, stderr = b"", b""
    command = [*VM, "run", "--engine", ENGINES[0], "--snapshot-at", str(points[0]), binary, *args]
    engines = [ENGINES[(i + 1) % len(ENGINES)] for i in range(len(points))]
    for engine, following in zip(engines, [*points[1:], None], strict=True):
        out, err, rc = run_in(guest_build, command, cwd, env)
        assert rc == 0, err[-2000:]
        guest_err, snapshot_id = split_snapshot_line(err)
        stdout, stderr = stdout + out, stderr + guest_err
        again = [] if following is None else ["--snapshot-at", str(following)]
        command = [*VM, "resume", "--engine", engine, *again, snapshot_id]
    out, err, rc = run_in(guest_build, command, cwd, env)
    return stdout + out, stderr + err, rc


def count_instructions(guest_build: ModuleType, binary: str, args: list[str], cwd: Path, env: dict[str, str]) -> int:
    cwd.mkdir()
    _, err, _ = run_in(guest_build, [*VM, "run", "--engine", "interp", "--stats", binary, *args], cwd, env)
    found = STATS_LINE.search(err)
    assert found is not None, err[-2000:]
    return int(found.group(1))


def run_qemu(guest_build: ModuleType, binary: str, args: list[str], cwd: Path, env: dict[str, str]) -> Any:
    cwd.mkdir()
    return run_in(guest_build, [guest_build.find_tool(guest_build.QEMU), binary, *args], cwd, env)


# Every program's chain takes minutes on 2 cores: the default run cuts four that cover exit, signal
# ending, files and a handler; `nox -s full` cuts the rest.
@pytest.mark.quick_programs("hello", "segv", "file_io", "sigusr1")
@pytest.mark.guest_vm
def test_snapshot_chain_matches_qemu(
    guest_program: Any, guest_build: ModuleType, guest_binaries: dict[str, Path], tmp_path: Path
) -> None:
    if guest_program.no_snapshot:
        pytest.skip(f"{guest_program.name} holds what snapshots refuse (pipes, sockets, event descriptors or timers)")
    if guest_program.forks:
        pytest.skip("a guest that forks is not snapshotted (test_snapshot_of_a_forked_guest_is_refused)")
    binary = str(guest_binaries[guest_program.name])
    args = list(guest_program.args)
    env = {**guest_build.GUEST_ENV, "VM_HOME": str(tmp_path / "home")}
    qemu_out, qemu_err, qemu_rc = run_qemu(guest_build, binary, args, tmp_path / "qemu", env)
    points = cut_points(count_instructions(guest_build, binary, args, tmp_path / "count", env))
    (tmp_path / "vm").mkdir()
    stdout, stderr, rc = run_chain(guest_build, binary, args, points, tmp_path / "vm", env)

    assert rc == qemu_rc, stderr[-2000:]
    assert stdout == qemu_out
    if guest_program.ending == "signal":
        assert UNCAUGHT_SIGNAL_LINE.sub(b"", stderr) == UNCAUGHT_SIGNAL_LINE.sub(b"", qemu_err)
    else:
        assert stderr == qemu_err
    assert tree(tmp_path / "vm") == tree(tmp_path / "qemu")


@pytest.fixture(scope="module")
def snapshot_state(guest_binaries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> str:
    """tests/c/snapshot_state.c built like the suite (the toolchain is there: guest_binaries checked it)."""
    out = tmp_path_factory.mktemp("snapshot_state") / "snapshot_state"
    source = Path(__file__).parent / "c" / "snapshot_state.c"
    subprocess.run(["riscv64-linux-gnu-gcc", "-static", "-O2", "-o", str(out), str(source)], check=True)
    return str(out)


@pytest.mark.guest_vm
def test_open_files_signals_umask_and_cwd_survive_snapshots(
    snapshot_state: str, guest_build: ModuleType, tmp_path: Path
) -> None:
    env = {**guest_build.GUEST_ENV, "VM_HOME": str(tmp_path / "home")}
    expected = run_qemu(guest_build, snapshot_state, [], tmp_path / "qemu", env)
    total = count_instructions(guest_build, snapshot_state, [], tmp_path / "count", env)
    (tmp_path / "vm").mkdir()
    actual = run_chain(guest_build, snapshot_state, [], [total * k // 5 for k in (1, 2, 3, 4)], tmp_path / "vm", env)
    assert actual == expected
    assert tree(tmp_path / "vm") == tree(tmp_path / "qemu")
    assert b"handled after unblock: 1010" in actual[0]  # the pending signal ran its handler on the altstack


def test_a_pipe_is_refused_with_a_clear_error(snapshot_state: str, guest_build: ModuleType, tmp_path: Path) -> None:
    env = {**guest_build.GUEST_ENV, "VM_HOME": str(tmp_path / "home")}
    _, err, rc = run_in(guest_build, [*VM, "run", "--snapshot-at", "100000", snapshot_state, "pipe"], tmp_path, env)
    assert rc == 1
    assert b"cannot snapshot guest fd 3: it is a pipe" in err
    assert b"snapshot:" not in err.splitlines()[-1]
    assert not list((tmp_path / "home" / "snapshots").glob("*.json.gz"))
