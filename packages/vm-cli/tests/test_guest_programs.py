"""The guest program suite: ``vm run PROGRAM ARGS`` must behave exactly like ``qemu-riscv64 PROGRAM ARGS``.

qemu-user is the oracle. Every program of ``guest/rv64/programs.toml`` runs
under both, each run in its own fresh temporary working directory with the
same fixed environment (``GUEST_ENV``), umask and no core dumps, and the
outcomes must be identical: stdout bytes, stderr bytes, the returncode as
:mod:`subprocess` reports it (negative for a process killed by a signal) and
the files left in the working directory (paths, permission bits, contents).

One exception: for a guest killed by a signal, qemu-user adds its own line
to stderr ("qemu: uncaught target signal 11 (Segmentation fault) - core
dumped"), though only when it dumps a core (never here: RLIMIT_CORE is 0),
and the VM may print the same report under its own name ("vm: uncaught
target signal 11 ..."). Such report lines are removed from both sides
before the stderr comparison of signal-killed programs; stdout, the
returncode and everything the guest itself wrote to stderr are still
compared exactly.

The oracle side is itself checked: each program is run twice under qemu
and must give the same outcome both times, ending the way the manifest says.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest

VM_TIMEOUT_S = float(os.environ.get("VM_GUEST_TIMEOUT", "300"))
# qemu's report of an uncaught guest signal, and the same report by a VM that imitates it ("vm: ...").
UNCAUGHT_SIGNAL_LINE = re.compile(rb"^[\w.-]+: uncaught target signal \d+ \([^)\n]*\)[^\n]*\n?", re.MULTILINE)

FileEntry = tuple[str, int, bytes]


@attrs.frozen
class GuestOutcome:
    """Everything observable about one guest run."""

    stdout: bytes
    stderr: bytes
    returncode: int
    files: dict[str, FileEntry]


def snapshot_tree(root: Path) -> dict[str, FileEntry]:
    """Relative path -> (kind, permission bits, contents or link target) for everything under ``root``."""
    entries: dict[str, FileEntry] = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        name = path.relative_to(root).as_posix()
        permissions = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            entries[name] = ("link", permissions, os.readlink(path).encode())
        elif stat.S_ISDIR(info.st_mode):
            entries[name] = ("dir", permissions, b"")
        elif stat.S_ISREG(info.st_mode):
            entries[name] = ("file", permissions, path.read_bytes())
        else:
            entries[name] = ("other", permissions, b"")
    return entries


def run_in_fresh_dir(
    guest_build: ModuleType, command: list[str], cwd: Path, *, timeout: float
) -> GuestOutcome:
    cwd.mkdir()
    stdout, stderr, returncode = guest_build.run_guest_command(command, cwd, timeout=timeout)
    return GuestOutcome(stdout, stderr, returncode, snapshot_tree(cwd))


def qemu_command(guest_build: ModuleType, program: Any) -> list[str]:
    """qemu-riscv64, or for a program that execs, qemu behind a private binfmt_misc (skip/fail if unavailable)."""
    if not program.execs:
        return [guest_build.find_tool(guest_build.QEMU)]
    try:
        return list(guest_build.exec_capable_qemu())
    except guest_build.ToolchainMissing as missing:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{program.name} execs programs and needs an exec-capable qemu oracle: {missing}")


def run_under_qemu(guest_build: ModuleType, binary: Path, program: Any, cwd: Path) -> GuestOutcome:
    return run_in_fresh_dir(guest_build, [*qemu_command(guest_build, program), str(binary), *program.args], cwd,
                            timeout=60.0)


def without_uncaught_signal_report(stderr: bytes) -> bytes:
    return UNCAUGHT_SIGNAL_LINE.sub(b"", stderr)


def test_manifest_lists_every_source(guest_build: ModuleType) -> None:
    programs = guest_build.load_manifest()
    on_disk = {path.name for path in guest_build.SOURCE_DIR.iterdir() if path.suffix in {".c", ".S"}}
    assert {program.source for program in programs} == on_disk
    for program in programs:
        assert program.heavy == program.name.startswith("bench_"), program.name
        if program.heavy:
            assert program.bench_args and program.bench_args != program.args, program.name
    assert any(program.ending == "signal" for program in programs)
    assert any(program.writable_cwd for program in programs)


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ('name = "x"\nsource = "x.c"\nending = "crash"\nstatus = 0', "ending"),
        ('name = "x"\nsource = "x.py"\nending = "exit"\nstatus = 0', "source"),
        ('name = "x"\nsource = "x.c"\nending = "signal"\nstatus = 0', "status"),
        ('name = "x"\nsource = "x.c"\nending = "exit"\nstatus = 0\nargs = "a b"', "args"),
        ('name = "x"\nsource = "x.c"\nending = "exit"\nstatus = 0\ncolour = 1', "unknown"),
    ],
)
def test_manifest_rejects_bad_entries(
    guest_build: ModuleType, tmp_path: Path, entry: str, complaint: str
) -> None:
    from vm_core.errors import ConfigurationError

    manifest = tmp_path / "programs.toml"
    manifest.write_text(f"[[program]]\n{entry}\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=complaint):
        guest_build.load_manifest(manifest)


def test_missing_toolchain_names_debian_packages(guest_build: ModuleType) -> None:
    with pytest.raises(guest_build.ToolchainMissing) as caught:
        guest_build.check_toolchain(compiler="riscv64-nonexistent-linux-gnu-gcc")
    assert "riscv64-nonexistent-linux-gnu-gcc" in str(caught.value)
    assert "gcc-riscv64-linux-gnu qemu-user" in str(caught.value)


def test_build_is_incremental(guest_build: ModuleType, guest_binaries: dict[str, Path], tmp_path: Path) -> None:
    hello = next(program for program in guest_build.load_manifest() if program.name == "hello")
    binary = guest_build.build_program(hello, tmp_path)
    first_build = binary.stat().st_mtime_ns
    assert guest_build.build_program(hello, tmp_path) == binary
    assert binary.stat().st_mtime_ns == first_build, "an up-to-date program was rebuilt"
    changed = attrs.evolve(hello, cflags=("-DGUEST_VARIANT=1",))
    os.utime(binary, ns=(first_build - 10**9, first_build - 10**9))
    guest_build.build_program(changed, tmp_path)
    assert binary.stat().st_mtime_ns != first_build - 10**9, "changed flags did not trigger a rebuild"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["hello", "hello.buildkey"]


def test_qemu_run_is_deterministic(
    guest_program: Any, guest_build: ModuleType, guest_binaries: dict[str, Path], tmp_path: Path
) -> None:
    binary = guest_binaries[guest_program.name]
    first = run_under_qemu(guest_build, binary, guest_program, tmp_path / "first")
    second = run_under_qemu(guest_build, binary, guest_program, tmp_path / "second")
    assert first == second
    assert first.returncode == guest_program.expected_returncode, first.stderr.decode(errors="replace")
    assert first.stdout, "every program prints something"
    if guest_program.ending == "exit":
        assert b"qemu:" not in first.stderr
    assert bool(first.files) == guest_program.writable_cwd


@pytest.mark.guest_vm
def test_vm_run_matches_qemu(
    guest_program: Any,
    guest_build: ModuleType,
    guest_binaries: dict[str, Path],
    vm_command: list[str],
    tmp_path: Path,
) -> None:
    binary = guest_binaries[guest_program.name]
    expected = run_under_qemu(guest_build, binary, guest_program, tmp_path / "qemu")
    actual = run_in_fresh_dir(
        guest_build, [*vm_command, str(binary), *guest_program.args], tmp_path / "vm", timeout=VM_TIMEOUT_S
    )
    assert actual.returncode == expected.returncode, actual.stderr.decode(errors="replace")[-2000:]
    assert actual.stdout == expected.stdout
    if guest_program.ending == "signal":
        assert without_uncaught_signal_report(actual.stderr) == without_uncaught_signal_report(expected.stderr)
    else:
        assert actual.stderr == expected.stderr
    assert actual.files == expected.files
