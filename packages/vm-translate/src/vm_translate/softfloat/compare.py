"""Comparisons and minimum/maximum.

``eq`` is a quiet comparison (NV only for signalling NaN operands); ``lt`` and
``le`` are signalling (NV for any NaN operand); all three return 0 for
unordered operands. ``minimum``/``maximum`` order -0 below +0 and raise NV
for a signalling NaN operand; how NaN operands decide the result is the
caller's ``nans`` (one of :data:`MINMAX_NANS`):

* ``"number_wins"`` (IEEE 754-2019 minimumNumber/maximumNumber, RISC-V F/D
  2.2 ``fmin``/``fmax``): a single NaN operand yields the other operand;
* ``"quiet_loses"`` (AArch64 ``FMINNM``/``FMAXNM``): a single *quiet* NaN
  yields the other operand, a signalling one propagates;
* ``"propagate"`` (AArch64 ``FMIN``/``FMAX``): any NaN operand propagates.

A NaN result is the ``nan`` policy's (:mod:`vm_translate.softfloat.nan`).
(RISC-V's ``fclass`` is its front end's: :mod:`vm_translate.riscv.fclass`.)
"""

from __future__ import annotations

from vm_translate.softfloat.formats import NV, Format, check_operand
from vm_translate.softfloat.nan import DEFAULT_NAN, NanPolicy

MINMAX_NANS = ("number_wins", "quiet_loses", "propagate")


def _check(fmt: Format, a: int, b: int) -> None:
    if not isinstance(a, int) or a >> fmt.width:
        check_operand(fmt, a)
    if not isinstance(b, int) or b >> fmt.width:
        check_operand(fmt, b)


def _order_key(fmt: Format, a: int) -> int:
    """An integer that orders non-NaN patterns like their values (both zeros map to 0)."""
    magnitude = a & fmt.abs_mask
    return -magnitude if a & fmt.sign_bit else magnitude


def _signalling(fmt: Format, a: int) -> bool:
    return (a & fmt.abs_mask) > fmt.infinity and not a & fmt.quiet_bit


def eq(fmt: Format, a: int, b: int) -> tuple[int, int]:
    """Quiet equality: 1 if ``a == b`` (so +0 == -0), 0 if not or unordered."""
    _check(fmt, a, b)
    inf = fmt.infinity
    abs_mask = fmt.abs_mask
    if (a & abs_mask) > inf or (b & abs_mask) > inf:
        return 0, (NV if _signalling(fmt, a) or _signalling(fmt, b) else 0)
    return (1 if a == b or not (a | b) & abs_mask else 0), 0


def lt(fmt: Format, a: int, b: int) -> tuple[int, int]:
    """Signalling less-than: 1 if ``a < b``; any NaN operand gives 0 and raises NV."""
    _check(fmt, a, b)
    if (a & fmt.abs_mask) > fmt.infinity or (b & fmt.abs_mask) > fmt.infinity:
        return 0, NV
    return (1 if _order_key(fmt, a) < _order_key(fmt, b) else 0), 0


def le(fmt: Format, a: int, b: int) -> tuple[int, int]:
    """Signalling less-or-equal: 1 if ``a <= b``; any NaN operand gives 0 and raises NV."""
    _check(fmt, a, b)
    if (a & fmt.abs_mask) > fmt.infinity or (b & fmt.abs_mask) > fmt.infinity:
        return 0, NV
    return (1 if _order_key(fmt, a) <= _order_key(fmt, b) else 0), 0


def _nan_pick(fmt: Format, a: int, b: int, nans: str, nan: NanPolicy) -> tuple[int, int] | None:
    """The result when a NaN is involved (the other operand, or a NaN), else ``None``."""
    a_nan = (a & fmt.abs_mask) > fmt.infinity
    b_nan = (b & fmt.abs_mask) > fmt.infinity
    if not (a_nan or b_nan):
        return None
    if nans not in MINMAX_NANS:
        raise ValueError(f"unknown min/max NaN rule {nans!r}")
    a_sig, b_sig = _signalling(fmt, a), _signalling(fmt, b)
    flags = NV if a_sig or b_sig else 0
    number_wins = nans == "number_wins" or (nans == "quiet_loses" and not (a_sig or b_sig))
    if number_wins and not (a_nan and b_nan):
        return (b if a_nan else a), flags
    return nan.result(fmt, a, b), flags


def minimum(
    fmt: Format, a: int, b: int, nans: str = "number_wins", nan: NanPolicy = DEFAULT_NAN
) -> tuple[int, int]:
    """fmin: the smaller operand, -0 below +0; NaN operands as ``nans`` says."""
    _check(fmt, a, b)
    picked = _nan_pick(fmt, a, b, nans, nan)
    if picked is not None:
        return picked
    key_a = _order_key(fmt, a)
    key_b = _order_key(fmt, b)
    if key_a != key_b:
        return (a if key_a < key_b else b), 0
    return (a if a & fmt.sign_bit else b), 0


def maximum(
    fmt: Format, a: int, b: int, nans: str = "number_wins", nan: NanPolicy = DEFAULT_NAN
) -> tuple[int, int]:
    """fmax: the larger operand, +0 above -0; NaN operands as ``nans`` says."""
    _check(fmt, a, b)
    picked = _nan_pick(fmt, a, b, nans, nan)
    if picked is not None:
        return picked
    key_a = _order_key(fmt, a)
    key_b = _order_key(fmt, b)
    if key_a != key_b:
        return (a if key_a > key_b else b), 0
    return (b if a & fmt.sign_bit else a), 0
