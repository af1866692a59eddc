"""The ``llvm`` engine's tiers: promotion, native execution, slow-path exits, invalidation, background compiles.

Each program runs under ``interp`` (the reference) and ``llvm``; every
stop must be identical (``engine_harness.assert_same_runs``) and the
engine's statistics must show the tier the test is about really ran.
Programs with an end are also checked against Unicorn.
"""

from __future__ import annotations

import time

import pytest
from vm_core.types import StopKind
from vm_jit.native.float_ops import HOST_HAS_MXCSR
from vm_jit.native.tier import make_llvm_engine
from vm_translate.riscv import RiscvFrontEnd
from vm_translate.riscv.encoding import enc_b, enc_i, enc_j, enc_r, enc_s

from .engine_harness import (
    CODE,
    DATA,
    PAGE,
    RWX,
    Guest,
    assert_matches_unicorn,
    assert_same_runs,
    encode,
    interp_engine,
    make_cpu,
    run_in_chunks,
    run_unicorn,
)
from .native_harness import llvm_settings, native_code, native_tier

COUNTER = 31
FRONTEND = RiscvFrontEnd()


def addi(rd: int, rs1: int, imm: int) -> int:
    return enc_i(0x13, rd, 0, rs1, imm)


def jal(rd: int, offset: int) -> int:
    return enc_j(0x6F, rd, offset)


def summing_loop(count: int) -> Guest:
    """a0 += i * 3 for i = count..1, storing each partial sum to the data page (a ring of 64 slots)."""
    body = [
        enc_i(0x1B, 5, 0, COUNTER, 0),  # addiw t0, s11(counter), 0
        enc_i(0x13, 6, 1, 5, 1),  # slli t1, t0, 1
        enc_r(0x33, 5, 0, 5, 6, 0),  # add t0, t0, t1 (t0 = 3 * i)
        enc_r(0x33, 10, 0, 10, 5, 0),  # add a0, a0, t0
        enc_i(0x13, 7, 7, COUNTER, 63),  # andi t2, counter, 63
        enc_i(0x13, 7, 1, 7, 3),  # slli t2, t2, 3
        enc_r(0x33, 7, 0, 7, 9, 0),  # add t2, t2, s1
        enc_s(0x23, 3, 7, 10, 0),  # sd a0, 0(t2)
        addi(COUNTER, COUNTER, -1),
    ]
    body.append(enc_b(0x63, 1, COUNTER, 0, -4 * len(body)))
    x = [0] * 32
    x[9], x[COUNTER] = DATA, count
    return Guest(code=encode(body), x=tuple(x))


def test_hot_loop_runs_natively_and_every_tier_is_counted() -> None:
    guest = summing_loop(3000)
    engine = make_llvm_engine(FRONTEND, llvm_settings(threshold=2, native_threshold=500))
    expected = run_in_chunks(interp_engine(), guest, [7000])
    actual = run_in_chunks(engine, guest, [7000])
    assert_same_runs(expected, actual)
    assert actual[-1].regs[10] == 3 * 3000 * 3001 // 2
    assert_matches_unicorn(guest, actual[-1])
    s = engine.stats
    assert s["native_regions"] >= 1 and s["native_insns"] > 20_000
    assert s["interpreted_insns"] > 0 and s["compiled_insns"] >= 500  # tiers 0 and 1 ran before promotion
    assert s["interpreted_insns"] + s["compiled_insns"] + s["native_insns"] + s["slow_path_insns"] == actual[-1].icount
    assert s["native_compile_seconds"] > 0


@pytest.mark.parametrize("budget", [1, 3, 10, 97, 100_000])
def test_budget_stops_inside_native_loops_are_exact(budget: int) -> None:
    guest = summing_loop(200)
    engine = make_llvm_engine(FRONTEND, llvm_settings())
    assert_same_runs(run_in_chunks(interp_engine(), guest, [budget]), run_in_chunks(engine, guest, [budget]))
    if 10 <= budget < 2000:  # a single call runs the whole loop in tier 1: promotion comes too late
        assert engine.stats["native_insns"] > 0


def test_a_short_program_never_starts_llvm() -> None:
    """Before ``native_start_insns`` retired instructions nothing is promoted, however hot: LLVM is not loaded."""
    start = 60_000
    guest = summing_loop(20_000)  # 200,000 instructions
    engine = make_llvm_engine(FRONTEND, llvm_settings(threshold=2, native_threshold=500, native_start_insns=start))
    cpu = make_cpu(guest)
    while cpu.icount + 1000 < start:
        assert engine.run(cpu, 1000).kind is StopKind.BUDGET
    assert max(engine.heat.values()) > 50 * 500  # far past native_threshold: only the start rule holds it back
    tier = native_tier(engine)
    assert tier.loader is None and tier.compiler is None and not native_code(engine)
    assert engine.stats["native_insns"] == 0 and engine.stats["native_compile_seconds"] == 0
    while cpu.pc != guest.end:
        engine.run(cpu, 1000)
    assert tier.loader is not None and engine.stats["native_regions"] >= 1 and engine.stats["native_insns"] > 0
    assert cpu.regs[10] == 3 * 20_000 * 20_001 // 2 and cpu.icount == 200_000


