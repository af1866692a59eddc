"""Native floating point (vm_jit.native.float_ops) checked instruction by instruction against softfloat.

Every RV64F/D instruction that vm-translate lifts to a helper call is
encoded (static rounding modes and DYN), lifted by the real front end,
compiled alone into a native region, and run on hypothesis-drawn register
values: zeros, infinities, quiet and signaling NaNs, subnormals, the
normal-range limits, rounding ties, integer-conversion boundaries, badly
NaN-boxed singles and random bit patterns, with every ``frm`` from 0 to 7.
The result must be the reference executor's (vm-translate's softfloat,
itself checked against Unicorn): registers, ``fflags`` and next pc. Where
native code declines (status SLOW, registers untouched), the engine runs
the instruction on the reference path, and so does this test. A second
test checks that ordinary operands (normal range, round to nearest) stay on
the fast path, so the first cannot pass by always declining.
"""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_jit.native.float_ops import HOST_HAS_MXCSR
from vm_jit.native.llvm_ir import LEFT, SLOW, native_supported
from vm_mem import PROT_EXEC, PROT_READ, AddressSpace
from vm_translate import ir
from vm_translate.cpu import CpuState
from vm_translate.executor import execute_block
from vm_translate.riscv import rv64d, rv64f
from vm_translate.riscv.registers import F0, FFLAGS, FRM

from .engine_harness import FRONTEND
from .native_harness import RegionRunner

pytestmark = pytest.mark.skipif(not HOST_HAS_MXCSR, reason="native floating point is x86-64 only")

PC = 0x10000
NREGS = 67
BOX = 0xFFFFFFFF_00000000
RD, RS1, RS2, RS3 = 1, 2, 3, 4


def d(x: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", x))[0])


def s(x: float) -> int:
    return BOX | struct.unpack("<I", struct.pack("<f", x))[0]


_SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 2.5, -2.5, 3.0, 0.1, 1e-3, math.pi, math.inf, -math.inf,
            2.0**31, -(2.0**31), 2.0**31 - 1, 2.0**32, 2.0**32 - 1, 2.0**63, -(2.0**63), 2.0**64,
            4294967295.5, -0.5, -1.5, 1e300, -1e300]  # fmt: skip
F64_EDGES = [d(x) for x in _SPECIAL] + [
    0x7FF80000_00000000, 0xFFF80000_00000000, 0x7FF00000_00000001, 0x7FF40000_00000000,  # NaNs
    1, 0x000FFFFF_FFFFFFFF, 0x00100000_00000000, 0x00100000_00000001, 0x7FEFFFFF_FFFFFFFF,  # limits
    0x80000000_00000001, 0x3FF00000_00000001, 0x3CA00000_00000000,
]
F32_EDGES = [s(x) for x in _SPECIAL if abs(x) < 3e38 or math.isinf(x)] + [
    BOX | 0x7FC00000, BOX | 0xFFC00000, BOX | 0x7F800001, BOX | 0x7FA00000, BOX | 1, BOX | 0x007FFFFF,
    BOX | 0x00800000, BOX | 0x7F7FFFFF, BOX | 0x80000001, 0x3F800000, 0x12345678_3F800000,
]
F64_VALUES = st.one_of(
    st.sampled_from(F64_EDGES), st.integers(0, (1 << 64) - 1), st.floats(width=64).map(d),
    st.floats(min_value=-1e6, max_value=1e6).map(d),
)  # fmt: skip
F32_VALUES = st.one_of(
    st.sampled_from(F32_EDGES), st.integers(0, (1 << 32) - 1).map(lambda v: BOX | v),
    st.floats(width=32).map(s), st.integers(0, (1 << 64) - 1),
)  # fmt: skip
INT_VALUES = st.one_of(
    st.sampled_from([0, 1, (1 << 64) - 1, 1 << 63, (1 << 63) - 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                     (1 << 53) + 1, (1 << 24) + 1, 0xFFFFFFFF_80000000]),
    st.integers(0, (1 << 64) - 1),
)  # fmt: skip


def _rows() -> list[rv64f.InsnSpec]:
    """The F/D rows whose lifting calls a helper (arithmetic, conversions, compares, fclass, fsgnj.s)."""
    rows = []
    for spec in (*rv64f.INSTRUCTIONS, *rv64d.INSTRUCTIONS):
        if spec.match & 0x7F in (rv64f.OP_LOAD_FP, rv64f.OP_STORE_FP) or spec.name.startswith("fmv"):
            continue
        if spec.name.startswith("fsgnj") and spec.name.endswith(".d"):
            continue
        rows.append(spec)
    return rows


ROWS = _rows()


def encode(spec: rv64f.InsnSpec, rm: int) -> int:
    fields = RD << 7 | rm << 12 | RS1 << 15 | RS2 << 20 | RS3 << 27
    return spec.match | (fields & ~spec.mask & 0xFFFFFFFF)


def lifted(word: int) -> tuple[ir.Block, AddressSpace]:
    mem = AddressSpace()
    mem.map(PC, 0x1000, PROT_READ | PROT_EXEC)
    mem.poke(PC, word.to_bytes(4, "little"))
    return FRONTEND.lift_block(mem, PC, 1), mem


def uses_rm(spec: rv64f.InsnSpec) -> bool:
    return spec.mask & 0x7000 == 0


