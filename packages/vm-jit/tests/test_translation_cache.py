"""The one translation cache both tiers of the ``llvm`` engine keep their code in.

* a block is lifted once, and tier 1 and tier 2 compile from that one
  translation: the cache holds one entry per block plus one per native
  region, nothing twice;
* a store into a code page drops every tier's code from that page (tier-1
  regions, native regions, the blocks), the native code is freed at the next
  safepoint, and the rewritten instruction runs;
* under a small bound, collections evict tier-1 regions and native regions
  alike, and the dispatcher falls back correctly.

Every run is compared stop by stop with the ``interp`` engine
(``engine_harness.assert_same_runs``), and the sums are worked out from
the instructions.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from vm_core.types import StopKind
from vm_jit.engine import TieredEngine
from vm_jit.native.tier import make_llvm_engine
from vm_jit.translation_cache import CompiledRegion
from vm_translate.riscv.encoding import enc_b, enc_i, enc_r

from .engine_harness import (
    CODE,
    FRONTEND,
    RWX,
    Guest,
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


def addi(rd: int, rs1: int, imm: int) -> int:
    return enc_i(0x13, rd, 0, rs1, imm)


class CountingFrontEnd:
    """The RISC-V front end, counting the blocks it lifts by (pc, instruction limit)."""

    def __init__(self) -> None:
        self.lifts: Counter[tuple[int, int]] = Counter()

    def lift_block(self, mem: Any, pc: int, max_insns: int) -> Any:
        self.lifts[(pc, max_insns)] += 1
        return FRONTEND.lift_block(mem, pc, max_insns)


def counting_loop(count: int) -> Guest:
    """loop: a0 += 1; a1 += a0; counter -= 1; bne counter, zero, loop (then the end)."""
    body = [addi(10, 10, 1), enc_r(0x33, 11, 0, 11, 10, 0), addi(COUNTER, COUNTER, -1)]
    body.append(enc_b(0x63, 1, COUNTER, 0, -4 * len(body)))
    x = [0] * 32
    x[COUNTER] = count
    return Guest(code=encode(body), x=tuple(x), code_prot=RWX)


def test_a_block_is_translated_once_for_both_tiers() -> None:
    guest = counting_loop(2000)
    frontend = CountingFrontEnd()
    settings = llvm_settings(threshold=2, native_threshold=100)
    engine = make_llvm_engine(frontend, settings)  # type: ignore[arg-type]
    tc = engine.translation_cache
    actual = run_in_chunks(engine, guest, [500])
    assert_same_runs(run_in_chunks(interp_engine(), guest, [500]), actual)
    assert actual[-1].regs[10] == 2000 and actual[-1].regs[11] == 2000 * 2001 // 2
    full = {pc: n for (pc, limit), n in frontend.lifts.items() if limit == settings.max_block_insns}
    assert full and set(full.values()) == {1}, f"blocks lifted more than once: {full}"
    assert CODE in tc.compiled[1] and CODE in native_code(engine)  # both tiers compiled the loop
    native = native_code(engine)[CODE]
    assert tc.regions[CODE] is native.function  # the higher tier is dispatched
    blocks = set(tc.translations)
    assert set(native.blocks) <= blocks and set(tc.compiled[1][CODE].blocks) <= blocks
    # one entry per block (its tier-1 region grows it), one per native region: nothing is held twice
    keys = tc.code_cache.keys()
    regions = [key for key in keys if isinstance(key, CompiledRegion)]
    assert len(keys) == len(tc.translations) + len(regions) and regions == [native]
    assert engine.stats["native_insns"] > 0 and engine.stats["compiled_regions"] >= 1


def test_a_store_into_a_code_page_drops_every_tiers_code_from_it() -> None:
    count = 3000
    guest = counting_loop(count)
    engine = make_llvm_engine(FRONTEND, llvm_settings(threshold=2, native_threshold=100))
    reference = interp_engine()
    tc = engine.translation_cache
    cpu, ref_cpu = make_cpu(guest), make_cpu(guest)
    for _ in range(4):
        stop, ref_stop = engine.run(cpu, 1000), reference.run(ref_cpu, 1000)
        assert snapshot(cpu, stop) == snapshot(ref_cpu, ref_stop)
    native = native_code(engine)[CODE]
    assert CODE in tc.compiled[1] and native.payload.fn is not None and engine.stats["native_insns"] > 0
    page = CODE >> 12
    assert native in tc.pages[page] and CODE in tc.pages[page]
    for mem in (cpu.mem, ref_cpu.mem):  # the loop now adds 5 to a0: addi a0, a0, 5
        mem.store(CODE, 4, addi(10, 10, 5))
    assert not tc.translations and not tc.regions and all(not by_pc for by_pc in tc.compiled)
    assert page not in tc.pages and len(tc.code_cache) == 0
    # retired at once, freed at the next safepoint (the guest could have been inside it)
    assert engine.stats["native_retired_regions"] == 1 and native.payload.fn is not None
    before = int(cpu.regs[10])
    while cpu.pc != guest.end:
        stop, ref_stop = engine.run(cpu, 1000), reference.run(ref_cpu, 1000)
        assert snapshot(cpu, stop) == snapshot(ref_cpu, ref_stop)
    assert native.payload.fn is None and native.payload.code.freed
    assert engine.stats["native_freed_regions"] >= 1
    assert cpu.regs[10] == before + 5 * (count - before)  # the rewritten instruction ran every time after
    assert CODE in native_code(engine) and native_code(engine)[CODE] is not native  # compiled again


def leaf_functions(functions: int, iterations: int) -> Guest:
    """``functions`` copies of ``loop: a0 += 1; t6 -= 1; bne t6, zero, loop; ebreak`` (16 bytes each)."""
    body = [addi(10, 10, 1), addi(COUNTER, COUNTER, -1), enc_b(0x63, 1, COUNTER, 0, -8), EBREAK]
    x = [0] * 32
    x[COUNTER] = iterations
    return Guest(code=encode(body * functions), x=tuple(x))


def retired_kinds(engine: TieredEngine) -> Counter[str]:
    """Counts of what the code cache retires: native regions, blocks with a tier-1 region, plain blocks."""
    tc = engine.translation_cache
    kinds: Counter[str] = Counter()

    def note(key: Any) -> None:  # runs before the translation cache's own hook takes the key out
        if isinstance(key, CompiledRegion):
            kinds["native" if key.owner is native_tier(engine) else "other"] += 1
        else:
            kinds["tier1" if key in tc.compiled[1] else "block"] += 1

    tc.code_cache.on_retire.insert(0, note)
    return kinds


def test_bounds_evict_the_code_of_both_tiers() -> None:
    functions, iterations = 48, 40
    guest = leaf_functions(functions, iterations)
    settings = llvm_settings(threshold=1, native_threshold=1, code_cache_blocks=64, gc_concurrent=False)
    engine = make_llvm_engine(FRONTEND, settings)
    tc = engine.translation_cache
    kinds = retired_kinds(engine)
    reference = interp_engine()
    cpu, ref_cpu = make_cpu(guest), make_cpu(guest)
    for _ in range(2):
        for i in range(functions):
            for _ in range(2):
                cpu.pc = ref_cpu.pc = CODE + 16 * i
                cpu.regs[COUNTER] = ref_cpu.regs[COUNTER] = iterations
                stop, ref_stop = engine.run(cpu, 10_000), reference.run(ref_cpu, 10_000)
                assert stop.kind is ref_stop.kind is StopKind.BREAKPOINT
                assert snapshot(cpu, stop) == snapshot(ref_cpu, ref_stop)
            assert len(tc.code_cache) <= 64 + 1  # + the block translated after a safepoint
    assert cpu.regs[10] == 4 * functions * iterations
    s = engine.stats
    assert kinds["native"] > 0 and kinds["tier1"] > 0, kinds
    assert s["native_retired_regions"] == kinds["native"] and s["native_regions"] > functions
    assert 0 < s["native_freed_regions"] <= s["native_retired_regions"]  # freed at the safepoints since
    # what survives is consistent: every dispatched pc has its block, every native region its entries' blocks
    assert set(tc.regions) <= set(tc.translations)
    for region in native_code(engine).values():
        assert region in tc.code_cache and set(region.entries) <= set(tc.translations)
