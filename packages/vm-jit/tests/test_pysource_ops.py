"""The Python tier never changes what a block computes: pysource codegen against the reference executor.

Every IR operation (each BinOp and compare op, UnOp, Ext, Select, Load,
Store) at every width, with register, constant and mixed operands, is put
in a hand-built block; the block runs under
:func:`vm_translate.executor.execute_block` (the definition of the IR) and
as the function :func:`vm_jit.pysource.compile_block` makes of it, from the
same hypothesis-drawn registers and memory. Registers, memory, the next pc,
``icount`` and any fault (type, address, pc) must be identical.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_core.errors import GuestFault
from vm_jit.pysource import block_source, compile_block
from vm_mem import PROT_READ, PROT_WRITE, AddressSpace
from vm_translate import ir
from vm_translate.cpu import CpuState
from vm_translate.executor import execute_block

PC = 0x1000
NEXT = 0x2000
DATA = 0x20000  # two read-write pages, then a read-only one, then nothing
RO = DATA + 0x2000
NREGS = 16
EXAMPLES = settings(max_examples=20, deadline=None)

ARITH_OPS = sorted(ir.BINARY_OPS)
COMPARE_OPS = sorted(ir.COMPARE_OPS)
OP_WIDTHS = (1, 8, 16, 32, 64, 128)


def edge_values(width: int) -> st.SearchStrategy[int]:
    m = ir.mask(width)
    top = 1 << (width - 1)
    edges = sorted(v & m for v in (0, 1, m, m - 1, top, top - 1, top + 1))
    return st.one_of(st.sampled_from(edges), st.integers(0, m))


def regs64() -> st.SearchStrategy[list[int]]:
    return st.lists(edge_values(64), min_size=NREGS, max_size=NREGS)


def memory_image() -> st.SearchStrategy[bytes]:
    return st.one_of(st.just(bytes(0x3000)), st.integers(0, 1 << 64).map(lambda seed: random.Random(seed).randbytes(0x3000)))


def make_cpu(regs: list[int], image: bytes = bytes(0x3000)) -> CpuState:
    mem = AddressSpace()
    mem.map(DATA, 0x2000, PROT_READ | PROT_WRITE, image[:0x2000])
    mem.map(RO, 0x1000, PROT_READ, image[0x2000:])
    cpu = CpuState("test", NREGS, mem, PC)
    cpu.regs[:] = regs
    return cpu


def outcome(cpu: CpuState, run: Callable[[], int], insns_on_success: int = 0) -> tuple[Any, ...]:
    """(next pc or fault details, pc, icount, registers, memory digest) after ``run``.

    A compiled block leaves counting its instructions to the engine, which adds
    ``insns_on_success`` when the block returns; on a fault it counts them itself.
    """
    try:
        result: Any = run()
        cpu.icount += insns_on_success
    except GuestFault as fault:
        result = (type(fault).__name__, fault.pc, getattr(fault, "address", None), getattr(fault, "access", None))
    mapped = sorted(cpu.mem.prot)  # every mapped page, touched or not (vm-mem creates pages lazily)
    pages = hashlib.sha256(b"".join(pn.to_bytes(8, "little") + cpu.mem.peek(pn << 12, 4096) for pn in mapped))
    return result, cpu.pc, cpu.icount, tuple(cpu.regs), pages.hexdigest()


def assert_same_as_executor(block: ir.Block, regs: list[int], image: bytes = bytes(0x3000)) -> tuple[Any, ...]:
    """Run ``block`` both ways from the same state; return the executor's outcome."""
    ref_cpu = make_cpu(regs, image)
    expected = outcome(ref_cpu, lambda: execute_block(block, ref_cpu))
    jit_cpu = make_cpu(regs, image)
    fn = compile_block(block, jit_cpu)
    actual = outcome(jit_cpu, lambda: fn(jit_cpu.regs), block.insn_count)
    if actual != expected:
        source = block_source(block)[0]
        raise AssertionError(f"compiled block differs\n{block}\n{source}\nexpected {expected}\nactual   {actual}")
    return expected