def walking_store_loop(step: int, count: int) -> Guest:
    """sd a0, 0(s10); s10 += step; loop: walks off the data page into the read-only page and faults."""
    body = [enc_s(0x23, 3, 26, 10, 0), addi(26, 26, step), addi(10, 10, 1), addi(COUNTER, COUNTER, -1)]
    body.append(enc_b(0x63, 1, COUNTER, 0, -4 * len(body)))
    x = [0] * 32
    x[26], x[COUNTER] = DATA, count
    return Guest(code=encode(body), x=tuple(x))


@pytest.mark.parametrize("budgets", [[200], [5], [3, 11, 40]])
@pytest.mark.parametrize("step", [8, 16, 24])
def test_fault_in_native_code_has_the_precise_pc_state_and_count(budgets: list[int], step: int) -> None:
    guest = walking_store_loop(step, 10_000)
    engine = make_llvm_engine(FRONTEND, llvm_settings())
    expected = run_in_chunks(interp_engine(), guest, budgets)
    actual = run_in_chunks(engine, guest, budgets)
    assert_same_runs(expected, actual)
    last = actual[-1]
    stores = -(-PAGE // step)  # the first store at or past READ_ONLY faults
    assert last.kind is StopKind.FAULT
    assert last.fault is not None and last.fault[:4] == ("MemoryFault", CODE, DATA + stores * step, "write")
    assert last.icount == 5 * stores and last.regs[10] == stores
    assert engine.stats["native_insns"] > 0 and engine.stats["slow_path_exits"] >= 1


def test_page_crossing_loads_take_the_slow_path() -> None:
    """ld from the last bytes of the data page crosses into the read-only page: legal, but not native."""
    body = [enc_i(0x03, 11, 3, 26, 0), enc_r(0x33, 10, 0, 10, 11, 0), addi(26, 26, 1), addi(COUNTER, COUNTER, -1)]
    body.append(enc_b(0x63, 1, COUNTER, 0, -4 * len(body)))
    x = [0] * 32
    x[26], x[COUNTER] = DATA + PAGE - 40, 60
    guest = Guest(code=encode(body), x=tuple(x), data=bytes(range(256)) * 16, read_only=bytes([7]) * PAGE)
    engine = make_llvm_engine(FRONTEND, llvm_settings())
    expected = run_in_chunks(interp_engine(), guest, [20])
    actual = run_in_chunks(engine, guest, [20])
    assert_same_runs(expected, actual)
    assert_matches_unicorn(guest, actual[-1])
    assert engine.stats["slow_path_exits"] >= 1  # crossing loads leave native code
    assert engine.stats["native_insns"] > 0


def test_store_from_native_code_into_another_code_page_invalidates_it() -> None:
    """Each iteration rewrites the first instruction of a function on the next page, then calls it."""
    count = 50
    new_insn = addi(11, 11, 100)
    words = [enc_s(0x23, 2, 29, 30, 0), jal(1, PAGE - 4), addi(10, 10, 1), addi(COUNTER, COUNTER, -1)]
    words.append(enc_b(0x63, 1, COUNTER, 0, -16))  # back to the store
    words.append(jal(0, PAGE - 4 * len(words) + 8))  # then jump past f: the end of the code
    nops = (PAGE - 4 * len(words)) // 4
    function = [addi(11, 11, 1), enc_i(0x67, 0, 0, 1, 0)]  # f: addi a1, a1, 1; ret
    code = encode(words + [addi(0, 0, 0)] * nops + function)
    x = [0] * 32
    x[29], x[30], x[COUNTER] = CODE + PAGE, new_insn, count
    guest = Guest(code=code, x=tuple(x), code_prot=RWX)
    engine = make_llvm_engine(FRONTEND, llvm_settings())
    expected = run_in_chunks(interp_engine(), guest, [30])
    actual = run_in_chunks(engine, guest, [30])
    assert_same_runs(expected, actual)
    last = actual[-1]
    assert last.pc == guest.end and last.regs[11] == 100 * count and last.regs[10] == count
    uc = run_unicorn(guest)  # the code spans two pages: compare registers (the rewritten word is checked by a1)
    assert uc.error is None and uc.pc == guest.end and uc.x == last.regs[:32]
    assert engine.stats["slow_path_exits"] >= 1 and engine.stats["native_insns"] > 0


def test_background_compilation_installs_native_code_and_changes_nothing() -> None:
    # long enough (30M instructions) that a slow, loaded machine still installs the background
    # compile before the loop ends
    iterations = 3_000_000
    guest = summing_loop(iterations)
    engine = make_llvm_engine(FRONTEND, llvm_settings(native_background=True, native_threshold=100))
    try:
        cpu = make_cpu(guest)
        deadline = time.monotonic() + 60
        while engine.stats["native_insns"] == 0 and time.monotonic() < deadline:
            stop = engine.run(cpu, 10_000)
            assert stop.kind is StopKind.BUDGET
        assert engine.stats["native_insns"] > 0, "the background compile was never installed"
        while cpu.pc != guest.end:
            engine.run(cpu, 1_000_000)
    finally:
        engine.close()
    reference = run_in_chunks(interp_engine(), summing_loop(2000), [10**9])[-1]
    assert cpu.regs[10] == 3 * iterations * (iterations + 1) // 2 and cpu.icount == 10 * iterations
    assert reference.regs[10] == 3 * 2000 * 2001 // 2 and reference.icount == 10 * 2000  # same loop, checked


def _fadd_loop(fadd_d: int) -> Guest:
    body = [fadd_d, addi(COUNTER, COUNTER, -1)]
    body.append(enc_b(0x63, 1, COUNTER, 0, -8))
    x = [0] * 32
    x[COUNTER] = 300
    one = 0x3FF0000000000000
    return Guest(code=encode(body), x=tuple(x), f=(0,) * 10 + (one, one) + (0,) * 20)


def test_blocks_with_helpers_native_code_lacks_stay_in_tier_1() -> None:
    """fadd.d rounding to nearest, ties away (RMM) has no host equivalent: its block stays in tier 1."""
    guest = _fadd_loop(0x02B54553)  # fadd.d fa0, fa0, fa1, rmm
    engine = make_llvm_engine(FRONTEND, llvm_settings())
    assert_same_runs(run_in_chunks(interp_engine(), guest, [50]), run_in_chunks(engine, guest, [50]))
    assert CODE not in native_code(engine) and engine.stats["compiled_insns"] > 0


@pytest.mark.skipif(not HOST_HAS_MXCSR, reason="native floating point is x86-64 only")
def test_floating_point_loops_run_natively() -> None:
    guest = _fadd_loop(0x02B57553)  # fadd.d fa0, fa0, fa1 (rm = dyn)
    engine = make_llvm_engine(FRONTEND, llvm_settings())
    assert_same_runs(run_in_chunks(interp_engine(), guest, [50]), run_in_chunks(engine, guest, [50]))
    assert CODE in native_code(engine) and engine.stats["native_insns"] > 0


def calling_loop(count: int) -> Guest:
    """A loop calling a leaf function through a register (jalr): loop and function are separate regions."""
    function = 4 * 5
    body = [
        addi(10, 10, 1),  # loop: a0 += 1
        enc_i(0x67, 1, 0, 18, 0),  # jalr ra, 0(s2): call the function
        addi(COUNTER, COUNTER, -1),
        enc_b(0x63, 1, COUNTER, 0, -12),  # bne counter, zero, loop
        jal(0, 20),  # jump over the function to the end
        enc_r(0x33, 11, 0, 11, 10, 0),  # function: a1 += a0
        enc_i(0x13, 12, 1, 11, 1),  # slli a2, a1, 1
        enc_r(0x33, 13, 0, 13, 12, 0),  # add a3, a3, a2
        enc_i(0x67, 0, 0, 1, 0),  # ret
    ]
    x = [0] * 32
    x[18], x[COUNTER] = CODE + function, count
    return Guest(code=encode(body), x=tuple(x))


@pytest.mark.parametrize("budgets", [[100_000], [7], [1, 30, 999]])
def test_native_regions_chain_into_each_other(budgets: list[int]) -> None:
    """Calls and returns between native regions stay in native code (few calls from Python), exactly."""
    guest = calling_loop(3000)
    engine = make_llvm_engine(FRONTEND, llvm_settings(threshold=2, native_threshold=200))
    expected = run_in_chunks(interp_engine(), guest, budgets)
    actual = run_in_chunks(engine, guest, budgets)
    assert_same_runs(expected, actual)
    assert_matches_unicorn(guest, actual[-1])
    s = engine.stats
    assert s["native_regions"] >= 2 and s["native_insns"] > 15_000
    if budgets == [100_000]:  # unchained, every call and every return would leave native code: 6000 calls
        assert s["native_calls"] < 100
