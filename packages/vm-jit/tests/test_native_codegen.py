"""Native code generation checked op by op against the reference executor (vm-translate's definition of IR).

Each test compiles one small IR region (registers in, operation, registers
out) to native code once and runs it on hypothesis-drawn values: every
binary op (a division by zero or signed overflow, which traps in the IR,
leaves for the slow path with nothing changed), shifts and rotates by
amounts of any width, compares, unary ops, extensions, selects, loads and
stores of each size with sign extension, the natively implemented helpers,
and the exits: a page-table miss or page-crossing access leaves with
status SLOW at the instruction's pc with registers untouched, budgets stop
before a block that does not fit, indirect jumps dispatch to region blocks.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_jit.native.llvm_ir import LEFT, SLOW, SYSCALL, TRAP, native_supported
from vm_mem import PROT_READ, PROT_WRITE, AddressSpace
from vm_translate import ir
from vm_translate.cpu import CpuState
from vm_translate.executor import execute_block

from .native_harness import RegionRunner

PC = 0x1000
DATA = 0x20000
U64 = st.integers(0, (1 << 64) - 1)
WIDTHS = (8, 16, 32, 64)
BINOPS = sorted(ir.BINARY_OPS)
EDGE = st.sampled_from([0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                        (1 << 63) - 1, 1 << 63, (1 << 64) - 1, (1 << 64) - 2])  # fmt: skip
VALUES = st.one_of(U64, EDGE)


def t(i: int, w: int = 64) -> ir.Temp:
    return ir.Temp(i, w)


def block(stmts: list[ir.Stmt], exit_: ir.Exit | None = None, pc: int = PC, insns: int = 1) -> ir.Block:
    starts = [ir.InsnStart(pc + 4 * k, 4) for k in range(insns)]
    return ir.Block("riscv64", pc, (*starts[:1], *stmts, *starts[1:]), exit_ or ir.Jump(ir.Const(0x9000)), insns,
                    4 * insns)  # fmt: skip


def memory() -> AddressSpace:
    mem = AddressSpace()
    mem.map(DATA, 0x1000, PROT_READ | PROT_WRITE)
    mem.map(DATA + 0x1000, 0x1000, PROT_READ)
    return mem


def reference(b: ir.Block, regs: list[int], mem: AddressSpace, icount: int = 0) -> tuple[list[int], int]:
    cpu = CpuState("riscv64", len(regs), mem)
    cpu.regs[:] = regs
    cpu.icount = icount
    next_pc = execute_block(b, cpu)
    return cpu.regs, next_pc


SHIFTS = ("shl", "shr", "sar", "rotl", "rotr")


def binop_block(op: str, w: int, amount_width: int) -> ir.Block:
    stmts: list[ir.Stmt] = [ir.GetReg(t(1), 1), ir.GetReg(t(2), 2), ir.Ext(t(3, w), t(1)),
                            ir.Ext(t(4, amount_width if op in SHIFTS else w), t(2))]  # fmt: skip
    if op in ir.COMPARE_OPS:
        stmts += [ir.BinOp(t(5, 1), op, t(3, w), t(4, w)), ir.Ext(t(6), t(5, 1))]
    else:
        b_op = t(4, amount_width) if op in SHIFTS else t(4, w)
        stmts += [ir.BinOp(t(5, w), op, t(3, w), b_op), ir.Ext(t(6), t(5, w), signed=True)]
    stmts.append(ir.PutReg(3, t(6)))
    return block(stmts)


_RUNNERS: dict[tuple[object, ...], RegionRunner] = {}


def runner_for(key: tuple[object, ...], b: ir.Block, mem: AddressSpace) -> RegionRunner:
    runner = _RUNNERS.get(key)
    if runner is None:
        runner = _RUNNERS[key] = RegionRunner([b], mem)
    return runner


OPS = sorted(ir.BINARY_OPS | ir.COMPARE_OPS)
MEM = memory()


@pytest.mark.parametrize("op", OPS)
@settings(max_examples=40, deadline=None)
@given(w=st.sampled_from(WIDTHS), amount_width=st.sampled_from((8, 64)), a=VALUES, b=VALUES)
def test_binary_and_compare_ops_match_the_reference(op: str, w: int, amount_width: int, a: int, b: int) -> None:
    blk = binop_block(op, w, amount_width)
    assert native_supported(blk)
    runner = runner_for((op, w, amount_width), blk, MEM)
    regs = [0, a, b] + [0] * 64
    try:
        expected, next_pc = reference(blk, list(regs), MEM)
    except ir.DivideError:
        # the division traps: native code leaves for the slow path before the instruction, state untouched
        before = list(regs)
        assert runner.run(regs, PC) == (SLOW, PC, 0) and regs == before
        return
    status, pc, n = runner.run(regs, PC)
    assert (status, pc, n) == (LEFT, next_pc, 1)
    assert regs == expected, f"{op} w={w}: {regs[3]:#x} != {expected[3]:#x}"


@settings(max_examples=60, deadline=None)
@given(a=VALUES, c=VALUES, fw=st.sampled_from((1, 8, 16, 32, 64)), tw=st.sampled_from((8, 16, 32, 64)))
def test_unary_ext_and_select_match_the_reference(a: int, c: int, fw: int, tw: int) -> None:
    blk = block([ir.GetReg(t(1), 1), ir.GetReg(t(2), 2), ir.Ext(t(3, fw), t(1)), ir.Ext(t(4, tw), t(3, fw), True),
                 ir.Ext(t(5, tw), t(3, fw), False), ir.UnOp(t(6, tw), "not", t(4, tw)), ir.UnOp(t(7, tw), "neg", t(5, tw)),
                 ir.Ext(t(8, 1), t(2)), ir.Select(t(9, tw), t(8, 1), t(6, tw), t(7, tw)), ir.Ext(t(10), t(9, tw)),
                 ir.Ext(t(11), t(4, tw)), ir.PutReg(3, t(10)), ir.PutReg(4, t(11))])  # fmt: skip
    runner = runner_for(("unary", fw, tw), blk, MEM)
    regs = [0, a, c] + [0] * 64
    expected, _ = reference(blk, list(regs), MEM)
    runner.run(regs, PC)
    assert regs == expected


@settings(max_examples=60, deadline=None)
@given(offset=st.integers(0, 0x1FF8), size=st.sampled_from((1, 2, 4, 8)), signed=st.booleans(), value=U64,
       seed=st.integers(0, 2**32))  # fmt: skip
def test_loads_and_stores_match_the_reference_or_leave_precisely(
    offset: int, size: int, signed: bool, value: int, seed: int
) -> None:
    """Load then store at DATA + offset: the second page is read-only, so stores there (and across) go slow."""
    stmts = [ir.InsnStart(PC, 4), ir.GetReg(t(1), 1), ir.GetReg(t(2), 2), ir.Load(t(3), t(1), size, signed),
             ir.PutReg(3, t(3)), ir.InsnStart(PC + 4, 4), ir.Store(t(1), t(2), size), ir.PutReg(4, ir.Const(1))]
    blk = ir.Block("riscv64", PC, tuple(stmts), ir.Jump(ir.Const(0x9000)), 2, 8)  # fmt: skip
    mem = memory()
    content = random.Random(seed).randbytes(0x2000)
    mem.poke(DATA, content)
    runner = RegionRunner([blk], mem)
    start = [0, DATA + offset, value] + [0] * 64
    regs = list(start)
    status, pc, n = runner.run(regs, PC)
    after = [mem.peek(pn << 12, 0x1000) for pn in mem.prot]
    mem.poke(DATA, content[:0x1000])
    if status == LEFT:
        expected, next_pc = reference(blk, list(start), mem)
        assert (pc, n) == (next_pc, 2) and regs == expected
        assert after == [mem.peek(pn << 12, 0x1000) for pn in mem.prot]
        assert offset + size <= 0x1000
        return
    # the slow path: a page-crossing access, or a store into the read-only page; exact state up to there
    assert status == SLOW and after[0] == content[:0x1000]
    if (offset & 0xFFF) + size > 0x1000:
        assert (pc, n) == (PC, 0) and regs == start
    else:
        load_only = ir.Block("riscv64", PC, tuple(stmts[:5]), ir.Jump(ir.Const(PC + 4)), 1, 4)
        assert offset >= 0x1000 and (pc, n) == (PC + 4, 1)
        assert regs == reference(load_only, list(start), mem)[0] and regs[4] == 0


def test_unmapped_and_high_addresses_leave_slow_without_touching_registers() -> None:
    blk = block([ir.GetReg(t(1), 1), ir.Load(t(2), t(1), 8), ir.PutReg(3, t(2))])
    mem = memory()
    runner = RegionRunner([blk], mem)
    for address in (0, 0x50000, 1 << 39, (1 << 64) - 8, DATA + 0xFFC):
        regs = [0, address, 0, 0x55] + [0] * 63
        assert runner.run(regs, PC) == (SLOW, PC, 0)
        assert regs[3] == 0x55
    mem.map(0x50000, 0x1000, PROT_READ)
    mem.store(DATA, 8, 7)
    regs = [0, 0x50000, 0, 0x55] + [0] * 63
    assert runner.run(regs, PC) == (SLOW, PC, 0)  # mapped but untouched: no page yet, the slow path creates it
    assert mem.load(0x50000, 8) == 0  # the first touch shows up in the tables through on_mapping_change
    assert runner.run(regs, PC) == (LEFT, 0x9000, 1) and regs[3] == 0
    mem.unmap(0x50000, 0x1000)
    assert runner.run(regs, PC)[0] == SLOW


def test_exits_budget_and_indirect_dispatch() -> None:
    """Block A: a0 += 1, jump to a0's target (B or away); B: syscall; C: trap."""
    a = block([ir.GetReg(t(1), 10), ir.BinOp(t(2), "add", t(1), ir.Const(1)), ir.PutReg(10, t(2)),
               ir.GetReg(t(3), 11)], ir.Jump(t(3)), pc=0x1000, insns=2)  # fmt: skip
    b = block([], ir.SyscallExit(0x2000, 0x2004), pc=0x2000)
    c = ir.Block("riscv64", 0x3000, (), ir.TrapExit("illegal", 0x3000, 0), 0, 4)
    runner = RegionRunner([a, b, c], memory())
    regs = [0] * 67
    regs[11] = 0x2000
    assert runner.run(regs, 0x1000) == (SYSCALL, 0x2004, 3) and regs[10] == 1
    regs[11] = 0x3000
    assert runner.run(regs, 0x1000) == (TRAP, 0x3000, 2) and regs[10] == 2
    regs[11] = 0x7777
    assert runner.run(regs, 0x1000) == (LEFT, 0x7777, 2) and regs[10] == 3
    assert runner.run(regs, 0x1000, budget=1) == (LEFT, 0x1000, 0) and regs[10] == 3
    regs[11] = 0x2000
    assert runner.run(regs, 0x1000, budget=2) == (LEFT, 0x2000, 2) and regs[10] == 4
    assert runner.run(regs, 0x2000) == (SYSCALL, 0x2004, 1)
    assert set(runner.code.block_pcs) == {0x1000, 0x2000, 0x3000} and runner.code.traps == (c.exit,)


