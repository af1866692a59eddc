"""The RISC-V front end's block formation and IR contract.

Block boundaries (control transfer, ecall, ebreak, fence.i, page end,
``max_insns``), fetch faults, illegal words, instructions straddling a page
boundary, self-modifying code through ``fence.i``, and two IR rules checked
on the lifted blocks of random decodable words (every table, F and D
included): ``x0`` is never read or written through ``GetReg``/``PutReg``, and
within an instruction every statement that can fault comes before its first
register write. Expected values come from the ISA manual (link register =
pc + length, ``jalr`` clears bit 0 of its target).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_core.errors import ConfigurationError, MemoryFault
from vm_core.types import StopKind
from vm_mem import PROT_EXEC, PROT_READ, PROT_WRITE, AddressSpace
from vm_translate import ir
from vm_translate.cpu import CpuState
from vm_translate.executor import ReferenceEngine
from vm_translate.riscv import NREGS, RiscvFrontEnd, isa_spec
from vm_translate.riscv.decoder import Decoder
from vm_translate.riscv.encoding import enc_b, enc_i, enc_j
from vm_translate.riscv.registers import ABI_NAMES, F0, FFLAGS, FRM, LAYOUT, RESERVATION

CODE = 0x10000
NOP = enc_i(0x13, 0, 0, 0, 0)
ADDI_A0 = enc_i(0x13, 10, 0, 10, 1)
ECALL, EBREAK, FENCE_I = 0x00000073, 0x00100073, 0x0000100F
FE = RiscvFrontEnd()


def space(code: bytes, at: int = CODE, prot: int = PROT_READ | PROT_EXEC, pages: int = 1) -> AddressSpace:
    """An address space with ``pages`` pages mapped ``prot`` from ``at``'s page, ``code`` at ``at``."""
    base = at & ~0xFFF
    image = bytearray(pages * 0x1000)
    image[at - base : at - base + len(code)] = code
    mem = AddressSpace()
    mem.map(base, pages * 0x1000, prot, bytes(image[: pages * 0x1000]))
    return mem


def words(*ws: int) -> bytes:
    return b"".join(w.to_bytes(2 if w & 3 != 3 else 4, "little") for w in ws)


def test_isa_spec_and_layout() -> None:
    spec = isa_spec()
    assert (spec.name, spec.elf_machine, spec.bits, spec.aliases) == ("riscv64", 243, 64, ("rv64", "rv64gc"))
    assert isinstance(spec.factory(), RiscvFrontEnd)
    assert LAYOUT.size == NREGS == 67
    assert (LAYOUT.names[0], LAYOUT.names[31], LAYOUT.names[F0], LAYOUT.names[FRM]) == ("x0", "x31", "f0", "frm")
    assert (FFLAGS, RESERVATION, ABI_NAMES[2], ABI_NAMES[F0 + 10]) == (65, 66, "sp", "fa0")


def test_straight_line_block_ends_at_max_insns() -> None:
    mem = space(words(*[ADDI_A0] * 10))
    block = FE.lift_block(mem, CODE, max_insns=4)
    assert (block.insn_count, block.size, block.exit) == (4, 16, ir.Jump(ir.Const(CODE + 16)))
    with pytest.raises(ConfigurationError):
        FE.lift_block(mem, CODE, max_insns=0)


def test_block_ends_at_the_page_end() -> None:
    start = CODE + 0x1000 - 8
    mem = space(words(ADDI_A0, 0x4505, ADDI_A0), at=start, pages=2)  # 4 + 2 bytes, then a straddling word
    block = FE.lift_block(mem, start)
    # The 32-bit word at page end - 2 straddles the boundary; it starts on this page, so it is lifted.
    assert block.insn_count == 3 and block.size == 10
    assert block.exit == ir.Jump(ir.Const(start + 10))


def test_straddling_instruction_fetch_fault() -> None:
    start = CODE + 0x1000 - 4
    mem = AddressSpace()
    mem.map(CODE, 0x1000, PROT_READ | PROT_EXEC, bytes(0x1000 - 4) + words(0x4505, ADDI_A0)[:4])
    # the addi at page end - 2 has its second half on the next page, which is unmapped
    block = FE.lift_block(mem, start)
    assert (block.insn_count, block.exit) == (1, ir.Jump(ir.Const(start + 2)))
    with pytest.raises(MemoryFault) as info:
        FE.lift_block(mem, start + 2)
    assert info.value.access == "execute" and info.value.address == CODE + 0x1000 and info.value.pc == start + 2


def test_fetch_needs_exec_permission() -> None:
    mem = space(words(NOP), prot=PROT_READ | PROT_WRITE)
    with pytest.raises(MemoryFault) as info:
        FE.lift_block(mem, CODE)
    assert info.value.access == "execute" and info.value.address == CODE


