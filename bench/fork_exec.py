"""Fork+exec benchmark: a busybox shell loop that forks and execs a small static program N times (default 200).

The target (issue #14): ``vm run`` of the loop must take no longer than N
separate runs of the same program under ``qemu-riscv64`` started from a host
shell. Measured, each as one wall time:

1. ``qemu``: a host ``sh`` loop running ``qemu-riscv64 hello`` N times;
2. ``qemu+binfmt``: the busybox loop under qemu-riscv64 with binfmt_misc
   (``guest/build.py``'s exec-capable oracle), where the host kernel starts a
   new qemu per exec;
3. ``vm run --engine E``: the busybox loop, every fork a host fork of vm and
   every exec inside the same host process.

The guest root is a temporary directory holding Debian's static busybox
(``guest/debian/sysroot.py``) and the suite's ``hello``. Every run's output
is checked (N lines of hello). It is a measurement, not a test. The machine
load average is printed with the numbers: on a shared machine they move.
Run: ``python bench/fork_exec.py [--iterations 200] [--engines interp,python,llvm]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def timed(command: Sequence[str], expected: bytes, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(list(command), capture_output=True, env=env, check=False, timeout=3600)
    wall = time.perf_counter() - start
    if result.returncode != 0 or result.stdout != expected:
        sys.exit(
            f"{command[0]}: unexpected outcome {result.returncode}: {result.stderr.decode(errors='replace')[-500:]}"
        )
    return wall


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--engines", default="llvm", help="comma-separated vm engines (default llvm)")
    args = parser.parse_args(argv)
    build = load("vm_guest_build", ROOT / "guest" / "build.py")
    sysroot = load("vm_guest_debian_sysroot", ROOT / "guest" / "debian" / "sysroot.py")
    hello_program = next(p for p in build.load_manifest() if p.name == "hello")
    with tempfile.TemporaryDirectory(prefix="vm-fork-exec-") as tmp:
        root = Path(tmp) / "root"
        (root / "bin").mkdir(parents=True)
        hello = build.build_program(hello_program, Path(tmp) / "build")
        shutil.copy2(hello, root / "bin" / "hello")
        busybox = root / "bin" / "busybox"
        shutil.copy2(Path(sysroot.make_sysroot()) / "usr" / "bin" / "busybox", busybox)
        expected = subprocess.run(
            [build.find_tool(build.QEMU), str(hello)], capture_output=True, check=True
        ).stdout
        expected *= args.iterations
        n = args.iterations
        env = build.launcher_env()
        loop = f"i=0; while [ $i -lt {n} ]; do /bin/hello; i=$((i+1)); done"
        qemu = build.find_tool(build.QEMU)
        rows = [
            (
                "qemu-riscv64, host sh loop",
                timed(
                    ["sh", "-c", f"i=0; while [ $i -lt {n} ]; do {qemu} {hello}; i=$((i+1)); done"],
                    expected,
                    env,
                ),
            )
        ]
        try:
            prefix = list(build.exec_capable_qemu())
            # the loop execs /bin/hello: under qemu the host resolves it, so give the root's path
            host_loop = loop.replace("/bin/hello", str(root / "bin" / "hello"))
            rows.append(
                (
                    "qemu-riscv64 + binfmt, busybox loop",
                    timed([*prefix, str(busybox), "sh", "-c", host_loop], expected, env),
                )
            )
        except build.ToolchainMissing as missing:
            print(f"(no exec-capable qemu: {missing})")
        for engine in args.engines.split(","):
            command = [sys.executable, "-m", "vm_cli", "run", "--engine", engine, "--root", str(root), str(busybox),
                       "sh", "-c", loop]  # fmt: skip
            rows.append((f"vm run --engine {engine}, busybox loop", timed(command, expected, env)))
    load1, load5, _ = os.getloadavg()
    print(
        f"{n} fork+exec of hello; {os.cpu_count()} CPUs, load average {load1:.2f} (1 min), {load5:.2f} (5 min)"
    )
    for name, wall in rows:
        print(f"  {name:40s} {wall:8.2f} s  ({wall / n * 1000:.1f} ms each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
