"""The one translation cache every tier keeps its code in.

A :class:`TranslationCache` owns, for one address space:

* the guest blocks translated so far (``translations``, by pc): each block
  is lifted once, and every tier compiles from that one :class:`Translation`;
* the compiled regions of every tier (``compiled[level]``, by entry pc) and
  the dispatch table (``regions``): at each pc, the function of the highest
  tier that has code there;
* the trap exits compiled code may stop at (``traps``), each kept while a
  translation or region that holds it lives;
* the guest pages code came from (``pages``) and the code watch on them
  (vm-mem's ``watch_code``/``on_code_write``): a store into a watched page
  invalidates every tier's code from that page (:meth:`invalidate_page`);
* the bound and the collection, through vm-gc's :class:`~vm_gc.CodeCache`
  (``code_cache``): a block is an entry keyed by its pc; a region that
  shares its entry's lifetime (tier 1) grows that entry, a region with a
  lifetime of its own (tier 2, whose machine code must be freed) is an entry
  of its own, with its blocks as members and the entry of each pc it is
  dispatched at holding it as a member. Chain links go from a region's entry
  to the targets of its exits. The dispatcher's recently entered pcs
  (``recent``, a direct-mapped table like qemu's jump cache) and the pc about
  to run are the collector's roots (:meth:`safepoint`).

Retirement (a collection, or invalidation) and release go through the code
cache's hooks, and from there to the tier that compiled the code
(:class:`CodeOwner`): ``withdrawn`` when a region stops being entered at one
pc (that pc's block was retired), ``retired`` when it leaves every dispatch
table, ``release`` when nothing can be running it any more (at a safepoint:
native code is freed then). When a higher tier's region leaves a pc, the
dispatcher falls back to the next tier's region there, or to the interpreter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from vm_core.errors import ConfigurationError
from vm_gc import CacheLimits, CodeCache, GcPolicy, estimate_ir_bytes
from vm_translate import ir
from vm_translate.frontend import FrontEnd
from vm_translate.passes import optimize

from vm_jit.settings import JitSettings

#: A region function: ``(regs, budget) -> (next pc, instructions retired, kind)``; kind 0 left the region,
#: 1 stopped at a system call, 2 at a trap exit (``traps[pc]``).
RegionFunction = Callable[[list[int], int], tuple[int, int, int]]

#: The smallest code cache accepted: a region and its members must fit with room to spare.
MIN_CODE_CACHE_BLOCKS = 64
MIN_CODE_CACHE_BYTES = 256 << 10
#: Blocks cut short by a budget's end that are kept for reuse (slices of a hot loop end at the same places).
MAX_CUT_BLOCKS = 256


class Translation:
    """One guest block: its IR, how often it ran in the interpreter, the trap pcs its entry holds.

    ``block`` is the optimised IR, made when first asked for (to compile
    it): most blocks only ever run in the interpreter, which runs ``ir``, the
    IR at hand (as lifted until ``block`` is made), just as well; optimising
    costs about as much as lifting. A translation is the payload of its code
    cache entry, which also covers the regions compiled at it that share its
    lifetime (``regions``); ``trap_pcs`` lists the block's and their traps.
    """

    __slots__ = ("_optimized", "ir", "n", "regions", "runs", "trap_pcs")

    def __init__(self, lifted: ir.Block) -> None:
        self.ir = lifted
        self._optimized: ir.Block | None = None
        self.n = lifted.insn_count
        self.runs = 0
        self.trap_pcs: list[int] = []
        self.regions: list[CompiledRegion] = []

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


def block_pages(block: ir.Block) -> frozenset[int]:
    """The guest pages ``block``'s bytes lie on."""
    return frozenset((block.pc >> 12, (block.pc + max(block.size, 1) - 1) >> 12))


class CodeOwner(Protocol):
    """What the cache tells the tier whose region it drops (see the module docstring)."""

    def withdrawn(self, region: CompiledRegion, pc: int) -> None:
        """``region`` is no longer entered at ``pc`` (that pc's block was retired); it lives on."""

    def retired(self, region: CompiledRegion) -> None:
        """``region`` left every dispatch table; the guest may still be running inside it."""

    def release(self, region: CompiledRegion) -> None:
        """Nothing runs ``region`` any more (a safepoint): free what it holds."""


