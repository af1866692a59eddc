"""The collector's mechanisms, one scenario each: barrier, remembered set, generations, bound, hooks, events."""

from __future__ import annotations

import time

import pytest
import structlog
from vm_core.logging import configure
from vm_gc import CacheError, CacheLimits, CodeCache, CollectionKind, CollectionReport, GcPolicy

BIG = CacheLimits(blocks=1000, bytes=1 << 20)


def wait_until_marked(cache: CodeCache) -> None:
    deadline = time.monotonic() + 5.0
    while not cache.safepoint_due:
        assert time.monotonic() < deadline, "the background marker never finished"
        time.sleep(0.001)


def test_link_made_during_concurrent_marking_is_never_missed() -> None:
    cache = CodeCache(BIG, GcPolicy(concurrent=True))
    cache.insert("a", 10)
    cache.insert("b", 10)
    cache.begin_collection(roots={"a"}, kind=CollectionKind.MAJOR)
    wait_until_marked(cache)  # "a" is black, "b" white
    cache.link("a", "b")  # the write barrier must shade "b"
    cache.safepoint(roots={"a"})
    assert not cache.marking
    assert set(cache.keys()) == {"a", "b"}
    assert cache.links_of("a") == {"b"}


def test_entry_used_during_marking_is_kept_by_the_final_remark() -> None:
    cache = CodeCache(BIG, GcPolicy(concurrent=True))
    cache.insert("old_root", 1)
    cache.insert("late", 1)
    cache.begin_collection(roots={"old_root"}, kind=CollectionKind.MAJOR)
    wait_until_marked(cache)
    cache.safepoint(roots={"late"})  # the dispatcher used "late" meanwhile
    assert set(cache.keys()) == {"old_root", "late"}  # a root at the snapshot lives through the cycle
    cache.collect(roots={"late"}, kind=CollectionKind.MAJOR)
    assert cache.keys() == ["late"]


def test_translation_allocated_during_marking_survives_that_cycle_and_stays_young() -> None:
    cache = CodeCache(BIG, GcPolicy(concurrent=True))
    cache.insert("a", 1)
    cache.begin_collection(kind=CollectionKind.MAJOR)
    cache.insert("new", 1)
    wait_until_marked(cache)
    cache.safepoint(roots=())
    assert cache.keys() == ["new"]
    assert cache.generation_of("new") == 0
    cache.collect(kind=CollectionKind.MAJOR)
    assert len(cache) == 0


def test_minor_collection_keeps_what_old_translations_link_to() -> None:
    cache = CodeCache(BIG, GcPolicy(concurrent=False, major_every=100))
    cache.insert("old", 1)
    cache.collect(roots={"old"})
    assert cache.generation_of("old") == 1
    cache.insert("young_linked", 1)
    cache.insert("young_alone", 1)
    cache.link("old", "young_linked")  # old -> young: the remembered set
    report = cache.collect(roots=(), kind=CollectionKind.MINOR)
    assert report.kind is CollectionKind.MINOR and report.condemned == 2 and report.reclaimed == 1
    assert set(cache.keys()) == {"old", "young_linked"}
    report = cache.collect(roots=(), kind=CollectionKind.MAJOR)
    assert len(cache) == 0 and report.reclaimed == 2


def test_promotion_after_the_configured_number_of_collections() -> None:
    cache = CodeCache(BIG, GcPolicy(concurrent=False, promote_after=2, major_every=100))
    cache.insert("t", 1)
    cache.collect(roots={"t"})
    assert cache.generation_of("t") == 0
    report = cache.collect(roots={"t"})
    assert report.promoted == 1 and cache.generation_of("t") == 1
    # old and unreachable: minor collections never look at it, a major one frees it
    cache.collect(roots=(), kind=CollectionKind.MINOR)
    assert "t" in cache
    cache.collect(roots=(), kind=CollectionKind.MAJOR)
    assert "t" not in cache


