"""Unpacking bit patterns and the single generic round-and-pack routine.

Every operation in the softfloat subpackage that can round reduces its exact
result to ``(-1)**sign * sig * 2**exp`` with an arbitrary-precision integer
``sig`` and hands it to :func:`round_pack`, which rounds once to the target
format under a RISC-V rounding mode and reports the IEEE exception flags with
RISC-V conventions: tininess is detected *after* rounding and UF is raised only
for a tiny *and* inexact result; overflow yields infinity or the largest finite
number depending on the rounding direction.

Operations whose exact result is not a finite dyadic (division, square root)
pass a significand with at least two bits below the rounding position and a
"sticky" lowest bit that is 1 when the true value lies strictly above the
truncated one; that reproduces the correct rounding for every mode.
"""

from __future__ import annotations

from vm_translate.softfloat.formats import NX, OF, RDN, RMM, RNE, RTZ, RUP, UF, Format, check_rm


def unpack(fmt: Format, a: int) -> tuple[int, int]:
    """``(sig, exp)`` with ``|a| == sig * 2**exp`` for a finite ``a`` (``sig == 0`` for zeros)."""
    biased = (a >> fmt.frac_bits) & fmt.exp_max_field
    frac = a & fmt.frac_mask
    if biased:
        return frac | fmt.hidden_bit, biased - fmt.bias - fmt.frac_bits
    return frac, fmt.qmin


def rounds_up(m: int, rem: int, half: int, sign: int, rm: int) -> bool:
    """Whether truncated magnitude ``m`` with nonzero discarded part ``rem`` (``half`` = half an ulp) rounds up."""
    if rm == RNE:
        return rem > half or (rem == half and bool(m & 1))
    if rm == RTZ:
        return False
    if rm == RDN:
        return bool(sign)
    if rm == RUP:
        return not sign
    if rm == RMM:
        return rem >= half
    check_rm(rm)
    return False


def overflow_result(fmt: Format, sign: int, rm: int) -> int:
    """The result of an overflowing operation: infinity or the largest finite magnitude, per ``rm``."""
    if rm == RTZ or (rm == RDN and not sign) or (rm == RUP and sign):
        magnitude = fmt.max_finite
    else:
        magnitude = fmt.infinity
    return fmt.sign_bit | magnitude if sign else magnitude


def round_pack(fmt: Format, sign: int, sig: int, exp: int, rm: int) -> tuple[int, int]:
    """Round ``(-1)**sign * sig * 2**exp`` (``sig > 0``) to ``fmt`` under ``rm``; return ``(bits, fflags)``."""
    p = fmt.precision
    top = exp + sig.bit_length() - 1
    q = top - p + 1
    if q < fmt.qmin:
        q = fmt.qmin
    shift = q - exp
    flags = 0
    if shift <= 0:
        m = sig << -shift
    else:
        m = sig >> shift
        rem = sig & ((1 << shift) - 1)
        if rem:
            flags = NX
            if rounds_up(m, rem, 1 << (shift - 1), sign, rm):
                m += 1
                if m >> p:
                    m >>= 1
                    q += 1
            if top < fmt.emin and _tiny_after_rounding(fmt, sign, sig, top, shift, rm):
                flags |= UF
    sign_bits = fmt.sign_bit if sign else 0
    if m >> fmt.frac_bits:
        biased = q + fmt.frac_bits + fmt.bias
        if biased >= fmt.exp_max_field:
            return overflow_result(fmt, sign, rm), OF | NX
        return sign_bits | (biased << fmt.frac_bits) | (m & fmt.frac_mask), flags
    return sign_bits | m, flags


def _tiny_after_rounding(fmt: Format, sign: int, sig: int, top: int, shift: int, rm: int) -> bool:
    """Tininess after rounding for an inexact value whose leading bit lies below ``emin``.

    The value is tiny unless rounding it to full precision with an unbounded
    exponent range carries it up to ``2**emin``, which is only possible when
    its leading bit is at ``emin - 1``.
    """
    if top != fmt.emin - 1:
        return True
    unbounded_shift = shift - 1
    if unbounded_shift <= 0:
        return True
    m = sig >> unbounded_shift
    rem = sig & ((1 << unbounded_shift) - 1)
    if not rem or not rounds_up(m, rem, 1 << (unbounded_shift - 1), sign, rm):
        return True
    return not (m + 1) >> fmt.precision
