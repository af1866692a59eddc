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


@pytest.mark.guest_vm
def test_snapshot_chain_matches_qemu(
    guest_program: Any, guest_build: ModuleType, guest_binaries: dict[str, Path], tmp_path: Path
) -> None:
    binary = str(guest_binaries[guest_program.name])
    args = list(guest_program.args)
    env = {**guest_build.GUEST_ENV, "VM_HOME": str(tmp_path / "home")}
    for name in ("qemu", "count", "vm"):
        (tmp_path / name).mkdir()
    qemu_out, qemu_err, qemu_rc = run_in(
        guest_build, [guest_build.find_tool(guest_build.QEMU), binary, *args], tmp_path / "qemu", env
    )
    count_command = [*VM, "run", "--engine", "interp", "--stats", binary, *args]
    _, count_err, _ = run_in(guest_build, count_command, tmp_path / "count", env)
    found = STATS_LINE.search(count_err)
    assert found is not None, count_err[-2000:]
    points = cut_points(int(found.group(1)))

    stdout, stderr = b"", b""
    command = [*VM, "run", "--engine", ENGINES[0], "--snapshot-at", str(points[0]), binary, *args]
    for engine, following in zip(ENGINES[1:], [*points[1:], None], strict=True):
        out, err, rc = run_in(guest_build, command, tmp_path / "vm", env)
        assert rc == 0, err[-2000:]
        guest_err, snapshot_id = split_snapshot_line(err)
        stdout, stderr = stdout + out, stderr + guest_err
        again = [] if following is None else ["--snapshot-at", str(following)]
        command = [*VM, "resume", "--engine", engine, *again, snapshot_id]
    out, err, rc = run_in(guest_build, command, tmp_path / "vm", env)
    stdout, stderr = stdout + out, stderr + err

    assert rc == qemu_rc, err[-2000:]
    assert stdout == qemu_out
    if guest_program.ending == "signal":
        assert UNCAUGHT_SIGNAL_LINE.sub(b"", stderr) == UNCAUGHT_SIGNAL_LINE.sub(b"", qemu_err)
    else:
        assert stderr == qemu_err
    assert tree(tmp_path / "vm") == tree(tmp_path / "qemu")
