"""Benchmark: static x86-64 programs under ``vm run --accel kvm`` against the same binaries run natively.

Measures, on the host it runs on (needs /dev/kvm and gcc):

1. guest compute speed: ``cpu_loop`` (a system-call-free xorshift loop) run
   natively and in a KVM user-mode process, as a ratio (100% = native); the
   start-up of each side is measured separately and subtracted;
2. the cost of one guest system call round trip: ``getppid_loop`` with two
   call counts, the difference divided by the extra calls (native alongside);
3. start-up: ``python -m vm_cli run --accel kvm hello`` end to end (Python
   start, imports, VM creation, ELF load, run), and the in-process part alone.

Outputs are checked against the native runs. Run::

    python packages/vm-accel/bench/usermode.py [--rounds MILLIONS] [--calls THOUSANDS]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vm_cli.compose import Plugins, ProgramRequest, compose_program

REPO = Path(__file__).resolve().parents[3]
ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}


def build_programs(out: Path) -> dict[str, Path]:
    spec = importlib.util.spec_from_file_location("guest_x86_64_build", REPO / "guest" / "x86_64" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built: dict[str, Path] = module.build_all(out)
    return built


def native(binary: Path, *args: str) -> tuple[float, bytes]:
    start = time.perf_counter()
    done = subprocess.run([str(binary), *args], capture_output=True, env=ENV, check=True)
    return time.perf_counter() - start, done.stdout


def in_kvm(binary: Path, *args: str, out: Path) -> tuple[float, float, bytes]:
    """(seconds to set up the VM and load, seconds to run, stdout) of one in-process KVM run."""
    with out.open("w+b") as sink:
        start = time.perf_counter()
        request = ProgramRequest(
            program=str(binary), args=tuple(args), accel="kvm", envp=tuple(f"{k}={v}" for k, v in ENV.items()),
            std_streams=(0, sink.fileno(), sink.fileno()),
        )
        with compose_program(Plugins.load(), request) as vm:  # the process is loaded when composed
            loaded = time.perf_counter()
            result = vm.run()
            ran = time.perf_counter()
        assert result.exit_status == 0, result
        sink.seek(0)
        return loaded - start, ran - loaded, sink.read()


def best(samples: list[float]) -> float:
    return min(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", default="400", help="cpu_loop rounds in millions (default 400)")
    parser.add_argument("--calls", type=int, default=10, help="getppid calls in thousands (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement, best kept (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        programs = build_programs(work / "bin")
        sink = work / "stdout"

        loop = programs["cpu_loop"]
        native_runs = [native(loop, args.rounds) for _ in range(args.repeat)]
        native_start = best([native(programs["hello"])[0] for _ in range(args.repeat)])
        kvm_runs = [in_kvm(loop, args.rounds, out=sink) for _ in range(args.repeat)]
        assert all(out == native_runs[0][1] for _, _, out in kvm_runs), "cpu_loop output differs from native"
        native_compute = best([t for t, _ in native_runs]) - native_start
        kvm_compute = best([run for _, run, _ in kvm_runs])
        print(f"compute: cpu_loop {args.rounds}M rounds native {native_compute:.3f} s, "
              f"KVM {kvm_compute:.3f} s (run phase) = {native_compute / kvm_compute * 100:.1f}% of native")  # fmt: skip

        calls = programs["getppid_loop"]
        few, many = "1", str(args.calls + 1)
        kvm_few = best([in_kvm(calls, few, out=sink)[1] for _ in range(args.repeat)])
        kvm_many = best([in_kvm(calls, many, out=sink)[1] for _ in range(args.repeat)])
        native_few = best([native(calls, few)[0] for _ in range(args.repeat)])
        native_many = best([native(calls, many)[0] for _ in range(args.repeat)])
        extra = args.calls * 1000
        print(f"system call round trip (getppid): KVM {(kvm_many - kvm_few) / extra * 1e6:.1f} us, "
              f"native {(native_many - native_few) / extra * 1e6:.3f} us")  # fmt: skip

        hello = programs["hello"]
        command = [sys.executable, "-m", "vm_cli", "run", "--accel", "kvm", str(hello)]
        walls = []
        for _ in range(max(5, args.repeat)):
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, env=ENV, check=True, cwd=work)
            walls.append(time.perf_counter() - start)
        assert done.stdout == native(hello)[1], "hello output differs from native"
        setup = [in_kvm(hello, out=sink) for _ in range(args.repeat)]
        print(f"start-up: `vm run --accel kvm hello` median {statistics.median(walls) * 1000:.0f} ms "
              f"(best {min(walls) * 1000:.0f} ms; native hello {native_start * 1000:.1f} ms); in process: "
              f"VM + load {best([s for s, _, _ in setup]) * 1000:.1f} ms, "
              f"run {best([r for _, r, _ in setup]) * 1000:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
