"""RV64F: single-precision floating point, and the lifting machinery RV64D shares.

Every arithmetic, conversion and comparison instruction is
lifted to one IR :class:`~vm_translate.ir.Call` of a pure helper registered
here (``riscv.fadd.s``, ``riscv.fcvt.w.s`` ...). The helpers wrap
:mod:`vm_translate.softfloat` and receive raw register values: the 64-bit
f-register patterns (single-precision helpers unbox them, an improperly
NaN-boxed operand reading as the canonical NaN, and return boxed results),
the integer register value for ``fcvt.*.w/l``, the rounding mode and, for
helpers that take one, the instruction word. They return ``(value, fflags)``;
the lifted IR ORs the flags into ``regs[FFLAGS]`` and writes the result,
after the call, so a faulting helper leaves the registers untouched.

Rounding modes: a static ``rm`` field of 5 or 6 is reserved, so those rows
do not decode (illegal instruction); ``rm == 7`` (DYN) passes ``regs[FRM]``
and the helper raises :class:`vm_core.errors.IllegalInstruction` when
``frm`` holds 5, 6 or 7, as the hardware does.

Moves, sign injection of doubles, ``fclass`` (:mod:`vm_translate.riscv.fclass`),
loads and stores are plain IR (no helper):
``flw``/``fmv.w.x`` box their 32 bits, ``fsw`` stores the low 32 bits as they
are and ``fmv.x.w`` sign-extends them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vm_core.errors import IllegalInstruction

from vm_translate import softfloat as sf
from vm_translate.helpers import NativeLowering, register_helper
from vm_translate.riscv.builder import Builder
from vm_translate.riscv.decoder import ISA, Fields, InsnSpec, LiftFn
from vm_translate.riscv.fclass import lift_fclass
from vm_translate.riscv.registers import F0, FFLAGS, FRM

#: The ``rm`` encoding that selects the dynamic rounding mode in ``frm``.
DYN = 7
#: Upper half of a properly NaN-boxed single-precision register value.
BOX = 0xFFFFFFFF_00000000
#: The canonical single-precision NaN an improperly boxed register reads as.
CANONICAL_NAN32 = 0x7FC00000
MASK32 = 0xFFFFFFFF

OP_LOAD_FP = 0x07
OP_STORE_FP = 0x27
OP_FMADD = 0x43
OP_FMSUB = 0x47
OP_FNMSUB = 0x4B
OP_FNMADD = 0x4F
OP_FP = 0x53

#: Masks: funct7 (rm free); funct7 + rs2 (rm free); funct7 + funct3; funct7 + rs2 + funct3;
#: R4 (opcode + fmt); load/store (opcode + funct3).
MASK_F7 = 0xFE00007F
MASK_F7_RS2 = 0xFFF0007F
MASK_F7_F3 = 0xFE00707F
MASK_F7_RS2_F3 = 0xFFF0707F
MASK_R4 = 0x0600007F
MASK_MEM = 0x0000707F

#: The ``fmt`` field values of the two precisions.
FMT_S = 0
FMT_D = 1

Helper = Callable[..., Any]


# -- helper plumbing ----------------------------------------------------------------------------


def unbox(reg: int) -> int:
    """The binary32 held in a 64-bit f register (canonical NaN unless properly NaN-boxed)."""
    return reg & MASK32 if reg >= BOX else CANONICAL_NAN32


def check_dynamic_rm(rm: int, word: int) -> None:
    """Raise IllegalInstruction when the resolved rounding mode is reserved (5, 6, 7)."""
    if rm > 4:
        raise IllegalInstruction(word, isa=ISA)


def static_rm_valid(fields: Fields) -> bool:
    """Decode-time check: the static rounding modes 5 and 6 are reserved encodings."""
    return fields.rm != 5 and fields.rm != 6


def instruction_word(match: int, f: Fields) -> int:
    """Rebuild an OP-FP / R4 instruction word from its row's ``match`` and its fields."""
    return match | f.rd << 7 | f.rm << 12 | f.rs1 << 15 | f.rs2 << 20 | f.rs3 << 27


