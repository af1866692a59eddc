"""Tier 2 floating point: the ``float`` helper lowering as host SSE arithmetic with exact flags.

A helper declares ``NativeLowering("float", op, policy)`` with ``op`` one of
:data:`FLOAT_OPS` and ``policy`` its front end's
:class:`~vm_translate.softfloat.policy.FloatPolicy`: a pure softfloat helper
returning ``(value, flags)`` with the conventions below. The operations, on
``f32`` or ``f64``: ``add sub mul div sqrt``; ``fma`` (``a * b + c``, one
rounding) and ``fma_negate_addend``, ``fma_negate_product``,
``fma_negate_both``; ``minimum_number``/``maximum_number`` (IEEE 754-2019);
``eq_quiet``, ``lt``, ``le`` (0 or 1; ``lt``/``le`` signal on any NaN);
``to_i32 to_u32 to_i64 to_u64`` and ``from_i32 ...`` (integer conversions);
``copysign``, ``copysign_negated``, ``xorsign`` (``f32``);
``convert.f64.f32`` and ``convert.f32.f64`` (source, then result format).
Operands are 64-bit register values, then (rounded operations) the
softfloat rounding mode and an instruction word; ``f32`` values travel
NaN-boxed (the upper 32 bits all ones, anything else reads as the default
quiet NaN) and 32-bit integer results sign-extended to 64 bits, the
register conventions of the one front end that declares these lowerings
(RISC-V's; another front end's helpers adapt their operands or declare
none). Native code computes the same pair with the host's own IEEE 754
arithmetic:

- the rounding mode (static, or ``frm`` for DYN) goes into the x86 MXCSR
  rounding-control field with every exception flag cleared and every
  exception masked; the operation runs as an LLVM *constrained* intrinsic
  (``fpexcept.strict``, ``round.dynamic``, in a ``strictfp`` function, so
  LLVM neither folds nor moves it across the MXCSR accesses); MXCSR's sticky
  flags IE, ZE, OE and PE then give the policy's invalid, divide-by-zero,
  overflow and inexact bits (:class:`~vm_translate.softfloat.policy.FlagLayout`);
- a NaN result becomes the policy's default NaN (x86 returns its own
  default NaN or an operand's payload instead): only policies whose NaN
  results are always the default NaN (``NanPolicy("none")``) are lowered,
  helpers with a propagating one keep their blocks in tier 1;
  single-precision operands are unboxed (binary32 NaN-boxed in 64-bit
  registers) and results NaN-boxed exactly as the softfloat helpers do;
- what the host does not do as softfloat does leaves native code for the
  instruction's checked slow path (the softfloat helper, see
  :mod:`.llvm_ir`'s ``SLOW``): RMM and the reserved rounding modes, an
  inexact result no larger than the smallest normal number (where the
  underflow flag depends on how tininess is detected, and a result rounded
  up to the smallest normal may still be tiny), NaN operands of
  comparisons, min/max and float-to-integer conversions, a NaN result of a
  fused multiply-add (softfloat raises NV for 0 * inf + qNaN, x86 does not),
  and integer conversions out of range (so any policy's invalid results).

Comparisons, min/max and single-precision sign injection are
integer operations on the register bits. The region function saves MXCSR on
entry and restores it on every exit, so Python's own floating point never
sees a changed rounding mode. This lowering is for x86-64 hosts only
(:data:`HOST_HAS_MXCSR`); elsewhere blocks with F/D helpers stay in tier 1.
"""

from __future__ import annotations

import platform
import struct
from typing import Protocol

import attrs
from vm_translate import ir
from vm_translate import softfloat as sf
from vm_translate.helpers import NativeLowering
from vm_translate.ir import to_signed
from vm_translate.softfloat.policy import FlagLayout

#: Whether the host is x86-64, whose MXCSR this lowering reads and writes.
HOST_HAS_MXCSR = platform.machine().lower() in ("x86_64", "amd64")

