"""The translating engines: one dispatcher over one translation cache and an ordered list of tiers.

:class:`TieredEngine` composes a
:class:`~vm_jit.translation_cache.TranslationCache` with compiling tiers
(:mod:`vm_jit.tier`): the ``python`` engine (:func:`make_python_engine`) has
tier 1 (:class:`~vm_jit.python_tier.PythonTier`), the ``llvm`` engine
(:func:`vm_jit.native.make_llvm_engine`) tiers 1 and 2
(:class:`~vm_jit.native.tier.NativeTier`).

Each guest block is lifted once (the cache's translation, which every tier
compiles from) and run by the reference executor (tier 0) until it has run
the first tier's ``threshold`` times (``compile_threshold``); then that tier
compiles the region at it. The promotion policy above: every guest
instruction a region of tier *n* retires counts towards its entry's heat,
and at tier *n + 1*'s ``threshold`` (``native_threshold``) that tier is
asked for the entry's region (it may decline, or compile in the
background). A region whose entry block leads straight into code of the
tier above runs only that block, so the dispatcher enters the higher tier
next. The dispatcher calls, at each pc, the function of the highest tier
with code there (``translation_cache.regions``).

The engine offers the cache a safepoint before every block it runs outside
compiled code, and records the pcs it enters regions at in the cache's
recent-entry table (the collector's roots). Its store into that table costs
27 ns per region entered, and regions loop inside: ``bench_sieve 2000000``
enters regions 982 times in 32 million instructions (0.03 ms of 3-4 s),
``sort_search`` (calls through function pointers) 83,753 times in 1.3
million (2.3 ms of 1.05 s, 0.2%); removing it changes ``bench/run.py``
timings less than their noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vm_core.errors import Breakpoint, ConfigurationError, GuestFault
from vm_core.logging import get_logger
from vm_core.types import StopKind, StopReason
from vm_translate import ir
from vm_translate.cpu import CpuState
from vm_translate.executor import execute_block, trap_fault
from vm_translate.frontend import FrontEnd

from vm_jit.python_tier import PythonTier
from vm_jit.settings import JitSettings
from vm_jit.tier import Tier, TierFactory
from vm_jit.translation_cache import CompiledRegion, RegionFunction, Translation, TranslationCache, successors

log = get_logger("vm_jit.engine")


class TieredEngine:
    """Tier 0 (the reference executor) and the compiling tiers over one translation cache (module docstring)."""

    def __init__(
        self, name: str, frontend: FrontEnd, settings: JitSettings | None, tiers: Sequence[TierFactory]
    ) -> None:
        if not tiers:
            raise ConfigurationError(f"engine {name} needs at least one compiling tier")
        self.name = name
        self.frontend = frontend
        self.settings = settings or JitSettings()
        self.stats: dict[str, float] = {
            "compiled_regions": 0,
            "interpreted_insns": 0,
            "compiled_insns": 0,
            "compile_seconds": 0.0,
        }
        self.translation_cache = TranslationCache(frontend, self.settings, self.stats, levels=len(tiers))
        self.tiers: tuple[Tier, ...] = tuple(
            factory(self.translation_cache, level + 1) for level, factory in enumerate(tiers)
        )
        self.heat: dict[int, int] = {}  # entry pc -> instructions its regions retired (the promotion policy)
        self.cpu: Any = None  # the vCPU of the run in progress (promotion and native code need it)
        # (pc, instructions) left of the block the last budget cut ended in
        self._rest: tuple[int, int] | None = None
        if len(self.tiers) > 1:
            self.translation_cache.entry_hook = self._counting
            self.translation_cache.on_retire_pc.append(self._forget)

    def tier(self, name: str) -> Tier:
        """The compiling tier called ``name`` (KeyError if the engine has none)."""
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise KeyError(name)

    def close(self) -> None:
        """Stop the tiers' threads and release what they hold on the host."""
        for tier in self.tiers:
            tier.close()

    # -- promotion ------------------------------------------------------------------
    def _forget(self, pc: int) -> None:
        self.heat.pop(pc, None)

    def _counting(self, region: CompiledRegion) -> RegionFunction:
        """``region``'s function counting what it retires towards its entry's promotion to the next tier."""
        fn = region.function
        assert fn is not None
        if region.level >= len(self.tiers):
            return fn  # the top tier: nothing to promote to
        upper = self.tiers[region.level]
        above = self.translation_cache.compiled[upper.level]
        entry = region.entries[0]
        threshold = upper.threshold
        heat = self.heat
        t = self.translation_cache.translations.get(entry)
        first, after = (t.n, successors(t.block)) if t is not None and upper.supports(t.block) else (0, [])
        engine = self

        def counting(regs: list[int], budget: int) -> tuple[int, int, int]:
            if first and first < budget and any(pc in above for pc in after):
                # the entry block leads straight into the tier above (say the rest of a block after a slow-path
                # step, or a block just outside a native loop): run only it, the dispatcher enters that next
                budget = first
            result = fn(regs, budget)
            total = heat[entry] = heat.get(entry, 0) + result[1]
            if total >= threshold and upper.enabled:
                upper.promote(engine.cpu, entry)
            elif upper.busy:
                upper.install_finished(engine.cpu)
            return result

        return counting

    # -- execution --------------------------------------------------------------------
    def run(self, cpu: CpuState, budget: int) -> StopReason:
        """Execute up to ``budget`` guest instructions (see vm_core's StopReason)."""
        tc = self.translation_cache
        if tc.attach(cpu.mem):
            self.heat.clear()
            self._rest = None
            for tier in self.tiers:
                tier.attach(cpu.mem)
        self.cpu = cpu
        for tier in self.tiers:
            tier.begin_run(cpu)
        if tc.code_cache.safepoint_due:
            tc.safepoint(cpu.pc)
        regs = cpu.regs
        regions = tc.regions
        recent = tc.recent
        mask = tc.recent_mask
        stats = self.stats
        start = cpu.icount
        try:
            while True:
                remaining = budget - (cpu.icount - start)
                pc = cpu.pc
                region = regions.get(pc)
                if region is not None:
                    recent[(pc >> 1) & mask] = pc
                    pc, n, kind = region(regs, remaining)
                    cpu.pc = pc
                    cpu.icount += n
                    stats["compiled_insns"] += n
                    if kind:
                        if kind == 1:
                            return StopReason(StopKind.SYSCALL, pc)
                        raise trap_fault(tc.traps[pc], cpu.isa)
                    if n:
                        continue
                stop = self._cold_step(cpu, remaining)
                if stop is not None:
                    return stop
        except GuestFault as fault:
            kind_ = StopKind.BREAKPOINT if isinstance(fault, Breakpoint) else StopKind.FAULT
            return StopReason(kind_, cpu.pc, fault=fault, signal=fault.signo)

    def _translate(self, cpu: CpuState, pc: int) -> Translation:
        t = self.translation_cache.translate(cpu.mem, pc)
        for tier in self.tiers:
            tier.translated(cpu, t)
        return t

    def _cold_step(self, cpu: CpuState, remaining: int) -> StopReason | None:
        """Run one block outside compiled code (tier 0); return a stop reason or None."""
        if remaining <= 0:
            return StopReason(StopKind.BUDGET, cpu.pc)
        pc = cpu.pc
        tc = self.translation_cache
        if (
            tc.code_cache.safepoint_due
        ):  # outside compiled code, about to enter pc: the collector may sweep now
            tc.safepoint(pc)
        tc.recent[(pc >> 1) & tc.recent_mask] = pc
        rest, self._rest = self._rest, None
        t = tc.translations.get(pc)
        tail = False
        if t is None and rest is not None and rest[0] == pc:
            # the rest of a block a budget cut (a slice of a hot loop ends anywhere): interpreted, never a
            # translation or region of its own
            t, tail = Translation(tc.cut_block(cpu.mem, pc, rest[1])), True
        elif t is None:
            t = self._translate(cpu, pc)
        if t.n > remaining or (t.n == remaining and isinstance(t.ir.exit, ir.TrapExit)):
            block = tc.cut_block(cpu.mem, pc, remaining)
            cpu.pc = execute_block(block, cpu)
            self.stats["interpreted_insns"] += block.insn_count
            if t.n > block.insn_count:
                self._rest = (cpu.pc, t.n - block.insn_count)
            return None
        if not tail:
            t.runs += 1
            first = self.tiers[0]
            if t.runs >= first.threshold and pc not in tc.regions:
                first.promote(cpu, pc)
                return None
        cpu.pc = execute_block(t.ir, cpu)
        self.stats["interpreted_insns"] += t.n
        if isinstance(t.ir.exit, ir.SyscallExit):
            return StopReason(StopKind.SYSCALL, cpu.pc)
        return None


def make_python_engine(frontend: FrontEnd, settings: JitSettings | None = None) -> TieredEngine:
    """The ``python`` engine: the interpreter and tier 1 over one translation cache."""
    return TieredEngine("python", frontend, settings, (PythonTier,))
