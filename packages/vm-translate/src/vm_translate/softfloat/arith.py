"""Correctly rounded add, sub, mul, div, sqrt and fused multiply-add on raw bit patterns.

Each public function first tries the host-float fast path
(:mod:`vm_translate.softfloat.hostfloat`, round-to-nearest-even only), then
validates its arguments and takes the exact path (``exact_add``,
``exact_mul``, ...): the exact result computed with Python integers, rounded
once through :func:`~vm_translate.softfloat.rounding.round_pack`.
A NaN result is the one the ``nan`` policy chooses
(:mod:`vm_translate.softfloat.nan`; the default NaN unless the caller passes
its ISA's policy), a signalling NaN operand raises NV, and the invalid cases (inf - inf, 0 * inf,
0 / 0, inf / inf, sqrt of a negative number) raise NV. All functions return
``(result_bits, fflags)``.
"""

from __future__ import annotations

from math import isqrt

from vm_translate.softfloat.formats import (
    DZ,
    F32,
    F64,
    NV,
    RDN,
    RNE,
    ROUNDING_MODES,
    Format,
    check_operand,
    check_rm,
)
from vm_translate.softfloat.hostfloat import add32, add64, div32, div64, mul32, mul64, sqrt32, sqrt64
from vm_translate.softfloat.nan import DEFAULT_NAN, NanPolicy, is_nan
from vm_translate.softfloat.rounding import round_pack, unpack

_F64_SIGN = F64.sign_bit
_F32_SIGN = F32.sign_bit


def _check(fmt: Format, rm: int, *operands: int) -> None:
    if rm not in ROUNDING_MODES:
        check_rm(rm)
    for value in operands:
        check_operand(fmt, value)


def _nan_flags(fmt: Format, *operands: int) -> int:
    """NV when any operand is a signalling NaN, else 0."""
    for value in operands:
        if (value & fmt.abs_mask) > fmt.infinity and not value & fmt.quiet_bit:
            return NV
    return 0


def _zero_sum_sign(sign_a: int, sign_b: int, rm: int) -> int:
    """Sign of an exact zero sum: the common sign, else -0 only when rounding down."""
    if sign_a == sign_b:
        return sign_a
    return 1 if rm == RDN else 0


def add(fmt: Format, a: int, b: int, rm: int, nan: NanPolicy = DEFAULT_NAN) -> tuple[int, int]:
    """``a + b`` rounded once under ``rm``."""
    if rm == RNE:
        fast = add64(a, b) if fmt is F64 else add32(a, b) if fmt is F32 else None
        if fast is not None:
            return fast
    _check(fmt, rm, a, b)
    return exact_add(fmt, a, b, rm, nan)


def sub(fmt: Format, a: int, b: int, rm: int, nan: NanPolicy = DEFAULT_NAN) -> tuple[int, int]:
    """``a - b`` rounded once under ``rm``."""
    if rm == RNE:
        fast = add64(a, b ^ _F64_SIGN) if fmt is F64 else add32(a, b ^ _F32_SIGN) if fmt is F32 else None
        if fast is not None:
            return fast
    _check(fmt, rm, a, b)
    if is_nan(fmt, a) or is_nan(fmt, b):  # before negating b: a propagated NaN keeps its sign
        return nan.result(fmt, a, b), _nan_flags(fmt, a, b)
    return exact_add(fmt, a, b ^ fmt.sign_bit, rm, nan)


def exact_add(fmt: Format, a: int, b: int, rm: int, nan: NanPolicy = DEFAULT_NAN) -> tuple[int, int]:
    """The exact integer path of :func:`add` (no host floats); arguments must be valid."""
    inf = fmt.infinity
    abs_a = a & fmt.abs_mask
    abs_b = b & fmt.abs_mask
    sign_a = a >> (fmt.width - 1)
    sign_b = b >> (fmt.width - 1)
    if abs_a >= inf or abs_b >= inf:
        if abs_a > inf or abs_b > inf:
            return nan.result(fmt, a, b), _nan_flags(fmt, a, b)
        if abs_a == inf and abs_b == inf and sign_a != sign_b:
            return nan.default(fmt), NV
        return (a, 0) if abs_a == inf else (b, 0)
    if not abs_b:
        if not abs_a:
            return (fmt.sign_bit if _zero_sum_sign(sign_a, sign_b, rm) else 0), 0
        return a, 0
    if not abs_a:
        return b, 0
    sig_a, exp_a = unpack(fmt, a)
    sig_b, exp_b = unpack(fmt, b)
    if exp_a > exp_b:
        sig_a <<= exp_a - exp_b
        exp_a = exp_b
    else:
        sig_b <<= exp_b - exp_a
    total = (sig_b if not sign_b else -sig_b) + (sig_a if not sign_a else -sig_a)
    if not total:
        return (fmt.sign_bit if rm == RDN else 0), 0
    if total < 0:
        return round_pack(fmt, 1, -total, exp_a, rm)
    return round_pack(fmt, 0, total, exp_a, rm)