#: MXCSR with every exception masked, no flags, round to nearest; the rounding control is bits 13-14.
_MXCSR_BASE = 0x1F80
#: softfloat's rm 0..3 (RNE, RTZ, RDN, RUP) as MXCSR rounding control (nearest 0, down 1, up 2, zero 3),
#: one nibble per rm.
_RC_NIBBLES = 0x2130
_RC_OF_RM = (0, 3, 1, 2)
_BOX = 0xFFFFFFFF_00000000
ATTRIBUTES = "attributes #0 = { strictfp }\n"


@attrs.frozen
class _Format:
    bits: int
    llvm: str  # "float" or "double"
    suffix: str  # intrinsic type suffix
    exp: int  # the exponent field, all ones
    canonical_nan: int
    min_normal: int
    quiet: int  # the quiet bit of a NaN


#: softfloat's formats by width (for the policy's default NaN).
_SOFT_FORMATS = {32: sf.F32, 64: sf.F64}
_F32 = _Format(32, "float", "f32", 0x7F800000, 0x7FC00000, 0x00800000, 0x00400000)
_F64 = _Format(64, "double", "f64", 0x7FF00000_00000000, 0x7FF80000_00000000, 0x00100000_00000000, 1 << 51)
_FORMATS = {"s": _F32, "d": _F64}


@attrs.frozen
class FloatOp:
    """How one helper is lowered: its ``kind`` and the parameters that kind needs."""

    kind: str  # arith, sqrt, fma, minmax, compare, sign, to_int, from_int, convert
    fmt: _Format  # the operand format (the result format for from_int and convert)
    op: str = ""
    bits: int = 0  # integer width of a conversion
    signed: bool = False
    negate_product: bool = False
    negate_addend: bool = False
    source: _Format | None = None  # convert: the operand format


def _helpers() -> dict[str, FloatOp]:
    """The operations by their ISA-neutral names (``<operation>.<f32|f64>``, see the module docstring)."""
    table: dict[str, FloatOp] = {}
    for fmt in (_F32, _F64):
        f = fmt.suffix
        for stem in ("add", "sub", "mul", "div"):
            table[f"{stem}.{f}"] = FloatOp("arith", fmt, f"f{stem}")
        table[f"sqrt.{f}"] = FloatOp("sqrt", fmt)
        for stem, product, addend in (("fma", False, False), ("fma_negate_addend", False, True),
                                      ("fma_negate_product", True, False), ("fma_negate_both", True, True)):  # fmt: skip
            table[f"{stem}.{f}"] = FloatOp("fma", fmt, negate_product=product, negate_addend=addend)
        table[f"minimum_number.{f}"] = FloatOp("minmax", fmt, "min")
        table[f"maximum_number.{f}"] = FloatOp("minmax", fmt, "max")
        for stem, op in (("eq_quiet", "eq"), ("lt", "lt"), ("le", "le")):
            table[f"{stem}.{f}"] = FloatOp("compare", fmt, op)
        for kind, bits, signed in (("i32", 32, True), ("u32", 32, False), ("i64", 64, True), ("u64", 64, False)):
            table[f"to_{kind}.{f}"] = FloatOp("to_int", fmt, bits=bits, signed=signed)
            table[f"from_{kind}.{f}"] = FloatOp("from_int", fmt, bits=bits, signed=signed)
    for stem, op in (("copysign", "fsgnj"), ("copysign_negated", "fsgnjn"), ("xorsign", "fsgnjx")):
        table[f"{stem}.f32"] = FloatOp("sign", _F32, op)
    table["convert.f64.f32"] = FloatOp("convert", _F32, source=_F64)
    table["convert.f32.f64"] = FloatOp("convert", _F64, source=_F32)
    return table


#: Every operation this module lowers, by the ``op`` of its ``float`` lowering.
FLOAT_OPS: dict[str, FloatOp] = _helpers() if HOST_HAS_MXCSR else {}
_ROUNDED = frozenset({"arith", "sqrt", "fma", "to_int", "from_int", "convert"})


def float_call_supported(stmt: ir.Call, lowering: NativeLowering) -> bool:
    """Whether ``stmt`` (a helper of ``float`` ``lowering``) is lowered here, with a rounding mode the host has."""
    spec = FLOAT_OPS.get(lowering.op)
    if spec is None or lowering.policy is None or lowering.policy.nan.propagate != "none":
        return False
    if spec.kind in _ROUNDED:
        rm = stmt.args[-2]
        return not isinstance(rm, ir.Const) or rm.value < 4
    return True


