"""RV64M: integer multiplication and division as an instruction table.

The IR's division is total with exactly RISC-V's results (division by zero
gives all ones, remainder by zero the dividend, ``MIN / -1`` gives ``MIN``
with remainder 0), so each instruction is one :class:`~vm_translate.ir.BinOp`.
The word forms (``mulw``, ``divw``, ``divuw``, ``remw``, ``remuw``) operate on
the low 32 bits of their operands and sign-extend the 32-bit result.
"""

from __future__ import annotations

from vm_translate import ir
from vm_translate.ir import Operand
from vm_translate.riscv.builder import Builder
from vm_translate.riscv.decoder import Fields, InsnSpec, LiftFn
from vm_translate.riscv.rv64i import MASK_F7, OP_OP, OP_OP_32, match_of, word_op

_MULDIV = 0x01


def riscv_divide(b: Builder, op: str, a: Operand, d: Operand) -> Operand:
    """``a <op> d`` for an IR division op, with RISC-V's results where the IR op would trap."""
    w = a.width
    zero = b.binop("eq", d, b.const(0, w))
    bad = zero
    if op in ("divs", "rems"):
        a_min = b.binop("eq", a, b.const(1 << (w - 1), w))
        d_minus1 = b.binop("eq", d, b.const(-1, w))
        bad = b.binop("or", zero, b.binop("and", a_min, d_minus1))
    quotient = b.binop(op, a, b.select(bad, b.const(1, w), d))
    return b.select(zero, b.const(-1, w) if op in ("divu", "divs") else a, quotient)


def _reg(op: str) -> LiftFn:
    def lift(b: Builder, f: Fields) -> None:
        a, d = b.get_x(f.rs1), b.get_x(f.rs2)
        if op in ir.DIVISION_OPS:
            b.put_x(f.rd, riscv_divide(b, op, a, d))
        else:
            b.put_x(f.rd, b.binop(op, a, d))

    return lift


def _word(op: str) -> LiftFn:
    def lift(b: Builder, f: Fields) -> None:
        a, d = b.get_x(f.rs1), b.get_x(f.rs2)
        if op in ir.DIVISION_OPS:
            b.put_x(f.rd, b.sext(riscv_divide(b, op, b.trunc(a, 32), b.trunc(d, 32))))
        else:
            b.put_x(f.rd, word_op(b, op, a, d))

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
