"""The RISC-V RV64 front end: instruction tables for I, M, A, F, D, C, Zicsr and Zifencei lifted to vm's IR.

Modules: :mod:`~vm_translate.riscv.registers` (the register layout),
:mod:`~vm_translate.riscv.decoder` (the table framework and decoder),
:mod:`~vm_translate.riscv.rvc` (compressed instructions),
:mod:`~vm_translate.riscv.builder` (the IR builder extension modules lift
through), one module per extension (``rv64i``, ``rv64m``, ``rv64a``,
``zicsr``, ``zifencei``, ``rv64f``, ``rv64d``) and
:mod:`~vm_translate.riscv.lifter` (:class:`RiscvFrontEnd`).
"""

from __future__ import annotations

from vm_core.types import IsaSpec

from vm_translate.riscv.decoder import Decoded, Decoder, Fields, InsnSpec
from vm_translate.riscv.lifter import RiscvFrontEnd
from vm_translate.riscv.registers import LAYOUT, NREGS


def isa_spec() -> IsaSpec:
    """The ``riscv64`` ISA registration for vm-core's ``vm_register_isas`` hook."""
    return IsaSpec(
        name="riscv64",
        factory=RiscvFrontEnd,
        elf_machine=243,
        bits=64,
        description="RISC-V RV64GC (I, M, A, F, D, C, Zicsr, Zifencei) lifted to vm's IR",
        aliases=("rv64", "rv64gc"),
    )


__all__ = ["LAYOUT", "NREGS", "Decoded", "Decoder", "Fields", "InsnSpec", "RiscvFrontEnd", "isa_spec"]