class CompiledRegion:
    """One region of one tier's compiled code, as the cache holds and dispatches it.

    ``level``: the tier's place (1 = the first compiling tier); ``function``:
    what the dispatcher calls at each pc of ``entries``; ``blocks``: the pcs
    it was compiled from (entry first); ``exits``: the pcs its constant exits
    lead out to (chain links); ``pages``: the guest pages its code came
    from; ``traps``: the trap exits it may stop at; ``size``: estimated bytes;
    ``own_entry``: a code cache entry of its own (else it lives and dies with
    the entry of its only entry pc); ``payload``: the tier's own object
    (native code, for instance).
    """

    __slots__ = (
        "blocks",
        "entries",
        "exits",
        "function",
        "level",
        "own_entry",
        "owner",
        "pages",
        "payload",
        "size",
        "trap_pcs",
        "traps",
    )

    def __init__(
        self,
        owner: CodeOwner,
        level: int,
        function: RegionFunction | None,
        *,
        entries: tuple[int, ...],
        blocks: tuple[int, ...],
        exits: Iterable[int],
        pages: frozenset[int],
        traps: Iterable[ir.TrapExit],
        size: int,
        own_entry: bool,
        payload: Any = None,
    ) -> None:
        self.owner = owner
        self.level = level
        self.function = function
        self.entries = entries
        self.blocks = blocks
        self.exits = tuple(exits)
        self.pages = pages
        self.traps = tuple(traps)
        self.size = size
        self.own_entry = own_entry
        self.payload = payload
        self.trap_pcs: list[int] = []

    def __repr__(self) -> str:
        return f"<tier {self.level} region at {self.blocks[0]:#x}, {len(self.blocks)} blocks>"


def make_code_cache(settings: JitSettings, stats: dict[str, float]) -> CodeCache:
    """vm-gc's cache with the bounds and policy of ``settings`` (too small a bound: ConfigurationError)."""
    s = settings
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
    return CodeCache(CacheLimits(s.code_cache_blocks, s.code_cache_bytes), policy, stats=stats)


