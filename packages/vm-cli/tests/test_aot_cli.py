"""``vm aot PROGRAM``: the program runs as under qemu-riscv64, its hot code is stored, and a later run loads it.

The guest's stdout, stderr, status and files must be qemu-riscv64's, both
for ``vm aot`` (which then adds one report line to stderr: how many native
regions it stored, where) and for the ``vm run --engine llvm`` after it,
whose native code must all come from the AOT cache (promotion is switched
off for that run: ``native_threshold`` far beyond what it retires), as its
``--stats`` show.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import ModuleType

from .test_guest_programs import VM_TIMEOUT_S, run_in_fresh_dir

PROGRAM, ARGS = "bench_sieve", ["100000"]
REPORT = re.compile(
    rb"vm aot: (.*) ran to exit status 0; (\d+) native regions stored, 0 already cached, in (.*)\n"
)


def stats_of(stderr: bytes) -> tuple[bytes, dict[str, str]]:
    """The guest's stderr and the ``vm: name value`` lines ``--stats`` ends it with."""
    lines = stderr.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.startswith(b"vm: engine "))
    stats = {}
    for line in lines[first:]:
        name, _, value = line.decode().removeprefix("vm: ").rstrip("\n").rpartition(" ")
        stats[name] = value
    return b"".join(lines[:first]), stats


def test_vm_aot_stores_native_code_that_the_next_run_loads(
    guest_build: ModuleType, guest_binaries: dict[str, Path], tmp_path: Path
) -> None:
    binary = str(guest_binaries[PROGRAM])
    cache = tmp_path / "aot-cache"
    qemu = run_in_fresh_dir(
        guest_build, [guest_build.find_tool(guest_build.QEMU), binary, *ARGS], tmp_path / "qemu", timeout=60.0
    )
    assert qemu.returncode == 0 and qemu.stdout
    env = ["/usr/bin/env", f"VM_CACHE_DIR={cache}"]
    aot = run_in_fresh_dir(
        guest_build,
        [*env, sys.executable, "-m", "vm_cli", "aot", "--threshold", "2000", binary, *ARGS],
        tmp_path / "aot",
        timeout=VM_TIMEOUT_S,
    )
    *guest_stderr, report = aot.stderr.splitlines(keepends=True)
    assert (aot.stdout, b"".join(guest_stderr), aot.returncode, aot.files) == (
        qemu.stdout,
        qemu.stderr,
        qemu.returncode,
        qemu.files,
    )
    match = REPORT.fullmatch(report)
    assert match is not None, report
    stored = int(match[2])
    assert match[1] == binary.encode() and stored > 0 and Path(match[3].decode()).is_relative_to(cache)

    no_promotion = "VM_JIT_SETTINGS=native_threshold=1000000000"
    run = [sys.executable, "-m", "vm_cli", "run", "--engine", "llvm", "--stats"]
    warm = run_in_fresh_dir(
        guest_build, [*env, no_promotion, *run, binary, *ARGS], tmp_path / "warm", timeout=VM_TIMEOUT_S
    )
    guest_stderr_warm, stats = stats_of(warm.stderr)
    assert (warm.stdout, guest_stderr_warm, warm.returncode, warm.files) == (
        qemu.stdout,
        qemu.stderr,
        qemu.returncode,
        qemu.files,
    )
    assert stats["engine"] == "llvm"
    loaded = int(stats["aot loaded regions"])
    assert 0 < loaded <= stored and int(stats["native regions"]) == loaded  # nothing compiled: all loaded
    assert int(stats["native insns"]) > 0 and float(stats["native compile seconds"]) == 0.0
