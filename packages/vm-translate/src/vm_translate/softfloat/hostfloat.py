"""Fast paths through host floats for round-to-nearest-even on normal operands.

CPython floats are IEEE binary64 with round-to-nearest-even, so for normal
operands the host result is the correctly rounded binary64 result whenever it
is finite and (for mul/div) strictly above the smallest normal magnitude, where
tininess cannot arise. What the host does not report is inexactness; each path
decides it exactly: TwoSum for addition, integer significand arithmetic for
mul/div/sqrt. Binary32 goes through binary64 (53 >= 2*24 + 2 bits, so the
double rounding is innocuous for +, -, *, / and sqrt) and decides exactness
by an exact binary64 back-computation.

Every function returns ``None`` when its preconditions do not hold, including
operands that are not in-range ints (``struct`` rejects them); the caller then
validates and takes the exact integer path.
"""

from __future__ import annotations

import math
import struct

from vm_translate.softfloat.formats import NX

_pack_u64x2 = struct.Struct("<2Q").pack
_unpack_f64x2 = struct.Struct("<2d").unpack
_pack_u64 = struct.Struct("<Q").pack
_unpack_f64 = struct.Struct("<d").unpack
_pack_f64 = struct.Struct("<d").pack
_unpack_u64 = struct.Struct("<Q").unpack
_pack_u32x2 = struct.Struct("<2I").pack
_unpack_f32x2 = struct.Struct("<2f").unpack
_pack_u32 = struct.Struct("<I").pack
_unpack_f32 = struct.Struct("<f").unpack
_pack_f32 = struct.Struct("<f").pack
_unpack_u32 = struct.Struct("<I").unpack
_StructError = struct.error
_sqrt = math.sqrt

_F64_MIN_NORMAL = 2.2250738585072014e-308
_F64_MAX = 1.7976931348623157e308
_F32_MIN_NORMAL = 1.1754943508222875e-38
_F32_MAX = 3.4028234663852886e38
_F64_FRAC = (1 << 52) - 1
_F64_HIDDEN = 1 << 52


def add64(a: int, b: int) -> tuple[int, int] | None:
    """Binary64 ``a + b`` under RNE for finite operands and a finite result.

    Subnormal operands need no special care: a sum that lands in the subnormal
    range is exact, and TwoSum is exact for any finite non-overflowing sum.
    """
    try:
        x, y = _unpack_f64x2(_pack_u64x2(a, b))
    except _StructError:
        return None
    s = x + y
    if s - s:  # NaN when an operand is NaN or infinite, or the sum overflowed
        return None
    bb = s - x
    if (x - (s - bb)) + (y - bb):  # TwoSum: the rounding error of s is exactly representable
        return _unpack_u64(_pack_f64(s))[0], NX
    return _unpack_u64(_pack_f64(s))[0], 0


def mul64(a: int, b: int) -> tuple[int, int] | None:
    """Binary64 ``a * b`` under RNE for two normal operands and a normal finite result."""
    try:
        x, y = _unpack_f64x2(_pack_u64x2(a, b))
    except _StructError:
        return None
    if not (0 < (a >> 52) & 0x7FF < 0x7FF and 0 < (b >> 52) & 0x7FF < 0x7FF):
        return None
    p = x * y
    if not (_F64_MIN_NORMAL < p <= _F64_MAX or -_F64_MAX <= p < -_F64_MIN_NORMAL):
        return None
    product = ((a & _F64_FRAC) | _F64_HIDDEN) * ((b & _F64_FRAC) | _F64_HIDDEN)
    if product & ((1 << (product.bit_length() - 53)) - 1):
        return _unpack_u64(_pack_f64(p))[0], NX
    return _unpack_u64(_pack_f64(p))[0], 0


