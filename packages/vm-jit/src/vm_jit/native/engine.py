"""The ``llvm`` engine: three tiers, promoted by execution counters.

Tier 0 is the reference interpreter, tier 1 the ``python`` engine's regions
(:class:`~vm_jit.engine.PythonEngine`, which this engine extends), tier 2
native code. A block is interpreted until it has run ``compile_threshold``
times, then its tier-1 region is compiled; every guest instruction a tier-1
region retires counts towards its entry's heat, and at
``native_threshold`` the region around that entry is promoted (the first
promotion, which starts LLVM, waits until the program has retired
``native_start_insns`` instructions, so short programs never pay for it): the blocks
reachable from it through constant exits (plus the return sites of calls,
at most ``native_max_region_blocks``, only blocks already translated and
fully implementable natively) are compiled by LLVM (:mod:`.llvm_ir`,
:mod:`.compiler`) into one function that can be entered at any of its
blocks: a budget's end leaves native code at any block of a loop, and the
next slice enters it there again. A tier-1 entry that a region being
compiled already covers is not promoted on its own, and a tier-1 region
whose first block leads straight into native code runs only that block.
Compilation runs in a background thread (``native_background``), so a
program never waits for LLVM; the result is installed at the next dispatch
if no code page it came from was written meanwhile.

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

Native regions live in the bounded code cache (:mod:`vm_gc`) as tier-1 code
does. Each is an entry of its own (its :class:`NativeRegion` is key and
payload), sized by what its loaded code holds
(:func:`~vm_jit.native.compiler.estimate_loaded_bytes`), with the blocks it
was compiled from as members and links to the targets of its exits; the
entry of each pc it is dispatched at has it as a member, so the dispatcher's
recent entries (it records a native region's entry pc when it enters it, as
for any region) and the pc about to run root it. Retirement (``on_retire``)
takes it out of ``native``, ``native_pages`` and ``regions`` (its entries go
back to their tier-1 regions, kept in ``tier1``); its machine code, in an
MCJIT engine of its own (:mod:`.compiler` says why), is freed by
``on_release``, which the cache runs only at a safepoint: a store into its
code from inside it retires it at once and frees it at the next safepoint,
and a freed region's function refuses to run. When the guest comes back, a
collected region is promoted again by its heat, or loaded from the AOT cache.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import time
from collections import Counter, deque
from typing import TYPE_CHECKING, Any

import attrs
from vm_core.errors import GuestFault, VmError
from vm_core.logging import get_logger
from vm_core.types import StopReason
from vm_translate import ir
from vm_translate.cpu import CpuState
from vm_translate.executor import execute_block
from vm_translate.frontend import FrontEnd

from vm_jit.engine import PythonEngine, successors
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
    region_code,
)
from vm_jit.native.pagetable import GuestPageTables
from vm_jit.settings import JitSettings

if TYPE_CHECKING:
    from vm_jit.native.compiler import NativeCode

log = get_logger("vm_jit.native.engine")

#: Bump when generated code changes meaning: part of every AOT cache key.
CODEGEN_VERSION = 5
_PROVISIONAL_NAME = "vm_region_unnamed"  # replaced by the content-derived name


class NativeRegion:
    """One installed native function: a code cache entry (its own key and payload), its pcs and pages.

    ``fn`` is None once its machine code has been freed; ``address`` (the
    chain table's key to it) stays, for taking it out of the table.
    """

    __slots__ = ("address", "code", "entry", "fn", "name", "pages", "pcs", "reg_high", "reg_low", "trap_pcs")

    def __init__(self, code: NativeCode, region: RegionCode, pages: frozenset[int], pcs: tuple[int, ...]) -> None:
        self.code = code
        self.address = code.address
        self.fn = code.function
        self.entry: Any = None  # the tier-1-shaped region function the dispatcher calls
        self.name = region.name
        self.pcs = pcs  # the entries it is dispatched at
        self.reg_low = region.reg_low
        self.reg_high = region.reg_high
        self.pages = pages
        self.trap_pcs: list[int] = []

    def __repr__(self) -> str:
        return f"<native region {self.name}{' (freed)' if self.fn is None else ''}>"

    def free(self) -> None:
        """Free the machine code: only when nothing can be executing it or call it again."""
        self.fn = None
        self.code.free()


def _pages_of(blocks: list[ir.Block]) -> frozenset[int]:
    return frozenset(p for b in blocks for p in (b.pc >> 12, (b.pc + max(b.size, 1) - 1) >> 12))


def named_region(blocks: list[ir.Block], entries: tuple[int, ...]) -> RegionCode:
    """The region's LLVM IR, its function named after the entry pc and a hash of the IR itself.

    ``entries`` are the blocks the dispatcher may start it at (the engine
    gives every block: with LLVM 22 that compiles no slower than a single
    entry, measured on 18 regions of 14-32 blocks from the guest suite).
    """
    draft = region_code(blocks, _PROVISIONAL_NAME, entries=entries)
    digest = hashlib.sha256(draft.text.encode()).hexdigest()[:20]
    name = f"vm_r{blocks[0].pc:x}_{digest}"
    return attrs.evolve(draft, name=name, text=draft.text.replace(f"@{_PROVISIONAL_NAME}(", f"@{name}("))


class TieredEngine(PythonEngine):
    """Tiers 0-2 with hot-spot promotion (see the module docstring)."""

    name = "llvm"

    def __init__(
        self, frontend: FrontEnd, settings: JitSettings | None = None, *, cache: AotCache | None = None
    ) -> None:
        super().__init__(frontend, settings)
        s = self.settings
        if cache is None and s.aot_cache:
            namespace = f"codegen {CODEGEN_VERSION} blocks {s.max_block_insns} region {s.native_max_region_blocks}"
            cache = AotCache(default_cache_dir(), namespace)
        self.cache = cache
        self.native: dict[int, NativeRegion] = {}
        self.native_pages: dict[int, set[NativeRegion]] = {}
        self.tier1: dict[int, Any] = {}  # entry pc -> its tier-1 region (counting), while native code replaces it
        self.heat: dict[int, int] = {}
        self.unpromotable: set[int] = set()
        self.pending: Counter[int] = Counter()  # block pc -> compile jobs in flight that cover it
        self.generation: dict[int, int] = {}
        self.single: dict[int, ir.Block] = {}
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
        self.tier2 = True  # turns False if LLVM cannot be used here
        self._loader: Any = None
        self._compiler: CompilerThread | None = None
        self._sync_done: deque[tuple[CompileJob, bytes | None, float]] = deque()
        self._cpu: Any = None

    # -- lifecycle ------------------------------------------------------------
    def _attach(self, mem: Any) -> None:
        if self._mem is mem:
            return
        super()._attach(mem)  # the code cache drops (and frees) every native region too
        self.native.clear()
        self.native_pages.clear()
        self.chains.clear()
        self.tier1.clear()
        self.heat.clear()
        self.single.clear()
        if self.tables is not None:
            self.tables.detach()
            self.tables = None

    def _ensure_native(self, cpu: CpuState) -> bool:
        """Start LLVM, the register file and the page tables (once); False if tier 2 is unavailable."""
        if not self.tier2:
            return False
        if self._loader is None:
            try:
                from vm_jit.native.compiler import NativeLoader

                self._loader = NativeLoader()
            except VmError as err:
                log.warning("tier2_disabled", reason=str(err))
                self.tier2 = False
                return False
        if self.regfile is None or len(self.regfile) < len(cpu.regs):
            self.regfile = (ctypes.c_uint64 * len(cpu.regs))()
            self.ctx[CTX_REGS] = ctypes.addressof(self.regfile)
        if self.tables is None:
            self.tables = GuestPageTables(cpu.mem)
            self.ctx[CTX_READ] = self.tables.readable.address
            self.ctx[CTX_WRITE] = self.tables.writable.address
        return True

    def invalidate_page(self, page: int) -> None:
        """Drop the translations, tier-1 regions and native regions covering guest page ``page``."""
        super().invalidate_page(page)
        self.generation[page] = self.generation.get(page, 0) + 1
        self.single.clear()
        regions = self.native_pages.get(page)
        if regions:  # retired now, freed at the next safepoint: the guest may be inside one of them
            self.code_cache.invalidate(list(regions))

    # -- native regions in the code cache -------------------------------------------
    def _retire(self, key: Any) -> None:
        """The code cache dropped ``key``: a native region, or an entry pc (block, tier-1 region)."""
        if isinstance(key, NativeRegion):
            self._retire_native(key)
            return
        super()._retire(key)  # its translation, and whatever region function the dispatcher had at key
        self.tier1.pop(key, None)
        self.heat.pop(key, None)
        self.unpromotable.discard(key)
        region = self.native.pop(key, None)
        if region is not None:
            self.chains.remove(key, region.address)
            region.pcs = tuple(pc for pc in region.pcs if pc != key)

    def _retire_native(self, region: NativeRegion) -> None:
        """Take ``region`` out of every dispatch table; its entries go back to their tier-1 regions."""
        for pc in region.pcs:
            self.chains.remove(pc, region.address)
            if self.native.get(pc) is region:
                del self.native[pc]
            if self.regions.get(pc) is region.entry:
                tier1 = self.tier1.get(pc)
                if tier1 is not None:
                    self.regions[pc] = tier1
                else:
                    del self.regions[pc]
        for page in region.pages:
            on_page = self.native_pages.get(page)
            if on_page is not None:
                on_page.discard(region)
                if not on_page:
                    del self.native_pages[page]
        self.stats["native_retired_regions"] += 1

    def _release(self, key: Any, payload: Any) -> None:
        """The code cache freed ``key`` at a safepoint (no guest code runs): a native region's code goes."""
        super()._release(key, payload)
        if isinstance(payload, NativeRegion):
            payload.free()
            self.stats["native_freed_regions"] += 1

    # -- promotion --------------------------------------------------------------
    def _region_blocks(self, entry: int) -> list[ir.Block]:
        """The translated, natively implementable blocks reachable from ``entry`` (entry first)."""
        t = self.translations.get(entry)
        if t is None or not native_supported(t.block):
            return []
        blocks: list[ir.Block] = []
        seen = {entry}
        todo = deque([entry])
        limit = self.settings.native_max_region_blocks
        while todo and len(blocks) < limit:
            t = self.translations.get(todo.popleft())
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

    def _promote(self, cpu: CpuState, entry: int) -> None:
        blocks = self._region_blocks(entry)
        if not blocks or not self._ensure_native(cpu):
            self.unpromotable.add(entry)
            return
        code = named_region(blocks, tuple(b.pc for b in blocks))
        pages = _pages_of(blocks)
        key = self._cache_key(cpu, blocks[0])
        aliases = tuple(alias for b in blocks[1:] if (alias := self._cache_key(cpu, b)) is not None) if key else ()
        job = CompileJob(code, pages, tuple(self.generation.get(p, 0) for p in sorted(pages)), key, aliases)
        self.pending.update(code.block_pcs)
        store = self._store if self.cache is not None and job.cache_key is not None else None
        if self.settings.native_background:
            if self._compiler is None:
                self._compiler = CompilerThread()
            self._compiler.submit(job, store)
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
        self._install_done(cpu)

    def _cache_key(self, cpu: CpuState, entry: ir.Block) -> str | None:
        if self.cache is None:
            return None
        try:
            code = cpu.mem.fetch(entry.pc, entry.size)
        except GuestFault:
            return None
        return self.cache.entry_key(entry.pc, bytes(code))

    def _store(self, job: CompileJob, obj: bytes) -> None:
        """Write a compiled region to the AOT cache (runs in the compiler thread)."""
        from vm_jit.native.compiler import host_description

        assert self.cache is not None and job.cache_key is not None
        ir_hash = hashlib.sha256(job.code.text.encode()).hexdigest()
        entry = CachedRegion(job.code.name, job.code.block_pcs, job.code.entries, ir_hash, host_description(), obj)
        self.cache.put(job.cache_key, entry)
        for alias in job.aliases:
            self.cache.put_alias(alias, job.cache_key)

    def _install_done(self, cpu: CpuState) -> None:
        """Install the regions the compiler has finished (unless their code pages changed meanwhile)."""
        for done in (self._sync_done, self._compiler.done if self._compiler is not None else None):
            while done:
                job, obj, seconds = done.popleft()
                entry = job.code.block_pcs[0]
                self.pending.subtract(job.code.block_pcs)
                self.pending = +self.pending  # drop the pcs no job covers any more
                self.stats["native_compile_seconds"] += seconds
                if obj is None:
                    self.unpromotable.add(entry)
                    continue
                if tuple(self.generation.get(p, 0) for p in sorted(job.pages)) != job.generations:
                    continue  # guest code changed while compiling: the heat will promote it again
                self._install(cpu, job.code, job.pages, obj)

    def _install(self, cpu: CpuState, code: RegionCode, pages: frozenset[int], obj: bytes) -> bool:
        """Load ``obj`` and dispatch it at its entries whose translations the cache still holds.

        The region is a code cache entry sized by what its loaded code holds;
        it keeps its blocks (members) and links to its exits' targets, and each
        entry pc's entry has it as a member, so the dispatcher's recent pcs
        root it. False if no entry is left (the collector took them while it compiled).
        """
        from vm_jit.native.compiler import estimate_loaded_bytes

        cache = self.code_cache
        entries = tuple(pc for pc in code.entries if pc in cache)
        if not entries:
            return False
        assert self._loader is not None
        region = NativeRegion(self._loader.load(obj, code.name), code, pages, entries)
        region.entry = self._native_entry(region)
        low, high = self.native_regs
        self.native_regs = (min(low, code.reg_low), max(high, code.reg_high)) if high else (code.reg_low, code.reg_high)
        cache.insert(region, estimate_loaded_bytes(len(obj)), region)
        inside = set(code.block_pcs)
        for pc in code.block_pcs:
            t = self.translations.get(pc)
            if t is None:
                continue
            cache.add_member(region, pc)
            for target in successors(t.block):
                if target not in inside:
                    cache.link(region, target)
        for pc in entries:
            cache.add_member(pc, region)
        watch = getattr(cpu.mem, "watch_code", None)
        is_watched = getattr(cpu.mem, "is_code_watched", None)
        for page in pages:
            if watch is not None and is_watched is not None and not is_watched(page):
                watch(page)
            self.native_pages.setdefault(page, set()).add(region)
        for pc in entries:
            self.native[pc] = region
            self.regions[pc] = region.entry
            self.chains.add(pc, region.address)
        self._own_traps(region, code.traps)
        self.stats["native_regions"] += 1
        return True

    def close(self) -> None:
        """Stop the compiler thread (after its current job) and release the page tables."""
        if self._compiler is not None:
            self._compiler.stop()
            atexit.unregister(self._compiler.stop)
            self._compiler = None
        self.pending.clear()
        if self.tables is not None:
            self.tables.detach()
            self.tables = None
        self.native.clear()
        self.chains.clear()

    # -- AOT: a translated block may be the entry of a cached region ---------------
    def _translate(self, cpu: CpuState, pc: int) -> Any:
        t = super()._translate(cpu, pc)
        cache = self.cache
        if cache is not None and self.tier2 and pc not in self.native:
            key = self._cache_key(cpu, t.ir)
            if key is not None and cache.might_have(key):
                self._load_cached(cpu, key)
        return t

    def _load_cached(self, cpu: CpuState, key: str) -> None:
        assert self.cache is not None
        entry = self.cache.get(key)
        if entry is None or not self._ensure_native(cpu):
            return
        from vm_jit.native.compiler import host_description

        if entry.host != host_description():
            return
        blocks = []
        for pc in entry.block_pcs:
            t = self.translations.get(pc)
            if t is None:
                try:
                    t = super()._translate(cpu, pc)
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
            installed = self._install(cpu, code, _pages_of(blocks), entry.obj)
        except VmError as err:
            log.warning("aot_entry_unloadable", region=entry.name, reason=str(err))
            return
        self.stats["aot_loaded_regions"] += installed

    # -- execution: tier 2 plugs into the tier-1 dispatcher as region functions -------
    def run(self, cpu: CpuState, budget: int) -> StopReason:
        """Execute up to ``budget`` guest instructions (see vm_core's StopReason)."""
        self._cpu = cpu
        if self.pending:
            self._install_done(cpu)
        return super().run(cpu, budget)

    def _compile(self, cpu: CpuState, entry: Any) -> None:
        super()._compile(cpu, entry)
        pc = entry.block.pc
        fn = self.regions.get(pc)
        if fn is None:
            return
        counting = self.tier1[pc] = self._counting(pc, fn)
        region = self.native.get(pc)
        self.regions[pc] = region.entry if region is not None else counting

    def _counting(self, entry: int, fn: Any) -> Any:
        """``fn`` (a tier-1 region) counting the instructions it retires towards ``entry``'s promotion."""
        threshold = self.settings.native_threshold
        heat = self.heat
        native = self.native
        t = self.translations.get(entry)
        first, after = (t.n, successors(t.block)) if t is not None and native_supported(t.block) else (0, [])

        def region(regs: list[int], budget: int) -> tuple[int, int, int]:
            if first and first < budget and any(pc in native for pc in after):
                # the entry block leads straight into native code (say the rest of a block after a slow-path
                # step, or a block just outside a native loop): run only it, the dispatcher enters native next
                budget = first
            result = fn(regs, budget)
            total = heat[entry] = heat.get(entry, 0) + result[1]
            if total >= threshold and self.tier2:
                self._maybe_promote(entry)
            elif self.pending:
                self._install_done(self._cpu)
            return result

        return region

    def _maybe_promote(self, entry: int) -> None:
        cpu = self._cpu
        if self.pending:
            self._install_done(cpu)
        native = self.native.get(entry)
        if native is not None:  # the tier-1 region came back after its entry was dropped: re-point it
            self.regions[entry] = native.entry
            return
        if entry in self.pending or entry in self.unpromotable:
            return
        if self._loader is None and cpu.icount < self.settings.native_start_insns:
            return  # a short program never pays for starting LLVM
        self._promote(cpu, entry)

    def _native_entry(self, nat: NativeRegion) -> Any:
        """The region function (tier-1 calling convention) that runs ``nat`` natively."""
        ctx = self.ctx
        ctx_address = self.ctx_address
        regfile = self.regfile
        stats = self.stats

        def region(regs: list[int], budget: int) -> tuple[int, int, int]:
            fn = nat.fn
            if fn is None:  # retirement takes it out of every table before its code is freed
                raise VmError(f"{nat!r} was called after its machine code was freed")
            cpu = self._cpu
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

        return region

    def _slow_step(self, cpu: CpuState, pc: int, before: int) -> tuple[int, int]:
        """Run the instruction at ``pc`` (after ``before`` native ones) on the checked slow path.

        Returns the next pc and the instructions retired (1). A fault propagates with ``cpu.pc`` at the
        instruction and ``cpu.icount`` counting the instructions retired
        before it, as the tier-1 region protocol requires.
        """
        self.stats["slow_path_exits"] += 1
        block = self.single.get(pc)
        if block is None:
            block = self.single[pc] = self.frontend.lift_block(cpu.mem, pc, 1)
        cpu.pc = pc
        cpu.icount += before  # a fault propagates from here with the count the protocol asks for
        next_pc = execute_block(block, cpu)
        cpu.icount -= before + block.insn_count  # no fault: the dispatcher adds what the region reports
        self.stats["slow_path_insns"] += block.insn_count
        self.stats["compiled_insns"] -= block.insn_count
        return next_pc, block.insn_count
