"""vm_translate.softfloat against values the RISC-V ISA manual and IEEE 754 define, and fast vs exact paths.

The Unicorn differential tests (test_softfloat_unicorn.py) cover the bulk of
the arithmetic; this module pins down what Unicorn's qemu 5.0 cannot check
(NaN boxing, F/D 2.2 fmin/fmax, the fcvt saturation table), argument
validation, and cross-checks the host-float fast paths against the exact
integer paths on many more operands than the CPU oracle can run.
"""

from __future__ import annotations

import struct
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_core.errors import ConfigurationError, VmError
from vm_translate import softfloat as sf
from vm_translate.riscv.fclass import classify
from vm_translate.softfloat import arith

#: RISC-V's invalid float-to-integer results (saturation; NaN to the maximum).
RISCV_INVALID = sf.RISCV.conversion


def f64(x: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", x))[0])


def f32(x: float) -> int:
    return int(struct.unpack("<I", struct.pack("<f", x))[0])


def test_format_constants_match_ieee_754() -> None:
    assert (sf.F32.width, sf.F32.precision, sf.F32.bias) == (32, 24, 127)
    assert (sf.F64.width, sf.F64.precision, sf.F64.bias) == (64, 53, 1023)
    assert sf.F32.canonical_nan == 0x7FC00000
    assert sf.F64.canonical_nan == 0x7FF8000000000000
    assert sf.F32.max_finite == f32(3.4028234663852886e38)
    assert sf.F64.infinity == f64(float("inf"))


def test_nan_boxing() -> None:
    assert sf.box32(0x3F800000) == 0xFFFFFFFF_3F800000
    assert sf.unbox32(0xFFFFFFFF_3F800000) == 0x3F800000
    assert sf.unbox32(0xFFFFFFFF_FFC00000) == 0xFFC00000
    for improper in (0x3F800000, 0xFFFFFFFE_3F800000, 0x7FFFFFFF_3F800000, 0x3FF0000000000000):
        assert sf.unbox32(improper) == 0x7FC00000


def test_arithmetic_nan_results_are_canonical() -> None:
    payload_nan = 0x7FF0000000000123  # a signalling NaN with a payload
    assert sf.add(sf.F64, payload_nan, f64(1.0), sf.RNE) == (sf.F64.canonical_nan, sf.NV)
    assert sf.mul(sf.F64, 0xFFF8000000000001, f64(1.0), sf.RNE) == (sf.F64.canonical_nan, 0)
    assert sf.sqrt(sf.F32, f32(-1.0), sf.RNE) == (0x7FC00000, sf.NV)
    assert sf.sqrt(sf.F32, f32(-0.0), sf.RNE) == (f32(-0.0), 0)
    assert sf.div(sf.F64, 0, 0, sf.RNE) == (sf.F64.canonical_nan, sf.NV)
    assert sf.div(sf.F64, f64(-2.0), 0, sf.RNE) == (f64(float("-inf")), sf.DZ)
    inf = sf.F64.infinity
    assert sf.sub(sf.F64, inf, inf, sf.RNE) == (sf.F64.canonical_nan, sf.NV)
    assert sf.mul(sf.F64, inf, 0, sf.RNE) == (sf.F64.canonical_nan, sf.NV)
    # The ISA manual: fused multiply-add raises NV for inf * 0 even when the addend is a quiet NaN.
    assert sf.fma(sf.F64, inf, 0, sf.F64.canonical_nan, sf.RNE) == (sf.F64.canonical_nan, sf.NV)


def test_exact_zero_signs() -> None:
    one, minus_one = f64(1.0), f64(-1.0)
    assert sf.add(sf.F64, one, minus_one, sf.RNE) == (0, 0)
    assert sf.add(sf.F64, one, minus_one, sf.RDN) == (f64(-0.0), 0)
    assert sf.add(sf.F64, f64(-0.0), f64(-0.0), sf.RUP) == (f64(-0.0), 0)
    assert sf.fma(sf.F64, one, one, minus_one, sf.RDN) == (f64(-0.0), 0)
    assert sf.fma(sf.F64, one, one, one, sf.RNE, negate_product=True, negate_addend=True) == (f64(-2.0), 0)


def test_overflow_and_underflow_flags() -> None:
    big = sf.F64.max_finite
    assert sf.add(sf.F64, big, big, sf.RNE) == (sf.F64.infinity, sf.OF | sf.NX)
    assert sf.add(sf.F64, big, big, sf.RTZ) == (big, sf.OF | sf.NX)
    assert sf.mul(sf.F64, big | sf.F64.sign_bit, big, sf.RUP) == (big | sf.F64.sign_bit, sf.OF | sf.NX)
    smallest = 1
    assert sf.mul(sf.F64, smallest, f64(0.5), sf.RNE) == (0, sf.UF | sf.NX)
    assert sf.mul(sf.F64, smallest, f64(0.5), sf.RUP) == (smallest, sf.UF | sf.NX)
    assert sf.mul(sf.F64, 2, f64(0.5), sf.RNE) == (1, 0)  # exact subnormal result: no UF
    # Tininess after rounding: (1 + 2**-52) * (1 - 2**-52) * 2**-1022 = 2**-1022 * (1 - 2**-104) rounds to the
    # smallest normal even with an unbounded exponent, so it is not tiny and UF stays clear although the
    # exact product is below 2**-1022.
    x, y = Fraction(2**52 + 1, 2**563), Fraction(2**52 - 1, 2**563)
    assert x * y < Fraction(1, 2**1022)
    result, flags = sf.mul(sf.F64, f64(float(x)), f64(float(y)), sf.RNE)
    assert (result, flags) == (sf.F64.hidden_bit, sf.NX)


@pytest.mark.parametrize(
    ("bits", "signed", "high", "low"),
    [
        (32, True, 0x7FFFFFFF, 0x80000000),
        (32, False, 0xFFFFFFFF, 0),
        (64, True, 2**63 - 1, 2**63),
        (64, False, 2**64 - 1, 0),
    ],
)
def test_float_to_int_saturation_table(bits: int, signed: bool, high: int, low: int) -> None:
    """The ISA manual's table of invalid fcvt inputs: NaN and +inf give the maximum, -inf the minimum."""
    for fmt in (sf.F32, sf.F64):
        assert sf.to_int(fmt, fmt.canonical_nan, sf.RNE, bits, signed, RISCV_INVALID) == (high, sf.NV)
        assert sf.to_int(fmt, fmt.infinity | fmt.sign_bit | 1, sf.RNE, bits, signed, RISCV_INVALID) == (
            high,
            sf.NV,
        )
        assert sf.to_int(fmt, fmt.infinity, sf.RTZ, bits, signed, RISCV_INVALID) == (high, sf.NV)
        assert sf.to_int(fmt, fmt.infinity | fmt.sign_bit, sf.RTZ, bits, signed, RISCV_INVALID) == (
            low,
            sf.NV,
        )
        assert sf.to_int(fmt, fmt.max_finite, sf.RTZ, bits, signed, RISCV_INVALID) == (high, sf.NV)
        assert sf.to_int(fmt, fmt.max_finite | fmt.sign_bit, sf.RTZ, bits, signed, RISCV_INVALID) == (
            low,
            sf.NV,
        )


def test_unsigned_conversion_of_small_negatives() -> None:
    """A negative value that rounds to 0 is in range for fcvt.wu (NX only); one rounding to -1 is invalid."""
    assert sf.to_int(sf.F64, f64(-0.4), sf.RNE, 32, False, RISCV_INVALID) == (0, sf.NX)
    assert sf.to_int(sf.F64, f64(-0.9), sf.RTZ, 64, False, RISCV_INVALID) == (0, sf.NX)
    assert sf.to_int(sf.F64, f64(-0.6), sf.RNE, 32, False, RISCV_INVALID) == (0, sf.NV)
    assert sf.to_int(sf.F64, f64(-0.0), sf.RNE, 32, False, RISCV_INVALID) == (0, 0)
    assert sf.to_int(sf.F32, f32(-1.0), sf.RUP, 64, False, RISCV_INVALID) == (0, sf.NV)
    assert sf.to_int(sf.F64, f64(2.5), sf.RNE, 32, True, RISCV_INVALID) == (2, sf.NX)
    assert sf.to_int(sf.F64, f64(2.5), sf.RMM, 32, True, RISCV_INVALID) == (3, sf.NX)
    assert sf.to_int(sf.F64, f64(-2.5), sf.RDN, 32, True, RISCV_INVALID) == ((-3) & 0xFFFFFFFF, sf.NX)
    assert sf.to_int(sf.F64, f64(-2147483648.5), sf.RTZ, 32, True, RISCV_INVALID) == (0x80000000, sf.NX)


def test_min_max_follow_f_d_2_2() -> None:
    """IEEE 754-2019 minimumNumber/maximumNumber as the RISC-V F/D extensions (v2.2) define fmin/fmax."""
    fmt = sf.F64
    pos0, neg0, one = 0, f64(-0.0), f64(1.0)
    snan, qnan = 0x7FF0000000000001, 0x7FF8000000000005
    assert sf.min(fmt, pos0, neg0) == (neg0, 0)
    assert sf.min(fmt, neg0, pos0) == (neg0, 0)
    assert sf.max(fmt, neg0, pos0) == (pos0, 0)
    assert sf.max(fmt, pos0, neg0) == (pos0, 0)
    assert sf.min(fmt, qnan, one) == (one, 0)
    assert sf.max(fmt, one, snan) == (one, sf.NV)
    assert sf.min(fmt, snan, one) == (one, sf.NV)
    assert sf.max(fmt, qnan, snan) == (fmt.canonical_nan, sf.NV)
    assert sf.min(fmt, qnan, qnan) == (fmt.canonical_nan, 0)


def test_comparisons_quiet_and_signalling() -> None:
    fmt = sf.F32
    qnan, snan, one = 0x7FC00000, 0x7F800001, f32(1.0)
    assert sf.eq(fmt, 0, 0x80000000) == (1, 0)
    assert sf.eq(fmt, qnan, qnan) == (0, 0)
    assert sf.eq(fmt, snan, one) == (0, sf.NV)
    assert sf.lt(fmt, qnan, one) == (0, sf.NV)
    assert sf.le(fmt, 0x80000000, 0) == (1, 0)
    assert sf.lt(fmt, 0x80000000, 0) == (0, 0)
    assert sf.lt(fmt, f32(-2.0), f32(-1.0)) == (1, 0)


def test_classify_mask_bits() -> None:
    fmt = sf.F64
    cases = {
        fmt.infinity | fmt.sign_bit: 0,
        f64(-1.0): 1,
        1 | fmt.sign_bit: 2,
        fmt.sign_bit: 3,
        0: 4,
        1: 5,
        f64(1.0): 6,
        fmt.infinity: 7,
        fmt.infinity | 1: 8,
        fmt.canonical_nan: 9,
    }
    for value, bit in cases.items():
        assert classify(fmt, value) == 1 << bit


def test_conversions_between_formats() -> None:
    assert sf.convert(sf.F32, sf.F64, f32(1.5), sf.RNE) == (f64(1.5), 0)
    assert sf.convert(sf.F32, sf.F64, 1, sf.RNE) == (f64(2.0**-149), 0)  # subnormal widens to a normal
    assert sf.convert(sf.F32, sf.F64, 0x7F800001, sf.RNE) == (sf.F64.canonical_nan, sf.NV)
    assert sf.convert(sf.F64, sf.F32, f64(1e300), sf.RNE) == (0x7F800000, sf.OF | sf.NX)
    assert sf.convert(sf.F64, sf.F32, f64(1e-50), sf.RNE) == (0, sf.UF | sf.NX)
    assert sf.convert(sf.F64, sf.F32, f64(0.1), sf.RNE) == (f32(0.1), sf.NX)
    assert sf.from_int(sf.F32, 0xFFFFFFFF, 32, True, sf.RNE) == (f32(-1.0), 0)
    assert sf.from_int(sf.F32, 0xFFFFFFFF, 32, False, sf.RNE) == (f32(4294967296.0), sf.NX)
    assert sf.from_int(sf.F64, 2**63, 64, True, sf.RNE) == (f64(-(2.0**63)), 0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: sf.add(sf.F64, 1, 2, 5),
        lambda: sf.mul(sf.F64, 1, 2, 7),
        lambda: sf.sub(sf.F32, 1 << 32, 0, sf.RNE),
        lambda: sf.div(sf.F64, -1, 0, sf.RNE),
        lambda: sf.sqrt(sf.F64, 1.5, sf.RNE),  # type: ignore[arg-type]
        lambda: sf.fma(sf.F32, 0, 0, 1 << 40, sf.RNE),
        lambda: sf.to_int(sf.F64, 0, sf.RNE, 16, True, RISCV_INVALID),
        lambda: sf.to_int(sf.F64, 0, 6, 32, True, RISCV_INVALID),
        lambda: sf.from_int(sf.F64, 1 << 32, 32, True, sf.RNE),
        lambda: sf.convert(sf.F64, sf.F32, -5, sf.RNE),
        lambda: sf.eq(sf.F32, 1 << 33, 0),
        lambda: sf.min(sf.F32, 0, -1),
        lambda: classify(sf.F64, 1 << 64),
    ],
)
def test_bad_arguments_raise_configuration_error(call: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        call()  # type: ignore[operator]
    assert isinstance(info.value, VmError) and str(info.value)


# --- fast paths against the exact integer paths ----------------------------------------------------------------


def finite_values(fmt: sf.Format) -> st.SearchStrategy[int]:
    top = fmt.exp_max_field - 1
    return st.one_of(
        st.integers(0, fmt.mask).filter(lambda v: (v & fmt.abs_mask) < fmt.infinity),
        st.builds(
            lambda s, e, f: (s << (fmt.width - 1)) | (e << fmt.frac_bits) | f,
            st.integers(0, 1),
            st.one_of(st.integers(0, top), st.sampled_from([0, 1, 2, top - 1, top, fmt.bias])),
            st.one_of(st.integers(0, fmt.frac_mask), st.sampled_from([0, 1, fmt.frac_mask])),
        ),
    )


FAST = settings(max_examples=1000, deadline=None)


@pytest.mark.parametrize("fmt", [sf.F32, sf.F64], ids=["f32", "f64"])
def test_fast_paths_agree_with_exact_paths(fmt: sf.Format) -> None:
    @FAST
    @given(finite_values(fmt), finite_values(fmt))
    def check(a: int, b: int) -> None:
        assert sf.add(fmt, a, b, sf.RNE) == arith.exact_add(fmt, a, b, sf.RNE)
        assert sf.sub(fmt, a, b, sf.RNE) == arith.exact_add(fmt, a, b ^ fmt.sign_bit, sf.RNE)
        assert sf.mul(fmt, a, b, sf.RNE) == arith.exact_mul(fmt, a, b, sf.RNE)
        assert sf.div(fmt, a, b, sf.RNE) == arith.exact_div(fmt, a, b, sf.RNE)
        assert sf.sqrt(fmt, a, sf.RNE) == arith.exact_sqrt(fmt, a, sf.RNE)

    check()


@FAST
@given(st.floats(allow_nan=False, allow_infinity=False), st.floats(allow_nan=False, allow_infinity=False))
def test_binary64_rne_matches_rational_arithmetic(x: float, y: float) -> None:
    """Python's float(Fraction) rounds correctly to nearest-even, an independent model of RNE."""
    for op, exact in ((sf.add, Fraction(x) + Fraction(y)), (sf.mul, Fraction(x) * Fraction(y))):
        result, flags = op(sf.F64, f64(x), f64(y), sf.RNE)
        try:
            expected = float(exact)
        except OverflowError:
            assert (result & sf.F64.abs_mask, flags) == (sf.F64.infinity, sf.OF | sf.NX)
            continue
        if exact:
            assert result == f64(expected)
        else:
            assert result & sf.F64.abs_mask == 0
        assert bool(flags & sf.NX) == (Fraction(expected) != exact)
