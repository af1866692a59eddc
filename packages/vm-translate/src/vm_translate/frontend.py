"""What an ISA front end provides, and the per-ISA front-end registry.

A front end decodes guest machine code at a pc and lifts one block into
:mod:`vm_translate.ir`. Front ends are looked up by ISA name; the RISC-V one
lives in :mod:`vm_translate.riscv`. vm-translate's plugin registers each
with vm-core's ``vm_register_isas`` hook.
"""

from __future__ import annotations

from typing import Protocol

from vm_translate.ir import Block, RegisterLayout


class FrontEnd(Protocol):
    """Decode and lift guest code of one ISA."""

    isa: str
    layout: RegisterLayout

    def lift_block(self, mem: object, pc: int, max_insns: int = 64) -> Block:
        """Lift the block starting at ``pc`` (at most ``max_insns`` instructions).

        The block ends at the first control transfer, system call, trap,
        instruction fence, page boundary or ``max_insns``. An instruction no
        table decodes becomes a ``TrapExit("illegal")`` after the
        instructions before it. If the very first instruction cannot be
        fetched, :class:`vm_core.errors.MemoryFault` (access "execute") is
        raised; a later one ends the block before it.
        """
        ...