class TranslationCache:
    """Translations and every tier's compiled regions for one address space (see the module docstring)."""

    def __init__(
        self, frontend: FrontEnd, settings: JitSettings, stats: dict[str, float], *, levels: int
    ) -> None:
        self.frontend = frontend
        self.settings = settings
        self.stats = stats
        self.translations: dict[int, Translation] = {}
        self.compiled: list[dict[int, CompiledRegion]] = [{} for _ in range(levels + 1)]  # [0] stays empty
        self.regions: dict[int, RegionFunction] = {}  # pc -> the highest tier's function there
        self.traps: dict[int, ir.TrapExit] = {}  # trap pc -> exit, for regions that stop at it
        self.trap_owners: dict[int, set[Any]] = {}  # trap pc -> the cache payloads holding it
        self.pages: dict[int, set[Any]] = {}  # guest page -> code cache keys of the code from it
        self.recent: list[int] = [-1] * settings.gc_recent_entries
        self.recent_mask = settings.gc_recent_entries - 1
        #: How the dispatcher enters a region being installed (the engine's promotion counting), if set.
        self.entry_hook: Callable[[CompiledRegion], RegionFunction] | None = None
        #: Called with the pc of each retired block (for per-pc state kept outside the cache).
        self.on_retire_pc: list[Callable[[int], None]] = []
        #: Called with each guest page whose code was written, before its code is dropped.
        self.on_invalidate_page: list[Callable[[int], None]] = []
        self.code_cache = make_code_cache(settings, stats)
        self.code_cache.on_retire.append(self._retire)
        self.code_cache.on_release.append(self._release)
        self._mem: Any = None
        self._key_pages: dict[Any, set[int]] = {}  # code cache key -> guest pages it covers
        self._cuts: dict[tuple[int, int], ir.Block] = {}  # (pc, instructions) -> block cut to a budget's end

    # -- the address space ------------------------------------------------------------
    def attach(self, mem: Any) -> bool:
        """Serve address space ``mem`` (True if it is a new one: everything of the last one is dropped)."""
        if self._mem is mem:
            return False
        self._mem = mem
        self.code_cache.clear()
        for table in (
            self.translations,
            self.regions,
            self.traps,
            self.trap_owners,
            self.pages,
            self._key_pages,
        ):
            table.clear()
        for by_pc in self.compiled:
            by_pc.clear()
        self._cuts.clear()
        callbacks = getattr(mem, "on_code_write", None)
        if callbacks is not None:
            callbacks.append(self.invalidate_page)
        return True

    def invalidate_page(self, page: int) -> None:
        """Guest page ``page`` was written: drop every tier's code from it (released at the next safepoint)."""
        self._cuts.clear()
        for listener in self.on_invalidate_page:
            listener(page)
        keys = self.pages.pop(page, ())
        if keys:
            self.code_cache.invalidate(keys)

    def _note_pages(self, key: Any, pages: Iterable[int]) -> None:
        watch = getattr(self._mem, "watch_code", None)
        for page in pages:
            keys = self.pages.setdefault(page, set())
            if not keys and watch is not None:
                watch(page)
            keys.add(key)
            self._key_pages.setdefault(key, set()).add(page)

    # -- blocks --------------------------------------------------------------------------
    def translate(self, mem: Any, pc: int) -> Translation:
        """Lift the block at ``pc`` and keep it (a guest fault propagates: nothing is kept then)."""
        block = self.frontend.lift_block(mem, pc, self.settings.max_block_insns)
        t = Translation(block)
        self.code_cache.insert(pc, estimate_ir_bytes(len(block.stmts)), t)
        self.translations[pc] = t
        self._note_pages(pc, block_pages(block))
        if isinstance(block.exit, ir.TrapExit):
            self._own_traps(t, (block.exit,))
        return t

    def cut_block(self, mem: Any, pc: int, insns: int) -> ir.Block:
        """The block at ``pc`` cut to ``insns`` instructions: it ends in a plain jump, never a syscall.

        Every budget that ends inside a block needs one; they are kept (until
        code is written or the cache reclaims), as a loop's slices end at the
        same few places. Interpreted only: never a translation of its own.
        """
        key = (pc, insns)
        block = self._cuts.get(key)
        if block is None:
            if len(self._cuts) >= MAX_CUT_BLOCKS:
                self._cuts.clear()
            block = self._cuts[key] = self.frontend.lift_block(mem, pc, insns)
        return block

    # -- compiled regions -------------------------------------------------------------------
    def install(self, region: CompiledRegion) -> bool:
        """Keep ``region`` and dispatch it at its entries whose blocks the cache still holds.

        False (nothing kept) if none is left: the collector took them while
        the region compiled. A region that shares its entry's lifetime must
        have exactly one entry.
        """
        cache = self.code_cache
        region.entries = tuple(pc for pc in region.entries if pc in self.translations)
        if not region.entries:
            return False
        if region.own_entry:
            key: Any = region
            cache.insert(region, region.size, region)
            owner: Any = region
            for pc in region.blocks:
                if pc in cache:
                    cache.add_member(region, pc)
            for pc in region.entries:
                cache.add_member(pc, region)
        else:
            (key,) = region.entries
            owner = self.translations[key]
            owner.regions.append(region)
            cache.grow(key, region.size)
            for pc in region.blocks:
                if pc != key and pc in cache:
                    cache.add_member(key, pc)
        inside = set(region.blocks)
        for target in region.exits:
            if target not in inside:
                cache.link(key, target)
        self._note_pages(key, region.pages)
        self._own_traps(owner, region.traps)
        if self.entry_hook is not None:
            region.function = self.entry_hook(region)
        by_pc = self.compiled[region.level]
        for pc in region.entries:
            by_pc[pc] = region
            self._route(pc)
        return True

    def _route(self, pc: int) -> None:
        """Dispatch ``pc`` to the highest tier's region there (none: the interpreter)."""
        for by_pc in reversed(self.compiled):
            region = by_pc.get(pc)
            if region is not None and region.function is not None:
                self.regions[pc] = region.function
                return
        self.regions.pop(pc, None)

    def _own_traps(self, owner: Any, traps: Iterable[ir.TrapExit]) -> None:
        """Make ``traps`` known to the dispatcher until cache payload ``owner`` is released.

        A trap pc may be held by several payloads (a block and the regions
        compiled from it): it stays while any of them lives.
        """
        for trap in traps:
            self.traps[trap.pc] = trap
            self.trap_owners.setdefault(trap.pc, set()).add(owner)
            owner.trap_pcs.append(trap.pc)

    # -- the collector -------------------------------------------------------------------
    def safepoint(self, pc: int) -> None:
        """The vCPU is outside compiled code, about to run ``pc``: the collector may sweep now."""
        self.code_cache.safepoint(self.recent, (pc,))

    def _retire(self, key: Any) -> None:
        """The code cache dropped ``key`` (a block's pc, or a region with an entry of its own)."""
        self._cuts.clear()
        if isinstance(key, CompiledRegion):
            by_pc = self.compiled[key.level]
            for pc in key.entries:
                if by_pc.get(pc) is key:
                    del by_pc[pc]
                    self._route(pc)
            key.owner.retired(key)
        else:
            self.translations.pop(key, None)
            for by_pc in self.compiled:
                region = by_pc.pop(key, None)
                if region is None:
                    continue
                if region.own_entry:  # it lives on, entered at its other pcs
                    region.entries = tuple(pc for pc in region.entries if pc != key)
                    region.owner.withdrawn(region, key)
                else:
                    region.owner.retired(region)
            self.regions.pop(key, None)
            for listener in self.on_retire_pc:
                listener(key)
        for page in self._key_pages.pop(key, ()):
            keys = self.pages.get(page)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.pages[page]  # the page stays watched: vm-mem un-watches it on the next store

    def _release(self, key: Any, payload: Any) -> None:
        """The code cache freed ``key`` (nothing runs it any more): its traps and its regions' memory go."""
        for pc in payload.trap_pcs:
            owners = self.trap_owners.get(pc)
            if owners is None:
                continue
            owners.discard(payload)
            if not owners:
                del self.trap_owners[pc]
                self.traps.pop(pc, None)
        if isinstance(payload, CompiledRegion):
            payload.owner.release(payload)
        else:
            for region in payload.regions:
                region.owner.release(region)