def mul(fmt: Format, a: int, b: int, rm: int, nan: NanPolicy = DEFAULT_NAN) -> tuple[int, int]:
    """``a * b`` rounded once under ``rm``."""
    if rm == RNE:
        fast = mul64(a, b) if fmt is F64 else mul32(a, b) if fmt is F32 else None
        if fast is not None:
            return fast
    _check(fmt, rm, a, b)
    return exact_mul(fmt, a, b, rm, nan)


def exact_mul(fmt: Format, a: int, b: int, rm: int, nan: NanPolicy = DEFAULT_NAN) -> tuple[int, int]:
    """The exact integer path of :func:`mul` (no host floats); arguments must be valid."""
    inf = fmt.infinity
    abs_a = a & fmt.abs_mask
    abs_b = b & fmt.abs_mask
    sign = (a ^ b) >> (fmt.width - 1)
    sign_bits = fmt.sign_bit if sign else 0
    if abs_a >= inf or abs_b >= inf:
        if abs_a > inf or abs_b > inf:
            return nan.result(fmt, a, b), _nan_flags(fmt, a, b)
        if not abs_a or not abs_b:
            return nan.default(fmt), NV
        return sign_bits | inf, 0
    if not abs_a or not abs_b:
        return sign_bits, 0
    sig_a, exp_a = unpack(fmt, a)
    sig_b, exp_b = unpack(fmt, b)
    return round_pack(fmt, sign, sig_a * sig_b, exp_a + exp_b, rm)


def div(fmt: Format, a: int, b: int, rm: int, nan: NanPolicy = DEFAULT_NAN) -> tuple[int, int]:
    """``a / b`` rounded once under ``rm``; a finite nonzero ``a`` over zero raises DZ."""
    if rm == RNE:
        fast = div64(a, b) if fmt is F64 else div32(a, b) if fmt is F32 else None
        if fast is not None:
            return fast
    _check(fmt, rm, a, b)
    return exact_div(fmt, a, b, rm, nan)


def exact_div(fmt: Format, a: int, b: int, rm: int, nan: NanPolicy = DEFAULT_NAN) -> tuple[int, int]:
    """The exact integer path of :func:`div` (no host floats); arguments must be valid."""
    inf = fmt.infinity
    abs_a = a & fmt.abs_mask
    abs_b = b & fmt.abs_mask
    sign = (a ^ b) >> (fmt.width - 1)
    sign_bits = fmt.sign_bit if sign else 0
    if abs_a > inf or abs_b > inf:
        return nan.result(fmt, a, b), _nan_flags(fmt, a, b)
    if abs_a == inf:
        if abs_b == inf:
            return nan.default(fmt), NV
        return sign_bits | inf, 0
    if abs_b == inf:
        return sign_bits, 0
    if not abs_b:
        if not abs_a:
            return nan.default(fmt), NV
        return sign_bits | inf, DZ
    if not abs_a:
        return sign_bits, 0
    sig_a, exp_a = unpack(fmt, a)
    sig_b, exp_b = unpack(fmt, b)
    # Scale the dividend so the quotient has at least precision + 2 bits, then append a sticky bit.
    k = fmt.precision + 2 + sig_b.bit_length() - sig_a.bit_length()
    if k < 0:
        k = 0
    quotient, remainder = divmod(sig_a << k, sig_b)
    sig = (quotient << 1) | (1 if remainder else 0)
    return round_pack(fmt, sign, sig, exp_a - exp_b - k - 1, rm)


