"""ELF loader tests on real cross-compiled programs, checked against readelf's view of them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vm_core.errors import BadProgramError, NotFoundError, UnsupportedError, VmError
from vm_linux.elf import EM_RISCV, STATIC_PIE_BASE, load_elf
from vm_linux.stack import STACK_SIZE
from vm_mem import PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, AddressSpace
from vm_translate.riscv.archinfo import RV64

STACK_TOP = RV64.stack_top
STACK_BOTTOM = STACK_TOP - STACK_SIZE


READELF = "riscv64-linux-gnu-readelf"


def readelf_loads(path: Path) -> tuple[int, list[tuple[int, int, int, int, str]]]:
    """(entry, [(offset, vaddr, filesz, memsz, flags)]) for the PT_LOADs, as binutils' readelf reports them."""
    tool = shutil.which(READELF) or shutil.which("readelf")
    if tool is None:
        pytest.skip("readelf is not installed")
    text = subprocess.run([tool, "-hlW", str(path)], check=True, capture_output=True, text=True).stdout
    entry = int(re.search(r"Entry point address:\s+(0x[0-9a-f]+)", text).group(1), 16)
    loads = []
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "LOAD":
            offset, vaddr, _paddr, filesz, memsz = (int(f, 16) for f in fields[1:6])
            flags = "".join(fields[6:-1])
            loads.append((offset, vaddr, filesz, memsz, flags))
    return entry, loads


def expected_prot(flags: str) -> int:
    return (PROT_READ if "R" in flags else 0) | (PROT_WRITE if "W" in flags else 0) | (
        PROT_EXEC if "E" in flags else 0
    )


def check_against_readelf(path: Path, mem: AddressSpace, base: int) -> None:
    data = path.read_bytes()
    _entry, loads = readelf_loads(path)
    for offset, vaddr, filesz, memsz, flags in loads:
        start = base + vaddr
        for page in range(start & ~(PAGE_SIZE - 1), start + memsz, PAGE_SIZE):
            assert mem.prot[page >> 12] == expected_prot(flags), hex(page)
        image = mem.peek(start, memsz)
        assert bytes(image[:filesz]) == data[offset : offset + filesz]
        assert bytes(image[filesz:]) == bytes(memsz - filesz)


def test_static_program_segments_match_readelf(riscv_program) -> None:
    path = riscv_program("auxv_probe", "static")
    mem = AddressSpace()
    program = load_elf(mem, str(path), EM_RISCV, limit=STACK_BOTTOM)
    entry, loads = readelf_loads(path)
    assert program.entry == entry
    assert program.load_bias == 0 and not program.is_pie
    assert len(program.segments) == len(loads)
    check_against_readelf(path, mem, 0)
    highest = max(vaddr + memsz for _o, vaddr, _f, memsz, _fl in loads)
    assert program.brk_start == (highest + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    assert mem.brk_current == program.brk_start
    # AT_PHDR must point at the program headers as they are in the file
    raw = path.read_bytes()
    phoff = int.from_bytes(raw[32:40], "little")
    assert mem.read(program.phdr_addr, program.phent * program.phnum) == raw[
        phoff : phoff + program.phent * program.phnum
    ]


def test_static_pie_loads_at_the_fixed_base(riscv_program) -> None:
    path = riscv_program("freestanding_pie", "freestanding-pie")
    mem = AddressSpace()
    program = load_elf(mem, str(path), EM_RISCV, limit=STACK_BOTTOM)
    entry, _loads = readelf_loads(path)
    assert program.is_pie
    assert program.load_bias == STATIC_PIE_BASE == 0x2AAAAAA000
    assert program.entry == STATIC_PIE_BASE + entry
    check_against_readelf(path, mem, STATIC_PIE_BASE)


def test_dynamic_program_is_refused(riscv_program) -> None:
    path = riscv_program("auxv_probe", "dynamic")
    with pytest.raises(UnsupportedError, match="only static programs are supported"):
        load_elf(AddressSpace(), str(path), EM_RISCV, limit=STACK_BOTTOM)


def test_wrong_machine_is_refused(riscv_program) -> None:
    path = riscv_program("auxv_probe", "static")
    with pytest.raises(BadProgramError, match="for RISC-V, not x86-64"):
        load_elf(AddressSpace(), str(path), 62, limit=STACK_BOTTOM)
    host_binary = Path(sys.executable).resolve()
    with pytest.raises(BadProgramError, match="not RISC-V"):
        load_elf(AddressSpace(), str(host_binary), EM_RISCV, limit=STACK_BOTTOM)


def test_wrong_class_and_not_elf(tmp_path: Path, riscv_program) -> None:
    raw = bytearray(riscv_program("auxv_probe", "static").read_bytes())
    raw[4] = 1  # ELFCLASS32
    bad = tmp_path / "class32"
    bad.write_bytes(raw)
    bad.chmod(0o755)
    with pytest.raises(BadProgramError, match="not a 64-bit ELF"):
        load_elf(AddressSpace(), str(bad), EM_RISCV, limit=STACK_BOTTOM)
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    with pytest.raises(BadProgramError, match="not an ELF file"):
        load_elf(AddressSpace(), str(script), EM_RISCV, limit=STACK_BOTTOM)


def test_file_system_errors(tmp_path: Path, riscv_program) -> None:
    with pytest.raises(NotFoundError, match="program not found"):
        load_elf(AddressSpace(), str(tmp_path / "missing"), EM_RISCV, limit=STACK_BOTTOM)
    with pytest.raises(BadProgramError, match="is a directory"):
        load_elf(AddressSpace(), str(tmp_path), EM_RISCV, limit=STACK_BOTTOM)
    plain = tmp_path / "noexec"
    plain.write_bytes(riscv_program("auxv_probe", "static").read_bytes())
    plain.chmod(0o644)
    with pytest.raises(BadProgramError, match="permission denied"):
        load_elf(AddressSpace(), str(plain), EM_RISCV, limit=STACK_BOTTOM)
    if os.geteuid() != 0:
        plain.chmod(0o111)
        with pytest.raises(BadProgramError, match="permission denied"):
            load_elf(AddressSpace(), str(plain), EM_RISCV, limit=STACK_BOTTOM)


def test_truncated_program(tmp_path: Path, riscv_program) -> None:
    raw = riscv_program("auxv_probe", "static").read_bytes()
    with pytest.raises(BadProgramError, match="truncated"):
        load_elf(AddressSpace(), "cut", EM_RISCV, limit=STACK_BOTTOM, data=raw[: len(raw) // 2])


@pytest.fixture(scope="module")
def pie_bytes(riscv_program) -> bytes:
    return riscv_program("freestanding_pie", "freestanding-pie").read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_programs_raise_only_vm_errors(pie_bytes: bytes, data: st.DataObject) -> None:
    raw = bytearray(pie_bytes)
    cut = data.draw(st.integers(0, len(raw)), label="truncate_at")
    flips = data.draw(
        st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), max_size=8), label="flips"
    )
    for where, value in flips:  # the headers live in the first 256 bytes
        raw[where % len(raw)] = value
    try:
        load_elf(AddressSpace(), "fuzzed", EM_RISCV, limit=STACK_BOTTOM, data=bytes(raw[:cut]))
    except VmError as exc:
        assert str(exc)
