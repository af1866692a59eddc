"""Fast paths through host floats for round-to-nearest-even on normal operands.

CPython floats are IEEE binary64 with round-to-nearest-even, so for normal
operands the host result is the correctly rounded binary64 result whenever it
is finite and (for mul/div) strictly above the smallest normal magnitude, where
tininess cannot arise. What the host does not report is inexactness; each path
decides it exactly: TwoSum for addition, integer significand arithmetic for
mul/div/sqrt. Binary32 goes through binary64 (53 >= 2*24 + 2 bits, so the
double rounding is innocuous for +, -, *, / and sqrt) and decides exactness
by an exact binary64 back-computation. Every function returns ``None`` when
its preconditions do not hold; the caller then takes the exact integer path.
"""

from __future__ import annotations

import math
import struct

from vm_translate.softfloat.formats import F32, F64, NX, Format

_DOUBLE = struct.Struct("<d")
_SINGLE = struct.Struct("<f")
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_d_from_bytes = _DOUBLE.unpack
_d_to_bytes = _DOUBLE.pack
_s_from_bytes = _SINGLE.unpack
_s_to_bytes = _SINGLE.pack
_u64_to_bytes = _U64.pack
_u64_from_bytes = _U64.unpack
_u32_to_bytes = _U32.pack
_u32_from_bytes = _U32.unpack

_F64_MIN_NORMAL = 2.2250738585072014e-308
_F64_MAX = 1.7976931348623157e308
_F32_MIN_NORMAL = 1.1754943508222875e-38
_F32_MAX = 3.4028234663852886e38
_F64_FRAC = (1 << 52) - 1
_F64_HIDDEN = 1 << 52
_INF = math.inf


def _normal64(a: int) -> bool:
    return 0 < (a >> 52) & 0x7FF < 0x7FF


def _normal32(a: int) -> bool:
    return 0 < (a >> 23) & 0xFF < 0xFF


def add_rne(fmt: Format, a: int, b: int) -> tuple[int, int] | None:
    """``a + b`` under RNE for two normal operands, or ``None``."""
    if fmt is F64:
        if not (0 < (a >> 52) & 0x7FF < 0x7FF and 0 < (b >> 52) & 0x7FF < 0x7FF):
            return None
        x = _d_from_bytes(_u64_to_bytes(a))[0]
        y = _d_from_bytes(_u64_to_bytes(b))[0]
        s = x + y
        if s == _INF or s == -_INF:
            return None
        bb = s - x
        error = (x - (s - bb)) + (y - bb)
        return _u64_from_bytes(_d_to_bytes(s))[0], (NX if error else 0)
    if fmt is F32:
        if not (_normal32(a) and _normal32(b)):
            return None
        x = _s_from_bytes(_u32_to_bytes(a))[0]
        y = _s_from_bytes(_u32_to_bytes(b))[0]
        s = x + y
        if not -_F32_MAX <= s <= _F32_MAX:
            return None
        rounded = _s_from_bytes(_s_to_bytes(s))[0]
        if s and -_F32_MIN_NORMAL <= rounded <= _F32_MIN_NORMAL:
            return None
        bb = s - x
        error = (x - (s - bb)) + (y - bb)
        return _u32_from_bytes(_s_to_bytes(rounded))[0], (NX if error or rounded != s else 0)
    return None


