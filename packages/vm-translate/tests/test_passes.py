"""IR passes never change what a block computes (hypothesis, judged by the reference executor).

Blocks mix every statement kind: trapping divisions, flag arithmetic, the
unary bit operations, conditional traps and atomics included, so a pass that
folded away a trap or reordered a fault would show.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from vm_core.errors import GuestFault
from vm_mem import PROT_READ, PROT_WRITE, AddressSpace
from vm_translate import ir
from vm_translate.cpu import CpuState
from vm_translate.executor import execute_block
from vm_translate.passes import eliminate_dead_code, eliminate_overwritten_puts, fold_constants, optimize

NREGS = 8
DATA = 0x20000
WIDTHS = (8, 16, 32, 64)
OPS = sorted(ir.BINARY_OPS)
CMPS = sorted(ir.COMPARE_OPS)


def addresses(size: int) -> st.SearchStrategy[int]:
    """Mostly inside the data page; sometimes unmapped, so faults must leave the same state."""
    inside = st.integers(DATA, DATA + 4096 - size)
    return st.one_of(inside, inside, inside, st.just(DATA + 0x10000))


@st.composite
def blocks(draw: st.DrawFn) -> ir.Block:
    """Random straight-line blocks: constants, registers, every op, loads/stores, a branch or jump."""
    stmts: list[ir.Stmt] = [ir.InsnStart(0x1000, 4)]
    values: list[ir.Operand] = []
    next_id = 0

    def temp(width: int) -> ir.Temp:
        nonlocal next_id
        next_id += 1
        return ir.Temp(next_id, width)

    def operand(width: int) -> ir.Operand:
        same = [v for v in values if v.width == width]
        if same and draw(st.booleans()):
            return draw(st.sampled_from(same))
        return ir.Const(draw(st.integers(0, ir.mask(width))), width)

    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.sampled_from(["get", "put", "bin", "cmp", "un", "ext", "sel", "load", "store", "carry",
                                     "trap", "rmw", "cas", "vec"]))  # fmt: skip
        width = draw(st.sampled_from(WIDTHS))
        if kind == "get":
            t = temp(64)
            stmts.append(ir.GetReg(t, draw(st.integers(0, NREGS - 1))))
            values.append(t)
        elif kind == "put":
            stmts.append(ir.PutReg(draw(st.integers(0, NREGS - 1)), operand(64)))
        elif kind == "bin":
            t = temp(width)
            stmts.append(ir.BinOp(t, draw(st.sampled_from(OPS)), operand(width), operand(width)))
            values.append(t)
        elif kind == "cmp":
            t = temp(1)
            stmts.append(ir.BinOp(t, draw(st.sampled_from(CMPS)), operand(width), operand(width)))
            values.append(t)
        elif kind == "un":
            t = temp(width)
            stmts.append(ir.UnOp(t, draw(st.sampled_from(sorted(ir.UNARY_OPS))), operand(width)))
            values.append(t)
        elif kind == "ext":
            to = draw(st.sampled_from(WIDTHS))
            t = temp(to)
            stmts.append(ir.Ext(t, operand(width), draw(st.booleans())))
            values.append(t)
        elif kind == "sel":
            t = temp(width)
            stmts.append(ir.Select(t, operand(1), operand(width), operand(width)))
            values.append(t)
        elif kind == "load":
            size = draw(st.sampled_from([1, 2, 4, 8]))
            t = temp(64)
            addr = ir.Const(draw(addresses(size)), 64)
            stmts.append(ir.Load(t, addr, size, draw(st.booleans())))
            values.append(t)
        elif kind == "carry":
            dsts = (temp(width), temp(1), temp(1))
            op = draw(st.sampled_from(sorted(ir.CARRY_OPS)))
            stmts.append(ir.CarryArith(dsts, op, operand(width), operand(width), operand(1)))
            values.extend(dsts)
        elif kind == "vec":
            t = temp(128)
            op = draw(st.sampled_from(sorted(ir.VECTOR_OPS)))
            lane = draw(st.sampled_from(ir.vector_lanes(op)))
            b = operand(width) if op in ir.VECTOR_SHIFTS else operand(128)
            stmts.append(ir.VecOp(t, op, lane, operand(128), b))
            values.append(t)
        elif kind == "trap":
            stmts.append(ir.CondTrap(operand(1), 8, 1))
        elif kind in ("rmw", "cas"):
            size = draw(st.sampled_from([1, 2, 4, 8]))
            addr = ir.Const(draw(addresses(size)), 64)
            t = temp(size * 8)
            if kind == "rmw":
                op = draw(st.sampled_from(sorted(ir.ATOMIC_OPS)))
                stmts.append(ir.AtomicRMW(t, op, addr, operand(size * 8), size))
            else:
                stmts.append(ir.CompareSwap(t, addr, operand(size * 8), operand(size * 8), size))
            values.append(t)
        else:
            size = draw(st.sampled_from([1, 2, 4, 8]))
            addr = ir.Const(draw(addresses(size)), 64)
            stmts.append(ir.Store(addr, operand(64), size))
    if draw(st.booleans()):
        exit_: ir.Exit = ir.Branch(operand(1), 0x2000, 0x1004)
    else:
        exit_ = ir.Jump(operand(64))
    return ir.Block("test", 0x1000, tuple(stmts), exit_, 1, 4)


def run(block: ir.Block, regs: list[int], data: bytes) -> tuple[object, list[int], bytes]:
    mem = AddressSpace()
    mem.map(DATA, 4096, PROT_READ | PROT_WRITE, data * (4096 // len(data)))
    cpu = CpuState("test", NREGS, mem, pc=block.pc)
    cpu.regs[:] = regs
    try:
        outcome: object = execute_block(block, cpu)
    except GuestFault as fault:
        details = (getattr(fault, "address", None), getattr(fault, "access", None), fault.signo)
        outcome = (type(fault).__name__, *details, cpu.pc, cpu.icount)
    return outcome, cpu.regs, mem.read(DATA, 4096)


@settings(max_examples=300, deadline=None)
@given(
    blocks(),
    st.lists(st.integers(0, 2**64 - 1), min_size=NREGS, max_size=NREGS),
    st.binary(min_size=64, max_size=64),  # repeated over the data page
)
def test_passes_preserve_block_semantics(block: ir.Block, regs: list[int], data: bytes) -> None:
    expected = run(block, regs, data)
    for transform in (fold_constants, eliminate_dead_code, eliminate_overwritten_puts, optimize):
        assert run(transform(block), regs, data) == expected


def test_folding_removes_constant_arithmetic_and_dce_drops_unused_values() -> None:
    t1, t2, t3 = ir.Temp(1), ir.Temp(2), ir.Temp(3)
    block = ir.Block(
        "test",
        0x1000,
        (
            ir.InsnStart(0x1000, 4),
            ir.BinOp(t1, "add", ir.Const(2), ir.Const(3)),
            ir.GetReg(t2, 1),  # unused: dead
            ir.BinOp(t3, "shl", t1, ir.Const(4)),
            ir.PutReg(0, t3),
        ),
        ir.Jump(ir.Const(0x1004)),
        1,
        4,
    )
    out = optimize(block)
    assert out.stmts == (ir.InsnStart(0x1000, 4), ir.PutReg(0, ir.Const(80)))