def test_illegal_words() -> None:
    mem = space(words(0xFFFFFFFF))
    block = FE.lift_block(mem, CODE)
    assert (block.insn_count, block.stmts, block.exit) == (0, (), ir.TrapExit("illegal", CODE, 0xFFFFFFFF, 4))
    mem = space(words(NOP, ADDI_A0, 0x0000))
    block = FE.lift_block(mem, CODE)
    assert (block.insn_count, block.size, block.exit) == (2, 10, ir.TrapExit("illegal", CODE + 8, 0, 2))


def test_ecall_ebreak_and_fences_end_blocks() -> None:
    block = FE.lift_block(space(words(NOP, ECALL, NOP)), CODE)
    assert (block.insn_count, block.exit) == (2, ir.SyscallExit(CODE + 4, CODE + 8))
    block = FE.lift_block(space(words(NOP, 0x9002)), CODE)  # c.ebreak does not retire
    assert (block.insn_count, block.exit) == (1, ir.TrapExit("breakpoint", CODE + 4, 0, 2))
    assert not any(isinstance(s, ir.InsnStart) and s.pc == CODE + 4 for s in block.stmts)
    block = FE.lift_block(space(words(FENCE_I, NOP)), CODE)
    assert block.insn_count == 1 and ir.Fence("i") in block.stmts and block.exit == ir.Jump(ir.Const(CODE + 4))
    block = FE.lift_block(space(words(0x0FF0000F, NOP)), CODE)
    assert block.insn_count == 2 and ir.Fence("rw") in block.stmts


def run(code: bytes, regs: dict[int, int], budget: int) -> CpuState:
    cpu = CpuState("riscv64", NREGS, space(code), CODE)
    for r, v in regs.items():
        cpu.regs[r] = v
    ReferenceEngine(RiscvFrontEnd()).run(cpu, budget)
    return cpu


def test_control_transfers() -> None:
    block = FE.lift_block(space(words(enc_b(0x63, 0, 10, 11, -8))), CODE)
    assert isinstance(block.exit, ir.Branch) and (block.exit.taken, block.exit.fallthrough) == (CODE - 8, CODE + 4)
    block = FE.lift_block(space(words(enc_j(0x6F, 1, 0x800))), CODE)
    assert block.exit == ir.Jump(ir.Const(CODE + 0x800)) and ir.PutReg(1, ir.Const(CODE + 4)) in block.stmts
    # jalr ra, 3(a0): target (a0 + 3) & ~1, link = pc + 4 even when rd == rs1
    cpu = run(words(enc_i(0x67, 10, 0, 10, 3)), {10: 0x40000}, 1)
    assert (cpu.pc, cpu.regs[10]) == (0x40002, CODE + 4)
    cpu = run(words(0x9502), {10: 0x40001}, 1)  # c.jalr a0: link = pc + 2
    assert (cpu.pc, cpu.regs[1]) == (0x40000, CODE + 2)


def test_self_modifying_code_through_fence_i() -> None:
    # sw a1, 12(a0) overwrites the instruction after fence.i; a0 = CODE.
    new = enc_i(0x13, 12, 0, 0, 42)  # li a2, 42
    code = words(0x00B52623, FENCE_I, NOP, enc_i(0x13, 12, 0, 0, 7), ECALL)
    mem = AddressSpace()
    mem.map(CODE, 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC, code)
    cpu = CpuState("riscv64", NREGS, mem, CODE)
    cpu.regs[10], cpu.regs[11] = CODE, new
    engine = ReferenceEngine(RiscvFrontEnd())
    engine.run(cpu, 1)
    assert engine.run(cpu, 10).kind is StopKind.SYSCALL
    assert cpu.regs[12] == 42


def test_decode_cache_is_per_front_end() -> None:
    a, b = RiscvFrontEnd(), RiscvFrontEnd()
    assert a.decoder is not b.decoder
    mem = space(words(ADDI_A0))
    assert a.decode_at(mem, CODE).name == "addi"
    assert a.decoder.decode(ADDI_A0) is a.decoder.decode(ADDI_A0)


def _faulting(stmt: ir.Stmt) -> bool:
    return isinstance(stmt, ir.Load | ir.Store | ir.Call)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_lifted_ir_keeps_the_contract(data: st.DataObject) -> None:
    dec = Decoder()
    spec = data.draw(st.sampled_from(dec.specs))
    word = spec.match | (data.draw(st.integers(0, 0xFFFFFFFF)) & ~spec.mask)
    mem = space(words(word, NOP))
    block = FE.lift_block(mem, CODE)
    if isinstance(block.exit, ir.TrapExit):
        assert block.exit.kind in ("illegal", "breakpoint")
        return
    written = False
    for stmt in block.stmts:
        if isinstance(stmt, ir.InsnStart):
            written = False
        assert not (isinstance(stmt, ir.GetReg | ir.PutReg) and stmt.reg == 0), stmt
        if isinstance(stmt, ir.PutReg):
            written = True
            assert (stmt.reg < 32 and stmt.src.width == 64) or stmt.reg >= 32
        assert not (written and _faulting(stmt)), f"{spec.name}: {stmt} after a register write"
