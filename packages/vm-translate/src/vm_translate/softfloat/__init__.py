"""Exact IEEE-754 binary32/binary64 arithmetic on raw bit patterns.

Values are non-negative Python ints holding the bit pattern; every operation
returns ``(result, flags)`` with softfloat's own flag bits (:data:`NX`,
:data:`UF`, :data:`OF`, :data:`DZ`, :data:`NV`; a front end puts them where
its ISA keeps them with its :class:`~vm_translate.softfloat.policy.FlagLayout`),
and rounding modes are :data:`RNE` ... :data:`RMM`. What IEEE 754 leaves to
the ISA is the caller's :class:`~vm_translate.softfloat.policy.FloatPolicy`
(:data:`RISCV`, :data:`X86_SSE`, :data:`AARCH64`): which NaN a result is
(:class:`~vm_translate.softfloat.nan.NanPolicy`, the default NaN unless told
otherwise) and what an invalid float-to-integer conversion gives
(:class:`~vm_translate.softfloat.policy.IntConversion`). Fused multiply-add
rounds once; tininess is detected after rounding. Invalid arguments (a rounding
mode outside 0..4, a pattern wider than the format) raise
:class:`vm_core.errors.ConfigurationError`.
"""

from __future__ import annotations

from vm_translate.softfloat.arith import add, div, fma, mul, sqrt, sub
from vm_translate.softfloat.compare import eq, le, lt
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
from vm_translate.softfloat.policy import AARCH64, RISCV, X86_SSE, FlagLayout, FloatPolicy, IntConversion

__all__ = [
    "AARCH64",
    "DEFAULT_NAN",
    "DZ",
    "F32",
    "F64",
    "NV",
    "NX",
    "OF",
    "RDN",
    "RISCV",
    "RMM",
    "RNE",
    "ROUNDING_MODES",
    "RTZ",
    "RUP",
    "UF",
    "X86_SSE",
    "FlagLayout",
    "FloatPolicy",
    "Format",
    "IntConversion",
    "NanPolicy",
    "add",
    "box32",
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
