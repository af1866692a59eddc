"""A bounded translation cache reclaimed by a concurrent, generational mark-and-sweep collector.

The engine that owns the cache inserts an entry per translation (keyed as it
likes, e.g. by guest pc), grows it when it compiles more code for it, links
it to the translations its constant exits lead to, and records which blocks
a region was compiled from (membership). The cache never runs guest code; it
decides which translations may die and tells the owner through hooks.

When to collect
    A collection starts when the cache passes its *trigger* (a fraction of
    the bound, paced after each collection to half the room left). Marking
    then runs in a background thread while the guest keeps executing. At the
    next safepoint after marking ends, or as soon as the cache reaches its
    bound, the guest's thread finishes the collection. After every safepoint
    the cache is within its bound again (emergency collections see to it).

Roots
    Whatever the owner passes to :meth:`CodeCache.safepoint`: the entries a
    vCPU is in or about to enter (``pins``) and the dispatcher's recently
    used entries (``roots``). Both are taken at the snapshot that starts a
    cycle and again at the final remark, so an entry the guest starts using
    during marking is kept.

Generations
    New entries are young. A young entry that survives ``promote_after``
    collections becomes old. Minor collections condemn only young entries
    and treat old ones as live; the links from old entries into young ones
    (the remembered set) are then roots too. Old entries are scanned only in
    major collections. Entries allocated while a cycle marks are black.

Write barrier
    :meth:`CodeCache.link` and :meth:`CodeCache.add_member` shade the target
    when a cycle is marking (an insertion barrier), so a link made during
    marking is never missed, whatever colour its source already has.

Sweeping and invalidation (one mechanism)
    A dead entry is first unchained: every ``on_unlink(src, dst)`` hook runs
    for each live entry linking to it (its link becomes a wanted link again,
    re-made if the target is translated anew); then ``on_retire(key)`` hooks
    take it out of every dispatch table; then ``on_release(key, payload)``
    hooks free its memory (native code, for instance). A sweep runs at a
    safepoint, where the vCPU is outside translated code, so all three run
    at once. :meth:`CodeCache.invalidate` (self-modifying code) kills entries
    the same way at any moment, but defers ``on_release`` to the next
    safepoint, since the vCPU may be executing inside them right then.

Each collection is logged as a ``gc_collection`` event, passed to the
``on_collection`` hooks and counted in the ``stats`` dict (``gc_*`` and
``code_cache_*`` keys).
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from vm_core.errors import VmError
from vm_core.logging import get_logger

from vm_gc.marking import Entry, Key, MarkCycle
from vm_gc.report import CollectionKind, CollectionReport, GcPolicy
from vm_gc.sizing import CacheLimits

log = get_logger("vm_gc.cache")

Unlink = tuple[Key, Key]


class CacheError(VmError):
    """The code cache was asked for something about an entry it does not hold (or holds already)."""


#: The code caches of this process, for the fork hooks below.
LIVE_CACHES: weakref.WeakSet[CodeCache] = weakref.WeakSet()


def _lock_for_fork() -> None:
    """Before a fork: hold every cache's lock, so the background marker is between batches."""
    for cache in list(LIVE_CACHES):
        cache._lock.acquire()


def _unlock_in_parent() -> None:
    for cache in list(LIVE_CACHES):
        cache._lock.release()


def _reset_in_child() -> None:
    """Threads do not survive a fork: a cycle the marker thread was running is finished by the next pause."""
    for cache in list(LIVE_CACHES):
        cycle = cache._cycle
        if cycle is not None and cycle.background:
            cycle.background = False
            cycle.forget_thread()
            cache.safepoint_due = True
        cache._lock.release()


os.register_at_fork(before=_lock_for_fork, after_in_parent=_unlock_in_parent, after_in_child=_reset_in_child)