#: Mnemonic stems (before the format) and their ISA-neutral ``float`` lowering operation.
_LOWERING_STEMS = {
    "fadd": "add", "fsub": "sub", "fmul": "mul", "fdiv": "div", "fsqrt": "sqrt", "fmadd": "fma",
    "fmsub": "fma_negate_addend", "fnmsub": "fma_negate_product", "fnmadd": "fma_negate_both",
    "fmin": "minimum_number", "fmax": "maximum_number", "feq": "eq_quiet", "flt": "lt", "fle": "le",
    "fsgnj": "copysign", "fsgnjn": "copysign_negated", "fsgnjx": "xorsign",
}  # fmt: skip
_FORMAT_NAMES = {"s": "f32", "d": "f64"}
_INTEGER_NAMES = {"w": "i32", "wu": "u32", "l": "i64", "lu": "u64"}


def lowering_op(mnemonic: str) -> str:
    """The ``float`` native lowering op of a RISC-V F/D mnemonic (``fadd.d``: ``add.f64``, ``fcvt.w.s``: ``to_i32.f32``)."""
    parts = mnemonic.split(".")
    if parts[0] != "fcvt":
        return f"{_LOWERING_STEMS[parts[0]]}.{_FORMAT_NAMES[parts[1]]}"
    dst, src = parts[1], parts[2]
    if dst in _INTEGER_NAMES:
        return f"to_{_INTEGER_NAMES[dst]}.{_FORMAT_NAMES[src]}"
    if src in _INTEGER_NAMES:
        return f"from_{_INTEGER_NAMES[src]}.{_FORMAT_NAMES[dst]}"
    return f"convert.{_FORMAT_NAMES[src]}.{_FORMAT_NAMES[dst]}"


def register(name: str, fn: Helper, results: int) -> str:
    """Register ``fn`` as the pure helper ``riscv.<mnemonic>``, natively its ``float`` lowering (:func:`lowering_op`)."""
    lowering = NativeLowering("float", lowering_op(name.removeprefix("riscv.")), FLOAT_POLICY)
    register_helper(name, results=results, native=lowering)(fn)
    return name


# -- lifting patterns ---------------------------------------------------------------------------


def accrue_flags(b: Builder, flags: Any) -> None:
    """``fflags |= flags``."""
    b.put_reg(FFLAGS, b.binop("or", b.get_reg(FFLAGS), flags))


def rounding_operand(b: Builder, rm: int) -> Any:
    """The rounding mode an instruction computes with: ``frm`` for DYN, else the static field."""
    return b.get_reg(FRM) if rm == DYN else b.const(rm)


def _sources(b: Builder, f: Fields, srcs: str) -> list[Any]:
    regs = (f.rs1, f.rs2, f.rs3)
    return [b.get_reg(F0 + r) if kind == "f" else b.get_x(r) for kind, r in zip(srcs, regs)]


def lift_call(helper: str, srcs: str, dst: str, *, rounded: bool, flags: bool, match: int = 0) -> LiftFn:
    """A lift function calling ``helper``.

    ``srcs`` names the operand register files in rs1, rs2, rs3 order ("f" or
    "x"), ``dst`` the destination file. ``rounded`` helpers also get the
    rounding mode and the instruction word (rebuilt from ``match``);
    ``flags`` helpers return ``(value, fflags)``.
    """

    def lift(b: Builder, f: Fields) -> None:
        args = _sources(b, f, srcs)
        if rounded:
            args += [rounding_operand(b, f.rm), b.const(instruction_word(match, f))]
        if flags:
            value, raised = b.call(helper, tuple(args), (64, 64))
            accrue_flags(b, raised)
        else:
            value = b.call1(helper, *args)
        if dst == "f":
            b.put_reg(F0 + f.rd, value)
        else:
            b.put_x(f.rd, value)

    return lift


