"""NaN results: which NaN an operation returns is the ISA's choice, given to softfloat as a :class:`NanPolicy`.

IEEE 754 leaves it open; ISAs differ:

* RISC-V always returns the *default NaN* (positive, quiet, zero payload):
  :data:`DEFAULT_NAN`, which the RISC-V front end passes.
* x86 SSE returns the first NaN operand (in operand order), quieted, and its
  default NaN for an invalid operation without NaN operands is *negative*
  (the "QNaN floating-point indefinite"): ``NanPolicy("first", negative_default=True)``.
* AArch64 with ``FPCR.DN = 0`` returns the first signalling NaN operand
  quieted, else the first quiet NaN, and a positive default NaN:
  ``NanPolicy("signalling_first")``.

Operands are given in the ISA's priority order (AArch64's fused
multiply-add, for instance, lists its addend first). A payload crossing
formats (a conversion) keeps its most significant fraction bits.
"""

from __future__ import annotations

import attrs

from vm_translate.softfloat.formats import Format

PROPAGATION = ("none", "first", "signalling_first")


def is_nan(fmt: Format, value: int) -> bool:
    return (value & fmt.abs_mask) > fmt.infinity


def _is_signalling(fmt: Format, value: int) -> bool:
    return is_nan(fmt, value) and not value & fmt.quiet_bit


@attrs.frozen
class NanPolicy:
    """How an operation whose result is NaN chooses it: ``propagate`` (see the module docstring)."""

    propagate: str = "none"
    negative_default: bool = False

    def __attrs_post_init__(self) -> None:
        if self.propagate not in PROPAGATION:
            raise ValueError(f"unknown NaN propagation {self.propagate!r}")

    def default(self, fmt: Format) -> int:
        """The default NaN of ``fmt`` under this policy."""
        return fmt.canonical_nan | (fmt.sign_bit if self.negative_default else 0)

    def result(self, fmt: Format, *operands: int) -> int:
        """The NaN result of an operation on ``operands`` (all of format ``fmt``)."""
        return self.convert(fmt, fmt, *operands)

    def convert(self, src: Format, dst: Format, *operands: int) -> int:
        """The NaN result in format ``dst`` of an operation on ``operands`` of format ``src``."""
        chosen = self._chosen(src, operands)
        if chosen is None:
            return self.default(dst)
        sign = dst.sign_bit if chosen & src.sign_bit else 0
        fraction = chosen & src.frac_mask
        shift = dst.frac_bits - src.frac_bits
        fraction = fraction << shift if shift >= 0 else fraction >> -shift
        return sign | dst.exp_field_mask | dst.quiet_bit | (fraction & dst.frac_mask)

    def _chosen(self, fmt: Format, operands: tuple[int, ...]) -> int | None:
        if self.propagate == "none":
            return None
        if self.propagate == "signalling_first":
            for value in operands:
                if _is_signalling(fmt, value):
                    return value
        for value in operands:
            if is_nan(fmt, value):
                return value
        return None


#: Always the positive default NaN (RISC-V's canonical NaN).
DEFAULT_NAN = NanPolicy()
