"""RV64D: double-precision floating point, lifted like RV64F (see :mod:`vm_translate.riscv.rv64f`).

Double-precision helpers take and return the raw 64-bit f-register patterns
(no NaN boxing). ``fcvt.s.d`` rounds and boxes its result; ``fcvt.d.s``
unboxes its operand and is exact, but still checks a dynamic rounding mode
(an ``frm`` of 5..7 makes it illegal, as on hardware). Sign injection and
the ``fmv.x.d``/``fmv.d.x`` moves are plain IR bit operations.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from vm_translate import softfloat as sf
from vm_translate.riscv.builder import Builder
from vm_translate.riscv.decoder import Fields, InsnSpec, LiftFn
from vm_translate.riscv.registers import F0
from vm_translate.riscv.rv64f import (
    BOX,
    FMT_D,
    FMT_S,
    INTEGER_KINDS,
    MASK_F7_F3,
    MASK_F7_RS2,
    MASK_F7_RS2_F3,
    MINMAX_NANS,
    NAN_POLICY,
    OP_FP,
    Helper,
    arithmetic_rows,
    check_dynamic_rm,
    compare_rows,
    float_to_int_helper,
    int_to_float_helper,
    integer_conversion_rows,
    lift_call,
    load_store_rows,
    register,
    static_rm_valid,
    unbox,
)

F64 = sf.F64
SIGN64 = 1 << 63
ABS64 = SIGN64 - 1


def _binary_d(op: Callable[..., tuple[int, int]]) -> Helper:
    def helper(a: int, b: int, rm: int, word: int) -> tuple[int, int]:
        if rm > 4:
            check_dynamic_rm(rm, word)
        return op(F64, a, b, rm, nan=NAN_POLICY)

    return helper


def _fsqrt_d(a: int, rm: int, word: int) -> tuple[int, int]:
    if rm > 4:
        check_dynamic_rm(rm, word)
    return sf.sqrt(F64, a, rm, nan=NAN_POLICY)


def _fused_d(negate_product: bool, negate_addend: bool) -> Helper:
    def helper(a: int, b: int, c: int, rm: int, word: int) -> tuple[int, int]:
        if rm > 4:
            check_dynamic_rm(rm, word)
        return sf.fma(F64, a, b, c, rm, negate_product, negate_addend, nan=NAN_POLICY)

    return helper


def _pair_d(op: Callable[[sf.Format, int, int], tuple[int, int]]) -> Helper:
    def helper(a: int, b: int) -> tuple[int, int]:
        return op(F64, a, b)

    return helper


def _fcvt_s_d(a: int, rm: int, word: int) -> tuple[int, int]:
    if rm > 4:
        check_dynamic_rm(rm, word)
    value, flags = sf.convert(F64, sf.F32, a, rm, nan=NAN_POLICY)
    return value | BOX, flags


def _fcvt_d_s(a: int, rm: int, word: int) -> tuple[int, int]:
    if rm > 4:
        check_dynamic_rm(rm, word)
    return sf.convert(sf.F32, F64, unbox(a), rm, nan=NAN_POLICY)


def _double_helpers() -> dict[str, str]:
    fns: dict[str, tuple[Helper, int]] = {
        "fadd": (_binary_d(sf.add), 2),
        "fsub": (_binary_d(sf.sub), 2),
        "fmul": (_binary_d(sf.mul), 2),
        "fdiv": (_binary_d(sf.div), 2),
        "fsqrt": (_fsqrt_d, 2),
        "fmadd": (_fused_d(False, False), 2),
        "fmsub": (_fused_d(False, True), 2),
        "fnmsub": (_fused_d(True, False), 2),
        "fnmadd": (_fused_d(True, True), 2),
        "fmin": (_pair_d(partial(sf.min, nans=MINMAX_NANS, nan=NAN_POLICY)), 2),
        "fmax": (_pair_d(partial(sf.max, nans=MINMAX_NANS, nan=NAN_POLICY)), 2),
        "feq": (_pair_d(sf.eq), 2),
        "flt": (_pair_d(sf.lt), 2),
        "fle": (_pair_d(sf.le), 2),
        "fcvt.s.d": (_fcvt_s_d, 2),
        "fcvt.d.s": (_fcvt_d_s, 2),
    }
    names = {
        stem: register(f"riscv.{stem}.d" if "." not in stem else f"riscv.{stem}", fn, n)
        for stem, (fn, n) in fns.items()
    }
    for kind, _rs2, bits, signed in INTEGER_KINDS:
        to_int = f"fcvt.{kind}.d"
        names[to_int] = register(f"riscv.{to_int}", float_to_int_helper(F64, bits, signed, False), 2)
        from_int = f"fcvt.d.{kind}"
        names[from_int] = register(f"riscv.{from_int}", int_to_float_helper(F64, bits, signed, False), 2)
    return names


def _sign_injection(op: str) -> LiftFn:
    """fsgnj/fsgnjn/fsgnjx.d: the magnitude of rs1 with a sign taken from (or xored with) rs2."""

    def lift(b: Builder, f: Fields) -> None:
        a = b.get_reg(F0 + f.rs1)
        sign_source = b.get_reg(F0 + f.rs2)
        if op == "fsgnjn":
            sign_source = b.unop("not", sign_source)
        sign = b.binop("and", sign_source, b.const(SIGN64))
        if op == "fsgnjx":
            b.put_reg(F0 + f.rd, b.binop("xor", a, sign))
        else:
            b.put_reg(F0 + f.rd, b.binop("or", b.binop("and", a, b.const(ABS64)), sign))

    return lift


def _lift_fmv_x_d(b: Builder, f: Fields) -> None:
    b.put_x(f.rd, b.get_reg(F0 + f.rs1))


def _lift_fmv_d_x(b: Builder, f: Fields) -> None:
    b.put_reg(F0 + f.rd, b.get_x(f.rs1))


def _conversion_rows(helpers: dict[str, str]) -> list[InsnSpec]:
    rows = []
    for name, funct7, rs2 in (("fcvt.s.d", 0x20 | FMT_S, 1), ("fcvt.d.s", 0x20 | FMT_D, 0)):
        match = funct7 << 25 | rs2 << 20 | OP_FP
        lift = lift_call(helpers[name], "f", "f", rounded=True, flags=True, match=match)
        rows.append(InsnSpec(name, MASK_F7_RS2, match, "R", lift, static_rm_valid))
    return rows


_HELPERS_D = _double_helpers()

INSTRUCTIONS: list[InsnSpec] = [
    *load_store_rows("d", 3, 8, boxed=False),
    *arithmetic_rows("d", FMT_D, _HELPERS_D),
    *[
        InsnSpec(
            f"{stem}.d",
            MASK_F7_F3,
            (0x04 << 2 | FMT_D) << 25 | funct3 << 12 | OP_FP,
            "R",
            _sign_injection(stem),
        )
        for stem, funct3 in (("fsgnj", 0), ("fsgnjn", 1), ("fsgnjx", 2))
    ],
    *compare_rows("d", FMT_D, _HELPERS_D),
    *integer_conversion_rows("d", FMT_D, _HELPERS_D),
    *_conversion_rows(_HELPERS_D),
    InsnSpec("fmv.x.d", MASK_F7_RS2_F3, (0x1C << 2 | FMT_D) << 25 | OP_FP, "R", _lift_fmv_x_d),
    InsnSpec("fmv.d.x", MASK_F7_RS2_F3, (0x1E << 2 | FMT_D) << 25 | OP_FP, "R", _lift_fmv_d_x),
]
