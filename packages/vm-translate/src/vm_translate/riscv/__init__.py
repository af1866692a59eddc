"""The RISC-V RV64 front end: instruction tables for I, M, A, F, D, C, Zicsr and Zifencei lifted to vm's IR.

Modules: :mod:`~vm_translate.riscv.archinfo` (the ISA's facts: registers,
Linux ABI registers, HWCAP, page size), :mod:`~vm_translate.riscv.registers`
(the register layout built from them),
:mod:`~vm_translate.riscv.decoder` (the table framework and decoder),
:mod:`~vm_translate.riscv.rvc` (compressed instructions),
:mod:`~vm_translate.riscv.builder` (the IR builder extension modules lift
through), one module per extension (``rv64i``, ``rv64m``, ``rv64a``,
``zicsr``, ``zifencei``, ``rv64f``, ``rv64d``) and
:mod:`~vm_translate.riscv.lifter` (:class:`RiscvFrontEnd`).
"""

from __future__ import annotations

from vm_core.types import IsaSpec

from vm_translate.riscv.archinfo import RV64
from vm_translate.riscv.decoder import Decoded, Decoder, Fields, InsnSpec
from vm_translate.riscv.lifter import RiscvFrontEnd
from vm_translate.riscv.registers import LAYOUT, NREGS


def isa_spec() -> IsaSpec:
    """The ``riscv64`` ISA registration for vm-core's ``vm_register_isas`` hook."""
    return IsaSpec(
        name="riscv64",
        factory=RiscvFrontEnd,
        elf_machine=RV64.elf_machine,
        bits=RV64.word_bits,
        description="RISC-V RV64GC (I, M, A, F, D, C, Zicsr, Zifencei) lifted to vm's IR",
        aliases=("rv64", "rv64gc"),
        arch=RV64,
    )


__all__ = ["LAYOUT", "NREGS", "RV64", "Decoded", "Decoder", "Fields", "InsnSpec", "RiscvFrontEnd", "isa_spec"]