def test_rdinstret_and_store_conditional_helpers() -> None:
    from vm_translate.riscv.registers import NO_RESERVATION

    blk = block([ir.GetReg(t(1), 1), ir.GetReg(t(2), 2), ir.GetReg(t(3), 66),
                 ir.Call((t(4),), "riscv_store_conditional", (t(1), t(2), t(3), ir.Const(8))),
                 ir.Call((t(5),), "riscv_read_instret", (ir.Const(1),)), ir.PutReg(66, ir.Const(NO_RESERVATION)),
                 ir.PutReg(3, t(4)), ir.PutReg(4, t(5))], insns=2)  # fmt: skip
    mem = memory()
    runner = RegionRunner([blk], mem)
    for address, reservation in ((DATA + 8, DATA + 8), (DATA + 8, DATA + 16), (DATA + 12, DATA + 12),
                                 (DATA + 0x1008, DATA + 0x1008)):  # fmt: skip
        regs = [0, address, 0xABCD] + [0] * 63 + [reservation]
        cpu = CpuState("riscv64", len(regs), mem)
        cpu.regs[:] = regs
        cpu.icount = 1000
        snapshot = mem.peek(DATA, 0x1000)
        status, pc, n = runner.run(regs, PC, icount=1000)
        if address == reservation and (address % 8 or address >= DATA + 0x1000):
            assert (status, pc, n) == (SLOW, PC, 0) and mem.peek(DATA, 0x1000) == snapshot
            continue
        native_memory = mem.peek(DATA, 0x1000)
        mem.poke(DATA, snapshot)
        expected, _ = reference(blk, cpu.regs, mem, icount=1000)
        cpu_expected_instret = 1000 + 1
        assert status == LEFT and regs == expected and regs[4] == cpu_expected_instret
        assert native_memory == mem.peek(DATA, 0x1000)