def test_every_nth_collection_is_major_and_an_unproductive_minor_forces_one() -> None:
    cache = CodeCache(CacheLimits(blocks=4, bytes=1 << 20), GcPolicy(concurrent=False, major_every=3))
    kinds = []
    cache.on_collection.append(lambda report: kinds.append(report.kind))
    for round_ in range(3):
        for i in range(5):
            cache.insert((round_, i), 1)
        cache.safepoint(roots=())
    assert kinds == [CollectionKind.MINOR, CollectionKind.MINOR, CollectionKind.MAJOR]
    kinds.clear()
    keep = {("live", i) for i in range(4)}
    for key in [*keep, "x"]:
        cache.insert(key, 1)
    cache.safepoint(roots=keep)  # a minor one frees "x" but leaves the cache over its trigger (3 blocks)
    assert kinds == [CollectionKind.MINOR] and len(cache) == 4
    cache.insert("y", 1)
    cache.safepoint(roots=keep)
    assert kinds == [CollectionKind.MINOR, CollectionKind.MAJOR]


def test_bound_holds_after_every_safepoint_by_escalating_to_an_emergency_collection() -> None:
    limits = CacheLimits(blocks=8, bytes=10_000)
    cache = CodeCache(limits, GcPolicy(concurrent=True))
    kinds = []
    cache.on_collection.append(lambda report: kinds.append(report.kind))
    for pc in range(100):
        cache.insert(pc, 100)
        if pc:
            cache.link(pc - 1, pc)  # one long chain: everything is reachable from the oldest root
        cache.safepoint(roots=range(pc + 1), pins={pc})
        assert len(cache) <= limits.blocks and cache.size_bytes <= limits.bytes
        assert pc in cache
    assert CollectionKind.EMERGENCY in kinds


def test_bytes_bound_counts_growth() -> None:
    cache = CodeCache(CacheLimits(blocks=100, bytes=1000), GcPolicy(concurrent=False))
    cache.insert("a", 100)
    cache.insert("b", 100)
    cache.grow("a", 900)
    assert cache.size_bytes == 1100 and cache.size_of("a") == 1000 and cache.safepoint_due
    cache.safepoint(roots={"a", "b"}, pins={"b"})
    assert cache.size_bytes <= 1000 and "b" in cache


def test_pins_bigger_than_the_bound_are_kept_with_a_warning() -> None:
    cache = CodeCache(CacheLimits(blocks=2, bytes=1 << 20), GcPolicy(concurrent=False))
    for key in "abc":
        cache.insert(key, 1)
    cache.add_member("a", "b")
    cache.add_member("a", "c")
    with structlog.testing.capture_logs() as logs:
        cache.safepoint(roots=(), pins={"a"})
    assert set(cache.keys()) == {"a", "b", "c"}
    assert any(entry["event"] == "code_cache_over_bound" for entry in logs)


def test_sweep_unchains_before_retiring_and_releases_last() -> None:
    cache = CodeCache(BIG, GcPolicy(concurrent=False))
    events: list[tuple[object, ...]] = []
    cache.on_unlink.append(lambda src, dst: events.append(("unlink", src, dst)))
    cache.on_retire.append(lambda key: events.append(("retire", key)))
    cache.on_release.append(lambda key, payload: events.append(("release", key, payload)))
    cache.insert("live", 1, payload="L")
    cache.insert("dead", 1, payload="D")
    cache.link("live", "dead")
    cache.link("dead", "live")
    cache.collect(pins={"live"}, kind=CollectionKind.EMERGENCY)  # emergency: links do not keep "dead"
    assert events == [("unlink", "live", "dead"), ("retire", "dead"), ("release", "dead", "D")]
    assert cache.links_of("live") == frozenset() and cache.wanted_by("live") == {"dead"}
    cache.insert("dead", 1)  # translated again: the wanted link is made again
    assert cache.links_of("live") == {"dead"} and cache.wanted_by("live") == frozenset()


