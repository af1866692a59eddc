"""Whole programs: the same riscv64 binaries under qemu-riscv64 (the oracle) and under vm-linux.

vm-linux runs them with vm-translate's reference interpreter (skipped when it
is not installed); stdout bytes, exit status and terminating signal must match.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from vm_linux.process import LinuxProcess
from vm_mem import AddressSpace


def run_under_vm(program: Path, args: list[str], tmp_path: Path) -> tuple[bytes, int | None, int | None]:
    executor = pytest.importorskip("vm_translate.executor")
    riscv = pytest.importorskip("vm_translate.riscv")
    cpu_module = pytest.importorskip("vm_translate.cpu")
    frontend = riscv.RiscvFrontEnd()
    engine = executor.ReferenceEngine(frontend)
    mem = AddressSpace()
    cpu = cpu_module.CpuState("riscv64", frontend.layout.size, mem)
    out_path = tmp_path / "vm-stdout"
    with open(out_path, "wb") as out:
        process = LinuxProcess(
            "riscv64", mem, str(program), [str(program), *args], ["LANG=C"], stdout=out.fileno()
        )
        process.load()
        process.init_cpu(cpu)
        result = process.run(engine, cpu)
    return out_path.read_bytes(), result.exit_status, result.signal


def run_under_qemu(qemu: str, program: Path, args: list[str]) -> tuple[bytes, int | None, int | None]:
    done = subprocess.run([qemu, str(program), *args], capture_output=True, env={"LANG": "C"}, check=False)
    if done.returncode < 0:
        return done.stdout, None, -done.returncode
    return done.stdout, done.returncode, None


@pytest.mark.parametrize("name", ["sig_usr1", "sig_segv", "abort", "auxv_probe"])
def test_program_matches_qemu(name: str, riscv_program, qemu: str, tmp_path: Path) -> None:
    program = riscv_program(name, "static")
    args = ["one", "two words"] if name == "auxv_probe" else []
    expected = run_under_qemu(qemu, program, args)
    assert run_under_vm(program, args, tmp_path) == expected


def test_static_pie_matches_qemu(riscv_program, qemu: str, tmp_path: Path) -> None:
    program = riscv_program("freestanding_pie", "freestanding-pie")
    assert run_under_vm(program, [], tmp_path) == run_under_qemu(qemu, program, [])
