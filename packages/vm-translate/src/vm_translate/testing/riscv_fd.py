"""Hypothesis strategies of RV64F/RV64D instructions, sequences and initial states for differential tests.

Used by vm-translate's ``test_riscv_fd`` and vm-jit's engine tests: operands biased to the
special values of each format (properly NaN-boxed singles), every rounding mode, compressed
loads and stores, and initial states with f registers and ``fcsr``.
"""

from __future__ import annotations

import random

from hypothesis import strategies as st

from vm_translate.riscv import RiscvFrontEnd, rv64d, rv64f
from vm_translate.riscv.decoder import Decoder, InsnSpec
from vm_translate.testing.unicorn_oracle import (
    DATA,
    EDGE_VALUES,
    PAGE,
    InitialState,
    data_pages,
    reg_values,
)

FRONTEND = RiscvFrontEnd()
DECODER = Decoder()
BOX = 0xFFFFFFFF_00000000
MASK64 = (1 << 64) - 1

ROWS: dict[str, InsnSpec] = {spec.name: spec for spec in rv64f.INSTRUCTIONS + rv64d.INSTRUCTIONS}

#: Single-precision values live in these f registers, double-precision ones in the others,
#: so Unicorn's unboxed single results never meet a double-precision instruction.
S_REGS = (*range(0, 8), *range(16, 24))
D_REGS = (*range(8, 16), *range(24, 32))
#: Integer destinations (x0 checks the write is dropped); x2 and x8 hold the data-page address.
X_DESTS = (0, *range(10, 18))
BASE_REGS = (2, 8)

F32_SPECIALS = (
    0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FA00000,
    0xFFBFFFFF, 0x00000001, 0x80000001, 0x007FFFFF, 0x807FFFFF, 0x00800000, 0x80800000, 0x7F7FFFFF,
    0xFF7FFFFF, 0x3F800000, 0xBF800000, 0x3F000000, 0xBF000000, 0x3FC00000, 0x40400000, 0x4B000000,
    0x4B000001, 0x4EFFFFFF, 0x4F000000, 0xCF000000, 0xCF000001, 0x4F800000, 0x5EFFFFFF, 0x5F000000,
    0xDF000000, 0x5F800000, 0x33800000, 0x34000000, 0x00FFFFFF, 0x3F7FFFFF, 0x3F800001,
)  # fmt: skip
F64_SPECIALS = (
    0, 1 << 63, 0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000, 0xFFF8000000000000,
    0x7FF0000000000001, 0x7FF4000000000000, 0xFFF7FFFFFFFFFFFF, 1, 0x8000000000000001,
    0x000FFFFFFFFFFFFF, 0x800FFFFFFFFFFFFF, 0x0010000000000000, 0x8010000000000000,
    0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF, 0x3FF0000000000000, 0xBFF0000000000000,
    0x3FE0000000000000, 0xBFE0000000000000, 0x3FF8000000000000, 0x4330000000000000,
    0x4330000000000001, 0x41DFFFFFFFC00000, 0x41E0000000000000, 0xC1E0000000000000,
    0xC1E0000000200000, 0x41F0000000000000, 0x43DFFFFFFFFFFFFF, 0x43E0000000000000,
    0xC3E0000000000000, 0x43F0000000000000, 0x3CA0000000000000, 0x3CB0000000000000,
    0x47EFFFFFE0000000, 0x47EFFFFFF0000000, 0x3810000000000000, 0x380FFFFFF0000000,
    0x36A0000000000000, 0x3FEFFFFFFFFFFFFF, 0x3FF0000000000001,
)  # fmt: skip


def _near(specials: tuple[int, ...], width: int) -> st.SearchStrategy[int]:
    """Special values, their neighbours (±1 ulp) and sign flips."""
    mask = (1 << width) - 1
    return st.builds(
        lambda v, delta, flip: ((v + delta) & mask) ^ (flip << (width - 1)),
        st.sampled_from(specials),
        st.integers(-2, 2),
        st.integers(0, 1),
    )


