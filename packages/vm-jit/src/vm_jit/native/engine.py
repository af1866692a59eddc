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
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import queue
import sys
import threading
import time
from collections import Counter, deque
from typing import Any

import attrs
from vm_core.errors import GuestFault, VmError
from vm_core.logging import get_logger
from vm_core.types import StopReason
from vm_translate import ir
from vm_translate.cpu import CpuState
from vm_translate.executor import execute_block
from vm_translate.frontend import FrontEnd

from vm_jit.engine import PythonEngine, _successors
from vm_jit.native.cache import AotCache, CachedRegion, default_cache_dir
from vm_jit.native.llvm_ir import (
    CHAIN_EMPTY,
    CHAIN_SLOTS,
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

log = get_logger("vm_jit.native.engine")

#: Bump when generated code changes meaning: part of every AOT cache key.
CODEGEN_VERSION = 5
#: The interpreter's thread switch interval (seconds) while native compiles are in flight.
COMPILE_SWITCH_INTERVAL = 0.0005
_PROVISIONAL_NAME = "vm_region_unnamed"  # replaced by the content-derived name


class NativeRegion:
    """One installed native function and the guest pcs and pages it covers."""

    __slots__ = ("address", "entry", "fn", "name", "pages", "pcs", "reg_high", "reg_low")

    def __init__(self, address: int, code: RegionCode, pages: frozenset[int]) -> None:
        self.address = address  # of the machine code; the chain table holds it
        self.fn = _FUNCTION_TYPE(address)
        self.entry: Any = None  # the tier-1-shaped region function the dispatcher calls
        self.name = code.name
        self.pcs = code.entries
        self.reg_low = code.reg_low
        self.reg_high = code.reg_high
        self.pages = pages


@attrs.frozen
class _Job:
    """A region on its way through the compiler thread."""

    code: RegionCode
    pages: frozenset[int]
    generations: tuple[int, ...]
    cache_key: str | None
    aliases: tuple[str, ...] = ()  # the cache keys of its other blocks, each to lead to cache_key


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


_FUNCTION_TYPE = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64)


class ChainTable:
    """The direct-mapped ``pc -> native function`` table native regions chain through (see :mod:`.llvm_ir`)."""

    def __init__(self) -> None:
        self.words = (ctypes.c_uint64 * (2 * CHAIN_SLOTS))()
        self.address = ctypes.addressof(self.words)
        self.clear()

    def clear(self) -> None:
        ctypes.memset(self.address, 0xFF, ctypes.sizeof(self.words))  # every pc CHAIN_EMPTY

    def add(self, pc: int, address: int) -> None:
        slot = 2 * ((pc >> 1) & (CHAIN_SLOTS - 1))
        self.words[slot + 1] = address
        self.words[slot] = pc

    def remove(self, pc: int, address: int) -> None:
        """Forget ``pc`` if its slot still leads to ``address`` (a later region may have taken the slot)."""
        slot = 2 * ((pc >> 1) & (CHAIN_SLOTS - 1))
        if self.words[slot] == pc and self.words[slot + 1] == address:
            self.words[slot] = CHAIN_EMPTY