def load_store_rows(suffix: str, funct3: int, size: int, boxed: bool) -> list[InsnSpec]:
    """``fl<suffix>`` and ``fs<suffix>`` (``size`` bytes; single-precision loads are NaN-boxed)."""

    def load(b: Builder, f: Fields) -> None:
        value = b.load(b.add_imm(b.get_x(f.rs1), f.imm), size)
        b.put_reg(F0 + f.rd, b.binop("or", value, b.const(BOX)) if boxed else value)

    def store(b: Builder, f: Fields) -> None:
        b.store(b.add_imm(b.get_x(f.rs1), f.imm), b.get_reg(F0 + f.rs2), size)

    return [
        InsnSpec(f"fl{suffix}", MASK_MEM, funct3 << 12 | OP_LOAD_FP, "I", load),
        InsnSpec(f"fs{suffix}", MASK_MEM, funct3 << 12 | OP_STORE_FP, "S", store),
    ]


def arithmetic_rows(suffix: str, fmt: int, helpers: dict[str, str]) -> list[InsnSpec]:
    """The rounded arithmetic rows of one precision (helpers by mnemonic stem, e.g. ``"fadd"``)."""
    rows: list[InsnSpec] = []
    for stem, funct5 in (("fadd", 0x00), ("fsub", 0x01), ("fmul", 0x02), ("fdiv", 0x03)):
        match = (funct5 << 2 | fmt) << 25 | OP_FP
        lift = lift_call(helpers[stem], "ff", "f", rounded=True, flags=True, match=match)
        rows.append(InsnSpec(f"{stem}.{suffix}", MASK_F7, match, "R", lift, static_rm_valid))
    match = (0x0B << 2 | fmt) << 25 | OP_FP
    lift = lift_call(helpers["fsqrt"], "f", "f", rounded=True, flags=True, match=match)
    rows.append(InsnSpec(f"fsqrt.{suffix}", MASK_F7_RS2, match, "R", lift, static_rm_valid))
    for stem, opcode in (
        ("fmadd", OP_FMADD),
        ("fmsub", OP_FMSUB),
        ("fnmsub", OP_FNMSUB),
        ("fnmadd", OP_FNMADD),
    ):
        match = fmt << 25 | opcode
        lift = lift_call(helpers[stem], "fff", "f", rounded=True, flags=True, match=match)
        rows.append(InsnSpec(f"{stem}.{suffix}", MASK_R4, match, "R4", lift, static_rm_valid))
    return rows


def compare_rows(suffix: str, fmt: int, helpers: dict[str, str]) -> list[InsnSpec]:
    """fmin/fmax, feq/flt/fle (helpers) and fclass (plain IR) of one precision."""
    rows: list[InsnSpec] = []
    for stem, funct5, funct3 in (("fmin", 0x05, 0), ("fmax", 0x05, 1)):
        match = (funct5 << 2 | fmt) << 25 | funct3 << 12 | OP_FP
        lift = lift_call(helpers[stem], "ff", "f", rounded=False, flags=True)
        rows.append(InsnSpec(f"{stem}.{suffix}", MASK_F7_F3, match, "R", lift))
    for stem, funct3 in (("feq", 2), ("flt", 1), ("fle", 0)):
        match = (0x14 << 2 | fmt) << 25 | funct3 << 12 | OP_FP
        lift = lift_call(helpers[stem], "ff", "x", rounded=False, flags=True)
        rows.append(InsnSpec(f"{stem}.{suffix}", MASK_F7_F3, match, "R", lift))
    match = (0x1C << 2 | fmt) << 25 | 1 << 12 | OP_FP
    rows.append(InsnSpec(f"fclass.{suffix}", MASK_F7_RS2_F3, match, "R", _fclass_lift(suffix)))
    return rows


def _fclass_lift(suffix: str) -> LiftFn:
    fmt = sf.F32 if suffix == "s" else sf.F64

    def lift(b: Builder, f: Fields) -> None:
        b.put_x(f.rd, lift_fclass(b, fmt, b.get_reg(F0 + f.rs1)))

    return lift


#: Integer operand kinds of fcvt: (mnemonic part, rs2 field, width in bits, signed).
INTEGER_KINDS = (("w", 0, 32, True), ("wu", 1, 32, False), ("l", 2, 64, True), ("lu", 3, 64, False))