def _short_significands(width: int, frac_bits: int) -> st.SearchStrategy[int]:
    """Random values keeping only the top ``keep`` fraction bits: their sums and products often land
    exactly on, or exactly half-way between, representable numbers."""
    return st.builds(
        lambda sign, exp, frac, keep: (sign << (width - 1)) | (exp << frac_bits) | (frac >> keep << keep),
        st.integers(0, 1),
        st.integers(0, (1 << (width - frac_bits - 1)) - 1),
        st.integers(0, (1 << frac_bits) - 1),
        st.integers(0, frac_bits),
    )


def f32_values() -> st.SearchStrategy[int]:
    """Binary32 patterns biased to special values, NaN-boxed as a 64-bit f-register value."""
    return st.one_of(
        st.sampled_from(F32_SPECIALS),
        _near(F32_SPECIALS, 32),
        _short_significands(32, 23),
        st.integers(0, 0xFFFFFFFF),
    ).map(lambda v: BOX | v)


def f64_values() -> st.SearchStrategy[int]:
    """Binary64 patterns biased to special values."""
    return st.one_of(
        st.sampled_from(F64_SPECIALS),
        _near(F64_SPECIALS, 64),
        _short_significands(64, 52),
        st.integers(0, MASK64),
    )


def fcsr_values(max_frm: int = 7) -> st.SearchStrategy[int]:
    return st.builds(lambda frm, flags: frm << 5 | flags, st.integers(0, max_frm), st.integers(0, 31))


# -- operand typing and word generation ---------------------------------------------------------


def operand_kinds(name: str) -> tuple[str, str]:
    """``(destination kind, source kinds in rs1/rs2/rs3 order)`` with kinds s, d (f registers) and x."""
    if name in ("flw", "fld"):
        return ("s" if name == "flw" else "d"), "x"
    if name in ("fsw", "fsd"):
        return "-", "x" + ("s" if name == "fsw" else "d")
    moves = {"fmv.x.w": ("x", "s"), "fmv.w.x": ("s", "x"), "fmv.x.d": ("x", "d"), "fmv.d.x": ("d", "x")}
    if name in moves:
        return moves[name]
    stem, *parts = name.split(".")
    if stem == "fcvt":
        dst, src = parts
        return ("x" if dst not in "sd" else dst), ("x" if src not in "sd" else src)
    prec = parts[0]
    if stem in ("feq", "flt", "fle"):
        return "x", prec * 2
    if stem == "fclass":
        return "x", prec
    if stem == "fsqrt":
        return prec, prec
    if stem in ("fmadd", "fmsub", "fnmsub", "fnmadd"):
        return prec, prec * 3
    return prec, prec * 2


def _register(kind: str, draw: st.DrawFn) -> int:
    if kind == "s":
        return draw(st.sampled_from(S_REGS))
    if kind == "d":
        return draw(st.sampled_from(D_REGS))
    return draw(st.integers(0, 31))


