"""The ISA-neutral IR operations in every engine: python and llvm tiers against the reference executor.

For each new operation (the unary bit operations, rotates, ``CarryArith``,
``CondTrap``, trapping division, ``AtomicRMW`` with every op, size and
ordering, ``CompareSwap``) a one-instruction block reads its operands from
registers, runs in :func:`vm_translate.executor.execute_block` (the
definition), as a tier-1 Python function and as a tier-2 native region, on
hypothesis-drawn values, and the registers, memory and fault must agree. A
native region leaves with ``SLOW`` (the slow path then runs the
instruction) only where the reference faults or the access is one it
defers (misaligned, read-only page), and then with nothing changed.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_core.errors import GuestFault
from vm_jit.native.float_ops import HOST_HAS_MXCSR
from vm_jit.native.llvm_ir import LEFT, SLOW, native_supported
from vm_jit.pysource import compile_block
from vm_mem import PROT_READ, PROT_WRITE, AddressSpace
from vm_translate import ir
from vm_translate import softfloat as sf
from vm_translate.cpu import CpuState
from vm_translate.executor import execute_block
from vm_translate.helpers import HELPERS, NativeLowering, register_helper

from .native_harness import RegionRunner

PC = 0x1000
NEXT = 0x9000
DATA = 0x20000  # one read-write page, then a read-only one
NREGS = 8
EXAMPLES = settings(max_examples=20, deadline=None)
host_mxcsr = pytest.mark.skipif(not HOST_HAS_MXCSR, reason="native floating point needs an x86-64 host")


def edge(width: int) -> st.SearchStrategy[int]:
    m, top = ir.mask(width), 1 << (width - 1)
    return st.one_of(st.sampled_from([0, 1, m, m - 1, top, top - 1, top + 1]), st.integers(0, m))


def block(stmts: list[ir.Stmt]) -> ir.Block:
    return ir.Block("test", PC, (ir.InsnStart(PC, 4), *stmts), ir.Jump(ir.Const(NEXT)), 1, 4)


def memory(image: bytes) -> AddressSpace:
    mem = AddressSpace()
    mem.map(DATA, 0x1000, PROT_READ | PROT_WRITE, image[:0x1000])
    mem.map(DATA + 0x1000, 0x1000, PROT_READ, image[0x1000:])
    return mem


def reference(b: ir.Block, regs: list[int], image: bytes) -> tuple[Any, list[int], bytes]:
    cpu = CpuState("test", NREGS, memory(image), PC)
    cpu.regs[:] = regs
    try:
        result: Any = execute_block(b, cpu)
    except GuestFault as fault:
        result = (type(fault).__name__, fault.signo, fault.pc)
    return result, list(cpu.regs), cpu.mem.peek(DATA, 0x2000)


def python_tier(b: ir.Block, regs: list[int], image: bytes) -> tuple[Any, list[int], bytes]:
    cpu = CpuState("test", NREGS, memory(image), PC)
    cpu.regs[:] = regs
    fn = compile_block(b, cpu)
    try:
        result: Any = fn(cpu.regs)
    except GuestFault as fault:
        result = (type(fault).__name__, fault.signo, fault.pc)
    return result, list(cpu.regs), cpu.mem.peek(DATA, 0x2000)


_RUNNERS: dict[Any, tuple[RegionRunner, AddressSpace]] = {}


def native_tier(key: Any, b: ir.Block, regs: list[int], image: bytes) -> tuple[int, list[int], bytes]:
    """(status, registers, memory) after the native region of ``b`` (compiled once per ``key``)."""
    assert native_supported(b)
    entry = _RUNNERS.get(key)
    if entry is None:
        mem = memory(bytes(0x2000))
        entry = _RUNNERS[key] = (RegionRunner([b], mem, nregs=NREGS), mem)
    runner, mem = entry
    mem.poke(DATA, image)
    out = list(regs)
    status, pc, n = runner.run(out, PC)
    assert (pc, n) == ((NEXT, 1) if status == LEFT else (PC, 0))
    return status, out, mem.peek(DATA, 0x2000)


def check(
    key: Any, b: ir.Block, regs: list[int], image: bytes = bytes(0x2000), defer_ok: bool = False
) -> Any:
    """All three engines agree; returns the reference result. ``defer_ok``: native code may go slow."""
    expected = reference(b, regs, image)
    assert python_tier(b, regs, image) == expected, f"python tier differs\n{b}"
    status, native_regs, native_mem = native_tier(key, b, regs, image)
    if status == SLOW:
        assert isinstance(expected[0], tuple) or defer_ok, f"native code went slow for\n{b}"
        assert (native_regs, native_mem) == (regs, image)
    else:
        assert status == LEFT and not isinstance(expected[0], tuple)
        assert (native_regs, native_mem) == (expected[1], expected[2]), f"native tier differs\n{b}"
    return expected[0]


def value(stmts: list[ir.Stmt], reg: int, width: int, tid: int) -> ir.Temp:
    """Register ``reg`` truncated to ``width`` (temps ``tid``, ``tid + 1``)."""
    raw, out = ir.Temp(tid), ir.Temp(tid + 1, width)
    stmts += [ir.GetReg(raw, reg), ir.Ext(out, raw)]
    return out


def put(stmts: list[ir.Stmt], reg: int, v: ir.Temp, tid: int) -> None:
    wide = ir.Temp(tid)
    stmts += [ir.Ext(wide, v), ir.PutReg(reg, wide)]


def vector_from(stmts: list[ir.Stmt], low_reg: int, tid: int) -> ir.Temp:
    """A 128-bit value from registers ``low_reg`` (low half) and ``low_reg + 1`` (temps from ``tid``)."""
    lo, hi = value(stmts, low_reg, 128, tid), value(stmts, low_reg + 1, 128, tid + 2)
    shifted, out = ir.Temp(tid + 4, 128), ir.Temp(tid + 5, 128)
    stmts += [ir.BinOp(shifted, "shl", hi, ir.Const(64, 8)), ir.BinOp(out, "or", shifted, lo)]
    return out


def put_vector(stmts: list[ir.Stmt], reg: int, v: ir.Temp, tid: int) -> None:
    high = ir.Temp(tid, 128)
    stmts.append(ir.BinOp(high, "shr", v, ir.Const(64, 8)))
    put(stmts, reg, v, tid + 1)
    put(stmts, reg + 1, high, tid + 2)


WIDTHS = (1, 8, 16, 32, 64)
NEW_UNARY = ("clz", "ctz", "popcount", "bswap", "bitrev")


@pytest.mark.parametrize("width", (*WIDTHS, 128))
@pytest.mark.parametrize("op", NEW_UNARY)
@EXAMPLES
@given(data=st.data())
def test_unary_bit_ops(op: str, width: int, data: st.DataObject) -> None:
    if op == "bswap" and width == 1:
        return
    stmts: list[ir.Stmt] = []
    if width == 128:  # two registers make the operand, two receive the result
        lo, hi = value(stmts, 0, 128, 1), value(stmts, 1, 128, 3)
        x, y = ir.Temp(5, 128), ir.Temp(6, 128)
        stmts += [ir.BinOp(x, "shl", hi, ir.Const(64, 8)), ir.BinOp(y, "or", x, lo)]
    else:
        y = value(stmts, 0, width, 1)
    out = ir.Temp(10, width)
    stmts.append(ir.UnOp(out, op, y))
    put(stmts, 2, out, 11)
    if width == 128:
        high = ir.Temp(12, 128)
        stmts.append(ir.BinOp(high, "shr", out, ir.Const(64, 8)))
        put(stmts, 3, high, 13)
    regs = [data.draw(edge(64)), data.draw(edge(64))] + [0] * (NREGS - 2)
    check(("unary", op, width), block(stmts), regs)


@pytest.mark.parametrize("width", (*WIDTHS, 128))
@pytest.mark.parametrize("op", ("rotl", "rotr"))
@EXAMPLES
@given(data=st.data())
def test_rotates(op: str, width: int, data: st.DataObject) -> None:
    stmts: list[ir.Stmt] = []
    a, amount = value(stmts, 0, width, 1), value(stmts, 1, 8, 3)
    out = ir.Temp(10, width)
    stmts.append(ir.BinOp(out, op, a, amount))
    put(stmts, 2, out, 11)
    regs = [data.draw(edge(64)), data.draw(st.integers(0, 255))] + [0] * (NREGS - 2)
    check(("rotate", op, width), block(stmts), regs)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("op", ("add", "sub"))
@EXAMPLES
@given(data=st.data())
def test_carry_arith(op: str, width: int, data: st.DataObject) -> None:
    stmts: list[ir.Stmt] = []
    a, b, c = value(stmts, 0, width, 1), value(stmts, 1, width, 3), value(stmts, 2, 1, 5)
    dsts = (ir.Temp(10, width), ir.Temp(11, 1), ir.Temp(12, 1))
    stmts.append(ir.CarryArith(dsts, op, a, b, c))
    for reg, d in enumerate(dsts, start=3):
        put(stmts, reg, d, 20 + reg)
    regs = [data.draw(edge(64)), data.draw(edge(64)), data.draw(st.integers(0, 1))] + [0] * (NREGS - 3)
    check(("carry", op, width), block(stmts), regs)


@pytest.mark.parametrize("op", sorted(ir.DIVISION_OPS))
@pytest.mark.parametrize("width", (8, 32, 64, 128))
@EXAMPLES
@given(data=st.data())
def test_division_traps_exactly_where_the_ir_says(op: str, width: int, data: st.DataObject) -> None:
    """At 128 bits (tier 2: its own long division) operands and result are register pairs."""
    stmts: list[ir.Stmt] = []
    if width == 128:
        a, d = vector_from(stmts, 0, 1), vector_from(stmts, 2, 10)
    else:
        a, d = value(stmts, 0, width, 1), value(stmts, 2, width, 10)
    out = ir.Temp(30, width)
    stmts.append(ir.BinOp(out, op, a, d))
    if width == 128:
        put_vector(stmts, 4, out, 31)
    else:
        put(stmts, 4, out, 31)
    divisor = data.draw(st.one_of(st.sampled_from([0, ir.mask(width), 1, 3]), edge(width)))
    dividend = data.draw(
        st.one_of(edge(width), st.integers(0, ir.mask(width)).map(lambda v: v >> (v % width)))
    )
    regs = [dividend & ir.mask(64), dividend >> 64, divisor & ir.mask(64), divisor >> 64, 0, 0, 0, 0]
    result = check(("divide", op, width), block(stmts), regs)
    if divisor == 0:
        assert result == ("DivideError", 8, PC)


@EXAMPLES
@given(cond=st.integers(0, 1), signo=st.sampled_from((5, 8, 11)), code=st.integers(0, 0x80))
def test_cond_trap(cond: int, signo: int, code: int) -> None:
    stmts: list[ir.Stmt] = []
    c = value(stmts, 0, 1, 1)
    stmts += [ir.CondTrap(c, signo, code), ir.PutReg(1, ir.Const(42))]
    b = block(stmts)
    result = check(("trap", signo, code), b, [cond] + [0] * (NREGS - 1))
    assert result == (("GuestTrap", signo, PC) if cond else NEXT)


def addresses(size: int) -> st.SearchStrategy[int]:
    """Mostly aligned in the read-write page; sometimes misaligned, read-only or unmapped."""
    aligned = st.integers(0, 0x1000 // size - 1).map(lambda k: DATA + k * size)
    return st.one_of(aligned, aligned, aligned, st.integers(DATA, DATA + 0x2000 - size),
                     st.sampled_from((DATA + 0x1000, DATA + 0x3000)))  # fmt: skip


def image(seed: int) -> bytes:
    return random.Random(seed).randbytes(0x2000)


def deferred(addr: int, size: int) -> bool:
    """Accesses native code leaves to the slow path even where they succeed."""
    return addr % size != 0 or not DATA <= addr < DATA + 0x1000


@pytest.mark.parametrize("size", (1, 2, 4, 8))
@pytest.mark.parametrize("op", sorted(ir.ATOMIC_OPS))
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_atomic_rmw(op: str, size: int, data: st.DataObject) -> None:
    order = data.draw(st.sampled_from(ir.ORDERINGS))
    addr = data.draw(addresses(size))
    stmts: list[ir.Stmt] = [ir.GetReg(ir.Temp(1), 0)]
    src = value(stmts, 1, size * 8, 2)
    old = ir.Temp(10, size * 8)
    stmts.append(ir.AtomicRMW(old, op, ir.Temp(1), src, size, order))
    put(stmts, 2, old, 11)
    regs = [addr, data.draw(edge(64))] + [0] * (NREGS - 2)
    check(
        ("rmw", op, size, order),
        block(stmts),
        regs,
        image(data.draw(st.integers(0, 99))),
        deferred(addr, size),
    )


@pytest.mark.parametrize("size", (1, 2, 4, 8, 16))
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_compare_swap(size: int, data: st.DataObject) -> None:
    """Sizes 1-8 from one register each; 16 bytes (``cmpxchg i128``) from register pairs."""
    order = data.draw(st.sampled_from(ir.ORDERINGS))
    addr = data.draw(addresses(size))
    mem = image(data.draw(st.integers(0, 99)))
    stmts: list[ir.Stmt] = [ir.GetReg(ir.Temp(1), 0)]
    old, ok = ir.Temp(30, size * 8), ir.Temp(40, 1)
    if size == 16:
        expected, new = vector_from(stmts, 1, 2), vector_from(stmts, 3, 10)
    else:
        expected, new = value(stmts, 1, size * 8, 2), value(stmts, 3, size * 8, 10)
    stmts += [ir.CompareSwap(old, ir.Temp(1), expected, new, size, order), ir.BinOp(ok, "eq", old, expected)]
    if size == 16:
        put_vector(stmts, 5, old, 31)
    else:
        put(stmts, 5, old, 31)
    put(stmts, 7, ok, 41)
    offset = addr - DATA
    current = int.from_bytes(mem[offset : offset + size], "little") if 0 <= offset <= 0x2000 - size else 0
    guess = data.draw(st.one_of(st.just(current), edge(size * 8)))  # succeed often
    replacement = data.draw(edge(size * 8))
    regs = [addr, guess & ir.mask(64), guess >> 64, replacement & ir.mask(64), replacement >> 64, 0, 0, 0]
    check(("cas", size, order), block(stmts), regs, mem, deferred(addr, size))


def test_native_code_knows_helpers_by_their_declared_lowering_not_by_name() -> None:
    """llvm_ir names no ISA; every floating-point lowering op has a helper declaring it, and vice versa."""
    import vm_jit.native.llvm_ir as llvm_ir
    import vm_translate.riscv.rv64d  # noqa: F401  (registers the RISC-V F and D helpers)
    from vm_jit.native.float_ops import FLOAT_OPS, HOST_HAS_MXCSR
    from vm_translate.helpers import HELPERS

    source = Path(llvm_ir.__file__).read_text()
    assert "riscv" not in source.lower()
    declared = {h.native.op for h in HELPERS.values() if h.native is not None and h.native.kind == "float"}
    if HOST_HAS_MXCSR:
        assert set(FLOAT_OPS) <= declared
    kinds = {h.native.kind for h in HELPERS.values() if h.native is not None}
    assert kinds <= llvm_ir.NATIVE_LOWERINGS


VECTOR_CASES = [(op, lane) for op in sorted(ir.VECTOR_OPS) for lane in ir.vector_lanes(op)]


def lanes(lane: int) -> st.SearchStrategy[int]:
    """128-bit values built from edge-case lanes."""
    return st.lists(edge(lane), min_size=128 // lane, max_size=128 // lane).map(
        lambda vs: sum(v << (i * lane) for i, v in enumerate(vs))
    )


@pytest.mark.parametrize(("op", "lane"), VECTOR_CASES)
@EXAMPLES
@given(data=st.data())
def test_vector_ops(op: str, lane: int, data: st.DataObject) -> None:
    stmts: list[ir.Stmt] = []
    a = vector_from(stmts, 0, 1)
    width = 128
    if op == "dup":  # a scalar of any width
        width = data.draw(st.sampled_from((8, 16, 32, 64, 128)))
        a = value(stmts, 0, width, 40) if width < 128 else a
    if op in ir.VECTOR_SHIFTS:
        b: ir.Operand = value(stmts, 2, 64, 10)
        second = data.draw(st.one_of(st.integers(0, lane + 2), edge(64)))
        b_regs = [second, 0]
    else:
        b = vector_from(stmts, 2, 10)
        if op == "shuffle":
            second = data.draw(st.lists(st.one_of(st.integers(0, 15), st.integers(0, 255)), min_size=16, max_size=16)
                               .map(lambda vs: sum(v << (8 * i) for i, v in enumerate(vs))))  # fmt: skip
        else:
            second = data.draw(lanes(lane))
        b_regs = [second & ir.mask(64), second >> 64]
    out = ir.Temp(30, 128)
    stmts.append(ir.VecOp(out, op, lane, a, b))
    put_vector(stmts, 4, out, 31)
    first = data.draw(lanes(lane))
    regs = [first & ir.mask(64), first >> 64, *b_regs] + [0] * (NREGS - 4)
    check(("vector", op, lane, width), block(stmts), regs)


# -- floating point under a front end's FloatPolicy -------------------------------------------------


def _policy_helper(name: str, op: str, policy: sf.FloatPolicy, fn: Any) -> str:
    """Register (once) a two-result float helper ``name`` whose native lowering is ``op`` under ``policy``."""
    if name not in HELPERS:
        register_helper(name, results=2, native=NativeLowering("float", op, policy))(fn)
    return name


#: Default NaNs (what native code lowers) with AArch64's FPSR flag layout, and with x86's invalid conversions.
FPSR_LAYOUT = sf.FloatPolicy(sf.DEFAULT_NAN, sf.AARCH64.conversion, sf.AARCH64.flags)
X86_CONVERSIONS = sf.FloatPolicy(sf.DEFAULT_NAN, sf.X86_SSE.conversion, sf.X86_SSE.flags)


def _add_fpsr(a: int, b: int, rm: int, word: int) -> tuple[int, int]:
    value, flags = sf.add(sf.F64, a, b, rm, nan=FPSR_LAYOUT.nan)
    return value, FPSR_LAYOUT.flags.encode(flags)


def _to_int_x86(a: int, rm: int, word: int) -> tuple[int, int]:
    value, flags = sf.to_int(sf.F64, a, rm, 64, True, X86_CONVERSIONS.conversion)
    return value, X86_CONVERSIONS.flags.encode(flags)


def _add_propagating(a: int, b: int, rm: int, word: int) -> tuple[int, int]:
    value, flags = sf.add(sf.F64, a, b, rm, nan=sf.X86_SSE.nan)
    return value, sf.X86_SSE.flags.encode(flags)


def float_block(helper: str, nargs: int, rm: int) -> ir.Block:
    stmts: list[ir.Stmt] = []
    args = [value(stmts, i, 64, 1 + 2 * i) for i in range(nargs)]
    out, flags = ir.Temp(20), ir.Temp(21)
    stmts.append(ir.Call((out, flags), helper, (*args, ir.Const(rm), ir.Const(0))))
    stmts += [ir.PutReg(4, out), ir.PutReg(5, flags)]
    return block(stmts)


def doubles() -> st.SearchStrategy[int]:
    special = [0, 1 << 63, 0x7FF0 << 48, 0xFFF0 << 48, 0x7FF8 << 48, 0x7FF0 << 48 | 1, 0x3FF0 << 48, 0x43E0 << 48,
               0xC3E0 << 48, 0x43DF_FFFF_FFFF_FFFF, 0x0010 << 48, 0x7FEF_FFFF_FFFF_FFFF]  # fmt: skip
    return st.one_of(st.sampled_from(special), st.integers(0, ir.mask(64)))


@host_mxcsr
@settings(max_examples=60, deadline=None)
@given(a=doubles(), b=doubles(), rm=st.integers(0, 3))
def test_native_float_flags_in_the_policys_layout(a: int, b: int, rm: int) -> None:
    """fadd.d with AArch64's FPSR layout: the python and llvm tiers give the helper's (value, flags)."""
    b_ = float_block(_policy_helper("test.fadd.d.fpsr", "add.f64", FPSR_LAYOUT, _add_fpsr), 2, rm)
    assert native_supported(b_)
    value_, flags = _add_fpsr(a, b, rm, 0)
    nan_operand = any(x & ir.mask(63) > 0x7FF0 << 48 for x in (a, b))
    tiny = value_ & ir.mask(63) <= 0x0010 << 48 and flags & FPSR_LAYOUT.flags.inexact
    check(("fpsr", rm), b_, [a, b] + [0] * (NREGS - 2), defer_ok=nan_operand or bool(tiny))


@host_mxcsr
@settings(max_examples=60, deadline=None)
@given(a=doubles(), rm=st.integers(0, 3))
def test_native_float_to_int_under_the_policys_invalid_results(a: int, rm: int) -> None:
    """fcvt.l.d with x86's integer indefinite: in range natively, out of range through the helper (slow path)."""
    b_ = float_block(_policy_helper("test.fcvt.l.d.x86", "to_i64.f64", X86_CONVERSIONS, _to_int_x86), 1, rm)
    regs = [a] + [0] * (NREGS - 1)
    expected = reference(b_, regs, bytes(0x2000))
    status, native_regs, _ = native_tier(("x86cvt", rm), b_, regs, bytes(0x2000))
    if expected[1][5] & X86_CONVERSIONS.flags.invalid:
        assert status == SLOW and native_regs == regs  # the slow path's helper gives 0x8000...
        assert expected[1][4] == 1 << 63
    else:
        assert (status, native_regs) == (LEFT, expected[1])


def test_a_propagating_nan_policy_keeps_its_blocks_in_tier_one() -> None:
    b_ = float_block(_policy_helper("test.fadd.d.x86", "add.f64", sf.X86_SSE, _add_propagating), 2, 0)
    assert not native_supported(b_)