def integer_conversion_rows(suffix: str, fmt: int, helpers: dict[str, str]) -> list[InsnSpec]:
    """fcvt between this precision and w/wu/l/lu, both directions."""
    rows: list[InsnSpec] = []
    for kind, rs2, _bits, _signed in INTEGER_KINDS:
        to_int = f"fcvt.{kind}.{suffix}"
        match = (0x18 << 2 | fmt) << 25 | rs2 << 20 | OP_FP
        lift = lift_call(helpers[to_int], "f", "x", rounded=True, flags=True, match=match)
        rows.append(InsnSpec(to_int, MASK_F7_RS2, match, "R", lift, static_rm_valid))
        from_int = f"fcvt.{suffix}.{kind}"
        match = (0x1A << 2 | fmt) << 25 | rs2 << 20 | OP_FP
        lift = lift_call(helpers[from_int], "x", "f", rounded=True, flags=True, match=match)
        rows.append(InsnSpec(from_int, MASK_F7_RS2, match, "R", lift, static_rm_valid))
    return rows


# -- single-precision helpers -------------------------------------------------------------------

#: RISC-V's choices where IEEE 754 leaves them open: the canonical NaN, saturating conversions, fflags.
FLOAT_POLICY = sf.RISCV
#: RISC-V's NaN results: always the canonical NaN (positive, quiet, zero payload), never a propagated one.
NAN_POLICY = FLOAT_POLICY.nan
#: softfloat's own flag bits are fflags' layout (``test_float_policy_unicorn.py`` checks it), so the
#: helpers return them as they are.
#: RISC-V's fmin/fmax: IEEE 754-2019 minimumNumber/maximumNumber (a number beats any NaN).
MINMAX_NANS = "number_wins"

F32 = sf.F32


def _binary_s(op: Callable[..., tuple[int, int]]) -> Helper:
    def helper(a: int, b: int, rm: int, word: int) -> tuple[int, int]:
        if rm > 4:
            check_dynamic_rm(rm, word)
        value, flags = op(F32, unbox(a), unbox(b), rm, nan=NAN_POLICY)
        return value | BOX, flags

    return helper


def _fsqrt_s(a: int, rm: int, word: int) -> tuple[int, int]:
    if rm > 4:
        check_dynamic_rm(rm, word)
    value, flags = sf.sqrt(F32, unbox(a), rm, nan=NAN_POLICY)
    return value | BOX, flags


def _fused_s(negate_product: bool, negate_addend: bool) -> Helper:
    def helper(a: int, b: int, c: int, rm: int, word: int) -> tuple[int, int]:
        if rm > 4:
            check_dynamic_rm(rm, word)
        value, flags = sf.fma(F32, unbox(a), unbox(b), unbox(c), rm, negate_product, negate_addend, nan=NAN_POLICY)
        return value | BOX, flags

    return helper


def _minmax_s(op: Callable[..., tuple[int, int]]) -> Helper:
    def helper(a: int, b: int) -> tuple[int, int]:
        value, flags = op(F32, unbox(a), unbox(b), nans=MINMAX_NANS, nan=NAN_POLICY)
        return value | BOX, flags

    return helper


def _compare_s(op: Callable[[sf.Format, int, int], tuple[int, int]]) -> Helper:
    def helper(a: int, b: int) -> tuple[int, int]:
        return op(F32, unbox(a), unbox(b))

    return helper


def _fsgnj_s(a: int, b: int) -> int:
    return BOX | (unbox(a) & 0x7FFFFFFF) | (unbox(b) & 0x80000000)


def _fsgnjn_s(a: int, b: int) -> int:
    return BOX | (unbox(a) & 0x7FFFFFFF) | (~unbox(b) & 0x80000000)


def _fsgnjx_s(a: int, b: int) -> int:
    return BOX | (unbox(a) ^ (unbox(b) & 0x80000000))


def float_to_int_helper(fmt: sf.Format, bits: int, signed: bool, boxed: bool) -> Helper:
    """fcvt.{w,wu,l,lu}.{s,d}: the integer result as the 64-bit x-register value (W forms sign-extended)."""
    extend = bits == 32

    def helper(a: int, rm: int, word: int) -> tuple[int, int]:
        if rm > 4:
            check_dynamic_rm(rm, word)
        value, flags = sf.to_int(fmt, unbox(a) if boxed else a, rm, bits, signed, FLOAT_POLICY.conversion)
        if extend and value >> 31:
            value |= BOX
        return value, flags

    return helper


