"""The ``python`` engine: hot code compiled to Python functions, cold code interpreted.

Each guest block is lifted once and run by the reference executor until it
has run ``compile_threshold`` times. Then it is optimised by vm-translate's
IR passes and compiled by :mod:`vm_jit.pysource` together with the blocks its
constant exits lead to (a *region*, at most ``max_region_blocks`` blocks that
have already run): inside a region, blocks chain to their successors
directly, with guest registers kept in Python locals, so a hot loop runs
without returning to the dispatcher. Regions are dispatched from a dict
keyed by their entry pc.

A store into a guest page that holds translated code (vm-mem's code watch)
drops every translation and region covering that page before it runs again.

Translations live in a bounded code cache (:class:`vm_gc.CodeCache`, bound by
``code_cache_blocks`` and ``code_cache_bytes``): one cache entry per entry pc
covers the block's translation and the region compiled from it, sized from
the IR statement count and the region's code object. A region is linked to
the translations its constant exits lead to and holds the blocks it was
compiled from as members. The dispatcher remembers recently entered pcs in
a small direct-mapped table (``gc_recent_entries`` slots, like qemu's jump
cache); those, and the pc the vCPU is about to enter, are the collector's
roots. The engine offers the cache a safepoint before every block it runs
outside compiled code; reclaimed entries leave ``translations``, ``regions``
and ``pages`` through the cache's ``on_retire`` hook, and invalidation by a
code write goes through the same cache (:meth:`vm_gc.CodeCache.invalidate`).
The trap exits a region may stop at (``traps``, looked up by the dispatcher)
belong to the cache entries whose block or region holds them (the entry's
payload, its :class:`_Translation`, lists them); a trap pc goes when the
last of them is released (``on_release``: at a safepoint, after a region that
was invalidated while it ran has returned).

The dispatcher's store into the recent-entry table costs 27 ns per region
entered, and regions loop inside: ``bench_sieve 2000000`` enters regions 982
times in 32 million instructions (0.03 ms of 3-4 s), ``sort_search`` (calls
through function pointers) 83,753 times in 1.3 million (2.3 ms of 1.05 s,
0.2%); removing it changes ``bench/run.py`` timings less than their noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from vm_core.errors import Breakpoint, ConfigurationError, GuestFault
from vm_core.logging import get_logger
from vm_core.types import StopKind, StopReason
from vm_gc import CacheLimits, CodeCache, GcPolicy, estimate_function_bytes, estimate_ir_bytes
from vm_translate import ir
from vm_translate.cpu import CpuState
from vm_translate.executor import execute_block, trap_fault
from vm_translate.frontend import FrontEnd
from vm_translate.passes import optimize

from vm_jit.pysource import compile_region
from vm_jit.settings import JitSettings

log = get_logger("vm_jit.engine")

Region = Callable[[list[int], int], tuple[int, int, int]]

#: The smallest code cache the engine accepts: a region and its members must fit with room to spare.
MIN_CODE_CACHE_BLOCKS = 64
MIN_CODE_CACHE_BYTES = 256 << 10
#: Blocks cut short by a budget's end that are kept for reuse (slices of a hot loop end at the same places).
MAX_CUT_BLOCKS = 256


class _Translation:
    """One guest block: its IR, how often it ran in the interpreter, the trap pcs its entry holds.

    ``block`` is the optimised IR, made when first asked for (to compile
    it): most blocks only ever run in the interpreter, which runs ``ir``, the
    IR at hand (as lifted until ``block`` is made), just as well; optimising
    costs about as much as lifting. A translation is the payload of its code
    cache entry, which also covers the region compiled from the block
    (``trap_pcs`` lists the block's and the region's).
    """

    __slots__ = ("_optimized", "ir", "n", "runs", "trap_pcs")

    def __init__(self, lifted: ir.Block) -> None:
        self.ir = lifted
        self._optimized: ir.Block | None = None
        self.n = lifted.insn_count
        self.runs = 0
        self.trap_pcs: list[int] = []

    @property
    def block(self) -> ir.Block:
        if self._optimized is None:
            self._optimized = self.ir = optimize(self.ir)
        return self._optimized


def successors(block: ir.Block) -> list[int]:
    """The pcs ``block``'s constant exits lead to."""
    exit_ = block.exit
    if isinstance(exit_, ir.Branch):
        return [exit_.taken, exit_.fallthrough]
    if isinstance(exit_, ir.Jump) and isinstance(exit_.target, ir.Const):
        return [exit_.target.value]
    return []


