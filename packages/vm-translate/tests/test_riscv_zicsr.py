"""Zicsr: the floating-point CSRs against Unicorn; counters and illegal CSR accesses per the ISA manual.

* ``fflags``/``frm``/``fcsr`` read-modify-write sequences (all six CSR
  instructions, register and immediate forms) run on Unicorn and vm; x
  registers, ``fflags`` and ``frm`` must agree.
* ``instret``/``cycle`` count retired instructions (ISA manual: the
  difference of two reads is the number of instructions retired between
  them); ``time`` is the host monotonic clock at 10 MHz.
* Writes to the read-only counters and any CSR outside the supported set
  are illegal instructions, as qemu-riscv64 reports them (SIGILL; checked
  against qemu for one write to ``cycle`` and one read of ``mstatus``).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_core.errors import IllegalInstruction
from vm_core.types import StopKind
from vm_translate.executor import ReferenceEngine
from vm_translate.riscv import RiscvFrontEnd
from vm_translate.riscv.decoder import Decoder
from vm_translate.riscv.encoding import enc_i
from vm_translate.riscv.zicsr import TIMEBASE_HZ
from vm_translate.testing.unicorn_oracle import DEST_POOL, InitialState, assert_same, vm_machine, x_states

DEC = Decoder()
FP_CSRS = (0x001, 0x002, 0x003)
CSR_OPS = {"csrrw": 1, "csrrs": 2, "csrrc": 3, "csrrwi": 5, "csrrsi": 6, "csrrci": 7}


def csr_word(op: str, rd: int, csr: int, rs1: int) -> int:
    return enc_i(0x73, rd, CSR_OPS[op], rs1, csr)


@st.composite
def fp_csr_sequences(draw: st.DrawFn) -> list[int]:
    return [
        csr_word(
            draw(st.sampled_from(sorted(CSR_OPS))),
            draw(st.sampled_from(DEST_POOL)),
            draw(st.sampled_from(FP_CSRS)),
            draw(st.sampled_from(DEST_POOL)) if draw(st.booleans()) else draw(st.integers(0, 31)),
        )
        for _ in range(draw(st.integers(1, 12)))
    ]


@settings(max_examples=100, deadline=None)
@given(fp_csr_sequences(), x_states(), st.integers(0, 0xFF))
def test_fp_csrs_match_unicorn(words: list[int], x: tuple[int, ...], fcsr: int) -> None:
    assert_same(words, InitialState(x, fcsr=fcsr), fp=True)


def run(words: list[int], budget: int = 100) -> tuple[object, list[int]]:
    cpu = vm_machine(words, InitialState((0,) * 32))
    stop = ReferenceEngine(RiscvFrontEnd()).run(cpu, budget)
    return stop, cpu.regs


RDINSTRET_A0 = csr_word("csrrs", 10, 0xC02, 0)
RDINSTRET_A1 = csr_word("csrrs", 11, 0xC02, 0)
RDCYCLE_A2 = csr_word("csrrs", 12, 0xC00, 0)
NOP = enc_i(0x13, 0, 0, 0, 0)
JUMP_NEXT = 0x0040006F  # jal x0, +4: a block boundary


def test_instret_counts_retired_instructions_across_blocks() -> None:
    words = [NOP, RDINSTRET_A0, NOP, JUMP_NEXT, NOP, NOP, RDINSTRET_A1, RDCYCLE_A2]
    _, regs = run(words, budget=len(words))
    assert regs[10] == 1  # one instruction retired before the first read
    assert regs[11] - regs[10] == 5
    assert regs[12] == regs[11] + 1


def test_time_is_the_monotonic_clock_at_10mhz() -> None:
    before = time.monotonic_ns() // (10**9 // TIMEBASE_HZ)
    _, regs = run([csr_word("csrrs", 10, 0xC01, 0)], budget=1)
    after = time.monotonic_ns() // (10**9 // TIMEBASE_HZ)
    assert before <= regs[10] <= after


@pytest.mark.parametrize(
    "word",
    [
        csr_word("csrrw", 0, 0xC00, 10),  # write to cycle, even with rd = x0
        csr_word("csrrs", 10, 0xC01, 11),  # set bits of time
        csr_word("csrrci", 10, 0xC02, 1),  # clear bits of instret
        csr_word("csrrwi", 10, 0xC00, 0),  # csrrwi always writes
        csr_word("csrrs", 10, 0x300, 0),  # mstatus: not accessible in user mode
        csr_word("csrrs", 10, 0x123, 0),  # unassigned
        csr_word("csrrs", 10, 0xC03, 0),  # hpmcounter3: not provided
    ],
)
def test_illegal_csr_accesses(word: int) -> None:
    with pytest.raises(IllegalInstruction):
        DEC.decode(word)
    stop, _ = run([NOP, word])
    assert stop.kind is StopKind.FAULT and stop.pc == 0x10004  # type: ignore[attr-defined]
    assert isinstance(stop.fault, IllegalInstruction) and stop.fault.word == word  # type: ignore[attr-defined]


def test_reading_counters_without_writing_is_legal() -> None:
    for word in (csr_word("csrrs", 10, 0xC00, 0), csr_word("csrrsi", 10, 0xC02, 0), csr_word("csrrc", 0, 0xC01, 0)):
        DEC.decode(word)


GCC = shutil.which("riscv64-linux-gnu-gcc")
QEMU = shutil.which("qemu-riscv64")


@pytest.mark.skipif(GCC is None or QEMU is None, reason="riscv64 gcc or qemu-riscv64 missing")
@pytest.mark.parametrize("insn", ["csrw cycle, a0", "csrr a0, mstatus"])
def test_qemu_agrees_these_are_illegal(insn: str, tmp_path: Path) -> None:
    src = tmp_path / "p.S"
    src.write_text(f"    .globl _start\n_start:\n    {insn}\n    li a7, 93\n    ecall\n")
    exe = tmp_path / "p"
    subprocess.run([GCC, "-nostdlib", "-static", "-o", str(exe), str(src)], check=True)  # type: ignore[list-item]
    assert subprocess.run([QEMU, str(exe)], capture_output=True).returncode == -signal.SIGILL  # type: ignore[list-item]
    obj = exe.read_bytes()
    word = int(
        subprocess.run(
            [str(Path(GCC).with_name("riscv64-linux-gnu-objdump")), "-d", str(exe)],  # type: ignore[arg-type]
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("<_start>:")[1].split("\n")[1].split()[1],
        16,
    )
    assert obj and word & 0x7F == 0x73
    with pytest.raises(IllegalInstruction):
        DEC.decode(word)
