"""RISC-V ``fclass.s``/``fclass.d``: the class of a floating-point value as a one-hot 10-bit mask.

``fclass`` is RISC-V's alone, so it lives in its front end: :func:`classify`
is the definition (checked against Unicorn's RISC-V ``fclass``), and
:func:`lift_fclass` lifts the instruction to plain IR comparisons and
selects on the register bits (no helper, so every engine runs it natively).
"""

from __future__ import annotations

from typing import Any

from vm_translate import softfloat as sf
from vm_translate.riscv.builder import Builder
from vm_translate.softfloat.formats import check_operand

#: fclass result bits, in RISC-V order.
CLASS_NEG_INF = 1 << 0
CLASS_NEG_NORMAL = 1 << 1
CLASS_NEG_SUBNORMAL = 1 << 2
CLASS_NEG_ZERO = 1 << 3
CLASS_POS_ZERO = 1 << 4
CLASS_POS_SUBNORMAL = 1 << 5
CLASS_POS_NORMAL = 1 << 6
CLASS_POS_INF = 1 << 7
CLASS_SIGNALLING_NAN = 1 << 8
CLASS_QUIET_NAN = 1 << 9
#: An f register's upper half when it holds a properly NaN-boxed single-precision value.
_BOX = 0xFFFFFFFF_00000000


def classify(fmt: sf.Format, a: int) -> int:
    """The 10-bit RISC-V fclass mask of ``a`` (exactly one bit set)."""
    check_operand(fmt, a)
    magnitude = a & fmt.abs_mask
    negative = bool(a & fmt.sign_bit)
    if magnitude > fmt.infinity:
        return CLASS_QUIET_NAN if a & fmt.quiet_bit else CLASS_SIGNALLING_NAN
    if magnitude == fmt.infinity:
        return CLASS_NEG_INF if negative else CLASS_POS_INF
    if not magnitude:
        return CLASS_NEG_ZERO if negative else CLASS_POS_ZERO
    if magnitude < fmt.hidden_bit:
        return CLASS_NEG_SUBNORMAL if negative else CLASS_POS_SUBNORMAL
    return CLASS_NEG_NORMAL if negative else CLASS_POS_NORMAL


def lift_fclass(b: Builder, fmt: sf.Format, register: Any) -> Any:
    """IR computing :func:`classify` of the f-register value ``register`` (64 bits) as a 64-bit result.

    Single precision reads an improperly NaN-boxed register as the canonical
    NaN, as every F instruction does.
    """
    w = fmt.width
    if w == 32:
        boxed = b.binop("leu", b.const(_BOX), register)
        bits = b.select(boxed, b.trunc(register, 32), b.const(fmt.canonical_nan, 32))
    else:
        bits = register
    magnitude = b.binop("and", bits, b.const(fmt.abs_mask, w))
    negative = b.binop("ne", b.binop("and", bits, b.const(fmt.sign_bit, w)), b.const(0, w))

    def by_sign(neg: int, pos: int) -> Any:
        return b.select(negative, b.const(neg), b.const(pos))

    result = by_sign(CLASS_NEG_NORMAL, CLASS_POS_NORMAL)
    subnormal = b.binop("ltu", magnitude, b.const(fmt.hidden_bit, w))
    result = b.select(subnormal, by_sign(CLASS_NEG_SUBNORMAL, CLASS_POS_SUBNORMAL), result)
    zero = b.binop("eq", magnitude, b.const(0, w))
    result = b.select(zero, by_sign(CLASS_NEG_ZERO, CLASS_POS_ZERO), result)
    infinite = b.binop("eq", magnitude, b.const(fmt.infinity, w))
    result = b.select(infinite, by_sign(CLASS_NEG_INF, CLASS_POS_INF), result)
    quiet = b.binop("ne", b.binop("and", bits, b.const(fmt.quiet_bit, w)), b.const(0, w))
    nan_class = b.select(quiet, b.const(CLASS_QUIET_NAN), b.const(CLASS_SIGNALLING_NAN))
    return b.select(b.binop("ltu", b.const(fmt.infinity, w), magnitude), nan_class, result)