class _CompilerThread:
    """One daemon thread that compiles jobs in order; at interpreter exit it finishes only the current one.

    While jobs are in flight the interpreter's thread switch interval is
    :data:`COMPILE_SWITCH_INTERVAL`: a compile makes some 25 LLVM calls, each
    of which releases the GIL, and at Python's default interval (5 ms) the
    thread waits up to that long for it back after each while the guest runs
    Python code (measured: compiles of bench_sieve's regions took 2-3 times
    their CPU time in wall time, 1.5-2 times at 0.5 ms).
    """

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.done: deque[tuple[_Job, bytes | None, float]] = deque()
        self.stopping = False
        self._in_flight = 0
        self._saved_interval = sys.getswitchinterval()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="vm-llvm-compiler", daemon=True)
        self.thread.start()
        atexit.register(self.stop)

    def _loop(self) -> None:
        from vm_jit.native.compiler import compile_object

        while True:
            item = self.jobs.get()
            if item is None or self.stopping:
                return
            job, store = item
            start = time.perf_counter()
            obj: bytes | None
            try:
                obj = compile_object(job.code.text)
                if store is not None:
                    store(job, obj)
            except Exception as err:
                log.warning("native_compile_failed", region=job.code.name, reason=str(err))
                obj = None
            self.done.append((job, obj, time.perf_counter() - start))
            with self._lock:
                self._in_flight -= 1
                if not self._in_flight:
                    sys.setswitchinterval(self._saved_interval)

    def submit(self, job: _Job, store: Any) -> None:
        with self._lock:
            if not self._in_flight:
                self._saved_interval = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved_interval, COMPILE_SWITCH_INTERVAL))
            self._in_flight += 1
        self.jobs.put((job, store))

    def stop(self) -> None:
        self.stopping = True
        self.jobs.put(None)
        self.thread.join()
        with self._lock:
            if self._in_flight:  # jobs left in the queue are dropped
                self._in_flight = 0
                sys.setswitchinterval(self._saved_interval)


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
        self._compiler: _CompilerThread | None = None
        self._sync_done: deque[tuple[_Job, bytes | None, float]] = deque()
        self._cpu: Any = None

    # -- lifecycle ------------------------------------------------------------
    def _attach(self, mem: Any) -> None:
        if self._mem is mem:
            return
        super()._attach(mem)
        self.native.clear()
        self.native_pages.clear()
        self.chains.clear()
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
        for region in self.native_pages.pop(page, ()):
            for pc in region.pcs:
                self.chains.remove(pc, region.address)
                if self.native.get(pc) is region:
                    del self.native[pc]
                if self.regions.get(pc) is region.entry:
                    del self.regions[pc]

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
        job = _Job(code, pages, tuple(self.generation.get(p, 0) for p in sorted(pages)), key, aliases)
        self.pending.update(code.block_pcs)
        store = self._store if self.cache is not None and job.cache_key is not None else None
        if self.settings.native_background:
            if self._compiler is None:
                self._compiler = _CompilerThread()
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

    def _store(self, job: _Job, obj: bytes) -> None:
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

    def _install(self, cpu: CpuState, code: RegionCode, pages: frozenset[int], obj: bytes) -> None:
        assert self._loader is not None
        region = NativeRegion(self._loader.load(obj, code.name), code, pages)
        region.entry = self._native_entry(region)
        low, high = self.native_regs
        self.native_regs = (min(low, code.reg_low), max(high, code.reg_high)) if high else (code.reg_low, code.reg_high)
        watch = getattr(cpu.mem, "watch_code", None)
        is_watched = getattr(cpu.mem, "is_code_watched", None)
        for page in pages:
            if watch is not None and is_watched is not None and not is_watched(page):
                watch(page)
            self.native_pages.setdefault(page, set()).add(region)
        for pc in code.entries:
            self.native[pc] = region
            self.regions[pc] = region.entry
            self.chains.add(pc, region.address)
        for trap in code.traps:
            self.traps[trap.pc] = trap
        self.stats["native_regions"] += 1

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
            self._install(cpu, code, _pages_of(blocks), entry.obj)
        except VmError as err:
            log.warning("aot_entry_unloadable", region=entry.name, reason=str(err))
            return
        self.stats["aot_loaded_regions"] += 1

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
        region = self.native.get(pc)
        self.regions[pc] = region.entry if region is not None else self._counting(pc, fn)

    def _counting(self, entry: int, fn: Any) -> Any:
        """``fn`` (a tier-1 region) counting the instructions it retires towards ``entry``'s promotion."""
        threshold = self.settings.native_threshold
        heat = self.heat
        native = self.native
        t = self.translations.get(entry)
        first, after = (t.n, _successors(t.block)) if t is not None and native_supported(t.block) else (0, [])

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
        fn = nat.fn
        ctx = self.ctx
        ctx_address = self.ctx_address
        regfile = self.regfile
        stats = self.stats

        def region(regs: list[int], budget: int) -> tuple[int, int, int]:
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