class CodeCache:
    """A bounded translation cache and its collector (see the module docstring).

    Fork-safe: a fork happens with every cache's lock held (never inside a
    marking batch); in the child a background cycle ends at the next safepoint.
    """

    def __init__(
        self, limits: CacheLimits, policy: GcPolicy | None = None, *, stats: dict[str, float] | None = None
    ) -> None:
        self.limits = limits
        self.policy = policy or GcPolicy()
        self.stats: dict[str, float] = stats if stats is not None else {}
        for key in ("gc_collections", "gc_minor_collections", "gc_major_collections", "gc_emergency_collections",
                    "gc_reclaimed_translations", "gc_reclaimed_bytes", "gc_survivors", "gc_promoted",
                    "gc_invalidated_translations", "code_cache_translations", "code_cache_bytes",
                    "code_cache_peak_bytes"):
            self.stats.setdefault(key, 0)
        for key in ("gc_pause_seconds", "gc_max_pause_seconds", "gc_mark_seconds"):
            self.stats.setdefault(key, 0.0)
        self.on_unlink: list[Callable[[Key, Key], None]] = []
        self.on_retire: list[Callable[[Key], None]] = []
        self.on_release: list[Callable[[Key, Any], None]] = []
        self.on_collection: list[Callable[[CollectionReport], None]] = []
        self.last_report: CollectionReport | None = None
        #: True when the owner should call :meth:`safepoint` at its next opportunity.
        self.safepoint_due = False
        self._entries: dict[Key, Entry] = {}
        self._young: set[Key] = set()
        self._remembered: set[Key] = set()  # old entries with an edge into the young generation
        self._pending: dict[Key, set[Key]] = {}  # absent target -> entries that want a link to it
        self._bytes = 0
        self._lock = threading.RLock()
        self._cycle: MarkCycle | None = None
        self._cycle_pause = 0.0
        self._epoch = 0
        self._since_major = 0
        self._force_major = False
        self._deferred: list[tuple[Key, Any]] = []
        self._trigger = limits.scaled(self.policy.trigger_fraction)
        LIVE_CACHES.add(self)

    # -- inspection ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    @property
    def size_bytes(self) -> int:
        """Estimated bytes of every entry held."""
        return self._bytes

    @property
    def marking(self) -> bool:
        """Whether a collection cycle is in progress (begun, not yet swept)."""
        return self._cycle is not None

    def keys(self) -> list[Key]:
        with self._lock:
            return list(self._entries)

    def _entry(self, key: Key) -> Entry:
        entry = self._entries.get(key)
        if entry is None:
            raise CacheError(f"the code cache holds no translation {key!r}")
        return entry

    def links_of(self, key: Key) -> frozenset[Key]:
        """The live entries ``key`` is chained to."""
        with self._lock:
            return frozenset(self._entry(key).links)

    def members_of(self, key: Key) -> frozenset[Key]:
        """The entries compiled into region ``key``."""
        with self._lock:
            return frozenset(self._entry(key).members)

    def wanted_by(self, key: Key) -> frozenset[Key]:
        """The absent targets ``key`` would be chained to once they are translated."""
        with self._lock:
            return frozenset(self._entry(key).wants)

    def generation_of(self, key: Key) -> int:
        """0 for a young entry, 1 for an old (promoted) one."""
        with self._lock:
            return self._entry(key).generation

    def size_of(self, key: Key) -> int:
        with self._lock:
            return self._entry(key).size

    # -- the owner's mutations ------------------------------------------------------
    def insert(self, key: Key, size: int, payload: Any = None) -> None:
        """Add a young translation of ``size`` estimated bytes; links that waited for ``key`` are made now."""
        if size < 0:
            raise CacheError(f"translation {key!r} cannot have a negative size ({size})")
        with self._lock:
            if key in self._entries:
                raise CacheError(f"the code cache already holds a translation {key!r}")
            entry = Entry(key, size, payload)
            cycle = self._cycle
            if cycle is not None:  # allocate black: it lives through this cycle
                entry.mark = entry.born = cycle.epoch
            self._entries[key] = entry
            self._young.add(key)
            self._bytes += size
            for src_key in self._pending.pop(key, ()):
                src = self._entries[src_key]
                src.wants.discard(key)
                src.links.add(key)
                entry.preds.add(src_key)
                self._barrier(src, entry)
            self._accounted()

    def grow(self, key: Key, extra: int) -> None:
        """Account ``extra`` more bytes to ``key`` (e.g. its region was compiled)."""
        with self._lock:
            entry = self._entry(key)
            if entry.size + extra < 0:
                raise CacheError(f"translation {key!r} cannot shrink below zero bytes")
            entry.size += extra
            self._bytes += extra
            self._accounted()

    def link(self, src: Key, dst: Key) -> None:
        """Chain ``src`` to ``dst`` (a constant exit); if ``dst`` is absent, chain it when it is inserted."""
        with self._lock:
            entry = self._entry(src)
            if dst in entry.links or dst in entry.wants:
                return
            target = self._entries.get(dst)
            if target is None:
                entry.wants.add(dst)
                self._pending.setdefault(dst, set()).add(src)
                return
            entry.links.add(dst)
            target.preds.add(src)
            self._barrier(entry, target)

    def add_member(self, region: Key, block: Key) -> None:
        """Record that region ``region`` was compiled from block ``block`` (both present)."""
        with self._lock:
            entry = self._entry(region)
            target = self._entry(block)
            entry.members.add(block)
            target.preds.add(region)
            self._barrier(entry, target)

    def _barrier(self, src: Entry, dst: Entry) -> None:
        """Write barrier for a new edge ``src -> dst`` (caller holds the lock)."""
        cycle = self._cycle
        if cycle is not None:
            cycle.shade(dst.key)
        if src.generation > dst.generation:
            self._remembered.add(src.key)

    def invalidate(self, keys: Iterable[Key]) -> int:
        """Kill the entries at ``keys`` now (stale code); their memory is released at the next safepoint."""
        with self._lock:
            dead = [self._entries[key] for key in set(keys) if key in self._entries]
            if not dead:
                return 0
            unlinks = self._kill(dead)
            self._deferred.extend((entry.key, entry.payload) for entry in dead)
            self.stats["gc_invalidated_translations"] += len(dead)
            self._accounted()
        self._unlink_and_retire(unlinks, dead)
        return len(dead)

    def clear(self) -> None:
        """Kill and release every entry at once (the owner is outside translated code)."""
        cycle = self._cycle
        if cycle is not None:
            cycle.stop()
        with self._lock:
            self._cycle = None
            dead = list(self._entries.values())
            self._kill(dead)
            self._pending.clear()
            self._accounted()
        self._unlink_and_retire([], dead)
        self._release_deferred()
        self._release(dead)

    # -- collection -----------------------------------------------------------------
    def safepoint(self, roots: Iterable[Key], pins: Iterable[Key] = ()) -> None:
        """The owner's vCPU is outside translated code: collect if needed (see the module docstring).

        ``pins``: the entries the vCPU is about to enter; ``roots``: the
        dispatcher's recently used entries. Keys with no entry are ignored.
        """
        self._release_deferred()
        cycle = self._cycle
        if cycle is None:
            if self._over(self._trigger):
                root_keys, pin_keys = set(roots), set(pins)
                background = self.policy.concurrent and not self._over(self.limits)
                self._begin(self._next_kind(), root_keys, pin_keys, background=background)
                if not background:
                    self._end(root_keys, pin_keys)
        elif cycle.done or not cycle.background or self._over(self.limits):
            self._end(set(roots), set(pins))
        with self._lock:
            self._accounted()

    def collect(self, roots: Iterable[Key] = (), pins: Iterable[Key] = (), *, kind: CollectionKind | None = None
                ) -> CollectionReport:
        """Run one whole collection now (finishing any cycle in progress first); return its report."""
        root_keys, pin_keys = set(roots), set(pins)
        self._release_deferred()
        if self._cycle is not None:
            self._end(root_keys, pin_keys, escalate=False)
        self._begin(kind or self._next_kind(), root_keys, pin_keys, background=False)
        report = self._end(root_keys, pin_keys, escalate=False)
        with self._lock:
            self._accounted()
        return report

    def begin_collection(self, roots: Iterable[Key] = (), pins: Iterable[Key] = (), *,
                         kind: CollectionKind | None = None) -> None:
        """Start a cycle now, whatever the cache's size (e.g. while the guest idles); no-op if one runs.

        Marking runs in the background when the policy is concurrent; the next
        :meth:`safepoint` after it ends (or :meth:`collect`) finishes the cycle.
        """
        if self._cycle is None:
            self._begin(kind or self._next_kind(), set(roots), set(pins), background=self.policy.concurrent)
            with self._lock:
                self._accounted()

    def _next_kind(self) -> CollectionKind:
        if self._force_major or self._since_major + 1 >= self.policy.major_every:
            return CollectionKind.MAJOR
        return CollectionKind.MINOR

    def _over(self, limits: CacheLimits) -> bool:
        return len(self._entries) > limits.blocks or self._bytes > limits.bytes

    def _begin(self, kind: CollectionKind, roots: set[Key], pins: set[Key], *, background: bool) -> None:
        """Pause: snapshot the roots and start marking (in a background thread if ``background``)."""
        started = time.perf_counter()
        with self._lock:
            self._epoch += 1
            cycle = MarkCycle(self._entries, self._lock, self._epoch, kind)
            if kind is CollectionKind.MINOR:
                for key in list(self._remembered):
                    src = self._entries[key]
                    young = [dst for dst in src.edges() if self._entries[dst].generation == 0]
                    if not young:
                        self._remembered.discard(key)
                    for dst in young:
                        cycle.shade(dst)
            for key in pins if kind is CollectionKind.EMERGENCY else pins | roots:
                cycle.shade(key)
            self._cycle = cycle
        self._cycle_pause = time.perf_counter() - started
        if background:
            cycle.start_thread(self._marking_done)

    def _marking_done(self) -> None:
        self.safepoint_due = True

    def _end(self, roots: set[Key], pins: set[Key], *, escalate: bool = True) -> CollectionReport:
        """Pause: stop the marker, remark from the roots, sweep, promote survivors; report."""
        started = time.perf_counter()
        cycle = self._cycle
        if cycle is None:
            raise CacheError("no collection cycle to finish")
        cycle.stop()
        with self._lock:
            for key in pins if cycle.kind is CollectionKind.EMERGENCY else pins | roots:
                cycle.shade(key)
            cycle.drain()
            condemned = list(self._young) if cycle.kind is CollectionKind.MINOR else list(self._entries)
            dead = [self._entries[key] for key in condemned if self._entries[key].mark != cycle.epoch]
            unlinks = self._kill(dead)
            promoted = self._promote(cycle.epoch)
            self._cycle = None
            self._since_major = 0 if cycle.kind is not CollectionKind.MINOR else self._since_major + 1
            self._force_major = False
        self._unlink_and_retire(unlinks, dead)
        self._release(dead)
        pause = self._cycle_pause + time.perf_counter() - started
        report = CollectionReport(
            number=int(self.stats["gc_collections"]) + 1,
            kind=cycle.kind,
            pause_seconds=pause,
            mark_seconds=cycle.mark_seconds,
            condemned=len(condemned),
            reclaimed=len(dead),
            reclaimed_bytes=sum(entry.size for entry in dead),
            survivors=len(condemned) - len(dead),
            promoted=promoted,
            blocks_after=len(self._entries),
            bytes_after=self._bytes,
        )
        self._record(report)
        if escalate and self._over(self.limits):
            if cycle.kind is CollectionKind.MINOR:
                self._begin(CollectionKind.MAJOR, roots, pins, background=False)
                self._end(roots, pins, escalate=True)
            elif cycle.kind is CollectionKind.MAJOR:
                self._begin(CollectionKind.EMERGENCY, roots, pins, background=False)
                self._end(roots, pins, escalate=True)
            else:
                log.warning("code_cache_over_bound", blocks=len(self._entries), bytes=self._bytes,
                            limit_blocks=self.limits.blocks, limit_bytes=self.limits.bytes)
        elif cycle.kind is CollectionKind.MINOR and self._over(self._trigger):
            self._force_major = True
        self._retarget()
        return report

    def _promote(self, epoch: int) -> int:
        """Age the young survivors of a cycle (not those born during it); promote the old enough."""
        promoted = []
        for key in list(self._young):
            entry = self._entries[key]
            if entry.born == epoch:
                continue
            entry.age += 1
            if entry.age >= self.policy.promote_after:
                entry.generation = 1
                self._young.discard(key)
                promoted.append(entry)
        for entry in promoted:
            if any(self._entries[dst].generation == 0 for dst in entry.edges()):
                self._remembered.add(entry.key)
        return len(promoted)

    def _retarget(self) -> None:
        """Pace the next cycle: start it when half the room left under the bound is used (at least at the trigger)."""
        base = self.limits.scaled(self.policy.trigger_fraction)
        blocks = max(base.blocks, len(self._entries) + (self.limits.blocks - len(self._entries)) // 2)
        size = max(base.bytes, self._bytes + (self.limits.bytes - self._bytes) // 2)
        self._trigger = CacheLimits(min(blocks, self.limits.blocks), min(size, self.limits.bytes))

    def _kill(self, dead: list[Entry]) -> list[Unlink]:
        """Remove ``dead`` from the graph (caller holds the lock); the live links into them, unchained."""
        for entry in dead:
            entry.dead = True
        unlinks: list[Unlink] = []
        entries = self._entries
        for entry in dead:
            key = entry.key
            for src_key in entry.preds:
                src = entries.get(src_key)
                if src is None or src.dead:
                    continue
                if key in src.links:
                    src.links.discard(key)
                    src.wants.add(key)
                    self._pending.setdefault(key, set()).add(src_key)
                    unlinks.append((src_key, key))
                if key in src.members:
                    src.members.discard(key)
                    unlinks.append((src_key, key))
            for dst_key in entry.edges():
                dst = entries.get(dst_key)
                if dst is not None:
                    dst.preds.discard(key)
            for wanted in entry.wants:
                waiting = self._pending.get(wanted)
                if waiting is not None:
                    waiting.discard(key)
                    if not waiting:
                        del self._pending[wanted]
        for entry in dead:
            del entries[entry.key]
            self._young.discard(entry.key)
            self._remembered.discard(entry.key)
            self._bytes -= entry.size
        return unlinks

    # -- hooks and accounting ---------------------------------------------------------
    def _unlink_and_retire(self, unlinks: list[Unlink], dead: list[Entry]) -> None:
        for src, dst in unlinks:
            for unlink in self.on_unlink:
                unlink(src, dst)
        for entry in dead:
            for retire in self.on_retire:
                retire(entry.key)

    def _release(self, dead: list[Entry]) -> None:
        for entry in dead:
            for release in self.on_release:
                release(entry.key, entry.payload)

    def _release_deferred(self) -> None:
        if not self._deferred:
            return
        with self._lock:
            deferred, self._deferred = self._deferred, []
        for key, payload in deferred:
            for release in self.on_release:
                release(key, payload)

    def _accounted(self) -> None:
        """Refresh the size statistics and ``safepoint_due`` (caller holds the lock)."""
        stats = self.stats
        stats["code_cache_translations"] = len(self._entries)
        stats["code_cache_bytes"] = self._bytes
        if self._bytes > stats["code_cache_peak_bytes"]:
            stats["code_cache_peak_bytes"] = self._bytes
        cycle = self._cycle
        if cycle is None:
            self.safepoint_due = bool(self._deferred) or self._over(self._trigger)
        else:
            self.safepoint_due = (bool(self._deferred) or cycle.done or not cycle.background
                                  or self._over(self.limits))

    def _record(self, report: CollectionReport) -> None:
        stats = self.stats
        stats["gc_collections"] += 1
        stats[f"gc_{report.kind.value}_collections"] += 1
        stats["gc_reclaimed_translations"] += report.reclaimed
        stats["gc_reclaimed_bytes"] += report.reclaimed_bytes
        stats["gc_survivors"] += report.survivors
        stats["gc_promoted"] += report.promoted
        stats["gc_pause_seconds"] += report.pause_seconds
        stats["gc_max_pause_seconds"] = max(stats["gc_max_pause_seconds"], report.pause_seconds)
        stats["gc_mark_seconds"] += report.mark_seconds
        self.last_report = report
        log.info(
            "gc_collection", number=report.number, kind=report.kind.value, pause_s=report.pause_seconds,
            mark_s=report.mark_seconds, condemned=report.condemned, reclaimed=report.reclaimed,
            reclaimed_bytes=report.reclaimed_bytes, survivors=report.survivors, promoted=report.promoted,
            blocks_after=report.blocks_after, bytes_after=report.bytes_after,
        )
        for listener in self.on_collection:
            listener(report)
