"""What vm-jit keeps in vm-gc's code cache besides tier-1 code: native regions and trap exits.

Native (tier-2) regions are cache entries: rooted through their entry pcs
(which the dispatcher records when it enters them), retired from every
dispatch table and their machine code freed only at a safepoint, then
compiled and installed again when the guest comes back to them. The trap
table holds a trap pc only while a live translation or region can stop at
it. Every run is compared call by call with the ``interp`` engine
(``engine_harness.assert_same_runs``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from vm_core.errors import VmError
from vm_core.types import StopKind
from vm_gc import CollectionKind
from vm_jit.engine import TieredEngine, make_python_engine
from vm_jit.native.compiler import estimate_loaded_bytes
from vm_jit.native.tier import make_llvm_engine
from vm_jit.settings import JitSettings
from vm_jit.translation_cache import CompiledRegion
from vm_translate.cpu import CpuState
from vm_translate.riscv.encoding import enc_b, enc_i, enc_j, enc_r, enc_s

from .engine_harness import (
    CODE,
    DATA,
    FRONTEND,
    PAGE,
    RWX,
    Guest,
    Snapshot,
    assert_same_runs,
    encode,
    interp_engine,
    make_cpu,
    run_in_chunks,
    snapshot,
)
from .native_harness import llvm_settings, native_code, native_tier

COUNTER = 31
EBREAK = 0x00100073
MAJOR = CollectionKind.MAJOR


def addi(rd: int, rs1: int, imm: int) -> int:
    return enc_i(0x13, rd, 0, rs1, imm)


def summing_loop(count: int) -> Guest:
    """a0 += 3 * i for i = count..1, each partial sum stored to a ring of 64 slots on the data page."""
    body = [
        enc_i(0x1B, 5, 0, COUNTER, 0), enc_i(0x13, 6, 1, 5, 1), enc_r(0x33, 5, 0, 5, 6, 0),
        enc_r(0x33, 10, 0, 10, 5, 0), enc_i(0x13, 7, 7, COUNTER, 63), enc_i(0x13, 7, 1, 7, 3),
        enc_r(0x33, 7, 0, 7, 9, 0), enc_s(0x23, 3, 7, 10, 0), addi(COUNTER, COUNTER, -1),
    ]  # fmt: skip
    body.append(enc_b(0x63, 1, COUNTER, 0, -4 * len(body)))
    x = [0] * 32
    x[9], x[COUNTER] = DATA, count
    return Guest(code=encode(body), x=tuple(x))


def run_with_pauses(
    engine: Any, guest: Guest, budget: int, pause: Callable[[int, CpuState], None], calls: int
) -> list[Snapshot]:
    """``run_in_chunks`` with ``pause(call, cpu)`` after each call (the guest is outside translated code)."""
    cpu = make_cpu(guest)
    shots = []
    for call in range(calls):
        stop = engine.run(cpu, budget)
        shots.append(snapshot(cpu, stop))
        if cpu.pc == guest.end:
            break
        pause(call, cpu)
    return shots


def native_keys(engine: TieredEngine) -> list[CompiledRegion]:
    tier = native_tier(engine)
    return [key for key in engine.translation_cache.code_cache.keys() if isinstance(key, CompiledRegion) and key.owner is tier]


def test_native_region_is_rooted_by_its_entry_then_collected_freed_and_installed_again() -> None:
    guest = summing_loop(3000)
    engine = make_llvm_engine(FRONTEND, llvm_settings(threshold=2, native_threshold=200, gc_concurrent=False))
    tc = engine.translation_cache
    cache = tc.code_cache
    seen: dict[str, Any] = {}

    def pause(call: int, cpu: CpuState) -> None:
        if "region" not in seen and native_code(engine):
            (region,) = native_keys(engine)
            entry = region.entries[0]
            assert native_code(engine)[entry] is region and tc.regions[entry] is region.function
            assert cache.size_of(region) == estimate_loaded_bytes(region.payload.code.object_size)
            assert region in cache.members_of(entry)  # the dispatcher's recent pcs reach it
            assert entry in cache.members_of(region) and cache.members_of(region) <= set(tc.translations)
            seen.update(region=region, entry=entry, call=call)
            tc.recent[:] = [-1] * len(tc.recent)
        elif seen.get("call") == call - 1:  # one more call ran the loop natively from its entry
            region, entry = seen["region"], seen["entry"]
            assert entry in tc.recent
            cache.collect(tc.recent, (cpu.pc,), kind=MAJOR)
            assert region in cache and region.payload.fn is not None  # rooted: kept
            cache.collect((), (), kind=MAJOR)  # nothing recent: everything goes, the region's code is freed
            assert region not in cache and region.payload.fn is None and region.payload.code.freed
            assert entry not in native_code(engine) and region.function not in tc.regions.values()
            assert all(region not in keys for keys in tc.pages.values())
            assert engine.stats["native_retired_regions"] == engine.stats["native_freed_regions"] == 1
            assert region.function is not None
            with pytest.raises(VmError, match="freed"):  # a stale reference could never jump into freed code
                region.function(list(cpu.regs), 10)

    actual = run_with_pauses(engine, guest, 1000, pause, calls=100)
    assert_same_runs(run_in_chunks(interp_engine(), guest, [1000]), actual)
    assert actual[-1].regs[10] == 3 * 3000 * 3001 // 2
    (again,) = native_keys(engine)  # the loop was compiled and installed again, at the same entry
    assert again is not seen["region"] and native_code(engine)[seen["entry"]] is again and again.payload.fn is not None
    assert engine.stats["native_regions"] == 2


def test_native_region_invalidated_inside_native_code_is_freed_only_at_the_next_safepoint() -> None:
    """Each iteration rewrites the first instruction of a function on the next page, then calls it."""
    count = 40
    new_insn = addi(11, 11, 100)
    words = [enc_s(0x23, 2, 29, 30, 0), enc_j(0x6F, 1, PAGE - 4), addi(10, 10, 1), addi(COUNTER, COUNTER, -1)]
    words.append(enc_b(0x63, 1, COUNTER, 0, -16))
    words.append(enc_j(0x6F, 0, PAGE - 4 * len(words) + 8))
    nops = (PAGE - 4 * len(words)) // 4
    code = encode(words + [addi(0, 0, 0)] * nops + [addi(11, 11, 1), enc_i(0x67, 0, 0, 1, 0)])
    x = [0] * 32
    x[29], x[30], x[COUNTER] = CODE + PAGE, new_insn, count
    guest = Guest(code=code, x=tuple(x), code_prot=RWX)
    engine = make_llvm_engine(FRONTEND, llvm_settings())
    tier = native_tier(engine)
    inside = [0]  # native region functions being run now
    wrap = tier.entry_function

    def counted_entry(nat: CompiledRegion) -> Any:
        fn = wrap(nat)

        def region(regs: list[int], budget: int) -> tuple[int, int, int]:
            inside[0] += 1
            try:
                return fn(regs, budget)
            finally:
                inside[0] -= 1

        return region

    tier.entry_function = counted_entry  # type: ignore[method-assign,assignment]
    retired_inside: list[CompiledRegion] = []
    released_inside: list[Any] = []
    code_cache = engine.translation_cache.code_cache
    code_cache.on_retire.append(
        lambda key: retired_inside.append(key) if isinstance(key, CompiledRegion) and inside[0] else None)
    code_cache.on_release.append(lambda key, payload: released_inside.append(key) if inside[0] else None)
    expected = run_in_chunks(interp_engine(), guest, [30])
    actual = run_in_chunks(engine, guest, [30])
    assert_same_runs(expected, actual)
    assert actual[-1].regs[11] == 100 * count
    assert retired_inside, "no native region was invalidated while native code ran"
    assert not released_inside
    code_cache.safepoint((), ())  # the next safepoint frees what the last call retired
    assert all(region.payload.fn is None and region.payload.code.freed for region in retired_inside)


def test_trap_table_holds_only_traps_of_live_translations() -> None:
    """1,500 functions ``addi a0, a0, 1; ebreak``, each run twice (interpreted, then as a region), twice over."""
    functions = 1500
    guest = Guest(code=encode([addi(10, 10, 1), EBREAK] * functions))
    engine = make_python_engine(FRONTEND, JitSettings(compile_threshold=2, code_cache_blocks=64, gc_concurrent=False))
    tc = engine.translation_cache
    reference = interp_engine()
    cpu, ref_cpu = make_cpu(guest), make_cpu(guest)
    for _ in range(2):
        for i in range(functions):
            for _ in range(2):
                cpu.pc = ref_cpu.pc = CODE + 8 * i
                stop, ref_stop = engine.run(cpu, 100), reference.run(ref_cpu, 100)
                assert stop.kind is ref_stop.kind is StopKind.BREAKPOINT
                assert snapshot(cpu, stop) == snapshot(ref_cpu, ref_stop)
            assert len(tc.traps) <= len(tc.code_cache) <= 64 + 1  # + the block translated after a safepoint
            assert set(tc.traps) == {pc for t in tc.translations.values() for pc in t.trap_pcs}
    assert cpu.regs[10] == 4 * functions and engine.stats["gc_reclaimed_translations"] > functions


def test_trap_shared_by_a_block_and_a_region_stays_until_both_are_released() -> None:
    """X: ``addi a0, a0, 1; beq a1, x0, B; ...``; B: ``ebreak``: B's trap is in B's region and X's region."""
    words = [addi(10, 10, 1), enc_b(0x63, 0, 11, 0, 8), addi(12, 12, 1), EBREAK]
    guest = Guest(code=encode(words))
    x_pc, b_pc = CODE, CODE + 12
    engine = make_python_engine(FRONTEND, JitSettings(compile_threshold=2, gc_concurrent=False))
    tc = engine.translation_cache
    cache = tc.code_cache
    reference = interp_engine()
    cpu, ref_cpu = make_cpu(guest), make_cpu(guest)

    def run_from(pc: int) -> None:
        cpu.pc = ref_cpu.pc = pc
        stop, ref_stop = engine.run(cpu, 100), reference.run(ref_cpu, 100)
        assert stop.kind is StopKind.BREAKPOINT and stop.pc == b_pc
        assert snapshot(cpu, stop) == snapshot(ref_cpu, ref_stop)

    run_from(b_pc)  # B interpreted
    run_from(x_pc)  # X interpreted, B's region compiled and trapping
    run_from(x_pc)  # X's region compiled: it contains B (which has run), so it holds B's trap too
    assert b_pc in cache.members_of(x_pc) and x_pc in tc.regions and b_pc in tc.regions
    assert tc.trap_owners[b_pc] == {tc.translations[x_pc], tc.translations[b_pc]}
    cache.collect((b_pc,), kind=MAJOR)  # only B is recent: X's entry goes, B's keeps the trap
    assert x_pc not in cache and b_pc in tc.traps
    run_from(b_pc)  # B's region stops at its trap
    cache.collect((), kind=MAJOR)
    assert len(cache) == 0 and not tc.traps and not tc.trap_owners
    run_from(x_pc)
    run_from(x_pc)
    assert cpu.regs[10] == 4


def test_chain_table_never_leads_to_a_retired_region() -> None:
    """Native regions call each other through the chain table: collections must take their slots out."""
    from .test_native_tiers import calling_loop

    guest = calling_loop(3000)
    engine = make_llvm_engine(FRONTEND, llvm_settings(threshold=2, native_threshold=200, gc_concurrent=False))
    cache = engine.translation_cache.code_cache
    chains = native_tier(engine).chains
    collected = [0]

    def pause(call: int, cpu: CpuState) -> None:
        live = {region.payload.address for region in native_keys(engine)}
        assert set(chains.entries().values()) <= live
        if call % 3 == 2 and native_code(engine):
            cache.collect((), (), kind=MAJOR)  # nothing recent: every native region is retired and freed
            collected[0] += 1
            assert not native_keys(engine) and not chains.entries()

    actual = run_with_pauses(engine, guest, 700, pause, calls=200)
    assert_same_runs(run_in_chunks(interp_engine(), guest, [700]), actual)
    assert collected[0] >= 3 and engine.stats["native_freed_regions"] >= 3
    assert engine.stats["native_calls"] < engine.stats["native_insns"] / 20  # chained while alive
