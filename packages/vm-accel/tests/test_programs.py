"""The hand-assembled guest programs and the CPL 0 stubs match what GNU as produces."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from vm_accel.kvm import kernel_stubs

from .kvm_programs import ALL_PROGRAMS, GuestProgram

AS = shutil.which("as")
OBJCOPY = shutil.which("objcopy")
pytestmark = pytest.mark.skipif(AS is None or OBJCOPY is None, reason="GNU binutils (as, objcopy) not installed")


def assemble(source: str, bits: int, tmp_path: Path) -> bytes:
    asm = tmp_path / "prog.s"
    obj = tmp_path / "prog.o"
    raw = tmp_path / "prog.bin"
    asm.write_text(f".intel_syntax noprefix\n.code{bits}\n.text\n{source}")
    subprocess.run([AS, "--64", "-o", str(obj), str(asm)], check=True, capture_output=True)  # type: ignore[list-item]
    subprocess.run([OBJCOPY, "-O", "binary", "-j", ".text", str(obj), str(raw)], check=True)  # type: ignore[list-item]
    return raw.read_bytes()


@pytest.mark.parametrize("program", ALL_PROGRAMS, ids=lambda p: p.name)
def test_program_bytes_match_gnu_as(program: GuestProgram, tmp_path: Path) -> None:
    assert assemble(program.source, program.bits, tmp_path) == program.code


@pytest.mark.parametrize(("hypercall", "exception"), [(0xF0, 0xF1), (0x10, 0xFF)])
def test_kernel_stubs_match_gnu_as(hypercall: int, exception: int, tmp_path: Path) -> None:
    source = kernel_stubs.gnu_as_source(hypercall, exception)
    expected = assemble(source.replace(".intel_syntax noprefix\n.text\n", ""), 64, tmp_path)
    stubs = kernel_stubs.assemble(0xB000, hypercall, exception)
    assert stubs.image == expected
    assert stubs.syscall_entry == 0xB000 + kernel_stubs.SYSCALL_ENTRY_OFFSET
    assert len(stubs.vector_entries) == kernel_stubs.EXCEPTION_VECTORS
