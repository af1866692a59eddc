"""The RISC-V front end: fetch, decode and lift one guest block into vm's IR.

:class:`RiscvFrontEnd` implements :class:`vm_translate.frontend.FrontEnd`.
``lift_block`` fetches 16 bits at a time through the address space's
``fetch`` (which requires ``PROT_EXEC``; a 32-bit instruction may straddle a
page boundary), decides the length from the low bits, decodes through its
own :class:`~vm_translate.riscv.decoder.Decoder` (with its decode cache) and
lifts each instruction with its table row's ``lift`` function.

A block ends after a control transfer, ``ecall``, ``ebreak``, ``fence.i``,
when the next instruction would start on another page, or after
``max_insns`` instructions; it also ends before an instruction that cannot
be fetched (if that is the first one, :class:`vm_core.errors.MemoryFault`
with access "execute" is raised) and at an undecodable word, which becomes
``TrapExit("illegal")`` after the instructions before it.
"""

from __future__ import annotations

from typing import Any

from vm_core.errors import ConfigurationError, IllegalInstruction, MemoryFault
from vm_core.logging import get_logger

from vm_translate import ir
from vm_translate.riscv.builder import MASK64, Builder
from vm_translate.riscv.decoder import ISA, Decoded, Decoder
from vm_translate.riscv.registers import LAYOUT

_PAGE_SHIFT = 12
_log = get_logger("vm_translate.riscv.lifter")


class RiscvFrontEnd:
    """The RV64GC front end (I, M, A, F, D, C, Zicsr, Zifencei)."""

    isa = ISA
    layout = LAYOUT

    def __init__(self, decoder: Decoder | None = None) -> None:
        self.decoder = decoder if decoder is not None else Decoder()

    def fetch_word(self, mem: Any, pc: int) -> tuple[int, int]:
        """The instruction word at ``pc`` and its length (2 or 4); may raise MemoryFault."""
        low = int.from_bytes(mem.fetch(pc, 2), "little")
        if low & 3 != 3:
            return low, 2
        high = int.from_bytes(mem.fetch((pc + 2) & MASK64, 2), "little")
        return low | (high << 16), 4

    def decode_word(self, word: int, length: int) -> Decoded:
        """Decode ``word`` of ``length`` bytes (raises IllegalInstruction)."""
        if length == 2:
            return self.decoder.decode_compressed(word)
        return self.decoder.decode(word)

    def decode_at(self, mem: Any, pc: int) -> Decoded:
        """Fetch and decode the instruction at ``pc`` (for traces and debuggers)."""
        word, length = self.fetch_word(mem, pc)
        try:
            return self.decode_word(word, length)
        except IllegalInstruction as exc:
            exc.pc = pc
            raise

    def lift_block(self, mem: object, pc: int, max_insns: int = 64) -> ir.Block:
        """Lift the block at ``pc``; see the module docstring for where it ends."""
        if max_insns < 1:
            raise ConfigurationError(f"max_insns must be at least 1, got {max_insns}")
        b = Builder(ISA, pc)
        page = pc >> _PAGE_SHIFT
        addr = pc
        size = 0
        while True:
            try:
                word, length = self.fetch_word(mem, addr)
            except MemoryFault as fault:
                if addr == pc:
                    if fault.pc is None:
                        fault.pc = pc
                    raise
                b.jump(addr)
                break
            try:
                decoded = self.decode_word(word, length)
            except IllegalInstruction:
                b.illegal(addr, length, word)
                size += length
                break
            mark = b.start_insn(addr, length)
            try:
                decoded.spec.lift(b, decoded.fields)
            except IllegalInstruction:
                b.rollback(mark)
                b.illegal(addr, length, word)
            size += length
            if b.closed:
                break
            addr = (addr + length) & MASK64
            if b.insn_index + 1 >= max_insns or addr >> _PAGE_SHIFT != page:
                b.jump(addr)
                break
        block = b.finish(b.insn_index + 1, size)
        _log.debug("riscv_block_lifted", pc=pc, insns=block.insn_count, size=size, exit=type(block.exit).__name__)
        return block
