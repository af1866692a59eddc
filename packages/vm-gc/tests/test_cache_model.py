"""The code cache against a plain model: random translate / chain / invalidate / collect sequences.

The model is the graph the owner built (every entry's declared exits and
members) and the definition of reachability; it does not restate how the
collector marks. After every step the cache must agree with it:

- safety: no entry reachable from the roots and pins of a collection is
  freed by it (an emergency collection keeps only the pins and their members);
- completeness: after a synchronous major collection exactly the reachable
  entries are left, so every unreachable one is eventually freed;
- chaining: a live entry is linked to exactly the live targets of its exits
  and wants the absent ones; every link into a dying entry is unchained
  (``on_unlink``) before it is retired, and its memory released only after;
  an invalidated entry's memory is released only at the next safepoint;
- generations: survivors are promoted after one collection, never demoted;
- the bound holds after every safepoint when the pinned entries fit in it.

Marking is concurrent in the ``safepoint`` steps: background marker threads
run between the steps.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from vm_gc import CacheError, CacheLimits, CodeCache, CollectionKind, GcPolicy

KEYS = st.integers(0, 7)
KEY_SETS = st.frozensets(KEYS, max_size=4)
LIMITS = CacheLimits(blocks=7, bytes=500)


class CodeCacheModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.cache = CodeCache(LIMITS, GcPolicy(promote_after=1, major_every=3, concurrent=True))
        self.sizes: dict[int, int] = {}
        self.exits: dict[int, set[int]] = {}
        self.members: dict[int, set[int]] = {}
        self.generation: dict[int, int] = {}
        self.events: list[tuple[str, int, int]] = []
        self.deferred: set[int] = set()  # invalidated, release not yet seen
        self.cache.on_unlink.append(lambda src, dst: self.events.append(("unlink", src, dst)))
        self.cache.on_retire.append(lambda key: self.events.append(("retire", key, -1)))
        self.cache.on_release.append(lambda key, payload: self.events.append(("release", key, payload)))

    def teardown(self) -> None:
        self.cache.clear()

    # -- model helpers ------------------------------------------------------------------
    def edges(self, key: int) -> set[int]:
        return (self.exits[key] | self.members[key]) & set(self.sizes)

    def reachable(self, start: set[int], *, links: bool = True) -> set[int]:
        seen: set[int] = set()
        stack = [key for key in start if key in self.sizes]
        while stack:
            key = stack.pop()
            if key in seen:
                continue
            seen.add(key)
            stack.extend(self.edges(key) if links else self.members[key] & set(self.sizes))
        return seen

    def settle(self, *, release_now: bool) -> set[int]:
        """Compare deaths and hook events with the model; apply the deaths; return the dead keys."""
        before = set(self.sizes)
        after = set(self.cache.keys())
        assert after <= before, "entries appeared from nowhere"
        dead = before - after
        events, self.events = self.events, []
        retired = [key for kind, key, _ in events if kind == "retire"]
        assert sorted(retired) == sorted(dead), "every dead entry is retired exactly once"
        for d in dead:
            retire_at = events.index(("retire", d, -1))
            for src in after:
                if d in self.exits[src] or d in self.members[src]:
                    assert ("unlink", src, d) in events[:retire_at], f"link {src}->{d} not unchained first"
        for kind, src, dst in events:
            if kind == "unlink":
                assert src in after and dst in dead
        released = {key for kind, key, _ in events if kind == "release"}
        for key in released & dead:
            last_release = max(i for i, event in enumerate(events) if event == ("release", key, None))
            assert last_release > events.index(("retire", key, -1)), "released before it was retired"
        if release_now:
            assert released == dead | self.deferred
            self.deferred.clear()
        else:
            assert not released, "an invalidated translation was released before a safepoint"
            self.deferred |= dead
        for d in dead:
            del self.sizes[d], self.exits[d], self.members[d], self.generation[d]
        for key in self.members:
            self.members[key] -= dead
        return dead

    # -- the owner's operations ------------------------------------------------------------
    @rule(key=KEYS, size=st.integers(0, 150))
    def insert(self, key: int, size: int) -> None:
        if key in self.sizes:
            with pytest.raises(CacheError):
                self.cache.insert(key, size)
            return
        self.cache.insert(key, size, payload=None)
        self.sizes[key] = size
        self.exits[key] = set()
        self.members[key] = set()
        self.generation[key] = 0

    @rule(key=KEYS, extra=st.integers(0, 80))
    def grow(self, key: int, extra: int) -> None:
        if key not in self.sizes:
            with pytest.raises(CacheError):
                self.cache.grow(key, extra)
            return
        self.cache.grow(key, extra)
        self.sizes[key] += extra

    @rule(src=KEYS, dst=KEYS)
    def link(self, src: int, dst: int) -> None:
        if src not in self.sizes:
            with pytest.raises(CacheError):
                self.cache.link(src, dst)
            return
        self.cache.link(src, dst)
        self.exits[src].add(dst)

    @rule(region=KEYS, block=KEYS)
    def add_member(self, region: int, block: int) -> None:
        if region not in self.sizes or block not in self.sizes:
            with pytest.raises(CacheError):
                self.cache.add_member(region, block)
            return
        self.cache.add_member(region, block)
        self.members[region].add(block)

    @rule(keys=KEY_SETS)
    def invalidate(self, keys: frozenset[int]) -> None:
        expected = keys & set(self.sizes)
        assert self.cache.invalidate(keys) == len(expected)
        assert self.settle(release_now=False) == expected

    @rule(roots=KEY_SETS, pins=KEY_SETS, kind=st.sampled_from(CollectionKind))
    def collect(self, roots: frozenset[int], pins: frozenset[int], kind: CollectionKind) -> None:
        keep = self.reachable(set(pins), links=False) if kind is CollectionKind.EMERGENCY else (
            self.reachable(set(roots | pins)))
        old = {key for key, gen in self.generation.items() if gen}
        before = set(self.sizes)
        finishes_a_cycle_first = self.cache.marking
        report = self.cache.collect(roots, pins, kind=kind)
        assert report.kind is kind
        dead = self.settle(release_now=True)
        assert not dead & keep, "a reachable translation was freed"
        if kind is not CollectionKind.MINOR:
            assert set(self.sizes) == keep, "an unreachable translation survived a full collection"
        elif not finishes_a_cycle_first:
            assert old <= set(self.sizes), "a minor collection freed an old translation"
            assert not dead & self.reachable(set(roots | pins) | old), "freed what an old translation links to"
            old_now = {key for key in self.sizes if self.cache.generation_of(key)}
            assert set(self.sizes) <= self.reachable(set(roots | pins) | old_now)
        for key in before - dead:
            self.generation[key] = 1  # promote_after=1: every survivor that existed before is old

    @rule(roots=KEY_SETS, pins=KEY_SETS)
    def safepoint(self, roots: frozenset[int], pins: frozenset[int]) -> None:
        keep = self.reachable(set(roots | pins))
        pinned = self.reachable(set(pins), links=False)
        emergencies = self.cache.stats["gc_emergency_collections"]
        self.cache.safepoint(roots, pins)
        dead = self.settle(release_now=True)
        assert not dead & pinned
        if self.cache.stats["gc_emergency_collections"] == emergencies:
            assert not dead & keep, "a reachable translation was freed"
        if len(pinned) <= LIMITS.blocks and sum(self.sizes[k] for k in pinned) <= LIMITS.bytes:
            assert len(self.cache) <= LIMITS.blocks and self.cache.size_bytes <= LIMITS.bytes
        for key in set(self.sizes):
            if self.cache.generation_of(key):
                self.generation[key] = 1

    @rule(roots=KEY_SETS, pins=KEY_SETS, kind=st.sampled_from([CollectionKind.MINOR, CollectionKind.MAJOR]))
    def begin_collection(self, roots: frozenset[int], pins: frozenset[int], kind: CollectionKind) -> None:
        self.cache.begin_collection(roots, pins, kind=kind)
        assert self.cache.marking
        assert self.settle(release_now=False) == set(), "beginning a collection freed something"

    @rule()
    def wait_for_marker(self) -> None:
        deadline = time.monotonic() + 2.0
        while self.cache.marking and not self.cache.safepoint_due and time.monotonic() < deadline:
            time.sleep(0.0005)
        assert not self.cache.marking or self.cache.safepoint_due, "the marker never finished"

    # -- what must hold after every step ---------------------------------------------------
    @invariant()
    def agrees_with_model(self) -> None:
        present = set(self.sizes)
        assert set(self.cache.keys()) == present
        assert self.cache.size_bytes == sum(self.sizes.values())
        assert self.cache.stats["code_cache_translations"] == len(present)
        for key in present:
            assert self.cache.links_of(key) == self.exits[key] & present
            assert self.cache.wanted_by(key) == self.exits[key] - present
            assert self.cache.members_of(key) == self.members[key]
            assert self.cache.generation_of(key) >= self.generation[key], "a translation was demoted"


TestCodeCacheModel = CodeCacheModel.TestCase
TestCodeCacheModel.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
