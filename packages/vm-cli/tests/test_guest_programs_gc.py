"""The guest suite under a code cache far smaller than the programs' code: output still exactly qemu's.

Programs of the suite run under ``vm run --engine python --code-cache-size ...``
with a bound far below the code they translate (700 to 2,400 blocks, several
MiB), so vm-gc collects tens of times per run, marking concurrently while the
guest runs; ``jit_codegen`` keeps generating new code (and overwriting old).
Under ``--engine llvm`` with tier 2 forced (as in ``test_guest_programs_llvm``)
and a 512K bound, native regions are collected too, their machine code freed,
and compiled or loaded from the AOT cache again when the guest comes back.
qemu-riscv64 is the oracle, compared exactly as in ``test_guest_programs``.
Checks on ``--stats`` make sure the bound really made the collector work.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from . import test_guest_programs as _suite

VM_TIMEOUT_S = _suite.VM_TIMEOUT_S
run_in_fresh_dir = _suite.run_in_fresh_dir
run_under_qemu = _suite.run_under_qemu
without_uncaught_signal_report = _suite.without_uncaught_signal_report

#: (program, vm run options): bounds well below each program's working set of translated code. The
#: programs are those whose hot loops still fit (a bound below the hot working set makes every collection
#: an emergency one and the run minutes long; correct, but too slow for the suite).
CASES = [
    *[(name, ["--code-cache-size", "256blocks"]) for name in (
        "hello", "sort_search", "setjmp_longjmp", "segv", "segv_handler", "stdio_interleave", "atomics", "file_io",
        "jit_codegen",
    )],
    *[(name, ["--code-cache-size", "512K"]) for name in ("hello", "setjmp_longjmp", "jit_codegen")],
]


@pytest.mark.guest_vm
@pytest.mark.parametrize(("name", "options"), CASES, ids=[f"{n}-{o[-1]}" for n, o in CASES])
def test_vm_run_with_a_small_code_cache_matches_qemu(
    name: str, options: list[str], guest_build: ModuleType, guest_binaries: dict[str, Path], tmp_path: Path
) -> None:
    program = next(p for p in guest_build.load_manifest() if p.name == name)
    binary = guest_binaries[name]
    expected = run_under_qemu(guest_build, binary, program, tmp_path / "qemu")
    command = [sys.executable, "-m", "vm_cli", "run", "--engine", "python", *options, str(binary), *program.args]
    actual = run_in_fresh_dir(guest_build, command, tmp_path / "vm", timeout=VM_TIMEOUT_S)
    assert actual.returncode == expected.returncode, actual.stderr.decode(errors="replace")[-2000:]
    assert actual.stdout == expected.stdout
    if program.ending == "signal":
        assert without_uncaught_signal_report(actual.stderr) == without_uncaught_signal_report(expected.stderr)
    else:
        assert actual.stderr == expected.stderr
    assert actual.files == expected.files


@pytest.mark.guest_vm
def test_small_code_cache_is_collected_and_stays_bounded(
    guest_build: ModuleType, guest_binaries: dict[str, Path], tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "vm_cli", "run", "--engine", "python", "--stats", "--code-cache-size",
               "64blocks", str(guest_binaries["jit_codegen"]), "40", "16"]
    outcome = run_in_fresh_dir(guest_build, command, tmp_path / "vm", timeout=VM_TIMEOUT_S)
    assert outcome.returncode == 0, outcome.stderr.decode(errors="replace")[-2000:]
    assert outcome.stdout.endswith(b"checksum 731e6e243160b740 mismatches 0\n")  # qemu-riscv64's last line
    stats = {m[1]: int(m[2]) for m in re.finditer(rb"^vm: (gc [a-z ]+|code cache [a-z ]+) (\d+)$",
                                                 outcome.stderr, re.MULTILINE)}
    assert stats[b"gc collections"] > 10
    assert stats[b"gc minor collections"] > 0 and stats[b"gc major collections"] > 0
    assert stats[b"gc reclaimed translations"] > 1000  # the 1,280 generated functions and more
    assert stats[b"code cache translations"] <= 64 + 1


#: Tier 2 forced early and synchronous; ``gc_concurrent=false`` makes a run's collections reproducible.
NATIVE_SETTINGS = "native_threshold=2000,native_start_insns=0,native_background=false,native_max_region_blocks=12"
NATIVE_CASES = [("hello", "gc_concurrent=false"), ("bench_hash", "gc_concurrent=false"), ("bench_sieve", ""),
                ("jit_codegen", "gc_concurrent=false")]  # fmt: skip


@pytest.mark.guest_vm
@pytest.mark.parametrize(("name", "extra"), NATIVE_CASES, ids=[f"{n}-{e or 'concurrent'}" for n, e in NATIVE_CASES])
def test_native_code_under_a_small_code_cache_matches_qemu(
    name: str, extra: str, guest_build: ModuleType, guest_binaries: dict[str, Path], tmp_path: Path
) -> None:
    program = next(p for p in guest_build.load_manifest() if p.name == name)
    expected = run_under_qemu(guest_build, guest_binaries[name], program, tmp_path / "qemu")
    settings = ",".join(filter(None, (NATIVE_SETTINGS, extra)))
    command = ["/usr/bin/env", f"VM_JIT_SETTINGS={settings}", f"VM_CACHE_DIR={tmp_path / 'aot'}", sys.executable,
               "-m", "vm_cli", "run", "--engine", "llvm", "--stats", "--code-cache-size", "512K",
               str(guest_binaries[name]), *program.args]  # fmt: skip
    actual = run_in_fresh_dir(guest_build, command, tmp_path / "vm", timeout=VM_TIMEOUT_S)
    cut = actual.stderr.rfind(b"vm: engine ")  # the --stats lines come last
    assert cut >= 0, actual.stderr.decode(errors="replace")[-2000:]
    assert actual.returncode == expected.returncode, actual.stderr.decode(errors="replace")[-2000:]
    assert (actual.stdout, actual.stderr[:cut], actual.files) == (expected.stdout, expected.stderr, expected.files)
    stats = {m[1]: int(m[2]) for m in re.finditer(rb"^vm: ([a-z ]+) (\d+)$", actual.stderr[cut:], re.MULTILINE)}
    assert stats[b"gc collections"] > 0
    if name != "hello":
        assert stats[b"native freed regions"] > 0 and stats[b"native insns"] > 0
    if name == "jit_codegen":  # regions compiled in this run, collected, then loaded from its AOT cache
        assert stats[b"aot loaded regions"] > 0
