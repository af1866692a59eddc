"""RV64A against Unicorn, and misaligned atomics against qemu-riscv64 user mode.

Hypothesis draws sequences mixing every AMO (``.w`` and ``.d``, random
aq/rl bits) at aligned addresses across the data page with ALU instructions
and plain stores, and LR/SC pairs (same size; ALU work in between; the SC
sometimes to another address, sometimes with no LR before it). Unicorn and
vm must agree on registers and memory. (Between an LR and its SC no store
touches memory: qemu's SC also compares the loaded value, vm's only the
reservation address, and the ISA allows both.)

Misaligned LR/AMO must raise SIGBUS the way qemu-riscv64 does; the test
assembles a tiny static program per case and runs it under qemu as the oracle.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_translate.executor import ReferenceEngine
from vm_translate.riscv import RiscvFrontEnd
from vm_translate.riscv.decoder import Decoder
from vm_translate.riscv.encoding import enc_i, enc_s
from vm_translate.riscv.rv64a import MisalignedAccess
from vm_translate.testing.unicorn_oracle import (
    BASES,
    DATA,
    DEST_POOL,
    PAGE,
    InitialState,
    Item,
    assert_same,
    data_pages,
    encode,
    initial_x_with_bases,
    resolve,
    vm_machine,
    x_states,
)

DEC = Decoder()
Draw = Callable[..., Any]
POINTERS = (28, 29)  # set only by the pointer-setting addi of a group
AMO_NAMES = [s.name for s in DEC.specs if s.name.startswith("amo")]
ALU = ("add", "sub", "xor", "addw", "sltu", "and", "or", "sraw")


def amo_word(name: str, rd: int, rs1: int, rs2: int, aq: int, rl: int) -> int:
    return DEC.spec(name).match | rd << 7 | rs1 << 15 | rs2 << 20 | aq << 26 | rl << 25


def point(draw: Draw, ptr: int, size: int) -> int:
    """``addi ptr, base, off``: an aligned address in the data page, reachable from a base."""
    base = draw(st.sampled_from(sorted(BASES)))
    lo = max(DATA, BASES[base] - 2048)
    hi = min(DATA + PAGE - size, BASES[base] + 2047)
    target = draw(st.integers(-(-lo // size), hi // size)) * size
    return enc_i(0x13, ptr, 0, base, target - BASES[base])


def alu(draw: Draw) -> int:
    name = draw(st.sampled_from(ALU))
    return DEC.spec(name).match | draw(st.sampled_from(DEST_POOL)) << 7 | draw(
        st.sampled_from(DEST_POOL)
    ) << 15 | draw(st.sampled_from(DEST_POOL)) << 20


@st.composite
def atomic_sequences(draw: Draw) -> list[int]:
    groups: list[list[Item]] = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(("amo", "amo", "alu", "store", "lrsc", "sc")))
        ptr = draw(st.sampled_from(POINTERS))
        if kind == "amo":
            name = draw(st.sampled_from(AMO_NAMES))
            size = 4 if name.endswith(".w") else 8
            rd, rs2 = draw(st.sampled_from(DEST_POOL)), draw(st.sampled_from(DEST_POOL))
            aq, rl = draw(st.integers(0, 1)), draw(st.integers(0, 1))
            groups.append([point(draw, ptr, size), amo_word(name, rd, ptr, rs2, aq, rl)])
        elif kind == "alu":
            groups.append([alu(draw)])
        elif kind == "store":
            size_f3 = draw(st.sampled_from(((1, 0), (2, 1), (4, 2), (8, 3))))
            groups.append([point(draw, ptr, 8), enc_s(0x23, size_f3[1], ptr, draw(st.sampled_from(DEST_POOL)), 0)])
        else:
            suffix = draw(st.sampled_from(("w", "d")))
            size = 4 if suffix == "w" else 8
            other = POINTERS[1 - POINTERS.index(ptr)]
            group: list[Item] = [point(draw, ptr, size)]
            if kind == "lrsc":
                group.append(amo_word(f"lr.{suffix}", draw(st.sampled_from(DEST_POOL)), ptr, 0, 0, 0))
                group += [alu(draw) for _ in range(draw(st.integers(0, 3)))]
                if draw(st.booleans()):
                    group.append(point(draw, other, size))
                    ptr = other
            rd, rs2 = draw(st.sampled_from(DEST_POOL)), draw(st.sampled_from(DEST_POOL))
            group.append(amo_word(f"sc.{suffix}", rd, ptr, rs2, 0, 0))
            groups.append(group)
    return resolve(groups)


def states() -> st.SearchStrategy[InitialState]:
    return st.builds(lambda x, d: InitialState(initial_x_with_bases(x), d), x_states(), data_pages())


@settings(max_examples=150, deadline=None)
@given(atomic_sequences(), states())
def test_atomics_match_unicorn(words: list[int], init: InitialState) -> None:
    assert_same(words, init)


# -- misalignment, with qemu-riscv64 as the oracle ---------------------------------------------

GCC = shutil.which("riscv64-linux-gnu-gcc")
QEMU = shutil.which("qemu-riscv64")
needs_qemu = pytest.mark.skipif(GCC is None or QEMU is None, reason="riscv64 gcc or qemu-riscv64 missing")

PROGRAM = """
    .globl _start
