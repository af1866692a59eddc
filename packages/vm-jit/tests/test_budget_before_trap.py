"""A budget that runs out just before an illegal instruction stops with BUDGET under every engine.

The trapping instruction is the one after the budget: it must not be
attempted (found by hypothesis: interp used to report the trap because the
illegal word ended the block it had just run).
"""

from __future__ import annotations

import pytest
from vm_core.types import StopKind

from .engine_harness import CODE, Guest, interp_engine, make_cpu, python_engine

# sb zero,0(sp); sb zero,0(sp); addi t6,t6,-1; bne t6,zero,-12 (loop); add zero,zero,zero; sb zero,0(sp)
# and then the all-zero halfword, which is an illegal instruction.
CODE_BYTES = bytes.fromhex("23000100" "23000100" "938fffff" "e39a0ffe" "33000000" "23000100")


def guest() -> Guest:
    x = [0] * 32
    x[2], x[31] = 0x20800, 6
    return Guest(code=CODE_BYTES, x=tuple(x))


@pytest.mark.parametrize(
    "engine", [interp_engine, lambda: python_engine(1, 1), lambda: python_engine(1, 2), python_engine]
)
def test_budget_exhausted_before_the_illegal_instruction(engine) -> None:
    cpu = make_cpu(guest())
    stop = engine().run(cpu, 26)
    assert (stop.kind, cpu.pc, cpu.icount) == (StopKind.BUDGET, CODE + len(CODE_BYTES), 26)
    stop = engine().run(cpu, 1)
    assert stop.kind is StopKind.FAULT and stop.signal == 4 and cpu.pc == CODE + len(CODE_BYTES)
