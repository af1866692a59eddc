"""What IEEE 754 leaves to the ISA, as a :class:`FloatPolicy` a front end passes.

softfloat computes the standard's results; where the standard lets an ISA
choose, the choice is a parameter:

* which NaN a NaN-producing operation returns: :class:`~vm_translate.softfloat.nan.NanPolicy`;
* what a float-to-integer conversion gives when the value is out of range
  or NaN (IEEE: "invalid", result unspecified): :class:`IntConversion`;
* where each exception flag lives in the ISA's status register:
  :class:`FlagLayout` (softfloat's own flags are :data:`~vm_translate.softfloat.NX`,
  ``UF``, ``OF``, ``DZ``, ``NV``; :meth:`FlagLayout.encode` translates them).

Three policies are ready for their front ends: :data:`RISCV` (the RISC-V
front end's), :data:`X86_SSE` and :data:`AARCH64`; each is checked against
that ISA's instructions in Unicorn (vm-translate's ``test_float_policy_unicorn.py``).
"""

from __future__ import annotations

import attrs

from vm_translate.softfloat.formats import DZ, NV, NX, OF, UF
from vm_translate.softfloat.nan import DEFAULT_NAN, NanPolicy

OUT_OF_RANGE = ("saturate", "indefinite")
NAN_TO_INT = ("max", "zero", "indefinite")


@attrs.frozen
class IntConversion:
    """The result of an invalid float-to-integer conversion (the flag raised is always invalid, alone).

    ``out_of_range`` (values beyond the integer type, infinities included):
    ``"saturate"`` gives the nearest representable integer (RISC-V
    ``FCVT``, AArch64 ``FCVTZS``/``FCVTZU``), ``"indefinite"`` the ISA's
    *integer indefinite*: the most negative signed value, all ones unsigned
    (x86 ``CVTTSD2SI``: ``0x80000000``/``0x8000000000000000``; AVX-512
    ``VCVTTSD2USI``: all ones). ``nan``: ``"max"`` gives the largest
    integer (RISC-V), ``"zero"`` 0 (AArch64), ``"indefinite"`` the
    integer indefinite (x86).
    """

    out_of_range: str = "saturate"
    nan: str = "max"

    def __attrs_post_init__(self) -> None:
        if self.out_of_range not in OUT_OF_RANGE or self.nan not in NAN_TO_INT:
            raise ValueError(f"unknown float-to-integer policy {self.out_of_range!r}/{self.nan!r}")

    def invalid_result(self, bits: int, signed: bool, negative: bool, nan: bool) -> int:
        """The ``bits``-wide result pattern of an invalid conversion."""
        high = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        low = (1 << bits) - (1 << (bits - 1)) if signed else 0  # the minimum, as a pattern
        indefinite = 1 << (bits - 1) if signed else (1 << bits) - 1
        choice = self.nan if nan else self.out_of_range
        if choice == "indefinite":
            return indefinite
        if choice == "zero":
            return 0
        if choice == "max" or not negative:
            return high
        return low


@attrs.frozen
class FlagLayout:
    """The bit of each IEEE exception flag in an ISA's status register."""

    invalid: int
    divide_by_zero: int
    overflow: int
    underflow: int
    inexact: int

    def encode(self, flags: int) -> int:
        """softfloat's ``flags`` (``NV``, ``DZ``, ``OF``, ``UF``, ``NX``) in this layout."""
        out = 0
        for own, bit in ((NV, self.invalid), (DZ, self.divide_by_zero), (OF, self.overflow),
                         (UF, self.underflow), (NX, self.inexact)):  # fmt: skip
            if flags & own:
                out |= bit
        return out


@attrs.frozen
class FloatPolicy:
    """Everything ISA-specific about one front end's floating point."""

    nan: NanPolicy
    conversion: IntConversion
    flags: FlagLayout


#: RISC-V F/D: the canonical NaN, saturating conversions (NaN to the maximum), ``fflags``.
RISCV = FloatPolicy(DEFAULT_NAN, IntConversion("saturate", "max"), FlagLayout(0x10, 0x08, 0x04, 0x02, 0x01))
#: x86 SSE: the first NaN operand quieted, a negative default NaN, the integer indefinite, MXCSR bits 0-5.
X86_SSE = FloatPolicy(
    NanPolicy("first", negative_default=True),
    IntConversion("indefinite", "indefinite"),
    FlagLayout(invalid=0x01, divide_by_zero=0x04, overflow=0x08, underflow=0x10, inexact=0x20),
)
#: AArch64 with ``FPCR.DN = 0``: signalling NaNs first, saturating conversions (NaN to 0), FPSR bits 0-4.
AARCH64 = FloatPolicy(
    NanPolicy("signalling_first"),
    IntConversion("saturate", "zero"),
    FlagLayout(invalid=0x01, divide_by_zero=0x02, overflow=0x04, underflow=0x08, inexact=0x10),
)
