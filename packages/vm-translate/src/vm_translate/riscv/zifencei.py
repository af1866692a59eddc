"""Zifencei: FENCE.I, the instruction-fetch fence.

FENCE.I lifts to ``Fence("i")`` and ends the block, so code the guest wrote
before it is fetched (and lifted) afresh. Its ``rd``, ``rs1`` and immediate
fields are reserved and ignored, as the ISA allows.
"""

from __future__ import annotations

from vm_translate.riscv.builder import Builder
from vm_translate.riscv.decoder import Fields, InsnSpec
from vm_translate.riscv.rv64i import MASK_F3, OP_MISC_MEM, match_of


def _fence_i(b: Builder, f: Fields) -> None:
    b.fence("i")
    b.end_block()


INSTRUCTIONS: list[InsnSpec] = [InsnSpec("fence.i", MASK_F3, match_of(OP_MISC_MEM, 1), "I", _fence_i)]