def _literal(value: float) -> str:
    """An LLVM floating-point literal (LLVM writes float constants as doubles, too)."""
    bits = struct.unpack("<Q", struct.pack("<d", value))[0]
    return f"0x{bits:016X}"


def _signed(value: int, width: int) -> str:
    """``value`` as an LLVM integer literal of ``width`` bits."""
    return str(to_signed(value, width))


class Emitter(Protocol):
    """What this lowering needs from the region emitter (:class:`.llvm_ir._RegionEmitter`)."""

    def tmp(self) -> str: ...
    def emit(self, line: str) -> None: ...
    def op(self, o: ir.Operand) -> str: ...
    def resize(self, value: str, frm: int, to: int, signed: bool = False) -> str: ...
    def bind(self, dst: ir.Temp, value: str) -> None: ...
    def check(self, bad: str, slow: str) -> None: ...


class FloatLowering:
    """Emits the floating-point helper calls of one region (see the module docstring)."""

    def __init__(self, e: Emitter) -> None:
        self.e = e
        self.used = False
        self.declarations: set[str] = set()
        #: The default NaN of the policy of the call being emitted, by format width.
        self.default_nan: dict[int, int] = {}

    # -- plumbing -----------------------------------------------------------------------
    def _t(self, line: str) -> str:
        out = self.e.tmp()
        self.e.emit(f"{out} = {line}")
        return out

    def _intrinsic(self, ret: str, name: str, args: list[str], rounded: bool = True) -> str:
        params = ", ".join(arg.rsplit(" ", 1)[0] for arg in args)
        extra = ", metadata" * (2 if rounded else 1)
        self.declarations.add(f"declare {ret} @llvm.experimental.constrained.{name}({params}{extra})")
        meta = ['metadata !"round.dynamic"'] if rounded else []
        call_args = ", ".join([*args, *meta, 'metadata !"fpexcept.strict"'])
        return self._t(f"call {ret} @llvm.experimental.constrained.{name}({call_args}) #0")

    def _bits(self, o: ir.Operand, fmt: _Format) -> str:
        """The ``fmt`` bits of an f-register operand (single precision unboxed: canonical NaN unless boxed)."""
        value = self.e.resize(self.e.op(o), o.width, 64)
        if fmt.bits == 64:
            return value
        boxed = self._t(f"icmp uge i64 {value}, {_signed(_BOX, 64)}")
        low = self._t(f"trunc i64 {value} to i32")
        return self._t(f"select i1 {boxed}, i32 {low}, i32 {fmt.canonical_nan}")

    def _float(self, bits: str, fmt: _Format) -> str:
        return self._t(f"bitcast i{fmt.bits} {bits} to {fmt.llvm}")

    def _magnitude(self, bits: str, fmt: _Format) -> str:
        """``bits`` without the sign bit."""
        return self._t(f"and i{fmt.bits} {bits}, {_signed((1 << (fmt.bits - 1)) - 1, fmt.bits)}")

    def _is_nan(self, bits: str, fmt: _Format) -> str:
        magnitude = self._magnitude(bits, fmt)
        return self._t(f"icmp ugt i{fmt.bits} {magnitude}, {_signed(fmt.exp, fmt.bits)}")

    def _register(self, bits: str, fmt: _Format) -> str:
        """The 64-bit f-register value holding ``bits`` (single precision NaN-boxed)."""
        if fmt.bits == 64:
            return bits
        wide = self._t(f"zext i32 {bits} to i64")
        return self._t(f"or i64 {wide}, {_signed(_BOX, 64)}")

    def _slow_if_nan(self, bits: list[str], fmt: _Format, slow: str) -> None:
        nans = [self._is_nan(b, fmt) for b in bits]
        either = nans[0] if len(nans) == 1 else self._t(f"or i1 {nans[0]}, {nans[1]}")
        self.e.check(either, slow)

    def _begin(self, rm: ir.Operand, slow: str) -> None:
        """Load MXCSR with the rounding mode ``rm`` and no flags (RMM and reserved modes: go slow)."""
        if isinstance(rm, ir.Const):
            mxcsr = str(_MXCSR_BASE | _RC_OF_RM[rm.value] << 13)
        else:
            mode = self.e.resize(self.e.op(rm), rm.width, 64)
            self.e.check(self._t(f"icmp ugt i64 {mode}, 3"), slow)
            shift = self._t(f"shl i64 {mode}, 2")
            nibble = self._t(f"lshr i64 {_RC_NIBBLES}, {shift}")
            control = self._t(f"and i64 {nibble}, 3")
            placed = self._t(f"shl i64 {control}, 13")
            wide = self._t(f"or i64 {placed}, {_MXCSR_BASE}")
            mxcsr = self._t(f"trunc i64 {wide} to i32")
        self.e.emit(f"store i32 {mxcsr}, ptr %fp.mx")
        self.e.emit("call void @llvm.x86.sse.ldmxcsr(ptr %fp.mx) #0")

    def _end(self, layout: FlagLayout) -> tuple[str, str]:
        """Read MXCSR's flags: (the flags in ``layout`` as i64, the inexact flag as i1)."""
        self.e.emit("call void @llvm.x86.sse.stmxcsr(ptr %fp.mx) #0")
        m32 = self._t("load i32, ptr %fp.mx")
        m = self._t(f"zext i32 {m32} to i64")
        # IE (bit 0), ZE (bit 2), OE (bit 3), PE (bit 5); UE never reaches here (tiny results go slow)
        moved = [self._move_bit(m, 1 << bit, target) for bit, target in
                 ((0, layout.invalid), (2, layout.divide_by_zero), (3, layout.overflow), (5, layout.inexact))]  # fmt: skip
        flags = self._t(f"or i64 {self._t(f'or i64 {moved[0]}, {moved[1]}')}, {self._t(f'or i64 {moved[2]}, {moved[3]}')}")
        return flags, self._t(f"icmp ne i64 {self._t(f'and i64 {m}, 32')}, 0")

    def _move_bit(self, value: str, source: int, target: int) -> str:
        """The bit ``source`` (a one-bit mask) of ``value`` moved to the one-bit mask ``target``."""
        isolated = self._t(f"and i64 {value}, {source}")
        if target == source:
            return isolated
        if target > source:
            return self._t(f"shl i64 {isolated}, {target.bit_length() - source.bit_length()}")
        return self._t(f"lshr i64 {isolated}, {source.bit_length() - target.bit_length()}")

    def _result(self, value: str, fmt: _Format, inexact: str, slow: str, nan_is_slow: bool = False) -> str:
        """The register value of a rounded result (the policy's default NaN); a tiny inexact result goes slow."""
        bits = self._t(f"bitcast {fmt.llvm} {value} to i{fmt.bits}")
        magnitude = self._magnitude(bits, fmt)
        tiny = self._t(f"icmp ule i{fmt.bits} {magnitude}, {_signed(fmt.min_normal, fmt.bits)}")
        self.e.check(self._t(f"and i1 {tiny}, {inexact}"), slow)
        nan = self._t(f"icmp ugt i{fmt.bits} {magnitude}, {_signed(fmt.exp, fmt.bits)}")
        if nan_is_slow:
            self.e.check(nan, slow)
        default = self.default_nan[fmt.bits]
        canonical = self._t(f"select i1 {nan}, i{fmt.bits} {_signed(default, fmt.bits)}, i{fmt.bits} {bits}")
        return self._register(canonical, fmt)

    def _order_key(self, bits: str, fmt: _Format) -> str:
        """A signed integer ordering non-NaN values as their floating-point values (-0 equals +0)."""
        w = fmt.bits
        magnitude = self._magnitude(bits, fmt)
        negative = self._t(f"icmp slt i{w} {bits}, 0")
        negated = self._t(f"sub i{w} 0, {magnitude}")
        return self._t(f"select i1 {negative}, i{w} {negated}, i{w} {magnitude}")

    # -- the helpers ------------------------------------------------------------------------
    def call(self, s: ir.Call, lowering: NativeLowering, slow: str) -> None:
        """Emit ``s`` (a helper of ``float`` ``lowering``, whose op is in :data:`FLOAT_OPS`); bind its destinations."""
        spec = FLOAT_OPS[lowering.op]
        policy = lowering.policy
        assert policy is not None
        self.default_nan = {32: policy.nan.default(_SOFT_FORMATS[32]), 64: policy.nan.default(_SOFT_FORMATS[64])}
        layout = policy.flags
        self.used = True
        fmt = spec.fmt
        flags = "0"
        if spec.kind in ("arith", "sqrt", "fma"):
            count = {"arith": 2, "sqrt": 1, "fma": 3}[spec.kind]
            bits = [self._bits(a, fmt) for a in s.args[:count]]
            if spec.negate_product:
                bits[0] = self._t(f"xor i{fmt.bits} {bits[0]}, {_signed(1 << (fmt.bits - 1), fmt.bits)}")
            if spec.negate_addend:
                bits[2] = self._t(f"xor i{fmt.bits} {bits[2]}, {_signed(1 << (fmt.bits - 1), fmt.bits)}")
            values = [f"{fmt.llvm} {self._float(b, fmt)}" for b in bits]
            self._begin(s.args[count], slow)
            name = {"arith": spec.op, "sqrt": "sqrt", "fma": "fma"}[spec.kind]
            result = self._intrinsic(fmt.llvm, f"{name}.{fmt.suffix}", values)
            flags, inexact = self._end(layout)
            # RISC-V raises NV for 0 * inf + qNaN, x86 does not: a NaN result of a fused op goes slow
            value = self._result(result, fmt, inexact, slow, nan_is_slow=spec.kind == "fma")
        elif spec.kind == "convert":
            assert spec.source is not None
            source = spec.source
            operand = f"{source.llvm} {self._float(self._bits(s.args[0], source), source)}"
            self._begin(s.args[1], slow)
            if source.bits > fmt.bits:
                result = self._intrinsic(fmt.llvm, f"fptrunc.{fmt.suffix}.{source.suffix}", [operand])
            else:
                result = self._intrinsic(fmt.llvm, f"fpext.{fmt.suffix}.{source.suffix}", [operand], rounded=False)
            flags, inexact = self._end(layout)
            value = self._result(result, fmt, inexact, slow)
        elif spec.kind == "from_int":
            x = self.e.resize(self.e.op(s.args[0]), s.args[0].width, 64)
            x = self.e.resize(x, 64, spec.bits)
            self._begin(s.args[1], slow)
            name = f"{'si' if spec.signed else 'ui'}tofp.{fmt.suffix}.i{spec.bits}"
            result = self._intrinsic(fmt.llvm, name, [f"i{spec.bits} {x}"])
            flags, inexact = self._end(layout)
            value = self._result(result, fmt, inexact, slow)
        elif spec.kind == "to_int":
            value, flags = self._to_int(s, spec, slow, layout)
        else:
            value = self._integer_op(s, spec, slow)
        self.e.bind(s.dsts[0], self.e.resize(value, 64, s.dsts[0].width))
        if len(s.dsts) > 1:
            self.e.bind(s.dsts[1], self.e.resize(flags, 64, s.dsts[1].width))

    def _to_int(self, s: ir.Call, spec: FloatOp, slow: str, layout: FlagLayout) -> tuple[str, str]:
        """fcvt.{w,wu,l,lu}: round to an integral value, check the range, convert exactly."""
        fmt = spec.fmt
        bits = self._bits(s.args[0], fmt)
        self._slow_if_nan([bits], fmt, slow)
        operand = f"{fmt.llvm} {self._float(bits, fmt)}"
        self._begin(s.args[1], slow)
        rounded = self._intrinsic(fmt.llvm, f"rint.{fmt.suffix}", [operand])
        flags, _ = self._end(layout)
        low, high = (-(2.0 ** (spec.bits - 1)), 2.0 ** (spec.bits - 1)) if spec.signed else (-1.0, 2.0**spec.bits)
        low_cmp = "oge" if spec.signed else "ogt"
        fits_low = self._compare(rounded, fmt, low_cmp, _literal(low))
        fits_high = self._compare(rounded, fmt, "olt", _literal(high))
        fits = self._t(f"and i1 {fits_low}, {fits_high}")
        self.e.check(self._t(f"xor i1 {fits}, true"), slow)
        conversion = f"{'fptosi' if spec.signed else 'fptoui'}.i64.{fmt.suffix}"
        value = self._intrinsic("i64", conversion, [f"{fmt.llvm} {rounded}"], rounded=False)
        if spec.bits == 32:  # W forms: the 32-bit result sign-extended to 64 bits
            value = self.e.resize(self.e.resize(value, 64, 32), 32, 64, signed=True)
        return value, flags

    def _compare(self, value: str, fmt: _Format, predicate: str, literal: str) -> str:
        name = f"fcmp.{fmt.suffix}"
        self.declarations.add(f"declare i1 @llvm.experimental.constrained.{name}({fmt.llvm}, {fmt.llvm}, metadata, metadata)")
        return self._t(
            f"call i1 @llvm.experimental.constrained.{name}({fmt.llvm} {value}, {fmt.llvm} {literal}, "
            f'metadata !"{predicate}", metadata !"fpexcept.strict") #0'
        )

    def _integer_op(self, s: ir.Call, spec: FloatOp, slow: str) -> str:
        """The helpers that are bit manipulation: compare, min/max, single sign injection."""
        fmt = spec.fmt
        w = fmt.bits
        sign = _signed(1 << (w - 1), w)
        a, b = self._bits(s.args[0], fmt), self._bits(s.args[1], fmt)
        if spec.kind == "sign":
            magnitude = self._magnitude(a, fmt)
            source = self._t(f"xor i{w} {b}, -1") if spec.op == "fsgnjn" else b
            sign_bit = self._t(f"and i{w} {source}, {sign}")
            combined = self._t(f"xor i{w} {a}, {sign_bit}") if spec.op == "fsgnjx" else self._t(f"or i{w} {magnitude}, {sign_bit}")
            return self._register(combined, fmt)
        self._slow_if_nan([a, b], fmt, slow)  # NaN operands: flags and results as the slow path says
        ka, kb = self._order_key(a, fmt), self._order_key(b, fmt)
        if spec.kind == "compare":
            predicate = {"eq": "eq", "lt": "slt", "le": "sle"}[spec.op]
            return self._t(f"zext i1 {self._t(f'icmp {predicate} i{w} {ka}, {kb}')} to i64")
        a_first = self._t(f"icmp slt i{w} {ka}, {kb}")
        b_first = self._t(f"icmp slt i{w} {kb}, {ka}")
        if spec.op == "max":
            a_first, b_first = b_first, a_first
        tie = self._t(f"{'or' if spec.op == 'min' else 'and'} i{w} {a}, {b}")  # -0 vs +0: min -0, max +0
        pick = self._t(f"select i1 {b_first}, i{w} {b}, i{w} {tie}")
        return self._register(self._t(f"select i1 {a_first}, i{w} {a}, i{w} {pick}"), fmt)

    # -- the region function's prologue and epilogue -------------------------------------------
    def prologue(self) -> list[str]:
        """Entry lines: the MXCSR scratch slot and the caller's MXCSR, saved."""
        return ["  %fp.mx = alloca i32", "  %fp.saved = alloca i32", "  call void @llvm.x86.sse.stmxcsr(ptr %fp.saved) #0"]

    def epilogue(self) -> list[str]:
        """Exit lines: the caller's MXCSR restored."""
        return ["  call void @llvm.x86.sse.ldmxcsr(ptr %fp.saved) #0"]

    def module_tail(self) -> str:
        """Declarations and attributes the module needs."""
        lines = sorted(self.declarations)
        lines += ["declare void @llvm.x86.sse.ldmxcsr(ptr)", "declare void @llvm.x86.sse.stmxcsr(ptr)"]
        return "\n".join(lines) + "\n" + ATTRIBUTES
