"""Self-modifying code, CPU-reading helpers and atomics under the ``python`` engine.

* A hot loop rewrites an instruction it is about to execute and runs
  ``fence.i``; the new instruction must run every time. The expected sums
  are worked out from the ISA (each ``addi`` immediate), and Unicorn runs
  the same code; the ``interp`` engine must agree at every budget stop.
  The reference there is ``interp`` stepped one instruction per ``run``
  call; a separate test runs ``interp`` in one long ``run`` call.
* The same with random ALU instructions written into the slot, and without
  ``fence.i`` (engines must still agree with each other).
* ``rdinstret`` in compiled code reads the count of instructions retired
  before it (the Zicsr definition vm uses), including after many compiled
  iterations and after budget stops.
* ``lr``/``sc`` and AMOs in hot loops, and a store-conditional whose store
  faults after the loop has been compiled: state and icount as the
  reference executor leaves them.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vm_core.types import StopKind
from vm_translate.riscv.encoding import enc_b, enc_i, enc_r, enc_s
from vm_translate.testing.riscv_integer import I_ROWS, M_ROWS, R_ROWS, alu_item
from vm_translate.testing.unicorn_oracle import data_pages, initial_x_with_bases, x_states

from .engine_harness import (
    CODE,
    DATA,
    READ_ONLY,
    RWX,
    Guest,
    assert_engines_agree,
    assert_matches_unicorn,
    encode,
    interp_engine,
    run_in_chunks,
)

COUNTER = 31
FENCE_I = 0x0000100F
BUDGETS = st.lists(st.integers(1, 30), min_size=1, max_size=5).flatmap(
    lambda head: st.integers(1, 400).map(lambda last: [*head, last])
)


def addi(rd: int, rs1: int, imm: int) -> int:
    return enc_i(0x13, rd, 0, rs1, imm)


def loop_back(body_bytes: int) -> list[int]:
    return [addi(COUNTER, COUNTER, -1), enc_b(0x63, 1, COUNTER, 0, -(body_bytes + 4))]


def smc_loop(fence: bool) -> list[int]:
    """slot: addi a0, a0, 1; sw t5, 0(t4) (rewrite slot); [fence.i]; t5 += 1 << 20 (next immediate); loop."""
    body = [addi(10, 10, 1), enc_s(0x23, 2, 29, 30, 0)]
    if fence:
        body.append(FENCE_I)
    body.append(enc_r(0x33, 30, 0, 30, 28, 0))  # add t5, t5, t3 (t3 = 1 << 20: the immediate's lowest bit)
    return body + loop_back(4 * len(body))


def smc_guest(count: int, fence: bool) -> Guest:
    x = [0] * 32
    x[COUNTER] = count
    x[29] = CODE  # the slot
    x[30] = addi(10, 10, 2)  # the first rewrite: addi a0, a0, 2
    x[28] = 1 << 20
    return Guest(code=encode(smc_loop(fence)), x=tuple(x), code_prot=RWX)


@pytest.mark.parametrize("count", [1, 2, 3, 10, 40])
@pytest.mark.parametrize("budgets", [[10_000], [1], [3, 7], [5, 2, 11]])
def test_rewritten_instruction_runs_after_fence_i(count: int, budgets: list[int]) -> None:
    """Iteration i runs ``addi a0, a0, i + 1``: a0 ends as 1 + 2 + ... + count."""
    guest = smc_guest(count, fence=True)
    shots = assert_engines_agree(guest, budgets, stepped_reference=True)
    last = shots[-1]
    assert last.pc == guest.end
    assert last.regs[10] == count * (count + 1) // 2
    assert last.icount == 6 * count
    assert_matches_unicorn(guest, last)


@pytest.mark.parametrize("count", [1, 5, 30])
def test_rewritten_instruction_without_fence_i_engines_agree(count: int) -> None:
    guest = smc_guest(count, fence=False)
    for budgets in ([10_000], [1], [4, 9]):
        shots = assert_engines_agree(guest, budgets, stepped_reference=True)
        assert shots[-1].pc == guest.end


@st.composite
def smc_programs(draw: st.DrawFn) -> Guest:
    """A loop that loads the next word from a table, writes it over the first instruction, fence.i, loops."""
    count = draw(st.integers(1, 20))
    words = [alu_item(draw, R_ROWS + I_ROWS + M_ROWS) for _ in range(count + 1)]
    table = b"".join(w.to_bytes(4, "little") for w in words[1:])
    fence = draw(st.booleans())
    body = [words[0], enc_i(0x03, 30, 6, 28, 0), enc_s(0x23, 2, 29, 30, 0)]  # slot; lwu t5, 0(t3); sw t5, 0(t4)
    body += [FENCE_I] if fence else []
    body += [addi(28, 28, 4)]
    code = encode(body + loop_back(4 * len(body)))
    x = list(initial_x_with_bases(draw(x_states())))
    x[COUNTER], x[28], x[29] = count, DATA + 0x100, CODE
    data = bytearray(draw(data_pages()))
    data[0x100 : 0x100 + len(table)] = table
    return Guest(code=code, x=tuple(x), data=bytes(data), code_prot=RWX)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(guest=smc_programs(), budgets=BUDGETS, threshold=st.integers(1, 3))
def test_random_rewritten_instructions_agree_with_interp_and_unicorn(
    guest: Guest, budgets: list[int], threshold: int
) -> None:
    shots = assert_engines_agree(guest, budgets, threshold=threshold, stepped_reference=True)
    assert shots[-1].pc == guest.end
    if FENCE_I.to_bytes(4, "little") in guest.code:
        assert_matches_unicorn(guest, shots[-1])


def test_interp_engine_runs_rewritten_code_within_one_run_call() -> None:
    # regression: ReferenceEngine.invalidate_page once rebound the dict a running run() held
    guest = smc_guest(5, fence=True)
    last = run_in_chunks(interp_engine(), guest, [10_000])[-1]
    assert last.regs[10] == 15


def rdinstret_loop() -> list[int]:
    """csrr a0, instret; sd a0, 0(s1); s1 += 8; loop (5 instructions per iteration)."""
    body = [enc_i(0x73, 10, 2, 0, 0xC02), enc_s(0x23, 3, 9, 10, 0), addi(9, 9, 8)]
    return body + loop_back(12)


@pytest.mark.parametrize("threshold", [1, 2, 5])
@pytest.mark.parametrize("budgets", [[100_000], [1], [7], [2, 9, 4]])
def test_rdinstret_counts_instructions_retired_before_it(threshold: int, budgets: list[int]) -> None:
    count = 40
    x = [0] * 32
    x[9], x[COUNTER] = DATA, count
    guest = Guest(code=encode(rdinstret_loop()), x=tuple(x))
    last = assert_engines_agree(guest, budgets, threshold=threshold)[-1]
    data = dict(last.memory)[DATA >> 12]
    values = [int.from_bytes(data[8 * i : 8 * i + 8], "little") for i in range(count)]
    assert values == [5 * i for i in range(count)]
    assert last.icount == 5 * count


def amo(funct5: int, rd: int, rs1: int, rs2: int, size: int = 8) -> int:
    return enc_r(0x2F, rd, 3 if size == 8 else 2, rs1, rs2, funct5 << 2)


LR, SC, AMOADD, AMOSWAP, AMOMAXU = 0b00010, 0b00011, 0b00000, 0b00001, 0b11100


@pytest.mark.parametrize("budgets", [[10_000], [1], [3, 5]])
def test_lr_sc_counter_loop(budgets: list[int]) -> None:
    """An lr/sc increment retried until it succeeds, plus AMOs: the counter ends at ``count``."""
    body = [
        amo(LR, 10, 9, 0),
        addi(10, 10, 1),
        amo(SC, 11, 9, 10),
        enc_b(0x63, 1, 11, 0, -12),  # retry on failure
        amo(AMOADD, 12, 8, 13),
        amo(AMOMAXU, 14, 8, 10),
        amo(AMOSWAP, 15, 8, 15),
    ]
    count = 25
    x = [0] * 32
    x[8], x[9], x[13], x[15], x[COUNTER] = DATA + 0x40, DATA, 3, 7, count
    guest = Guest(code=encode(body + loop_back(4 * len(body))), x=tuple(x))
    last = assert_engines_agree(guest, budgets)[-1]
    data = dict(last.memory)[DATA >> 12]
    assert int.from_bytes(data[0:8], "little") == count
    assert last.regs[11] == 0
    assert_matches_unicorn(guest, last)


@pytest.mark.parametrize("start", [8, 16, 64, 160])
@pytest.mark.parametrize("budgets", [[10_000], [1], [3, 5, 40]])
def test_store_conditional_fault_in_compiled_loop(start: int, budgets: list[int]) -> None:
    """lr.d succeeds on a read-only page, sc.d's store faults there: a fault raised inside a helper."""
    body = [amo(LR, 10, 27, 0), amo(SC, 11, 27, 12), addi(27, 27, 8)]
    x = [0] * 32
    x[27], x[12], x[COUNTER] = READ_ONLY - start, 0x1234, 1000  # the read-only page follows the data page
    guest = Guest(code=encode(body + loop_back(12)), x=tuple(x))
    last = assert_engines_agree(guest, budgets)[-1]
    assert last.kind is StopKind.FAULT
    assert last.fault is not None and last.fault[:4] == ("MemoryFault", CODE + 4, READ_ONLY, "write")
    assert last.icount == 5 * (start // 8) + 1
    assert last.regs[27] == READ_ONLY


@settings(max_examples=15, deadline=None)
@given(count=st.integers(1, 30), budgets=BUDGETS)
def test_unaligned_amo_faults_identically(count: int, budgets: list[int]) -> None:
    """amoadd.d walks by 4 bytes: the second access is misaligned (SIGBUS) once the loop is compiled."""
    body = [amo(AMOADD, 10, 9, 12), addi(9, 9, 4)]
    x = [0] * 32
    x[9], x[12], x[COUNTER] = DATA + 8 * count, 1, 1000
    guest = Guest(code=encode(body + loop_back(8)), x=tuple(x))
    last = assert_engines_agree(guest, budgets)[-1]
    assert last.fault is not None and last.fault[:4] == ("MisalignedAccess", CODE, DATA + 8 * count + 4, "write")
    assert last.icount == 4
    assert last.regs[10] == 0 and last.regs[COUNTER] == 999