def sqrt(fmt: Format, a: int, rm: int, nan: NanPolicy = DEFAULT_NAN) -> tuple[int, int]:
    """Square root of ``a`` rounded once under ``rm``; sqrt(-0) is -0, any other negative is invalid."""
    if rm == RNE:
        fast = sqrt64(a) if fmt is F64 else sqrt32(a) if fmt is F32 else None
        if fast is not None:
            return fast
    _check(fmt, rm, a)
    return exact_sqrt(fmt, a, rm, nan)


def exact_sqrt(fmt: Format, a: int, rm: int, nan: NanPolicy = DEFAULT_NAN) -> tuple[int, int]:
    """The exact integer path of :func:`sqrt` (no host floats); arguments must be valid."""
    abs_a = a & fmt.abs_mask
    if abs_a > fmt.infinity:
        return nan.result(fmt, a), _nan_flags(fmt, a)
    if not abs_a:
        return a, 0
    if a & fmt.sign_bit:
        return nan.default(fmt), NV
    if abs_a == fmt.infinity:
        return a, 0
    sig, exp = unpack(fmt, a)
    # Widen to at least 2 * precision + 4 bits with an even exponent: the root then has precision + 2 bits.
    shift = 2 * fmt.precision + 4 - sig.bit_length()
    if shift < 0:
        shift = 0
    shift += (exp - shift) & 1
    radicand = sig << shift
    root = isqrt(radicand)
    sticky = 1 if root * root != radicand else 0
    return round_pack(fmt, 0, (root << 1) | sticky, ((exp - shift) >> 1) - 1, rm)


def fma(
    fmt: Format,
    a: int,
    b: int,
    c: int,
    rm: int,
    negate_product: bool = False,
    negate_addend: bool = False,
    nan: NanPolicy = DEFAULT_NAN,
) -> tuple[int, int]:
    """``(±a*b) ± c`` with a single rounding.

    RISC-V mapping: fmadd = fma(a, b, c); fmsub = fma(..., negate_addend=True);
    fnmsub = fma(..., negate_product=True); fnmadd = fma(..., negate_product=True,
    negate_addend=True). inf * 0 raises NV even when ``c`` is a quiet NaN.
    """
    _check(fmt, rm, a, b, c)
    inf = fmt.infinity
    abs_a = a & fmt.abs_mask
    abs_b = b & fmt.abs_mask
    abs_c = c & fmt.abs_mask
    top = fmt.width - 1
    sign_p = ((a ^ b) >> top) ^ (1 if negate_product else 0)
    sign_c = (c >> top) ^ (1 if negate_addend else 0)
    if abs_a >= inf or abs_b >= inf or abs_c >= inf:
        invalid_product = (abs_a == inf and not abs_b) or (abs_b == inf and not abs_a)
        if abs_a > inf or abs_b > inf or abs_c > inf:
            flags = _nan_flags(fmt, a, b, c) | (NV if invalid_product else 0)
            return nan.result(fmt, a, b, c), flags
        if invalid_product:
            return nan.default(fmt), NV
        if abs_a == inf or abs_b == inf:
            if abs_c == inf and sign_c != sign_p:
                return nan.default(fmt), NV
            return (fmt.sign_bit if sign_p else 0) | inf, 0
        return (fmt.sign_bit if sign_c else 0) | inf, 0
    if not abs_a or not abs_b:
        if not abs_c:
            return (fmt.sign_bit if _zero_sum_sign(sign_p, sign_c, rm) else 0), 0
        return (fmt.sign_bit if sign_c else 0) | abs_c, 0
    sig_a, exp_a = unpack(fmt, a)
    sig_b, exp_b = unpack(fmt, b)
    sig_p = sig_a * sig_b
    exp_p = exp_a + exp_b
    if not abs_c:
        return round_pack(fmt, sign_p, sig_p, exp_p, rm)
    sig_c, exp_c = unpack(fmt, c)
    if exp_p > exp_c:
        sig_p <<= exp_p - exp_c
        exp_p = exp_c
    else:
        sig_c <<= exp_c - exp_p
    total = (-sig_p if sign_p else sig_p) + (-sig_c if sign_c else sig_c)
    if not total:
        return (fmt.sign_bit if rm == RDN else 0), 0
    if total < 0:
        return round_pack(fmt, 1, -total, exp_p, rm)
    return round_pack(fmt, 0, total, exp_p, rm)