def div64(a: int, b: int) -> tuple[int, int] | None:
    """Binary64 ``a / b`` under RNE for two normal operands and a normal finite result."""
    try:
        x, y = _unpack_f64x2(_pack_u64x2(a, b))
    except _StructError:
        return None
    if not (0 < (a >> 52) & 0x7FF < 0x7FF and 0 < (b >> 52) & 0x7FF < 0x7FF):
        return None
    q = x / y
    if not (_F64_MIN_NORMAL < q <= _F64_MAX or -_F64_MAX <= q < -_F64_MIN_NORMAL):
        return None
    # The significand quotient is a dyadic rational (so the division is exact) iff the odd part of
    # the divisor divides the dividend; that integer quotient then has at most 53 bits.
    divisor = (b & _F64_FRAC) | _F64_HIDDEN
    divisor >>= (divisor & -divisor).bit_length() - 1
    if ((a & _F64_FRAC) | _F64_HIDDEN) % divisor:
        return _unpack_u64(_pack_f64(q))[0], NX
    return _unpack_u64(_pack_f64(q))[0], 0


def sqrt64(a: int) -> tuple[int, int] | None:
    """Binary64 square root under RNE of a positive normal operand."""
    try:
        x = _unpack_f64(_pack_u64(a))[0]
    except _StructError:
        return None
    if a >> 63 or not 0 < a >> 52 < 0x7FF:
        return None
    bits = _unpack_u64(_pack_f64(_sqrt(x)))[0]
    root = (bits & _F64_FRAC) | _F64_HIDDEN
    radicand = (a & _F64_FRAC) | _F64_HIDDEN
    # Exact iff root**2 * 2**(2*e_root) == radicand * 2**e_radicand (exponents of the lowest bits).
    gap = ((a >> 52) - 1075) - 2 * ((bits >> 52) - 1075)
    square = root * root
    exact = (radicand << gap) == square if gap >= 0 else radicand == square << -gap
    return bits, (0 if exact else NX)


def _to_single(value: float) -> float:
    return _unpack_f32(_pack_f32(value))[0]


def add32(a: int, b: int) -> tuple[int, int] | None:
    """Binary32 ``a + b`` under RNE for finite operands whose binary64 sum cannot overflow binary32."""
    try:
        x, y = _unpack_f32x2(_pack_u32x2(a, b))
    except _StructError:
        return None
    s = x + y
    if not -_F32_MAX <= s <= _F32_MAX:
        return None
    rounded = _to_single(s)
    bb = s - x
    error = (x - (s - bb)) + (y - bb)
    return _unpack_u32(_pack_f32(rounded))[0], (NX if error or rounded != s else 0)


def mul32(a: int, b: int) -> tuple[int, int] | None:
    """Binary32 ``a * b`` under RNE; the binary64 product of two binary32 values is exact."""
    try:
        x, y = _unpack_f32x2(_pack_u32x2(a, b))
    except _StructError:
        return None
    if not (0 < (a >> 23) & 0xFF < 0xFF and 0 < (b >> 23) & 0xFF < 0xFF):
        return None
    p = x * y
    if not _F32_MIN_NORMAL < abs(p) <= _F32_MAX:
        return None
    rounded = _to_single(p)
    if abs(rounded) <= _F32_MIN_NORMAL:
        return None
    return _unpack_u32(_pack_f32(rounded))[0], (NX if rounded != p else 0)


def div32(a: int, b: int) -> tuple[int, int] | None:
    """Binary32 ``a / b`` under RNE for two normal operands and a normal finite result."""
    try:
        x, y = _unpack_f32x2(_pack_u32x2(a, b))
    except _StructError:
        return None
    if not (0 < (a >> 23) & 0xFF < 0xFF and 0 < (b >> 23) & 0xFF < 0xFF):
        return None
    q = x / y
    if not _F32_MIN_NORMAL < abs(q) <= _F32_MAX:
        return None
    rounded = _to_single(q)
    if abs(rounded) <= _F32_MIN_NORMAL:
        return None
    # rounded * y has at most 48 significant bits, so the host computes it exactly.
    return _unpack_u32(_pack_f32(rounded))[0], (NX if rounded * y != x else 0)


def sqrt32(a: int) -> tuple[int, int] | None:
    """Binary32 square root under RNE of a positive normal operand."""
    try:
        x = _unpack_f32(_pack_u32(a))[0]
    except _StructError:
        return None
    if a >> 31 or not 0 < a >> 23 < 0xFF:
        return None
    rounded = _to_single(_sqrt(x))
    return _unpack_u32(_pack_f32(rounded))[0], (NX if rounded * rounded != x else 0)
