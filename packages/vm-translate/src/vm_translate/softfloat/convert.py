"""Conversions: float to integer, integer to float, and between binary32 and binary64.

A float-to-integer conversion whose rounded value does not fit (NaN,
infinities, overflow) is *invalid*: it raises NV and never NX, and its
result is the caller's :class:`~vm_translate.softfloat.policy.IntConversion`
choice (RISC-V and AArch64 saturate, x86 gives its integer indefinite;
NaN gives the maximum, 0 or the indefinite). For an unsigned target a
negative value that rounds to 0 is in range (NX only); one that rounds to
-1 or below is invalid. Integers travel as unsigned ``bits``-wide
two's-complement patterns.
"""

from __future__ import annotations

from vm_core.errors import ConfigurationError

from vm_translate.softfloat.formats import F32, F64, NV, NX, ROUNDING_MODES, Format, check_operand, check_rm
from vm_translate.softfloat.nan import DEFAULT_NAN, NanPolicy
from vm_translate.softfloat.policy import IntConversion
from vm_translate.softfloat.rounding import round_pack, rounds_up, unpack

_INTEGER_WIDTHS = (32, 64)


def _check_width(bits: int) -> None:
    if bits not in _INTEGER_WIDTHS:
        raise ConfigurationError(f"unsupported integer width {bits!r} for a float conversion", hint="use 32 or 64")


def to_int(fmt: Format, a: int, rm: int, bits: int, signed: bool, invalid: IntConversion) -> tuple[int, int]:
    """Convert ``a`` to a ``bits``-wide integer (an unsigned pattern) rounding under ``rm``; ``invalid``: see above."""
    if rm not in ROUNDING_MODES:
        check_rm(rm)
    check_operand(fmt, a)
    _check_width(bits)
    if signed:
        low = -(1 << (bits - 1))
        high = (1 << (bits - 1)) - 1
    else:
        low = 0
        high = (1 << bits) - 1
    mask = (1 << bits) - 1
    abs_a = a & fmt.abs_mask
    sign = a >> (fmt.width - 1)
    if abs_a >= fmt.infinity:
        return invalid.invalid_result(bits, signed, bool(sign), abs_a > fmt.infinity), NV
    if not abs_a:
        return 0, 0
    sig, exp = unpack(fmt, a)
    flags = 0
    if exp >= 0:
        if exp + sig.bit_length() > bits + 1:
            return invalid.invalid_result(bits, signed, bool(sign), False), NV
        magnitude = sig << exp
    else:
        magnitude = sig >> -exp
        rem = sig & ((1 << -exp) - 1)
        if rem:
            flags = NX
            if rounds_up(magnitude, rem, 1 << (-exp - 1), sign, rm):
                magnitude += 1
    value = -magnitude if sign else magnitude
    if value < low or value > high:
        return invalid.invalid_result(bits, signed, bool(sign), False), NV
    return value & mask, flags


def from_int(fmt: Format, value: int, bits: int, signed: bool, rm: int) -> tuple[int, int]:
    """Convert the ``bits``-wide integer pattern ``value`` (two's complement if ``signed``) to ``fmt``."""
    if rm not in ROUNDING_MODES:
        check_rm(rm)
    _check_width(bits)
    if not isinstance(value, int) or value >> bits:
        raise ConfigurationError(
            f"{value!r} is not a {bits}-bit integer pattern", hint="pass integers as unsigned bit patterns"
        )
    if not value:
        return 0, 0
    if signed and value >> (bits - 1):
        return round_pack(fmt, 1, (1 << bits) - value, 0, rm)
    return round_pack(fmt, 0, value, 0, rm)


def convert(src: Format, dst: Format, a: int, rm: int, nan: NanPolicy = DEFAULT_NAN) -> tuple[int, int]:
    """Convert ``a`` from format ``src`` to ``dst``; a NaN becomes the ``nan`` policy's (NV for a signalling one)."""
    if rm not in ROUNDING_MODES:
        check_rm(rm)
    check_operand(src, a)
    if src is F32 and dst is F64 and 0 < (a >> 23) & 0xFF < 0xFF:
        # Normal binary32 widens exactly: rebias the exponent, left-align the fraction.
        return ((a >> 31) << 63) | ((((a >> 23) & 0xFF) + 896) << 52) | ((a & 0x7FFFFF) << 29), 0
    abs_a = a & src.abs_mask
    sign = a >> (src.width - 1)
    sign_bits = dst.sign_bit if sign else 0
    if abs_a >= src.infinity:
        if abs_a == src.infinity:
            return sign_bits | dst.infinity, 0
        return nan.convert(src, dst, a), (0 if a & src.quiet_bit else NV)
    if not abs_a:
        return sign_bits, 0
    sig, exp = unpack(src, a)
    return round_pack(dst, sign, sig, exp, rm)
