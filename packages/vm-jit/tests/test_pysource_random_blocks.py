"""Random IR blocks through both Python-tier compilers, against the reference executor.

Hypothesis builds valid blocks of 1-4 guest instructions mixing every
statement kind: register reads and writes (including rewrites of a register
whose earlier value is still used later, which the code generator's
register aliasing and expression inlining must respect), arithmetic at all
widths over temps and constants, loads and stores to mapped, read-only and
unmapped addresses, and constant, computed or conditional exits. Each block
runs under :func:`vm_translate.executor.execute_block`, as a
:func:`~vm_jit.pysource.compile_block` function and as a one-block
:func:`~vm_jit.pysource.compile_region`; next pc, registers, memory,
``cpu.pc``/``icount`` and faults must be the same.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vm_jit.pysource import compile_region, region_source
from vm_translate import ir
from vm_translate.executor import execute_block

from .test_pysource_ops import (
    DATA,
    OP_WIDTHS,
    BlockBuilder,
    addresses,
    assert_same_as_executor,
    edge_values,
    make_cpu,
    memory_image,
    outcome,
    regs64,
)

KINDS = ("get", "get", "put", "put", "bin", "bin", "bin", "un", "ext", "select", "load", "store")


def pick(draw: Any, b: BlockBuilder, temps: list[ir.Temp], width: int) -> ir.Operand:
    same = [t for t in temps if t.width == width]
    if same and draw(st.integers(0, 3)):
        return draw(st.sampled_from(same[-3:]))  # recent temps: values used soon after a register rewrite
    return ir.Const(draw(edge_values(width)), width)


@st.composite
def random_blocks(draw: Any) -> ir.Block:
    b = BlockBuilder()
    temps: list[ir.Temp] = []
    for _ in range(draw(st.integers(1, 4))):
        b.insn()
        for _ in range(draw(st.integers(1, 10))):
            kind = draw(st.sampled_from(KINDS))
            width = draw(st.sampled_from((64, 64, 64, *OP_WIDTHS)))
            if kind == "get":
                temps.append(b.get(draw(st.integers(1, 3))))
            elif kind == "put":
                b.stmts.append(ir.PutReg(draw(st.integers(1, 3)), pick(draw, b, temps, 64)))
            elif kind == "bin":
                op = draw(st.sampled_from(sorted(ir.BINARY_OPS | ir.COMPARE_OPS)))
                a = pick(draw, b, temps, width)
                amount_width = draw(st.sampled_from(OP_WIDTHS)) if op in ("shl", "shr", "sar") else width
                c = pick(draw, b, temps, amount_width)
                temps.append(b.binop(op, a, c, 1 if op in ir.COMPARE_OPS else width))
            elif kind == "un":
                a = pick(draw, b, temps, width)
                temps.append(b.add(lambda d, a=a: ir.UnOp(d, draw(st.sampled_from(("not", "neg"))), a), width))
            elif kind == "ext":
                a = pick(draw, b, temps, draw(st.sampled_from(OP_WIDTHS)))
                temps.append(b.ext(a, width, draw(st.booleans())))
            elif kind == "select":
                cond, x, y = pick(draw, b, temps, 1), pick(draw, b, temps, width), pick(draw, b, temps, width)
                temps.append(b.add(lambda d, c=cond, x=x, y=y: ir.Select(d, c, x, y), width))
            else:
                size = draw(st.sampled_from((1, 2, 4, 8, 16)))
                if draw(st.booleans()):
                    addr: ir.Operand = ir.Const(draw(addresses(size)))
                else:  # a computed address inside the two read-write pages and the read-only one
                    offset = b.binop("and", pick(draw, b, temps, 64), ir.Const(0x2FFF), 64)
                    addr = b.binop("add", offset, ir.Const(DATA), 64)
                if kind == "load":
                    dst_width = draw(st.sampled_from([w for w in OP_WIDTHS if w >= 8]))
                    signed = draw(st.booleans())
                    temps.append(b.add(lambda d, a=addr, s=size, g=signed: ir.Load(d, a, s, g), dst_width))
                else:
                    b.stmts.append(ir.Store(addr, pick(draw, b, temps, draw(st.sampled_from((8, 64, 128)))), size))
    exit_kind = draw(st.sampled_from(("const", "computed", "branch")))
    if exit_kind == "const":
        exit_: ir.Exit = ir.Jump(ir.Const(0x2000))
    elif exit_kind == "computed":
        exit_ = ir.Jump(pick(draw, b, temps, 64))
    else:
        exit_ = ir.Branch(pick(draw, b, temps, 1), 0x3000, 0x4000)
    return b.finish(exit_)


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(block=random_blocks(), regs=regs64(), image=memory_image())
def test_random_block_function_matches_executor(block: ir.Block, regs: list[int], image: bytes) -> None:
    assert_same_as_executor(block, regs, image)


@SETTINGS
@given(block=random_blocks(), regs=regs64(), image=memory_image())
def test_random_one_block_region_matches_executor(block: ir.Block, regs: list[int], image: bytes) -> None:
    ref_cpu = make_cpu(regs, image)
    expected = outcome(ref_cpu, lambda: execute_block(block, ref_cpu))
    cpu = make_cpu(regs, image)
    fn, _ = compile_region([block], cpu)

    def run_region() -> int:
        pc, n, kind = fn(cpu.regs, block.insn_count)  # one pass, even if the exit leads back
        assert (n, kind) == (block.insn_count, 0)
        return int(pc)

    actual = outcome(cpu, run_region, block.insn_count)
    if actual != expected:
        raise AssertionError(f"region differs\n{block}\n{region_source([block])[0]}\n{expected}\n{actual}")