class BlockBuilder:
    """A tiny builder of hand-made IR blocks (SSA temps numbered in order)."""

    def __init__(self) -> None:
        self.stmts: list[ir.Stmt] = []
        self.next_id = 0
        self.insns = 0

    def insn(self, pc: int = PC) -> None:
        self.stmts.append(ir.InsnStart(pc + 4 * self.insns, 4))
        self.insns += 1

    def temp(self, width: int) -> ir.Temp:
        self.next_id += 1
        return ir.Temp(self.next_id, width)

    def add(self, make: Callable[[ir.Temp], ir.Stmt], width: int) -> ir.Temp:
        dst = self.temp(width)
        self.stmts.append(make(dst))
        return dst

    def get(self, reg: int) -> ir.Temp:
        return self.add(lambda d: ir.GetReg(d, reg), 64)

    def ext(self, a: ir.Operand, width: int, signed: bool = False) -> ir.Temp:
        return self.add(lambda d: ir.Ext(d, a, signed), width)

    def binop(self, op: str, a: ir.Operand, b: ir.Operand, width: int) -> ir.Temp:
        return self.add(lambda d: ir.BinOp(d, op, a, b), width)

    def value(self, width: int, low_reg: int, high_reg: int) -> ir.Temp:
        """A ``width``-bit temp from registers (two registers make a 128-bit value)."""
        low = self.get(low_reg)
        if width <= 64:
            return self.ext(low, width)
        high = self.ext(self.get(high_reg), 128)
        shifted = self.binop("shl", high, ir.Const(64, 8), 128)
        return self.binop("or", shifted, self.ext(low, 128), 128)

    def put(self, reg: int, value: ir.Operand) -> None:
        """Write ``value`` to register ``reg`` (and, for 128 bits, its high half to ``reg + 1``)."""
        low = value if value.width == 64 else self.ext(value, 64)
        self.stmts.append(ir.PutReg(reg, low))
        if value.width == 128:
            high = self.binop("shr", value, ir.Const(64, 64), 128)
            self.stmts.append(ir.PutReg(reg + 1, self.ext(high, 64)))

    def finish(self, exit_: ir.Exit | None = None) -> ir.Block:
        return ir.Block("test", PC, tuple(self.stmts), exit_ or ir.Jump(ir.Const(NEXT)), self.insns, 4 * self.insns)


def operand(b: BlockBuilder, kind: str, width: int, reg: int, const: int) -> ir.Operand:
    if kind == "const":
        return ir.Const(const & ir.mask(width), width)
    return b.value(width, reg, reg + 4)


OPERAND_KINDS = (("temp", "temp"), ("temp", "const"), ("const", "temp"))


@pytest.mark.parametrize("width", OP_WIDTHS)
@pytest.mark.parametrize("op", ARITH_OPS + COMPARE_OPS)
@EXAMPLES
@given(data=st.data())
def test_binop_matches_executor(op: str, width: int, data: st.DataObject) -> None:
    kinds = data.draw(st.sampled_from(OPERAND_KINDS), label="operands")
    c = data.draw(edge_values(width), label="const")
    b = BlockBuilder()
    b.insn()
    a_op = operand(b, kinds[0], width, 1, c)
    if op in ("shl", "shr", "sar", "rotl", "rotr") and kinds[1] == "temp":
        amount_width = data.draw(st.sampled_from(OP_WIDTHS), label="amount width")
        b_op = operand(b, "temp", amount_width, 2, 0)
    else:
        b_op = operand(b, kinds[1], width, 2, c)
    result = b.binop(op, a_op, b_op, 1 if op in ir.COMPARE_OPS else width)
    b.put(10, b.ext(result, 64) if result.width < 64 else result)
    assert_same_as_executor(b.finish(), data.draw(regs64(), label="regs"))


@pytest.mark.parametrize("width", OP_WIDTHS)
@pytest.mark.parametrize("op", sorted(ir.UNARY_OPS))
@EXAMPLES
@given(regs=regs64(), const=st.booleans())
def test_unop_matches_executor(op: str, width: int, regs: list[int], const: bool) -> None:
    if op == "bswap" and width == 1:
        return  # bswap needs whole bytes
    b = BlockBuilder()
    b.insn()
    a_op = operand(b, "const" if const else "temp", width, 1, regs[0])
    result = b.add(lambda d: ir.UnOp(d, op, a_op), width)
    b.put(10, b.ext(result, 64) if width < 64 else result)
    assert_same_as_executor(b.finish(), regs)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("to_width", OP_WIDTHS)
@pytest.mark.parametrize("from_width", OP_WIDTHS)
@settings(max_examples=8, deadline=None)
@given(regs=regs64())
def test_ext_matches_executor(from_width: int, to_width: int, signed: bool, regs: list[int]) -> None:
    b = BlockBuilder()
    b.insn()
    result = b.ext(b.value(from_width, 1, 5), to_width, signed)
    b.put(10, b.ext(result, 64) if to_width < 64 else result)
    assert_same_as_executor(b.finish(), regs)


