"""Binary interchange formats, rounding-mode and exception-flag constants, NaN boxing.

This is the vocabulary of the softfloat subpackage: a :class:`Format` describes
one IEEE-754 binary format (binary32 or binary64) by its field widths and
carries every derived mask and constant the arithmetic needs, so the hot paths
read attributes instead of recomputing them. Values are always raw bit patterns
held in non-negative Python ints; the rounding modes and flag bits use the
RISC-V ``frm``/``fflags`` encodings so a front end can pass its CSR fields
straight through.
"""

from __future__ import annotations

import attrs
from vm_core.errors import ConfigurationError

#: Round to nearest, ties to even.
RNE = 0
#: Round towards zero.
RTZ = 1
#: Round down (towards -infinity).
RDN = 2
#: Round up (towards +infinity).
RUP = 3
#: Round to nearest, ties to max magnitude.
RMM = 4

ROUNDING_MODES = (RNE, RTZ, RDN, RUP, RMM)

#: Inexact.
NX = 1
#: Underflow.
UF = 2
#: Overflow.
OF = 4
#: Divide by zero.
DZ = 8
#: Invalid operation.
NV = 16


@attrs.frozen
class Format:
    """An IEEE-754 binary format given by its exponent and trailing-significand widths.

    All other attributes are derived: ``precision`` counts the implicit bit,
    ``emin`` is the exponent of the smallest normal number, ``qmin`` the
    exponent of the least significant bit of a subnormal (the smallest
    quantum), and ``canonical_nan`` the RISC-V default NaN.
    """

    name: str
    exp_bits: int
    frac_bits: int
    width: int = attrs.field(init=False)
    precision: int = attrs.field(init=False)
    bias: int = attrs.field(init=False)
    emin: int = attrs.field(init=False)
    emax: int = attrs.field(init=False)
    qmin: int = attrs.field(init=False)
    exp_max_field: int = attrs.field(init=False)
    frac_mask: int = attrs.field(init=False)
    hidden_bit: int = attrs.field(init=False)
    exp_field_mask: int = attrs.field(init=False)
    sign_bit: int = attrs.field(init=False)
    abs_mask: int = attrs.field(init=False)
    mask: int = attrs.field(init=False)
    quiet_bit: int = attrs.field(init=False)
    infinity: int = attrs.field(init=False)
    max_finite: int = attrs.field(init=False)
    canonical_nan: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        derived = {
            "width": 1 + self.exp_bits + self.frac_bits,
            "precision": self.frac_bits + 1,
            "bias": (1 << (self.exp_bits - 1)) - 1,
            "exp_max_field": (1 << self.exp_bits) - 1,
            "frac_mask": (1 << self.frac_bits) - 1,
            "hidden_bit": 1 << self.frac_bits,
        }
        bias = derived["bias"]
        width = derived["width"]
        derived["emin"] = 1 - bias
        derived["emax"] = bias
        derived["qmin"] = 1 - bias - self.frac_bits
        derived["exp_field_mask"] = derived["exp_max_field"] << self.frac_bits
        derived["sign_bit"] = 1 << (width - 1)
        derived["abs_mask"] = derived["sign_bit"] - 1
        derived["mask"] = (1 << width) - 1
        derived["quiet_bit"] = 1 << (self.frac_bits - 1)
        derived["infinity"] = derived["exp_field_mask"]
        derived["max_finite"] = derived["exp_field_mask"] - 1
        derived["canonical_nan"] = derived["exp_field_mask"] | derived["quiet_bit"]
        for key, value in derived.items():
            object.__setattr__(self, key, value)


F32 = Format("binary32", 8, 23)
F64 = Format("binary64", 11, 52)

_BOX_HIGH = 0xFFFFFFFF_00000000


def box32(bits: int) -> int:
    """NaN-box a binary32 pattern into a 64-bit FP register value (upper 32 bits all ones)."""
    return _BOX_HIGH | (bits & 0xFFFFFFFF)


def unbox32(reg64: int) -> int:
    """The binary32 held in a 64-bit FP register: its low half if properly NaN-boxed, else the canonical NaN."""
    if (reg64 & _BOX_HIGH) == _BOX_HIGH:
        return reg64 & 0xFFFFFFFF
    return F32.canonical_nan


def check_rm(rm: int) -> None:
    """Raise :class:`ConfigurationError` unless ``rm`` is one of the five static rounding modes."""
    if rm not in ROUNDING_MODES:
        raise ConfigurationError(
            f"invalid floating-point rounding mode {rm!r}",
            hint="use RNE=0, RTZ=1, RDN=2, RUP=3 or RMM=4 (resolve DYN from frm first)",
        )


def check_operand(fmt: Format, value: int) -> None:
    """Raise :class:`ConfigurationError` unless ``value`` is a ``fmt.width``-bit pattern."""
    if not isinstance(value, int) or value >> fmt.width:
        raise ConfigurationError(
            f"{value!r} is not a {fmt.width}-bit {fmt.name} bit pattern",
            hint="pass raw bit patterns as non-negative ints",
        )


def is_nan(fmt: Format, a: int) -> bool:
    """True for any NaN (quiet or signalling)."""
    return (a & fmt.abs_mask) > fmt.infinity


def is_signalling_nan(fmt: Format, a: int) -> bool:
    """True for a signalling NaN (quiet bit clear, some other fraction bit set)."""
    return (a & fmt.abs_mask) > fmt.infinity and not a & fmt.quiet_bit
