"""vm's benchmark: guest MIPS per engine, and the speed ratio to qemu-riscv64 measured in the same run.

Builds the heavy programs of the guest suite (``guest/rv64/bench_*.c``,
marked ``heavy`` in ``guest/rv64/programs.toml``) with ``guest/build.py``,
runs each under ``vm run --engine E --stats`` for every engine asked for and
under ``qemu-riscv64``, checks that every vm run printed exactly what qemu
printed (stdout, stderr, exit status) and prints a table: wall seconds,
guest instructions retired, guest MIPS and the ratio to qemu.

Wall time is that of the whole command (interpreter start-up and ELF loading
included), the same measure for vm and for qemu. The instruction count is
the one ``vm run --stats`` reports; qemu runs the same binary with the same
arguments, so its MIPS uses that count too.

The ``llvm`` engine (tier 2, native code) runs each program twice with the
manifest's larger ``bench_args`` (the others' arguments finish in well under
a second there, mostly start-up): ``llvm cold`` with an empty AOT cache
(compiling as it goes, in the background) and ``llvm warm`` with the cache
the cold run filled; qemu is measured again on those arguments. The ``run
MIPS`` column is vm's own ``--stats`` figure: guest instructions over the
time the guest ran, start-up and ELF loading excluded.

Run it as ``nox -s bench`` or ``python bench/run.py [--quick] [--engines interp,python,llvm]
[--programs bench_sieve,...]``. It is a measurement, never a test: nothing
here is timed against a threshold. The exit status is 1 if any output
differs from qemu's, 2 for bad options or a missing toolchain.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import attrs
from rich.console import Console
from rich.table import Table
from vm_core.errors import ConfigurationError, VmError
from vm_core.logging import get_logger

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT / "guest" / "build.py"
DEFAULT_ENGINES = ("interp", "python", "llvm")
#: Engines that run with the manifest's ``bench_args`` (full) or the others' full arguments (--quick).
NATIVE_ENGINES = frozenset({"llvm"})
#: Per-run time limit, seconds (the slowest engine on the full arguments takes about a minute).
RUN_TIMEOUT_S = 900.0

#: Arguments per program: full runs take a few seconds each under the default (python) engine;
#: --quick ones well under a second. (The manifest's bench_args are sized for qemu, far too long here.)
ARGUMENTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bench_sieve": (("2000000",), ("100000",)),
    "bench_hash": (("16",), ("1",)),
    "bench_matmul": (("80",), ("24",)),
    "bench_calls": (("24",), ("12",)),
    "bench_nbody": (("20000",), ("100",)),
    "bench_strings": (("5000",), ("300",)),
}

_RETIRED = re.compile(rb"^vm: instructions retired (\d+)$", re.MULTILINE)
_RUN_MIPS = re.compile(rb"^vm: guest MIPS ([0-9.]+)$", re.MULTILINE)

log = get_logger("vm_bench")


def load_guest_build() -> ModuleType:
    """Import ``guest/build.py`` (a script, not a package) by path."""
    spec = importlib.util.spec_from_file_location("vm_guest_build", BUILD_SCRIPT)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot load {BUILD_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@attrs.frozen
class Measurement:
    """One run of one program under one launcher."""

    program: str
    launcher: str  # an engine name, or "qemu"
    seconds: float
    instructions: int | None
    stdout: bytes = attrs.field(repr=False)
    run_mips: float | None = attrs.field(default=None, kw_only=True)
    stderr: bytes = attrs.field(repr=False)
    returncode: int


def split_stats(stderr: bytes) -> tuple[bytes, int | None]:
    """The guest's own stderr (vm's ``--stats`` lines removed) and the instructions retired."""
    match = _RETIRED.search(stderr)
    retired = int(match.group(1)) if match else None
    cut = stderr.rfind(b"vm: engine ")  # the stats block comes last, after the guest has ended
    return (stderr if cut < 0 else stderr[:cut]), retired


def measure(
    build: ModuleType, launcher: str, command: Sequence[str], program: str, *, timeout: float
) -> Measurement:
    """Run ``command`` the way the guest suite runs guests (fixed env, empty temporary cwd) and time it."""
    with tempfile.TemporaryDirectory(prefix="vm-bench-") as cwd:
        start = time.perf_counter()
        stdout, stderr, returncode = build.run_guest_command(command, Path(cwd), timeout=timeout)
        seconds = time.perf_counter() - start
    instructions = None
    run_mips = None
    if launcher != "qemu":
        found = _RUN_MIPS.search(stderr)
        run_mips = float(found.group(1)) if found else None
        stderr, instructions = split_stats(stderr)
    log.debug("bench_run", program=program, launcher=launcher, seconds=round(seconds, 3), insns=instructions)
    return Measurement(program, launcher, seconds, instructions, stdout, stderr, returncode, run_mips=run_mips)


def argument_sets(
    name: str, program: object, engines: list[str], quick: bool
) -> list[tuple[tuple[str, ...], list[str]]]:
    """The argument lists a program runs with, each with the launchers (engines) that use it."""
    plain = ARGUMENTS[name][1 if quick else 0]
    native = ARGUMENTS[name][0] if quick else tuple(getattr(program, "bench_args", ()) or plain)
    sets: dict[tuple[str, ...], list[str]] = {}
    for engine in engines:
        if engine in NATIVE_ENGINES:
            sets.setdefault(native, []).extend([f"{engine} cold", f"{engine} warm"])
        else:
            sets.setdefault(plain, []).append(engine)
    return list(sets.items())


def vm_command(launcher: str, binary: str, args: Sequence[str], cache_dir: str) -> list[str]:
    """``vm run --stats`` for an engine, or for ``"<engine> cold|warm"`` with its own AOT cache directory."""
    engine, _, _ = launcher.partition(" ")
    command = [sys.executable, "-m", "vm_cli", "run", "--engine", engine, "--stats", binary, *args]
    if engine in NATIVE_ENGINES:
        command = ["/usr/bin/env", f"VM_CACHE_DIR={cache_dir}", *command]
    return command


def differences(vm_run: Measurement, qemu_run: Measurement) -> list[str]:
    """What a vm run printed or returned differently from qemu (empty when identical)."""
    found = []
    if vm_run.stdout != qemu_run.stdout:
        found.append(f"stdout ({len(vm_run.stdout)} vs {len(qemu_run.stdout)} bytes)")
    if vm_run.stderr != qemu_run.stderr:
        found.append("stderr")
    if vm_run.returncode != qemu_run.returncode:
        found.append(f"exit status {vm_run.returncode} vs {qemu_run.returncode}")
    if vm_run.instructions is None:
        found.append("no instruction count in --stats output")
    return found


def ratio_text(qemu_seconds: float, vm_seconds: float) -> str:
    """qemu time / vm time, as ``1/250x`` when vm is slower (``3.0x`` when faster)."""
    if vm_seconds <= 0 or qemu_seconds <= 0:
        return "-"
    ratio = qemu_seconds / vm_seconds
    return f"{ratio:.1f}x" if ratio >= 1 else f"1/{1 / ratio:.0f}x"


def mips(instructions: int | None, seconds: float) -> str:
    return f"{instructions / seconds / 1e6:.2f}" if instructions and seconds > 0 else "-"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small arguments (each run well under a second)")
    parser.add_argument(
        "--engines", default=",".join(DEFAULT_ENGINES), help=f"comma-separated engines (default {','.join(DEFAULT_ENGINES)})"
    )
    parser.add_argument("--programs", default=",".join(ARGUMENTS), help="comma-separated programs (default: all)")
    parser.add_argument("--timeout", type=float, default=RUN_TIMEOUT_S, help="seconds allowed per run")
    return parser.parse_args(argv)


def run_benchmarks(options: argparse.Namespace, console: Console) -> int:
    """Build, run, compare and print the table; returns the exit status."""
    engines = [e.strip() for e in options.engines.split(",") if e.strip()]
    names = [p.strip() for p in options.programs.split(",") if p.strip()]
    unknown = [name for name in names if name not in ARGUMENTS]
    if unknown or not engines or not names:
        raise ConfigurationError(f"unknown or empty program list {unknown or names}", hint=f"known: {', '.join(ARGUMENTS)}")
    build = load_guest_build()
    build.check_toolchain()
    manifest = {program.name: program for program in build.load_manifest()}
    missing = [name for name in names if name not in manifest]
    if missing:
        raise ConfigurationError(f"programs {missing} are not in the guest manifest")
    binaries = build.build_all(programs=[manifest[name] for name in names])
    qemu = build.find_tool(build.QEMU)
    table = Table(title=f"vm guest benchmarks ({'quick' if options.quick else 'full'} arguments)")
    for column, justify in (("program", "left"), ("engine", "left"), ("wall s", "right"), ("guest insns", "right"),
                            ("MIPS", "right"), ("run MIPS", "right"), ("vs qemu", "right")):  # fmt: skip
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    failures: list[str] = []
    for name in names:
        for args, launchers in argument_sets(name, manifest[name], engines, options.quick):
            binary = str(binaries[name])
            label = f"{name} {' '.join(args)}"
            console.print(f"[dim]running {label}[/dim]")
            qemu_run = measure(build, "qemu", [qemu, binary, *args], name, timeout=options.timeout)
            if qemu_run.returncode != manifest[name].expected_returncode:
                failures.append(f"{label}: qemu exit status {qemu_run.returncode}")
            runs = []
            with tempfile.TemporaryDirectory(prefix="vm-bench-aot-") as cache_dir:
                for launcher in launchers:
                    command = vm_command(launcher, binary, args, cache_dir)
                    vm_run = measure(build, launcher, command, name, timeout=options.timeout)
                    runs.append(vm_run)
                    failures += [f"{label} under {launcher}: {what} differs from qemu"
                                 for what in differences(vm_run, qemu_run)]  # fmt: skip
            counts = {run.instructions for run in runs if run.instructions is not None}
            if len(counts) > 1:
                failures.append(f"{label}: engines retired different instruction counts {sorted(counts)}")
            reference = max(counts) if counts else None
            for run in runs:
                table.add_row(label, run.launcher, f"{run.seconds:.2f}",
                              f"{run.instructions:,}" if run.instructions else "-",
                              mips(run.instructions, run.seconds), f"{run.run_mips:.2f}" if run.run_mips else "-",
                              ratio_text(qemu_run.seconds, run.seconds))  # fmt: skip
            table.add_row(label, "qemu-riscv64 *", f"{qemu_run.seconds:.2f}", f"{reference:,}" if reference else "-",
                          mips(reference, qemu_run.seconds), "-", "1x", end_section=True)  # fmt: skip
    table.caption = (
        "* qemu's instruction count is vm's --stats count: the same static binary with the same arguments. "
        "Wall time is the whole command (start-up and ELF loading included); 'vs qemu' is qemu time / vm time; "
        "'run MIPS' is vm's own --stats figure (start-up excluded). llvm cold: empty AOT cache; warm: the cache "
        "the cold run filled."
    )
    console.print(table)
    for failure in failures:
        console.print(f"[red]MISMATCH[/red] {failure}")
    if not failures:
        console.print("[green]every vm run printed exactly what qemu printed[/green]")
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    console = Console()
    options = parse_args(argv)
    try:
        return run_benchmarks(options, console)
    except VmError as err:
        console.print(f"bench/run.py: error: {err}", markup=False)
        return 2


if __name__ == "__main__":
    sys.exit(main())
