"""The ``python`` engine against the ``interp`` engine and Unicorn on random RV64 programs.

Programs are drawn with vm-translate's instruction strategies (every RV64I
and RV64M row, memory accesses, forward branches and jumps, compressed
instructions, and F/D sequences): straight-line sequences, and loops that
run their body many times so the ``python`` engine compiles the blocks
(``compile_threshold`` 1 to 3). Each program runs under both engines as a
series of ``run(cpu, budget)`` calls with small random budgets, so runs stop
in the middle of blocks; every stop must leave identical registers, pc,
icount and memory (see ``engine_harness``). Integer programs that reach the
end are also compared with Unicorn. Programs may end in ``ecall``,
``ebreak``, an illegal word, or a load or store that faults (unmapped,
read-only, crossing into the read-only page, the code page), inside the loop after it has run
hot: the fault must be identical too, and its pc and address are checked
against where the generator put the faulting instruction.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vm_core.types import StopKind
from vm_translate.riscv.encoding import enc_b, enc_i, enc_s
from vm_translate.testing.riscv_fd import fp_sequences
from vm_translate.testing.riscv_fd import initial_states as fp_initial_states
from vm_translate.testing.riscv_integer import (
    I_ROWS,
    M_ROWS,
    R_ROWS,
    alu_item,
    compressed_alu_item,
    compressed_control_items,
    compressed_memory_item,
    control_items,
    memory_item,
    sequences,
    states,
)
from vm_translate.testing.unicorn_oracle import Item, initial_x_with_bases, resolve, x_states

from .engine_harness import (
    CODE,
    DATA,
    PAGE,
    READ_ONLY,
    UNMAPPED,
    Guest,
    assert_engines_agree,
    assert_matches_unicorn,
    assert_same_runs,
    encode,
    interp_engine,
    python_engine,
    run_in_chunks,
)

Draw = Any
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]

#: Loop counter, walking pointer and fault-base registers: none of them is in vm-translate's DEST_POOL.
COUNTER, WALKER, FAULT_BASE = 31, 26, 27

BUDGETS = st.lists(st.integers(1, 40), min_size=1, max_size=6).flatmap(
    lambda head: st.integers(1, 300).map(lambda last: [*head, last])
)


def body_items(draw: Draw, kinds: tuple[str, ...], n: int) -> list[list[Item]]:
    groups: list[list[Item]] = []
    for _ in range(n):
        kind = draw(st.sampled_from(kinds))
        if kind == "i":
            groups.append([alu_item(draw, R_ROWS + I_ROWS)])
        elif kind == "m":
            groups.append([alu_item(draw, M_ROWS)])
        elif kind == "mem":
            groups.append([memory_item(draw, True)])
        elif kind == "ctl":
            groups.append(control_items(draw))
        elif kind == "c":
            groups.append([compressed_alu_item(draw)])
        elif kind == "cmem":
            groups.append([compressed_memory_item(draw, True)])
        else:
            groups.append(compressed_control_items(draw))
    return groups


def loop_closing(body_bytes: int) -> list[int]:
    """``addi counter, counter, -1; bne counter, x0, <start of the body>``."""
    return [enc_i(0x13, COUNTER, 0, COUNTER, -1), enc_b(0x63, 1, COUNTER, 0, -(body_bytes + 4))]


@st.composite
def loop_programs(draw: Draw, kinds: tuple[str, ...] = ("i", "m", "mem", "ctl", "c", "cmem", "cctl")) -> Guest:
    """A loop over a random body, run 1-25 times, then a random tail."""
    body = encode(resolve(body_items(draw, kinds, draw(st.integers(1, 12)))))
    tail = encode(resolve(body_items(draw, kinds, draw(st.integers(0, 4)))))
    x = list(draw(states()).x)
    x[COUNTER] = draw(st.integers(1, 25))
    code = body + encode(loop_closing(len(body))) + tail
    return Guest(code=code, x=tuple(x), data=draw(states()).data)


ENDINGS = {
    "ecall": [0x00000073],
    "ebreak": [0x00100073],
    "illegal": [0x00000000],
    "c.ebreak": [0x9002],
}


@st.composite
def loops_with_faults(draw: Draw) -> tuple[Guest, int, int]:
    """A hot loop whose walking access leaves the data page after some iterations, or a faulting ending.

    Returns the guest, the pc of the instruction expected to fault (or -1)
    and the kind of access it makes.
    """
    kinds = ("i", "m", "mem", "c", "cmem")
    prefix = encode(resolve(body_items(draw, kinds, draw(st.integers(0, 6)))))
    size = draw(st.sampled_from((1, 2, 4, 8)))
    is_store = draw(st.booleans())
    funct3 = {1: 0, 2: 1, 4: 2, 8: 3}[size]
    walk = enc_s(0x23, funct3, WALKER, 5, 0) if is_store else enc_i(0x03, 10, funct3, WALKER, 0)
    step = draw(st.sampled_from((8, 64, 256, 512)))
    suffix = encode(resolve(body_items(draw, kinds, draw(st.integers(0, 6)))))
    body = prefix + walk.to_bytes(4, "little") + enc_i(0x13, WALKER, 0, WALKER, step).to_bytes(4, "little") + suffix
    x = list(draw(states()).x)
    x[COUNTER] = draw(st.integers(1, 40))
    x[WALKER] = DATA + draw(st.integers(0, PAGE // step - 1)) * step
    code = body + encode(loop_closing(len(body)))
    ending = draw(st.sampled_from(["none", "load", "store", "cross", "code", *ENDINGS]))
    if ending in ENDINGS:
        code += encode(ENDINGS[ending])
    elif ending != "none":
        base, offset, f3, store = {
            "load": (UNMAPPED, 0, 3, False),
            "store": (READ_ONLY, 8, 3, True),
            "cross": (DATA + PAGE - 8, draw(st.integers(1, 7)), 3, draw(st.booleans())),
            "code": (CODE, 0, 2, True),
        }[ending]
        x[FAULT_BASE] = base
        word = enc_s(0x23, f3, FAULT_BASE, 5, offset) if store else enc_i(0x03, 10, f3, FAULT_BASE, offset)
        code += encode([word])
    return Guest(code=code, x=tuple(x), data=draw(states()).data), CODE + len(prefix), is_store


@settings(max_examples=60, deadline=None, suppress_health_check=SLOW)
@given(words=sequences(("i", "m", "mem", "ctl", "c", "cmem", "cctl")), data=st.data())
def test_straight_line_sequences_agree_with_interp_and_unicorn(words: list[int], data: st.DataObject) -> None:
    init = data.draw(states(), label="init")
    guest = Guest(code=encode(words), x=init.x, data=init.data)
    threshold = data.draw(st.integers(1, 2), label="threshold")
    shots = assert_engines_agree(guest, data.draw(BUDGETS, label="budgets"), threshold=threshold)
    assert shots[-1].pc == guest.end
    assert_matches_unicorn(guest, shots[-1])


@settings(max_examples=60, deadline=None, suppress_health_check=SLOW)
@given(guest=loop_programs(), budgets=BUDGETS, threshold=st.integers(1, 3))
def test_loops_agree_with_interp_and_unicorn(guest: Guest, budgets: list[int], threshold: int) -> None:
    shots = assert_engines_agree(guest, budgets, threshold=threshold)
    assert shots[-1].pc == guest.end
    assert shots[-1].icount >= guest.x[COUNTER]  # every iteration retired (at least its closing branch)
    assert_matches_unicorn(guest, shots[-1])


@settings(max_examples=60, deadline=None, suppress_health_check=SLOW)
@given(case=loops_with_faults(), budgets=BUDGETS, threshold=st.integers(1, 3))
def test_faults_in_hot_loops_leave_identical_state(
    case: tuple[Guest, int, bool], budgets: list[int], threshold: int
) -> None:
    guest, walk_pc, is_store = case
    shots = assert_engines_agree(guest, budgets, threshold=threshold)
    last = shots[-1]
    if last.fault is not None and last.fault[0] == "MemoryFault" and last.pc == walk_pc:
        # the walking access left the page: pc and address are where the generator put them
        _name, fault_pc, address, access, *_ = last.fault
        assert (fault_pc, last.stop_pc) == (walk_pc, walk_pc)
        # loads walk on through the read-only page after the data page; stores fault at its start
        assert address == (DATA + PAGE if is_store else READ_ONLY + PAGE) == last.regs[WALKER]
        assert access == ("write" if is_store else "read")
    for shot in shots[:-1]:
        assert shot.kind in (StopKind.BUDGET, StopKind.SYSCALL)


@settings(max_examples=25, deadline=None, suppress_health_check=SLOW)
@given(words=fp_sequences(), init=fp_initial_states(max_frm=4), count=st.integers(1, 12), budgets=BUDGETS)
def test_float_loops_agree_with_interp(words: list[int], init: Any, count: int, budgets: list[int]) -> None:
    """F/D sequences (softfloat helpers, flags, NaN boxing, c.fld/c.fsd) looped until compiled."""
    body = encode(words)
    x = list(init.x)
    x[COUNTER] = count
    guest = Guest(code=body + encode(loop_closing(len(body))), x=tuple(x), data=init.data, f=init.f, fcsr=init.fcsr)
    shots = assert_engines_agree(guest, budgets)
    assert shots[-1].pc == guest.end or shots[-1].kind is StopKind.FAULT


@pytest.mark.parametrize("max_block_insns", [1, 2, 5])
@settings(max_examples=15, deadline=None, suppress_health_check=SLOW)
@given(guest=loop_programs(("i", "mem", "ctl", "c")), budgets=BUDGETS)
def test_short_blocks_agree(max_block_insns: int, guest: Guest, budgets: list[int]) -> None:
    """Tiny blocks: many block boundaries, chained compiled blocks, budget stops at every boundary."""
    expected = run_in_chunks(interp_engine(), guest, budgets)
    actual = run_in_chunks(python_engine(1, max_block_insns), guest, budgets)
    assert_same_runs(expected, actual, f"max_block_insns={max_block_insns}")


@settings(max_examples=20, deadline=None)
@given(x=x_states(), count=st.integers(2, 30), chunk=st.integers(1, 7))
def test_budget_counts_exactly(x: tuple[int, ...], count: int, chunk: int) -> None:
    """A 4-instruction loop run in chunks: every stop is exactly ``chunk`` instructions later."""
    body = [enc_i(0x13, 10, 0, 10, 3), enc_i(0x13, 11, 0, 11, -1)]
    code = encode(body + loop_closing(8))
    regs = list(initial_x_with_bases(x))
    regs[COUNTER] = count
    guest = Guest(code=code, x=tuple(regs))
    shots = assert_engines_agree(guest, [chunk])
    total = 4 * count
    assert [s.icount for s in shots] == [min(chunk * (i + 1), total) for i in range(len(shots))]
    assert shots[-1].regs[10] == (x[10] + 3 * count) % (1 << 64)