def operands_of(name: str) -> tuple[st.SearchStrategy[int], bool]:
    """The value strategy for the f registers of ``name`` and whether rs1 is an x register."""
    precision = name.rsplit(".", 1)[1]
    from_int = name.startswith("fcvt.") and name.split(".")[2] in ("w", "wu", "l", "lu")
    if name in ("fcvt.d.s",):
        return F32_VALUES, False
    if name in ("fcvt.s.d",):
        return F64_VALUES, False
    return (F32_VALUES if precision == "s" or name.split(".")[1] == "s" else F64_VALUES), from_int


_RUNNERS: dict[int, tuple[ir.Block, AddressSpace, RegionRunner | None]] = {}


def compiled(word: int) -> tuple[ir.Block, AddressSpace, RegionRunner | None]:
    if word not in _RUNNERS:
        block, mem = lifted(word)
        runner = RegionRunner([block], mem, NREGS) if native_supported(block) else None
        _RUNNERS[word] = (block, mem, runner)
    return _RUNNERS[word]


def reference(block: ir.Block, regs: list[int], mem: AddressSpace) -> tuple[list[int], int | str]:
    cpu = CpuState("riscv64", NREGS, mem)
    cpu.regs[:] = regs
    try:
        return cpu.regs, execute_block(block, cpu)
    except Exception as err:  # an illegal rounding mode: the slow path raises the same fault
        return list(regs), type(err).__name__


def native_or_slow(word: int, regs: list[int]) -> tuple[list[int], int | str, int]:
    """Run like the engine does: natively, and on SLOW the reference path; (regs, next pc, status)."""
    block, mem, runner = compiled(word)
    assert runner is not None
    start = list(regs)
    status, pc, n = runner.run(regs, PC)
    if status == SLOW:
        assert (pc, n) == (PC, 0) and regs == start, "a slow exit must leave the registers untouched"
        result, next_pc = reference(block, regs, mem)
        return result, next_pc, status
    assert status == LEFT and n == 1
    return regs, pc, status


def start_registers(name: str, values: list[int], x: int, frm: int, fflags: int) -> list[int]:
    regs = [0] * NREGS
    regs[RS1] = x
    for k, value in enumerate(values):
        regs[F0 + RS1 + k] = value
    regs[FRM], regs[FFLAGS] = frm, fflags
    return regs


@pytest.mark.parametrize("spec", ROWS, ids=lambda r: r.name)
@settings(max_examples=120, deadline=None)
@given(data=st.data(), x=INT_VALUES, frm=st.integers(0, 7), fflags=st.integers(0, 31),
       rm=st.sampled_from([0, 1, 2, 3, 7]))  # fmt: skip
def test_native_float_matches_softfloat(spec: rv64f.InsnSpec, data: st.DataObject, x: int, frm: int,
                                        fflags: int, rm: int) -> None:  # fmt: skip
    word = encode(spec, rm if uses_rm(spec) else 0)
    block, mem, runner = compiled(word)
    assert runner is not None, f"{spec.name} rm={rm} is not compiled natively"
    strategy, _ = operands_of(spec.name)
    values = [data.draw(strategy) for _ in range(3)]
    regs = start_registers(spec.name, values, x, frm, fflags)
    expected, expected_pc = reference(block, list(regs), mem)
    got, got_pc, _status = native_or_slow(word, regs)
    assert got_pc == expected_pc
    assert got == expected, (
        f"{spec.name}: f{RD}/x{RD} {got[F0 + RD]:#x}/{got[RD]:#x} fflags {got[FFLAGS]:#x}, "
        f"softfloat {expected[F0 + RD]:#x}/{expected[RD]:#x} fflags {expected[FFLAGS]:#x}"
    )


def test_round_to_nearest_away_stays_in_tier_one() -> None:
    block, _mem = lifted(encode(next(r for r in ROWS if r.name == "fadd.d"), 4))
    assert not native_supported(block)


ORDINARY = st.floats(min_value=1e-3, max_value=1e3).flatmap(lambda m: st.sampled_from([m, -m]))


@pytest.mark.parametrize("name", ["fadd.d", "fsub.d", "fmul.d", "fdiv.d", "fsqrt.d", "fmadd.d", "fnmsub.d",
                                  "fmin.d", "flt.d", "feq.d", "fcvt.l.d", "fcvt.w.d", "fcvt.d.l", "fcvt.s.d",
                                  "fadd.s", "fmul.s", "fmadd.s", "fcvt.d.s", "fcvt.w.s", "fle.s",
                                  "fclass.d", "fsgnjn.s"])  # fmt: skip
@settings(max_examples=40, deadline=None)
@given(a=ORDINARY, b=ORDINARY, c=ORDINARY, rm=st.sampled_from([1, 7]))
def test_ordinary_operands_stay_native(name: str, a: float, b: float, c: float, rm: int) -> None:
    spec = next(r for r in ROWS if r.name == name)
    word = encode(spec, rm if uses_rm(spec) else 0)
    pack = s if name.endswith(".s") else d  # the operand precision
    if name == "fsqrt.d":
        a = abs(a)
    regs = start_registers(name, [pack(a), pack(b), pack(c)], 12345, 0, 0)
    _got, _pc, status = native_or_slow(word, regs)
    assert status == LEFT, f"{name}({a}, {b}, {c}) left native code"