def int_to_float_helper(fmt: sf.Format, bits: int, signed: bool, boxed: bool) -> Helper:
    """fcvt.{s,d}.{w,wu,l,lu}: convert the low ``bits`` of an x register."""
    low = (1 << bits) - 1

    def helper(x: int, rm: int, word: int) -> tuple[int, int]:
        if rm > 4:
            check_dynamic_rm(rm, word)
        value, flags = sf.from_int(fmt, x & low, bits, signed, rm)
        return (value | BOX if boxed else value), flags

    return helper


def _fsgnj_rows_s() -> list[InsnSpec]:
    rows = []
    for stem, funct3, fn in (("fsgnj", 0, _fsgnj_s), ("fsgnjn", 1, _fsgnjn_s), ("fsgnjx", 2, _fsgnjx_s)):
        helper = register(f"riscv.{stem}.s", fn, 1)
        match = (0x04 << 2 | FMT_S) << 25 | funct3 << 12 | OP_FP
        lift = lift_call(helper, "ff", "f", rounded=False, flags=False)
        rows.append(InsnSpec(f"{stem}.s", MASK_F7_F3, match, "R", lift))
    return rows


def _lift_fmv_x_w(b: Builder, f: Fields) -> None:
    b.put_x(f.rd, b.sext(b.trunc(b.get_reg(F0 + f.rs1), 32), 64))


def _lift_fmv_w_x(b: Builder, f: Fields) -> None:
    low = b.zext(b.trunc(b.get_x(f.rs1), 32), 64)
    b.put_reg(F0 + f.rd, b.binop("or", low, b.const(BOX)))


def _single_helpers() -> dict[str, str]:
    fns: dict[str, tuple[Helper, int]] = {
        "fadd": (_binary_s(sf.add), 2),
        "fsub": (_binary_s(sf.sub), 2),
        "fmul": (_binary_s(sf.mul), 2),
        "fdiv": (_binary_s(sf.div), 2),
        "fsqrt": (_fsqrt_s, 2),
        "fmadd": (_fused_s(False, False), 2),
        "fmsub": (_fused_s(False, True), 2),
        "fnmsub": (_fused_s(True, False), 2),
        "fnmadd": (_fused_s(True, True), 2),
        "fmin": (_minmax_s(sf.min), 2),
        "fmax": (_minmax_s(sf.max), 2),
        "feq": (_compare_s(sf.eq), 2),
        "flt": (_compare_s(sf.lt), 2),
        "fle": (_compare_s(sf.le), 2),
    }
    names = {stem: register(f"riscv.{stem}.s", fn, results) for stem, (fn, results) in fns.items()}
    for kind, _rs2, bits, signed in INTEGER_KINDS:
        to_int = f"fcvt.{kind}.s"
        names[to_int] = register(f"riscv.{to_int}", float_to_int_helper(F32, bits, signed, True), 2)
        from_int = f"fcvt.s.{kind}"
        names[from_int] = register(f"riscv.{from_int}", int_to_float_helper(F32, bits, signed, True), 2)
    return names


_HELPERS_S = _single_helpers()

INSTRUCTIONS: list[InsnSpec] = [
    *load_store_rows("w", 2, 4, boxed=True),
    *arithmetic_rows("s", FMT_S, _HELPERS_S),
    *_fsgnj_rows_s(),
    *compare_rows("s", FMT_S, _HELPERS_S),
    *integer_conversion_rows("s", FMT_S, _HELPERS_S),
    InsnSpec("fmv.x.w", MASK_F7_RS2_F3, (0x1C << 2 | FMT_S) << 25 | OP_FP, "R", _lift_fmv_x_w),
    InsnSpec("fmv.w.x", MASK_F7_RS2_F3, (0x1E << 2 | FMT_S) << 25 | OP_FP, "R", _lift_fmv_w_x),
]