@st.composite
def instruction_words(draw: st.DrawFn, name: str, rm_values: tuple[int, ...] = tuple(range(8))) -> int:
    """A word of row ``name`` with registers of the right precision (memory rows address the data page)."""
    spec = ROWS[name]
    dst, srcs = operand_kinds(name)
    if spec.format in ("I", "S"):
        size = 4 if name in ("flw", "fsw") else 8
        base = draw(st.sampled_from(BASE_REGS))
        offset = draw(st.integers(0, 0x7F8 // size)) * size
        if spec.format == "I":
            rd = _register(dst, draw)
            return spec.match | offset << 20 | base << 15 | rd << 7
        rs2 = _register(srcs[1], draw)
        return spec.match | (offset >> 5) << 25 | rs2 << 20 | base << 15 | (offset & 31) << 7
    rd = draw(st.sampled_from(X_DESTS)) if dst == "x" else _register(dst, draw)
    regs = [_register(kind, draw) for kind in srcs]
    word = spec.match | rd << 7 | regs[0] << 15
    if len(regs) > 1:
        word |= regs[1] << 20
    if len(regs) > 2:
        word |= regs[2] << 27
    if not spec.mask & (7 << 12):
        word |= draw(st.sampled_from(rm_values)) << 12
    return word


@st.composite
def compressed_fp_words(draw: st.DrawFn) -> int:
    """c.fld / c.fsd (base x8, f8..f15) and c.fldsp / c.fsdsp (base sp = x2) on the data page."""
    kind = draw(st.sampled_from(("c.fld", "c.fsd", "c.fldsp", "c.fsdsp")))
    if kind in ("c.fld", "c.fsd"):
        uimm = draw(st.integers(0, 31)) * 8
        reg = draw(st.integers(0, 7))  # f8 + reg: a double-precision register
        funct3 = 0b001 if kind == "c.fld" else 0b101
        return funct3 << 13 | ((uimm >> 3) & 7) << 10 | 0 << 7 | (uimm >> 6) << 5 | reg << 2
    uimm = draw(st.integers(0, 63)) * 8
    reg = draw(st.sampled_from(D_REGS))
    if kind == "c.fldsp":
        return (
            0b001 << 13 | ((uimm >> 5) & 1) << 12 | reg << 7 | ((uimm >> 3) & 3) << 5 | (uimm >> 6) << 2 | 2
        )
    return 0b101 << 13 | ((uimm >> 3) & 7) << 10 | (uimm >> 6) << 7 | reg << 2 | 2


def _seeded_f(rng: random.Random) -> list[int]:
    """Background f-register values (the registers an instruction does not read are drawn cheaply)."""
    values = []
    for i in range(32):
        single = i in S_REGS
        specials, width = (F32_SPECIALS, 32) if single else (F64_SPECIALS, 64)
        value = rng.choice(specials) if rng.random() < 0.6 else rng.getrandbits(width)
        values.append(BOX | value if single else value)
    return values


def _seeded_x(rng: random.Random) -> list[int]:
    return [0] + [rng.choice(EDGE_VALUES) if rng.random() < 0.5 else rng.getrandbits(64) for _ in range(31)]


@st.composite
def initial_states(
    draw: st.DrawFn, max_frm: int = 7, word: int | None = None, name: str = "", memory: bool = True
) -> InitialState:
    """Registers from a seed, plus hypothesis-drawn values for the operands ``word`` (of row ``name``) reads."""
    rng = random.Random(draw(st.integers(0, 2**64 - 1), label="seed"))
    f = _seeded_f(rng)
    x = _seeded_x(rng)
    if word is not None:
        _dst, srcs = operand_kinds(name)
        for kind, shift in zip(srcs, (15, 20, 27)):
            reg = (word >> shift) & 31
            if kind == "s":
                f[reg] = draw(f32_values())
            elif kind == "d":
                f[reg] = draw(f64_values())
            elif reg:
                x[reg] = draw(reg_values())
    for base in BASE_REGS:
        x[base] = DATA
    data = draw(data_pages()) if memory else bytes(PAGE)
    return InitialState(x=tuple(x), data=data, f=tuple(f), fcsr=draw(fcsr_values(max_frm)))




SEQUENCE_ROWS = sorted(name for name in ROWS if name[:4] not in ("fmin", "fmax"))


@st.composite
def fp_sequences(draw: st.DrawFn) -> list[int]:
    def one() -> st.SearchStrategy[int]:
        return st.sampled_from(SEQUENCE_ROWS).flatmap(lambda n: instruction_words(n, (0, 1, 2, 3, 4, 7)))

    return draw(st.lists(st.one_of(one(), one(), one(), compressed_fp_words()), min_size=1, max_size=12))