def test_invalidation_retires_now_and_releases_at_the_next_safepoint() -> None:
    cache = CodeCache(BIG, GcPolicy(concurrent=True))
    events: list[tuple[object, ...]] = []
    cache.on_retire.append(lambda key: events.append(("retire", key)))
    cache.on_release.append(lambda key, payload: events.append(("release", key)))
    cache.insert(1, 5)
    cache.insert(2, 5)
    cache.add_member(1, 2)
    assert cache.invalidate([2, 3]) == 1
    assert events == [("retire", 2)] and cache.members_of(1) == frozenset()
    assert cache.safepoint_due and cache.stats["gc_invalidated_translations"] == 1
    cache.safepoint(roots={1})
    assert events == [("retire", 2), ("release", 2)]
    assert cache.size_bytes == 5 and not cache.safepoint_due


def test_reports_stats_and_events() -> None:
    stats: dict[str, float] = {"engine_key": 7}
    cache = CodeCache(BIG, GcPolicy(concurrent=False), stats=stats)
    reports: list[CollectionReport] = []
    cache.on_collection.append(reports.append)
    for key in range(10):
        cache.insert(key, 100)
    configure(1)  # the event is logged at info level (vm -v)
    try:
        with structlog.testing.capture_logs() as logs:
            report = cache.collect(roots=range(4), kind=CollectionKind.MAJOR)
    finally:
        configure(0)
    assert reports == [report] and cache.last_report == report
    assert (report.number, report.condemned, report.reclaimed, report.survivors, report.promoted) == (1, 10, 6, 4, 4)
    assert report.reclaimed_bytes == 600 and report.blocks_after == 4 and report.bytes_after == 400
    assert report.pause_seconds > 0
    assert stats["engine_key"] == 7 and stats["gc_collections"] == 1 and stats["gc_major_collections"] == 1
    assert stats["gc_reclaimed_bytes"] == 600 and stats["gc_survivors"] == 4
    assert stats["code_cache_translations"] == 4 and stats["code_cache_peak_bytes"] == 1000
    (event,) = [entry for entry in logs if entry["event"] == "gc_collection"]
    assert event["kind"] == "major" and event["reclaimed"] == 6 and event["bytes_after"] == 400


def test_concurrent_marking_time_is_measured() -> None:
    cache = CodeCache(BIG, GcPolicy(concurrent=True))
    for key in range(500):
        cache.insert(key, 1)
        if key:
            cache.link(key - 1, key)
    cache.begin_collection(roots={0}, kind=CollectionKind.MAJOR)
    wait_until_marked(cache)
    cache.safepoint(roots=())
    assert cache.last_report is not None and cache.last_report.mark_seconds > 0
    assert len(cache) == 500


def test_misuse_raises_cache_errors() -> None:
    cache = CodeCache(BIG)
    cache.insert("a", 1)
    with pytest.raises(CacheError, match="already holds"):
        cache.insert("a", 1)
    with pytest.raises(CacheError, match="negative"):
        cache.insert("b", -1)
    with pytest.raises(CacheError, match="no translation"):
        cache.link("missing", "a")
    with pytest.raises(CacheError, match="no translation"):
        cache.add_member("a", "missing")
    with pytest.raises(CacheError, match="below zero"):
        cache.grow("a", -2)
    with pytest.raises(CacheError, match="no translation"):
        cache.generation_of("missing")


def test_clear_releases_everything_and_stops_marking() -> None:
    cache = CodeCache(BIG, GcPolicy(concurrent=True))
    released = []
    cache.on_release.append(lambda key, payload: released.append(key))
    for key in range(50):
        cache.insert(key, 1)
    cache.begin_collection(roots=range(50))
    cache.clear()
    assert len(cache) == 0 and not cache.marking and sorted(released) == list(range(50))