def mul_rne(fmt: Format, a: int, b: int) -> tuple[int, int] | None:
    """``a * b`` under RNE for two normal operands with a normal finite result, or ``None``."""
    if fmt is F64:
        if not (0 < (a >> 52) & 0x7FF < 0x7FF and 0 < (b >> 52) & 0x7FF < 0x7FF):
            return None
        p = _d_from_bytes(_u64_to_bytes(a))[0] * _d_from_bytes(_u64_to_bytes(b))[0]
        if not _F64_MIN_NORMAL < abs(p) <= _F64_MAX:
            return None
        product = ((a & _F64_FRAC) | _F64_HIDDEN) * ((b & _F64_FRAC) | _F64_HIDDEN)
        inexact = product & ((1 << (product.bit_length() - 53)) - 1)
        return _u64_from_bytes(_d_to_bytes(p))[0], (NX if inexact else 0)
    if fmt is F32:
        if not (_normal32(a) and _normal32(b)):
            return None
        p = _s_from_bytes(_u32_to_bytes(a))[0] * _s_from_bytes(_u32_to_bytes(b))[0]
        if not _F32_MIN_NORMAL < abs(p) <= _F32_MAX:
            return None
        rounded = _s_from_bytes(_s_to_bytes(p))[0]
        if abs(rounded) <= _F32_MIN_NORMAL:
            return None
        return _u32_from_bytes(_s_to_bytes(rounded))[0], (NX if rounded != p else 0)
    return None


def div_rne(fmt: Format, a: int, b: int) -> tuple[int, int] | None:
    """``a / b`` under RNE for two normal operands with a normal finite result, or ``None``."""
    if fmt is F64:
        if not (0 < (a >> 52) & 0x7FF < 0x7FF and 0 < (b >> 52) & 0x7FF < 0x7FF):
            return None
        q = _d_from_bytes(_u64_to_bytes(a))[0] / _d_from_bytes(_u64_to_bytes(b))[0]
        if not _F64_MIN_NORMAL < abs(q) <= _F64_MAX:
            return None
        # The quotient of significands is a dyadic rational (hence exact) iff the odd part of the
        # divisor divides the dividend; the integer quotient then has at most 53 bits.
        divisor = (b & _F64_FRAC) | _F64_HIDDEN
        divisor >>= (divisor & -divisor).bit_length() - 1
        inexact = ((a & _F64_FRAC) | _F64_HIDDEN) % divisor
        return _u64_from_bytes(_d_to_bytes(q))[0], (NX if inexact else 0)
    if fmt is F32:
        if not (_normal32(a) and _normal32(b)):
            return None
        x = _s_from_bytes(_u32_to_bytes(a))[0]
        y = _s_from_bytes(_u32_to_bytes(b))[0]
        q = x / y
        if not _F32_MIN_NORMAL < abs(q) <= _F32_MAX:
            return None
        rounded = _s_from_bytes(_s_to_bytes(q))[0]
        if abs(rounded) <= _F32_MIN_NORMAL:
            return None
        # rounded * y has at most 48 significant bits, so the host computes it exactly.
        return _u32_from_bytes(_s_to_bytes(rounded))[0], (NX if rounded * y != x else 0)
    return None


def sqrt_rne(fmt: Format, a: int) -> tuple[int, int] | None:
    """Square root under RNE of a positive normal operand, or ``None``."""
    if fmt is F64:
        if a >> 63 or not _normal64(a):
            return None
        r = math.sqrt(_d_from_bytes(_u64_to_bytes(a))[0])
        bits = _u64_from_bytes(_d_to_bytes(r))[0]
        sig_r = (bits & _F64_FRAC) | _F64_HIDDEN
        sig_a = (a & _F64_FRAC) | _F64_HIDDEN
        # Exact iff sig_r**2 * 2**(2*exp_r) == sig_a * 2**exp_a (exponents of the lowest bits).
        gap = ((a >> 52) - 1075) - 2 * ((bits >> 52) - 1075)
        square = sig_r * sig_r
        exact = (sig_a << gap) == square if gap >= 0 else sig_a == square << -gap
        return bits, (0 if exact else NX)
    if fmt is F32:
        if a >> 31 or not _normal32(a):
            return None
        x = _s_from_bytes(_u32_to_bytes(a))[0]
        rounded = _s_from_bytes(_s_to_bytes(math.sqrt(x)))[0]
        return _u32_from_bytes(_s_to_bytes(rounded))[0], (NX if rounded * rounded != x else 0)
    return None