@pytest.mark.parametrize("width", OP_WIDTHS)
@EXAMPLES
@given(regs=regs64(), kinds=st.tuples(*[st.sampled_from(("temp", "const"))] * 3))
def test_select_matches_executor(width: int, regs: list[int], kinds: tuple[str, str, str]) -> None:
    b = BlockBuilder()
    b.insn()
    cond = operand(b, kinds[0], 1, 3, regs[0])
    a_op = operand(b, kinds[1], width, 1, regs[1])
    b_op = operand(b, kinds[2], width, 2, regs[2])
    result = b.add(lambda d: ir.Select(d, cond, a_op, b_op), width)
    b.put(10, b.ext(result, 64) if width < 64 else result)
    assert_same_as_executor(b.finish(), regs)


def addresses(size: int) -> st.SearchStrategy[int]:
    """Aligned, unaligned, page-crossing, read-only and unmapped addresses."""
    return st.one_of(
        st.integers(DATA, DATA + 0x2000 - size),
        st.integers(DATA + 0x1000 - size, DATA + 0x1000 + 1),  # across the two read-write pages
        st.integers(RO - size, RO + 0x1000 - 1),  # into / inside the read-only page
        st.integers(RO + 0x1000 - size, RO + 0x1000 + 8),  # off the end of the mapping
        st.sampled_from((0, DATA - 1, 1 << 63, ir.mask(64) - 3)),
    )


LOAD_CASES = [(size, width) for size in (1, 2, 4, 8, 16) for width in OP_WIDTHS if width >= 8]


@pytest.mark.parametrize(("size", "width"), LOAD_CASES)
@EXAMPLES
@given(data=st.data())
def test_load_matches_executor(size: int, width: int, data: st.DataObject) -> None:
    signed = data.draw(st.booleans(), label="signed")
    addr = data.draw(addresses(size), label="addr")
    from_reg = data.draw(st.booleans(), label="address in a register")
    regs = data.draw(regs64(), label="regs")
    b = BlockBuilder()
    b.insn()
    b.put(12, b.ext(b.value(8, 3, 7), 64))  # a register write before the load of the next instruction
    b.insn()
    if from_reg:
        regs[1] = addr
        addr_op: ir.Operand = b.get(1)
    else:
        addr_op = ir.Const(addr)
    result = b.add(lambda d: ir.Load(d, addr_op, size, signed), width)
    b.put(10, b.ext(result, 64) if width < 64 else result)
    assert_same_as_executor(b.finish(), regs, data.draw(memory_image(), label="memory"))


STORE_CASES = [(size, width) for size in (1, 2, 4, 8, 16) for width in (8, 16, 32, 64, 128)]


@pytest.mark.parametrize(("size", "width"), STORE_CASES)
@EXAMPLES
@given(data=st.data())
def test_store_matches_executor(size: int, width: int, data: st.DataObject) -> None:
    addr = data.draw(addresses(size), label="addr")
    regs = data.draw(regs64(), label="regs")
    const = data.draw(st.booleans(), label="constant value")
    b = BlockBuilder()
    b.insn()
    b.put(12, b.get(3))
    b.insn()
    src = operand(b, "const" if const else "temp", width, 2, regs[4])
    b.stmts.append(ir.Store(ir.Const(addr), src, size))
    b.put(13, b.get(4))
    assert_same_as_executor(b.finish(), regs, data.draw(memory_image(), label="memory"))


@EXAMPLES
@given(regs=regs64(), taken=st.booleans())
def test_branch_and_computed_jump_exits(regs: list[int], taken: bool) -> None:
    b = BlockBuilder()
    b.insn()
    cond = b.binop("ltu", b.get(1), b.get(2), 1)
    assert_same_as_executor(b.finish(ir.Branch(cond, 0x3000, 0x4000)), regs)
    b = BlockBuilder()
    b.insn()
    target = b.binop("and", b.binop("add", b.get(1), ir.Const(8), 64), ir.Const(ir.mask(64) - 1), 64)
    assert_same_as_executor(b.finish(ir.Jump(target)), regs)


def test_store_faults_after_earlier_instructions_leave_precise_state() -> None:
    """A faulting store in the third instruction: registers of the first two written, icount 2, pc of the third."""
    b = BlockBuilder()
    b.insn()
    t = b.binop("add", b.get(1), ir.Const(5), 64)
    b.put(1, t)
    b.insn()
    b.put(2, b.binop("xor", t, b.get(2), 64))
    b.insn()
    b.stmts.append(ir.Store(ir.Const(RO + 8), b.get(2), 8))
    b.put(3, ir.Const(99))
    regs = list(range(100, 100 + NREGS))
    result, pc, icount, out_regs, _ = assert_same_as_executor(b.finish(), regs)
    assert result == ("MemoryFault", PC + 8, RO + 8, "write")
    assert (pc, icount) == (PC + 8, 2)
    assert out_regs[1] == 106 and out_regs[2] == 106 ^ 102 and out_regs[3] == 103