class PythonEngine:
    """Tier 1 (see the module docstring). ``stats`` counts compilations and instructions per tier."""

    name = "python"

    def __init__(self, frontend: FrontEnd, settings: JitSettings | None = None) -> None:
        self.frontend = frontend
        self.settings = settings or JitSettings()
        self.translations: dict[int, _Translation] = {}
        self.regions: dict[int, Region] = {}
        self.traps: dict[int, ir.TrapExit] = {}  # trap pc -> exit, for regions that stop at it
        self._trap_owners: dict[int, set[Any]] = {}  # trap pc -> the cache payloads holding it
        self.pages: dict[int, set[int]] = {}  # guest page -> pcs of translations and regions touching it
        self.stats: dict[str, float] = {
            "compiled_regions": 0,
            "interpreted_insns": 0,
            "compiled_insns": 0,
            "compile_seconds": 0.0,
        }
        self._mem: Any = None
        self.code_cache = self._make_code_cache()
        self._recent: list[int] = [-1] * self.settings.gc_recent_entries
        self._recent_mask = self.settings.gc_recent_entries - 1
        self._key_pages: dict[int, set[int]] = {}  # cache key (entry pc) -> guest pages it covers
        self._cuts: dict[tuple[int, int], ir.Block] = {}  # (pc, instructions) -> block cut to a budget's end
        self._rest: tuple[int, int] | None = None  # (pc, instructions) left of the block the last cut ended in

    # -- translation cache ------------------------------------------------------
    def _make_code_cache(self) -> CodeCache:
        s = self.settings
        if s.code_cache_blocks < MIN_CODE_CACHE_BLOCKS or s.code_cache_bytes < MIN_CODE_CACHE_BYTES:
            raise ConfigurationError(
                f"code cache bound {s.code_cache_blocks} blocks, {s.code_cache_bytes} bytes is too small",
                hint=f"at least {MIN_CODE_CACHE_BLOCKS} blocks and {MIN_CODE_CACHE_BYTES >> 10}K",
            )
        recent = s.gc_recent_entries
        if recent < 1 or recent & (recent - 1):
            raise ConfigurationError(f"gc_recent_entries must be a power of two, got {recent}")
        policy = GcPolicy(
            trigger_fraction=s.gc_trigger_fraction,
            promote_after=s.gc_promote_after,
            major_every=s.gc_major_every,
            concurrent=s.gc_concurrent,
        )
        cache = CodeCache(CacheLimits(s.code_cache_blocks, s.code_cache_bytes), policy, stats=self.stats)
        cache.on_retire.append(self._retire)
        cache.on_release.append(self._release)
        return cache

    def _retire(self, key: Any) -> None:
        """The code cache dropped entry ``key``: forget its translation, region and page notes."""
        self.translations.pop(key, None)
        self.regions.pop(key, None)
        self._cuts.clear()
        for page in self._key_pages.pop(key, ()):
            keys = self.pages.get(page)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.pages[page]  # the page stays watched: vm-mem un-watches it on the next store

    def _release(self, key: Any, payload: Any) -> None:
        """The code cache freed entry ``key`` (no region of it runs any more): drop the traps only it held."""
        for pc in getattr(payload, "trap_pcs", ()):
            owners = self._trap_owners.get(pc)
            if owners is None:
                continue
            owners.discard(payload)
            if not owners:
                del self._trap_owners[pc]
                self.traps.pop(pc, None)

    def _own_traps(self, owner: Any, traps: Iterable[ir.TrapExit]) -> None:
        """Make ``traps`` known to the dispatcher until cache payload ``owner`` is released.

        A trap pc may be held by several payloads (a block and the regions
        compiled from it): it stays while any of them lives.
        """
        for trap in traps:
            self.traps[trap.pc] = trap
            self._trap_owners.setdefault(trap.pc, set()).add(owner)
            owner.trap_pcs.append(trap.pc)

    def _attach(self, mem: Any) -> None:
        if self._mem is mem:
            return
        self._mem = mem
        self.code_cache.clear()
        self._key_pages.clear()
        self.translations.clear()
        self.regions.clear()
        self.pages.clear()
        self._cuts.clear()
        callbacks = getattr(mem, "on_code_write", None)
        if callbacks is not None:
            callbacks.append(self.invalidate_page)

    def invalidate_page(self, page: int) -> None:
        """Drop every translation and region that covers guest page ``page``."""
        self._cuts.clear()
        keys = self.pages.pop(page, ())
        if keys:
            self.code_cache.invalidate(keys)

    def _note_pages(self, mem: Any, key: int, block: ir.Block) -> None:
        watch = getattr(mem, "watch_code", None)
        for page in {block.pc >> 12, (block.pc + max(block.size, 1) - 1) >> 12}:
            keys = self.pages.setdefault(page, set())
            if not keys and watch is not None:
                watch(page)
            keys.add(key)
            self._key_pages.setdefault(key, set()).add(page)

    def _translate(self, cpu: CpuState, pc: int) -> _Translation:
        block = self.frontend.lift_block(cpu.mem, pc, self.settings.max_block_insns)
        t = _Translation(block)
        self.code_cache.insert(pc, estimate_ir_bytes(len(block.stmts)), t)
        self.translations[pc] = t
        self._note_pages(cpu.mem, pc, block)
        if isinstance(block.exit, ir.TrapExit):
            self._own_traps(t, (block.exit,))
        return t

    def _compile(self, cpu: CpuState, entry: _Translation) -> None:
        start = time.perf_counter()
        blocks = [entry.block]
        seen = {entry.block.pc}
        queue = successors(entry.block)
        while queue and len(blocks) < self.settings.max_region_blocks:
            pc = queue.pop(0)
            if pc in seen:
                continue
            seen.add(pc)
            t = self.translations.get(pc)
            if t is None or t.runs == 0:
                continue  # never ran: leave it to the dispatcher
            blocks.append(t.block)
            queue.extend(successors(t.block))
        fn, traps = compile_region(blocks, cpu)
        self._own_traps(entry, traps.values())
        key = entry.block.pc
        self.regions[key] = fn
        for block in blocks:
            self._note_pages(cpu.mem, key, block)
        cache = self.code_cache
        cache.grow(key, estimate_function_bytes(fn))
        for block in blocks[1:]:
            cache.add_member(key, block.pc)
        inside = {block.pc for block in blocks}
        for block in blocks:
            for target in successors(block):
                if target not in inside:  # an exit out of the region: a chain link
                    cache.link(key, target)
        self.stats["compile_seconds"] += time.perf_counter() - start
        self.stats["compiled_regions"] += 1

    # -- execution --------------------------------------------------------------
    def run(self, cpu: CpuState, budget: int) -> StopReason:
        """Execute up to ``budget`` guest instructions (see vm_core's StopReason)."""
        self._attach(cpu.mem)
        if self.code_cache.safepoint_due:
            self.code_cache.safepoint(self._recent, (cpu.pc,))
        regs = cpu.regs
        regions = self.regions
        recent = self._recent
        mask = self._recent_mask
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
                    self.stats["compiled_insns"] += n
                    if kind:
                        if kind == 1:
                            return StopReason(StopKind.SYSCALL, pc)
                        raise trap_fault(self.traps[pc], cpu.isa)
                    if n:
                        continue
                stop = self._cold_step(cpu, remaining)
                if stop is not None:
                    return stop
        except GuestFault as fault:
            kind_ = StopKind.BREAKPOINT if isinstance(fault, Breakpoint) else StopKind.FAULT
            return StopReason(kind_, cpu.pc, fault=fault, signal=fault.signo)

    def _cut_block(self, cpu: CpuState, pc: int, insns: int) -> ir.Block:
        """The block at ``pc`` cut to ``insns`` instructions: it ends in a plain jump, never a syscall.

        Every budget that ends inside a block needs one; they are kept (until
        code is written or the cache reclaims), as a loop's slices end at the
        same few places.
        """
        key = (pc, insns)
        block = self._cuts.get(key)
        if block is None:
            if len(self._cuts) >= MAX_CUT_BLOCKS:
                self._cuts.clear()
            block = self._cuts[key] = self.frontend.lift_block(cpu.mem, pc, insns)  # interpreted only
        return block

    def _cold_step(self, cpu: CpuState, remaining: int) -> StopReason | None:
        """Run one block outside compiled code; return a stop reason or None."""
        if remaining <= 0:
            return StopReason(StopKind.BUDGET, cpu.pc)
        pc = cpu.pc
        cache = self.code_cache
        if cache.safepoint_due:  # outside compiled code, about to enter pc: the collector may sweep now
            cache.safepoint(self._recent, (pc,))
        self._recent[(pc >> 1) & self._recent_mask] = pc
        rest, self._rest = self._rest, None
        t = self.translations.get(pc)
        tail = False
        if t is None and rest is not None and rest[0] == pc:
            # the rest of a block a budget cut (a slice of a hot loop ends anywhere): interpreted, never a
            # translation, region or tier-2 entry of its own
            t, tail = _Translation(self._cut_block(cpu, pc, rest[1])), True
        elif t is None:
            t = self._translate(cpu, pc)
        if t.n > remaining or (t.n == remaining and isinstance(t.ir.exit, ir.TrapExit)):
            block = self._cut_block(cpu, pc, remaining)
            cpu.pc = execute_block(block, cpu)
            self.stats["interpreted_insns"] += block.insn_count
            if t.n > block.insn_count:
                self._rest = (cpu.pc, t.n - block.insn_count)
            return None
        if not tail:
            t.runs += 1
            if t.runs >= self.settings.compile_threshold and pc not in self.regions:
                self._compile(cpu, t)
                return None
        cpu.pc = execute_block(t.ir, cpu)
        self.stats["interpreted_insns"] += t.n
        if isinstance(t.ir.exit, ir.SyscallExit):
            return StopReason(StopKind.SYSCALL, cpu.pc)
        return None
