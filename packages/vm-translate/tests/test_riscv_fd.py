"""RV64F/RV64D lifting checked against Unicorn (qemu's softfloat) and against ISA-manual values.

Differential tests run every F and D instruction, alone and in sequences
(with loads, stores and the compressed ``c.fld``/``c.fsd``/``c.fldsp``/
``c.fsdsp``), on Unicorn and on vm's reference engine through
``unicorn_oracle`` and compare x and f registers, fflags, frm, the data page
and whether the run faulted (reserved static rounding modes, and a reserved
dynamic ``frm``, are illegal instructions on both).

Unicorn 2.1 embeds qemu 5.0, which predates two RISC-V F/D rules vm follows:

* NaN boxing: qemu 5.0 writes single-precision results with the upper 32
  bits zero and ignores them on input. The differential tests therefore only
  feed properly boxed single-precision operands (single and double values
  live in separate register sets) and accept a vm result equal to the boxed
  Unicorn result; the unboxing rules are checked against the ISA manual
  below.
* fmin/fmax with a signalling NaN: qemu 5.0 implements IEEE 754-2008
  minNum (canonical NaN result) while the F/D 2.2 spec requires
  minimumNumber (the other operand). Those cases use the spec's value.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vm_core.errors import IllegalInstruction
from vm_translate.helpers import get_helper
from vm_translate.testing.riscv_fd import (
    BOX,
    DECODER,
    FRONTEND,
    MASK64,
    ROWS,
    S_REGS,
    fp_sequences,
    initial_states,
    instruction_words,
)
from vm_translate.testing.unicorn_oracle import (
    InitialState,
    MachineState,
    run_unicorn,
    run_vm,
)

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- comparison ---------------------------------------------------------------------------------


def assert_matches(
    words: list[int], init: InitialState, expected: MachineState | None = None
) -> MachineState:
    """Run on both machines; equal outcome, registers, flags and memory (Unicorn's unboxed singles allowed)."""
    if expected is None:
        expected = run_unicorn(words, init)
    actual = run_vm(words, init, FRONTEND)
    where = " ".join(f"{w:08x}" for w in words) + f" fcsr={init.fcsr:#x}"
    assert (actual.faulted is None) == (expected.faulted is None), (
        f"vm faulted={actual.faulted} unicorn faulted={expected.faulted} on {where}"
    )
    if expected.faulted is not None:
        return actual
    assert actual.pc == expected.pc, where
    for i in range(32):
        assert actual.x[i] == expected.x[i], (
            f"x{i}: vm {actual.x[i]:#x} != unicorn {expected.x[i]:#x} ({where})"
        )
    for i in range(32):
        if i in S_REGS:  # compare the binary32 value; vm must also have boxed it
            ok = actual.f[i] == BOX | (expected.f[i] & 0xFFFFFFFF)
        else:
            ok = actual.f[i] == expected.f[i]
        assert ok, f"f{i}: vm {actual.f[i]:#x} != unicorn {expected.f[i]:#x} ({where})"
    assert actual.fflags == expected.fflags, f"fflags vm {actual.fflags:#x} != {expected.fflags:#x} ({where})"
    assert actual.frm == expected.frm, where
    assert actual.data == expected.data, f"data page differs ({where})"
    return actual


def _is_nan(value: int, prec: str) -> bool:
    if prec == "s":
        return (value & 0x7FFFFFFF) > 0x7F800000
    return (value & (MASK64 >> 1)) > 0x7FF0000000000000


def _is_snan(value: int, prec: str) -> bool:
    if prec == "s":
        v = value & 0xFFFFFFFF
        return (v & 0x7FFFFFFF) > 0x7F800000 and not v & 0x00400000
    return (value & (MASK64 >> 1)) > 0x7FF0000000000000 and not value & (1 << 51)


def minimum_number_expected(name: str, word: int, init: InitialState) -> MachineState:
    """Unicorn's state with fmin/fmax's result replaced by the F/D 2.2 (minimumNumber) value."""
    expected = run_unicorn([word], init)
    prec = name[-1]
    a, b = init.f[(word >> 15) & 31], init.f[(word >> 20) & 31]
    if expected.faulted is None and (_is_snan(a, prec) or _is_snan(b, prec)):
        if _is_nan(a, prec) and _is_nan(b, prec):
            value = 0x7FC00000 if prec == "s" else 0x7FF8000000000000
        else:
            value = b if _is_nan(a, prec) else a
        f = list(expected.f)
        f[(word >> 7) & 31] = value
        expected = MachineState(
            expected.x, tuple(f), expected.fflags, expected.frm, expected.pc, expected.data
        )
    return expected


# -- differential tests -------------------------------------------------------------------------

COMPUTE_ROWS = sorted(name for name, spec in ROWS.items() if spec.format in ("R", "R4"))


@pytest.mark.parametrize("name", COMPUTE_ROWS)
@SETTINGS
@given(data=st.data())
def test_instruction_matches_unicorn(name: str, data: st.DataObject) -> None:
    word = data.draw(instruction_words(name), label="word")
    init = data.draw(initial_states(word=word, name=name, memory=False), label="init")
    expected = minimum_number_expected(name, word, init) if name[:4] in ("fmin", "fmax") else None
    assert_matches([word], init, expected)


@pytest.mark.parametrize("name", ["flw", "fsw", "fld", "fsd"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_load_store_matches_unicorn(name: str, data: st.DataObject) -> None:
    word = data.draw(instruction_words(name), label="word")
    assert_matches([word], data.draw(initial_states(), label="init"))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words=fp_sequences(), init=initial_states(max_frm=4))
def test_sequences_match_unicorn(words: list[int], init: InitialState) -> None:
    """Mixed F/D sequences, with results feeding later instructions and flags accruing."""
    state = assert_matches(words, init)
    assert state.faulted is None


# -- ISA-manual values --------------------------------------------------------------------------


def _run(words: list[int], f: dict[int, int], x: dict[int, int] | None = None, fcsr: int = 0) -> MachineState:
    regs = [0] * 32
    for i, v in (x or {}).items():
        regs[i] = v
    fregs = [0] * 32
    for i, v in f.items():
        fregs[i] = v
    state = run_vm(words, InitialState(x=tuple(regs), f=tuple(fregs), fcsr=fcsr), FRONTEND)
    assert state.faulted is None
    return state


def _r(name: str, rd: int, rs1: int, rs2: int = 0, rm: int = 0, rs3: int = 0) -> int:
    spec = ROWS[name]
    word = spec.match | rd << 7 | rs1 << 15 | rs3 << 27
    if not spec.mask & (31 << 20):
        word |= rs2 << 20
    if not spec.mask & (7 << 12):
        word |= rm << 12
    return word


UNBOXED_TWO = 0x00000000_40000000  # 2.0f without the NaN box


def test_improperly_boxed_single_operands_read_as_canonical_nan() -> None:
    state = _run([_r("fadd.s", 3, 1, 2)], {1: UNBOXED_TWO, 2: BOX | 0x3F800000})
    assert state.f[3] == BOX | 0x7FC00000 and state.fflags == 0  # canonical NaN is quiet: no NV
    state = _run([_r("fcvt.d.s", 3, 1)], {1: UNBOXED_TWO})
    assert state.f[3] == 0x7FF8000000000000 and state.fflags == 0
    state = _run(
        [_r("fclass.s", 10, 1), _r("feq.s", 11, 1, 1), _r("flt.s", 12, 1, 2)], {1: UNBOXED_TWO, 2: BOX}
    )
    assert (state.x[10], state.x[11], state.x[12], state.fflags) == (1 << 9, 0, 0, 16)


def test_sign_injection_of_improperly_boxed_single_uses_canonical_nan() -> None:
    state = _run([_r("fsgnj.s", 3, 1, 2), _r("fsgnjx.s", 4, 2, 1)], {1: UNBOXED_TWO, 2: BOX | 0xBF800000})
    assert state.f[3] == BOX | 0xFFC00000  # canonical NaN magnitude, sign of -1.0
    assert state.f[4] == BOX | 0xBF800000  # -1.0 with its sign xored with the canonical NaN's (+)


def test_single_moves_do_not_check_boxing() -> None:
    state = _run(
        [_r("fmv.x.w", 10, 1), _r("fmv.w.x", 2, 11)], {1: 0x12345678_80000001}, {11: 0xDEADBEEF_3F800000}
    )
    assert state.x[10] == 0xFFFFFFFF_80000001  # low 32 bits, sign-extended
    assert state.f[2] == BOX | 0x3F800000


def test_single_results_are_boxed() -> None:
    words = [_r("fmul.s", 3, 1, 2), _r("fcvt.s.d", 4, 5), _r("fcvt.s.w", 6, 0), _r("fmin.s", 7, 1, 2)]
    state = _run(words, {1: BOX | 0x40000000, 2: BOX | 0x40400000, 5: 0x3FF0000000000000})
    assert (state.f[3], state.f[4], state.f[6], state.f[7]) == (
        BOX | 0x40C00000,
        BOX | 0x3F800000,
        BOX,
        BOX | 0x40000000,
    )


SNAN32 = BOX | 0x7FA00000
SNAN64 = 0x7FF4000000000000


@pytest.mark.parametrize(
    ("name", "a", "b", "result"),
    [
        ("fmin.s", SNAN32, BOX | 0x3F800000, BOX | 0x3F800000),
        ("fmax.s", BOX | 0xBF800000, SNAN32, BOX | 0xBF800000),
        ("fmin.s", SNAN32, BOX | 0x7FC00000, BOX | 0x7FC00000),
        ("fmin.d", SNAN64, 0xBFF0000000000000, 0xBFF0000000000000),
        ("fmax.d", 0x4000000000000000, SNAN64, 0x4000000000000000),
        ("fmax.d", SNAN64, SNAN64 | 1 << 63, 0x7FF8000000000000),
    ],
)
def test_min_max_signalling_nan_follow_minimum_number(name: str, a: int, b: int, result: int) -> None:
    state = _run([_r(name, 3, 1, 2)], {1: a, 2: b})
    assert (state.f[3], state.fflags) == (result, 16)


@pytest.mark.parametrize(
    ("name", "a", "b", "result"), [("fmin.d", 0, 1 << 63, 1 << 63), ("fmax.s", BOX | 1 << 31, BOX, BOX)]
)
def test_min_max_order_negative_zero_below_positive_zero(name: str, a: int, b: int, result: int) -> None:
    assert _run([_r(name, 3, 1, 2)], {1: a, 2: b}).f[3] == result


@pytest.mark.parametrize("name", sorted(n for n, s in ROWS.items() if s.valid is not None))
def test_reserved_static_rounding_modes_do_not_decode(name: str) -> None:
    for rm in (5, 6):
        with pytest.raises(IllegalInstruction):
            DECODER.decode(_r(name, 1, 2, 3, rm))
    for rm in (0, 1, 2, 3, 4, 7):
        assert DECODER.decode(_r(name, 1, 2, 3, rm)).name == name


@pytest.mark.parametrize("frm", [5, 6, 7])
def test_reserved_dynamic_rounding_mode_is_illegal_at_run_time(frm: int) -> None:
    word = _r("fadd.d", 3, 1, 2, rm=7)
    state = run_vm([word], InitialState(x=(0,) * 32, fcsr=frm << 5 | 1), FRONTEND)
    assert state.faulted is not None and "IllegalInstruction" in state.faulted
    assert state.f[3] == 0 and state.fflags == 1
    with pytest.raises(IllegalInstruction) as info:
        get_helper("riscv.fadd.d").fn(0, 0, frm, word)
    assert info.value.word == word


def test_flags_accrue_and_the_x0_destination_is_dropped() -> None:
    state = _run([_r("feq.d", 0, 1, 1), _r("fdiv.d", 3, 2, 4)], {1: SNAN64, 2: 0x3FF0000000000000}, fcsr=1)
    assert state.x[0] == 0 and state.f[3] == 0x7FF0000000000000
    assert state.fflags == 1 | 16 | 8  # NX kept, NV from the sNaN compare, DZ from 1/0
