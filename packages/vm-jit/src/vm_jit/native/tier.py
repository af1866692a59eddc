"""Tier 2: hot regions compiled to machine code with LLVM, and the ``llvm`` engine that adds it.

The ``llvm`` engine (:func:`make_llvm_engine`) is the engine of
:mod:`vm_jit.engine` with two compiling tiers: tier 1
(:class:`~vm_jit.python_tier.PythonTier`) and this one. Every guest
instruction a tier-1 region retires counts towards its entry's heat, and at
``native_threshold`` the engine asks this tier for the region around that
entry (the first promotion, which starts LLVM, waits until the program has
retired ``native_start_insns`` instructions, so short programs never pay for
it): the blocks reachable from it through constant exits (plus the return
sites of calls, at most ``native_max_region_blocks``, only blocks already
translated and fully implementable natively) are compiled by LLVM
(:mod:`.llvm_ir`, :mod:`.compiler`) into one function that can be entered
at any of its blocks: a budget's end leaves native code at any block of a
loop, and the next slice enters it there again. An entry that a region being
compiled already covers is not promoted on its own. Compilation runs in a
background thread (``native_background``), so a program never waits for
LLVM; the result is installed at the next dispatch if no code page it came
from was written meanwhile.

Native code leaves for the dispatcher at system calls, traps, pcs outside
the region and when the next block does not fit the budget. A memory access
the host page tables cannot serve (:mod:`.pagetable`: faults, page-crossing
accesses, stores into code pages, misaligned atomics) leaves with the
registers and pc of that instruction, which Python then runs on the checked
slow path, so faults are raised there with precise guest state, and a store
into translated code invalidates it exactly as in tier 1.

With ``aot_cache`` the machine code of each region is stored on disk
(:mod:`.cache`), keyed by its entry, with an alias per other block; when
a later run first translates any block of a cached region, the region is
re-lifted, checked against the cached IR hash and installed at once, so a
second run starts hot.
LLVM is only imported when the first region is promoted or loaded.

Native regions live in the translation cache
(:class:`~vm_jit.translation_cache.TranslationCache`) with tier-1 code,
each as a code cache entry of its own (a ``CompiledRegion`` whose payload is
its :class:`~.region.NativeRegion`), sized by what its loaded code holds
(:func:`~vm_jit.native.compiler.estimate_loaded_bytes`). When the cache
retires one, the dispatcher falls back to tier 1 at its entries and this
tier takes it out of the chain table; its machine code, in an MCJIT engine
of its own (:mod:`.compiler` says why), is freed by ``release``, which the
cache runs only at a safepoint: a store into its code from inside it retires
it at once and frees it at the next safepoint, and a freed region's function
refuses to run. When the guest comes back, a collected region is promoted
again by its heat, or loaded from the AOT cache.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import time
from collections import Counter, deque
from functools import partial
from typing import Any

from vm_core.errors import GuestFault, VmError
from vm_core.logging import get_logger
from vm_translate import ir
from vm_translate.cpu import CpuState
from vm_translate.executor import execute_block
from vm_translate.frontend import FrontEnd

from vm_jit.engine import TieredEngine
from vm_jit.native.cache import AotCache, CachedRegion, default_cache_dir
from vm_jit.native.chain_table import ChainTable
from vm_jit.native.compile_thread import CompileJob, CompilerThread
from vm_jit.native.llvm_ir import (
    CTX_BUDGET,
    CTX_CHAIN_TABLE,
    CTX_CHAINED,
    CTX_ICOUNT,
    CTX_OUT_N,
    CTX_OUT_PC,
    CTX_READ,
    CTX_REGS,
    CTX_SLOTS,
    CTX_START,
    CTX_WRITE,
    SLOW,
    RegionCode,
    native_supported,
)
from vm_jit.native.pagetable import GuestPageTables
from vm_jit.native.region import CODEGEN_VERSION, NativeRegion, named_region
from vm_jit.python_tier import PythonTier
from vm_jit.settings import JitSettings
from vm_jit.translation_cache import (
    CompiledRegion,
    RegionFunction,
    TranslationCache,
    block_pages,
    successors,
)

log = get_logger("vm_jit.native.tier")


def _pages_of(blocks: list[ir.Block]) -> frozenset[int]:
    return frozenset(page for b in blocks for page in block_pages(b))


class NativeTier:
    """Tier 2 (see the module docstring)."""

    name = "native"

    def __init__(self, cache: TranslationCache, level: int, *, aot_cache: AotCache | None = None) -> None:
        self.cache = cache
        self.level = level
        self.settings = s = cache.settings
        self.threshold = s.native_threshold
        self.aot_cache = aot_cache
        self.enabled = True  # turns False if LLVM cannot be used here
        self.busy = False  # compile jobs in flight
        self.unpromotable: set[int] = set()
        self.pending: Counter[int] = Counter()  # block pc -> compile jobs in flight that cover it
        self.generation: dict[int, int] = {}  # guest page -> times its code was written
        self.single: dict[int, ir.Block] = {}  # pc -> its one instruction, for the slow path
        self.stats = cache.stats
        self.stats.update(
            native_regions=0,
            native_calls=0,
            native_insns=0,
            slow_path_exits=0,
            slow_path_insns=0,
            native_compile_seconds=0.0,
            aot_loaded_regions=0,
            native_retired_regions=0,
            native_freed_regions=0,
        )
        self.ctx = (ctypes.c_uint64 * CTX_SLOTS)()
        self.ctx_address = ctypes.addressof(self.ctx)
        self.chains = ChainTable()
        self.ctx[CTX_CHAIN_TABLE] = self.chains.address
        # the registers any installed native region uses: every native call loads them all, since a
        # chain of regions may reach any of them
        self.native_regs = (0, 0)
        self.regfile: Any = None
        self.tables: GuestPageTables | None = None
        self.loader: Any = None
        self.compiler: CompilerThread | None = None
        self.cpu: Any = None
        self._sync_done: deque[tuple[CompileJob, bytes | None, float]] = deque()
        cache.on_invalidate_page.append(self._code_written)
        cache.on_retire_pc.append(self.unpromotable.discard)

    # -- lifecycle ------------------------------------------------------------
    def attach(self, mem: Any) -> None:
        self.chains.clear()
        self.single.clear()
        if self.tables is not None:
            self.tables.detach()
            self.tables = None

    def begin_run(self, cpu: CpuState) -> None:
        self.cpu = cpu
        if self.pending:
            self.install_finished(cpu)

    def close(self) -> None:
        """Stop the compiler thread (after its current job) and release the page tables."""
        if self.compiler is not None:
            self.compiler.stop()
            atexit.unregister(self.compiler.stop)
            self.compiler = None
        self.pending.clear()
        self.busy = False
        if self.tables is not None:
            self.tables.detach()
            self.tables = None
        self.chains.clear()

    def _ensure_native(self, cpu: CpuState) -> bool:
        """Start LLVM, the register file and the page tables (once); False if tier 2 is unavailable."""
        if not self.enabled:
            return False
        if self.loader is None:
            try:
                from vm_jit.native.compiler import NativeLoader

                self.loader = NativeLoader()
            except VmError as err:
                log.warning("tier2_disabled", reason=str(err))
                self.enabled = False
                return False
        if self.regfile is None or len(self.regfile) < len(cpu.regs):
            self.regfile = (ctypes.c_uint64 * len(cpu.regs))()
            self.ctx[CTX_REGS] = ctypes.addressof(self.regfile)
        if self.tables is None:
            self.tables = GuestPageTables(cpu.mem)
            self.ctx[CTX_READ] = self.tables.readable.address
            self.ctx[CTX_WRITE] = self.tables.writable.address
        return True

    def _code_written(self, page: int) -> None:
        """Guest page ``page`` was written (the cache drops its code): compiles from it in flight are stale."""
        self.generation[page] = self.generation.get(page, 0) + 1
        self.single.clear()

    # -- what the cache tells it about its regions ---------------------------------
    def withdrawn(self, region: CompiledRegion, pc: int) -> None:
        self.chains.remove(pc, region.payload.address)

    def retired(self, region: CompiledRegion) -> None:
        for pc in region.entries:
            self.chains.remove(pc, region.payload.address)
        self.stats["native_retired_regions"] += 1

    def release(self, region: CompiledRegion) -> None:
        region.payload.free()
        self.stats["native_freed_regions"] += 1

    # -- promotion --------------------------------------------------------------
    def supports(self, block: ir.Block) -> bool:
        return native_supported(block)

    def region_blocks(self, entry: int) -> list[ir.Block]:
        """The translated, natively implementable blocks reachable from ``entry`` (entry first)."""
        translations = self.cache.translations
        t = translations.get(entry)
        if t is None or not native_supported(t.block):
            return []
        blocks: list[ir.Block] = []
        seen = {entry}
        todo = deque([entry])
        limit = self.settings.native_max_region_blocks
        while todo and len(blocks) < limit:
            t = translations.get(todo.popleft())
            if t is None or not native_supported(t.block):
                continue
            block = t.block
            blocks.append(block)
            exit_ = block.exit
            following: list[int] = []
            if isinstance(exit_, ir.Branch):
                following = [exit_.taken, exit_.fallthrough]
            elif isinstance(exit_, ir.Jump):
                if isinstance(exit_.target, ir.Const):
                    following.append(exit_.target.value)
                following.append(block.pc + block.size)  # where a call returns to
            for pc in following:
                if pc not in seen:
                    seen.add(pc)
                    todo.append(pc)
        return blocks

    def promote(self, cpu: CpuState, entry: int) -> None:
        """Compile the region around ``entry`` (unless native code runs there, or is being compiled)."""
        if self.pending:
            self.install_finished(cpu)
        if entry in self.cache.compiled[self.level] or entry in self.pending or entry in self.unpromotable:
            return
        if self.loader is None and cpu.icount < self.settings.native_start_insns:
            return  # a short program never pays for starting LLVM
        blocks = self.region_blocks(entry)
        if not blocks or not self._ensure_native(cpu):
            self.unpromotable.add(entry)
            return
        code = named_region(blocks, tuple(b.pc for b in blocks))
        pages = _pages_of(blocks)
        key = self._cache_key(cpu, blocks[0])
        aliases = (
            tuple(alias for b in blocks[1:] if (alias := self._cache_key(cpu, b)) is not None) if key else ()
        )
        job = CompileJob(code, pages, tuple(self.generation.get(p, 0) for p in sorted(pages)), key, aliases)
        self.pending.update(code.block_pcs)
        self.busy = True
        store = self._store if self.aot_cache is not None and job.cache_key is not None else None
        if self.settings.native_background:
            if self.compiler is None:
                self.compiler = CompilerThread()
            self.compiler.submit(job, store)
            return
        from vm_jit.native.compiler import compile_object

        start = time.perf_counter()
        try:
            obj: bytes | None = compile_object(code.text)
            if store is not None and obj is not None:
                store(job, obj)
        except VmError as err:
            log.warning("native_compile_failed", region=code.name, reason=str(err))
            obj = None
        self._sync_done.append((job, obj, time.perf_counter() - start))
        self.install_finished(cpu)

    def _cache_key(self, cpu: CpuState, entry: ir.Block) -> str | None:
        if self.aot_cache is None:
            return None
        try:
            code = cpu.mem.fetch(entry.pc, entry.size)
        except GuestFault:
            return None
        return self.aot_cache.entry_key(entry.pc, bytes(code))

    def _store(self, job: CompileJob, obj: bytes) -> None:
        """Write a compiled region to the AOT cache (runs in the compiler thread)."""
        from vm_jit.native.compiler import host_description

        assert self.aot_cache is not None and job.cache_key is not None
        ir_hash = hashlib.sha256(job.code.text.encode()).hexdigest()
        entry = CachedRegion(
            job.code.name, job.code.block_pcs, job.code.entries, ir_hash, host_description(), obj
        )
        self.aot_cache.put(job.cache_key, entry)
        for alias in job.aliases:
            self.aot_cache.put_alias(alias, job.cache_key)

    def install_finished(self, cpu: CpuState) -> None:
        """Install the regions the compiler has finished (unless their code pages changed meanwhile)."""
        for done in (self._sync_done, self.compiler.done if self.compiler is not None else None):
            while done:
                job, obj, seconds = done.popleft()
                entry = job.code.block_pcs[0]
                self.pending.subtract(job.code.block_pcs)
                self.pending = +self.pending  # drop the pcs no job covers any more
                self.busy = bool(self.pending)
                self.stats["native_compile_seconds"] += seconds
                if obj is None:
                    self.unpromotable.add(entry)
                    continue
                if tuple(self.generation.get(p, 0) for p in sorted(job.pages)) != job.generations:
                    continue  # guest code changed while compiling: the heat will promote it again
                self._install(job.code, job.pages, obj)

    def _install(self, code: RegionCode, pages: frozenset[int], obj: bytes) -> bool:
        """Load ``obj`` and install it at its entries whose blocks the cache still holds.

        False if no entry is left (the collector took them while it compiled).
        """
        from vm_jit.native.compiler import estimate_loaded_bytes

        tc = self.cache
        entries = tuple(pc for pc in code.entries if pc in tc.translations)
        if not entries:
            return False
        assert self.loader is not None
        native = NativeRegion(self.loader.load(obj, code.name), code)
        exits = [
            target
            for pc in code.block_pcs
            if (t := tc.translations.get(pc))
            for target in successors(t.block)
        ]
        region = CompiledRegion(
            self,
            self.level,
            None,
            entries=entries,
            blocks=code.block_pcs,
            exits=exits,
            pages=pages,
            traps=code.traps,
            size=estimate_loaded_bytes(len(obj)),
            own_entry=True,
            payload=native,
        )
        region.function = self.entry_function(region)
        low, high = self.native_regs
        self.native_regs = (
            (min(low, code.reg_low), max(high, code.reg_high)) if high else (code.reg_low, code.reg_high)
        )
        if not tc.install(region):
            native.free()
            return False
        for pc in region.entries:
            self.chains.add(pc, native.address)
        self.stats["native_regions"] += 1
        return True

    # -- AOT: a translated block may be the entry of a cached region ---------------
    def translated(self, cpu: CpuState, translation: Any) -> None:
        pc = translation.ir.pc
        if self.aot_cache is not None and self.enabled and pc not in self.cache.compiled[self.level]:
            key = self._cache_key(cpu, translation.ir)
            if key is not None and self.aot_cache.might_have(key):
                self._load_cached(cpu, key)

    def _load_cached(self, cpu: CpuState, key: str) -> None:
        assert self.aot_cache is not None
        entry = self.aot_cache.get(key)
        if entry is None or not self._ensure_native(cpu):
            return
        from vm_jit.native.compiler import host_description

        if entry.host != host_description():
            return
        blocks = []
        for pc in entry.block_pcs:
            t = self.cache.translations.get(pc)
            if t is None:
                try:
                    t = self.cache.translate(cpu.mem, pc)
                except GuestFault:
                    return
            blocks.append(t.block)
        if not all(native_supported(b) for b in blocks):
            return
        code = named_region(blocks, entry.entries)
        if code.name != entry.name or hashlib.sha256(code.text.encode()).hexdigest() != entry.ir_sha256:
            log.info("aot_entry_stale", region=entry.name)
            return
        try:
            installed = self._install(code, _pages_of(blocks), entry.obj)
        except VmError as err:
            log.warning("aot_entry_unloadable", region=entry.name, reason=str(err))
            return
        self.stats["aot_loaded_regions"] += installed

    # -- execution: native code behind the tier-1 region calling convention ----------
    def entry_function(self, region: CompiledRegion) -> RegionFunction:
        """The region function (tier-1 calling convention) that runs ``region``'s machine code."""
        nat: NativeRegion = region.payload
        ctx = self.ctx
        ctx_address = self.ctx_address
        regfile = self.regfile
        stats = self.stats

        def run_native(regs: list[int], budget: int) -> tuple[int, int, int]:
            fn = nat.fn
            if fn is None:  # retirement takes it out of every table before its code is freed
                raise VmError(f"{nat!r} was called after its machine code was freed")
            cpu = self.cpu
            low, high = self.native_regs
            regfile[low:high] = regs[low:high]
            ctx[CTX_BUDGET] = budget
            ctx[CTX_START] = cpu.pc
            ctx[CTX_ICOUNT] = cpu.icount
            ctx[CTX_CHAINED] = 0
            status = fn(ctx_address)
            regs[low:high] = regfile[low:high]
            n = ctx[CTX_OUT_N]
            pc = ctx[CTX_OUT_PC]
            stats["native_calls"] += 1
            stats["native_insns"] += n
            stats["compiled_insns"] -= n  # the dispatcher counts what regions retire as tier 1
            if status != SLOW:
                return pc, n, status  # LEFT 0, SYSCALL 1, TRAP 2: the dispatcher's kinds
            if n >= budget:
                return pc, n, 0
            next_pc, retired = self._slow_step(cpu, pc, n)
            return next_pc, n + retired, 0

        return run_native

    def _slow_step(self, cpu: CpuState, pc: int, before: int) -> tuple[int, int]:
        """Run the instruction at ``pc`` (after ``before`` native ones) on the checked slow path.

        Returns the next pc and the instructions retired (1). A fault propagates with ``cpu.pc`` at the
        instruction and ``cpu.icount`` counting the instructions retired
        before it, as the region protocol requires.
        """
        self.stats["slow_path_exits"] += 1
        block = self.single.get(pc)
        if block is None:
            block = self.single[pc] = self.cache.frontend.lift_block(cpu.mem, pc, 1)
        cpu.pc = pc
        cpu.icount += before  # a fault propagates from here with the count the protocol asks for
        next_pc = execute_block(block, cpu)
        cpu.icount -= before + block.insn_count  # no fault: the dispatcher adds what the region reports
        self.stats["slow_path_insns"] += block.insn_count
        self.stats["compiled_insns"] -= block.insn_count
        return next_pc, block.insn_count


def make_llvm_engine(
    frontend: FrontEnd, settings: JitSettings | None = None, *, aot_cache: AotCache | None = None
) -> TieredEngine:
    """The ``llvm`` engine: the interpreter, tier 1 and tier 2 over one translation cache.

    ``aot_cache``: where native code is kept across runs (default: the user's
    cache directory when ``settings.aot_cache``, else none).
    """
    s = settings or JitSettings()
    if aot_cache is None and s.aot_cache:
        namespace = (
            f"codegen {CODEGEN_VERSION} blocks {s.max_block_insns} region {s.native_max_region_blocks}"
        )
        aot_cache = AotCache(default_cache_dir(), namespace)
    return TieredEngine("llvm", frontend, s, (PythonTier, partial(NativeTier, aot_cache=aot_cache)))
