"""Exact IEEE-754 binary32/binary64 arithmetic on raw bit patterns with RISC-V F/D semantics.

Values are non-negative Python ints holding the bit pattern; every operation
returns ``(result, fflags)`` where ``fflags`` uses the RISC-V bit layout
(:data:`NX`, :data:`UF`, :data:`OF`, :data:`DZ`, :data:`NV`) and rounding modes
use the ``frm`` encodings (:data:`RNE` ... :data:`RMM`). NaN results are the
NaN the caller's :class:`~vm_translate.softfloat.nan.NanPolicy` chooses (the
default NaN unless told otherwise), fused multiply-add rounds once, float-to-integer conversions
saturate, tininess is detected after rounding. Invalid arguments (a rounding
mode outside 0..4, a pattern wider than the format) raise
:class:`vm_core.errors.ConfigurationError`.
"""

from __future__ import annotations

from vm_translate.softfloat.arith import add, div, fma, mul, sqrt, sub
from vm_translate.softfloat.compare import classify, eq, le, lt
from vm_translate.softfloat.compare import maximum as max
from vm_translate.softfloat.compare import minimum as min
from vm_translate.softfloat.convert import convert, from_int, to_int
from vm_translate.softfloat.formats import (
    DZ,
    F32,
    F64,
    NV,
    NX,
    OF,
    RDN,
    RMM,
    RNE,
    ROUNDING_MODES,
    RTZ,
    RUP,
    UF,
    Format,
    box32,
    is_nan,
    is_signalling_nan,
    unbox32,
)
from vm_translate.softfloat.nan import DEFAULT_NAN, NanPolicy

__all__ = [
    "DEFAULT_NAN",
    "DZ",
    "F32",
    "F64",
    "NV",
    "NX",
    "OF",
    "RDN",
    "RMM",
    "RNE",
    "ROUNDING_MODES",
    "RTZ",
    "RUP",
    "UF",
    "Format",
    "NanPolicy",
    "add",
    "box32",
    "classify",
    "convert",
    "div",
    "eq",
    "fma",
    "from_int",
    "is_nan",
    "is_signalling_nan",
    "le",
    "lt",
    "max",
    "min",
    "mul",
    "sqrt",
    "sub",
    "to_int",
    "unbox32",
]
