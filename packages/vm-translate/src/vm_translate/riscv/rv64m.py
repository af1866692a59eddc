"""RV64M: integer multiplication and division as an instruction table.

The IR's division is total with exactly RISC-V's results (division by zero
gives all ones, remainder by zero the dividend, ``MIN / -1`` gives ``MIN``
with remainder 0), so each instruction is one :class:`~vm_translate.ir.BinOp`.
The word forms (``mulw``, ``divw``, ``divuw``, ``remw``, ``remuw``) operate on
the low 32 bits of their operands and sign-extend the 32-bit result.
"""

from __future__ import annotations

from vm_translate.riscv.builder import Builder
from vm_translate.riscv.decoder import Fields, InsnSpec, LiftFn
from vm_translate.riscv.rv64i import MASK_F7, OP_OP, OP_OP_32, match_of, word_op

_MULDIV = 0x01


def _reg(op: str) -> LiftFn:
    def lift(b: Builder, f: Fields) -> None:
        b.put_x(f.rd, b.binop(op, b.get_x(f.rs1), b.get_x(f.rs2)))

    return lift


def _word(op: str) -> LiftFn:
    def lift(b: Builder, f: Fields) -> None:
        b.put_x(f.rd, word_op(b, op, b.get_x(f.rs1), b.get_x(f.rs2)))

    return lift


INSTRUCTIONS: list[InsnSpec] = [
    InsnSpec(name, MASK_F7, match_of(OP_OP, f3, _MULDIV), "R", _reg(op))
    for name, f3, op in (
        ("mul", 0, "mul"),
        ("mulh", 1, "mulhs"),
        ("mulhsu", 2, "mulhsu"),
        ("mulhu", 3, "mulhu"),
        ("div", 4, "divs"),
        ("divu", 5, "divu"),
        ("rem", 6, "rems"),
        ("remu", 7, "remu"),
    )
] + [
    InsnSpec(name, MASK_F7, match_of(OP_OP_32, f3, _MULDIV), "R", _word(op))
    for name, f3, op in (
        ("mulw", 0, "mul"),
        ("divw", 4, "divs"),
        ("divuw", 5, "divu"),
        ("remw", 6, "rems"),
        ("remuw", 7, "remu"),
    )
]
