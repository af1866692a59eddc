"""vm-gc's benchmark: memory stays flat under a code-cache bound while a guest keeps generating code.

Runs ``guest/rv64/jit_codegen`` (a small JIT: every round writes a fresh page
of 32 new functions into an RWX mapping, ``fence.i``, calls each three times)
under ``vm run --engine python --stats`` with growing round counts, once with
a code cache bound and once with a bound so large it is never reached, and
prints per run: peak resident memory of the vm process, the code cache's
peak estimated bytes, translations left, collections, the guest-visible GC
pause (total and longest), the concurrent marker's thread time, and the
collector's cost as a fraction of the run's wall time. Every run's stdout is
checked against ``qemu-riscv64`` (exit status 1 if any differs).

A measurement, never a test. ``python bench/gc.py [--rounds 100,200,400]
[--bound 4M]``; numbers from it are in ``packages/vm-gc/README.md``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from run import load_guest_build  # bench/ is on sys.path when a script here runs

UNBOUNDED = "64G,100000000blocks"
_STAT = re.compile(r"^vm: ([a-z ]+?) ([0-9.]+)(?: s)?$", re.MULTILINE)


def run_child(command: list[str]) -> tuple[subprocess.CompletedProcess[bytes], float, int]:
    """Run ``command``; its result, wall seconds and peak RSS in KiB (measured in a fresh helper process)."""
    helper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter(); p = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "w = time.perf_counter() - t\n"
        "sys.stdout.buffer.write(p.stdout); sys.stderr.buffer.write(p.stderr)\n"
        "sys.stderr.write(f'\\nbench: wall {w} rss {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n')\n"
        "sys.exit(p.returncode)\n"
    )
    result = subprocess.run([sys.executable, "-c", helper, *command], capture_output=True, timeout=3600)
    m = re.search(rb"bench: wall ([0-9.]+) rss (\d+)", result.stderr)
    if m is None:
        raise RuntimeError(result.stderr.decode(errors="replace")[-2000:])
    return result, float(m[1]), int(m[2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", default="100,200,400", help="comma-separated round counts")
    parser.add_argument("--bound", default="4M", help="the bounded run's --code-cache-size")
    args = parser.parse_args(argv)
    rounds = [int(r) for r in args.rounds.split(",")]
    build = load_guest_build()
    build.check_toolchain()
    program = next(p for p in build.load_manifest() if p.name == "jit_codegen")
    console = Console(width=160)
    table = Table(title="jit_codegen under vm run --engine python (new code every round)")
    for column in ("rounds", "cache bound", "peak RSS MiB", "cache peak MiB", "translations left", "collections",
                   "GC pause s (max ms)", "marker s", "GC cost", "wall s"):
        table.add_column(column, justify="right")
    differs = False
    with tempfile.TemporaryDirectory() as tmp:
        binary = build.build_program(program, Path(tmp))
        qemu = build.find_tool(build.QEMU)
        for n in rounds:
            guest_args = [str(n), str(n)]  # one buffer page per round: no code is ever overwritten
            expected = subprocess.run([qemu, str(binary), *guest_args], capture_output=True, timeout=600)
            for bound in (args.bound, UNBOUNDED):
                command = [sys.executable, "-m", "vm_cli", "run", "--engine", "python", "--stats",
                           "--code-cache-size", bound, str(binary), *guest_args]
                result, wall, rss_kib = run_child(command)
                differs |= result.stdout != expected.stdout or result.returncode != expected.returncode
                stats = {m[1]: float(m[2]) for m in _STAT.finditer(result.stderr.decode(errors="replace"))}
                gc_seconds = stats.get("gc pause seconds", 0.0) + stats.get("gc mark seconds", 0.0)
                table.add_row(
                    str(n), "none" if bound == UNBOUNDED else bound, f"{rss_kib / 1024:.0f}",
                    f"{stats.get('code cache peak bytes', 0) / 2**20:.1f}",
                    f"{stats.get('code cache translations', 0):.0f}", f"{stats.get('gc collections', 0):.0f}",
                    f"{stats.get('gc pause seconds', 0):.3f} ({stats.get('gc max pause seconds', 0) * 1000:.1f})",
                    f"{stats.get('gc mark seconds', 0):.3f}", f"{gc_seconds / wall:.1%}", f"{wall:.1f}",
                )
    console.print(table)
    if differs:
        console.print("[red]some vm output differed from qemu-riscv64's[/red]")
    return 1 if differs else 0


if __name__ == "__main__":
    started = time.perf_counter()
    status = main()
    print(f"bench/gc.py: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    sys.exit(status)