_start:
    la a1, buf
    addi a1, a1, {offset}
    li a2, 1
    {setup}
    {insn}
    li a7, 93
    ecall
    .data
    .balign 16
buf: .zero 64
"""

CASES = {
    "amoadd.w misaligned": ("", "amoadd.w a0, a2, (a1)", 2),
    "amoswap.d misaligned": ("", "amoswap.d a0, a2, (a1)", 4),
    "lr.w misaligned": ("", "lr.w a0, (a1)", 1),
    "lr.d misaligned": ("", "lr.d a0, (a1)", 4),
    "sc.w misaligned, no reservation": ("", "sc.w a0, a2, (a1)", 2),
    "sc.d misaligned, reserved as .w": ("lr.w a3, (a1)", "sc.d a0, a2, (a1)", 4),
    "amoadd.d aligned": ("", "amoadd.d a0, a2, (a1)", 8),
}


def qemu_outcome(tmp_path: Path, setup: str, insn: str, offset: int) -> int:
    """qemu's exit status, or minus the signal number that killed the program."""
    src = tmp_path / "p.S"
    src.write_text(PROGRAM.format(offset=offset, setup=setup, insn=insn))
    exe = tmp_path / "p"
    subprocess.run([GCC, "-nostdlib", "-static", "-o", str(exe), str(src)], check=True)  # type: ignore[list-item]
    return subprocess.run([QEMU, str(exe)], capture_output=True).returncode  # type: ignore[list-item]


def vm_outcome(setup: str, insn: str, offset: int, tmp_path: Path) -> tuple[int, BaseException | None]:
    """Run the same instructions on vm: (a0 or minus the signal, the fault)."""
    src = tmp_path / "v.S"
    src.write_text(f"    .option norvc\n    {setup}\n    {insn}\n")
    obj = tmp_path / "v.o"
    subprocess.run([GCC, "-c", "-o", str(obj), str(src)], check=True)  # type: ignore[list-item]
    raw = tmp_path / "v.bin"
    objcopy = str(Path(GCC).with_name("riscv64-linux-gnu-objcopy"))  # type: ignore[arg-type]
    subprocess.run([objcopy, "-O", "binary", "-j", ".text", str(obj), str(raw)], check=True)
    code = raw.read_bytes()
    words = [int.from_bytes(code[i : i + 4], "little") for i in range(0, len(code), 4)]
    x = [0] * 32
    x[11] = DATA + 16 + offset
    x[12] = 1
    cpu = vm_machine(words, InitialState(tuple(x)))
    stop = ReferenceEngine(RiscvFrontEnd()).run(cpu, len(words))
    end = 0x10000 + len(encode(words))
    if stop.fault is not None and cpu.pc != end:  # (the zero word after the code is illegal)
        return -(stop.signal or 0), stop.fault
    assert cpu.pc == end
    return cpu.regs[10], None


@needs_qemu
@pytest.mark.parametrize("case", sorted(CASES))
def test_misaligned_atomics_fault_like_qemu(case: str, tmp_path: Path) -> None:
    setup, insn, offset = CASES[case]
    expected = qemu_outcome(tmp_path, setup, insn, offset)
    actual, fault = vm_outcome(setup, insn, offset, tmp_path)
    assert actual == expected, case
    if expected == -signal.SIGBUS:
        assert isinstance(fault, MisalignedAccess)
        assert fault.address == DATA + 16 + offset


def test_sc_clears_the_reservation() -> None:
    lr = amo_word("lr.d", 10, 8, 0, 0, 0)
    sc = amo_word("sc.d", 11, 8, 12, 0, 0)
    sc_again = amo_word("sc.d", 13, 8, 12, 0, 0)
    x = list(initial_x_with_bases((0,) * 32))
    x[12] = 0x1234
    cpu = vm_machine([lr, sc, sc_again], InitialState(tuple(x)))
    ReferenceEngine(RiscvFrontEnd()).run(cpu, 3)
    assert (cpu.regs[11], cpu.regs[13]) == (0, 1)
    assert cpu.mem.load(BASES[8], 8) == 0x1234
