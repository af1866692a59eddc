"""Stress: a simulated vCPU keeps translating, chaining, running and overwriting code while the marker runs.

The vCPU walks a random control-flow graph of "guest pcs". Before entering a
pc it offers the cache a safepoint (pinning that pc, rooting its recently
entered pcs); if the pc has no translation it translates it and chains it to
its successors. Every so often it "overwrites" code (invalidation) while it
is executing inside a translation. Background markers run the whole time.
Checked throughout: the entry the vCPU is about to run is never reclaimed,
memory of the entry it is executing is never released under it, no live
entry stays chained to a dead one, and the bound holds after each safepoint.
"""

from __future__ import annotations

import random

from vm_gc import CacheLimits, CodeCache, GcPolicy

LIMITS = CacheLimits(blocks=48, bytes=48 * 400)


def test_marking_concurrent_with_execution() -> None:
    rng = random.Random(7)
    successors = {pc: [rng.randrange(400) for _ in range(rng.randrange(3))] for pc in range(400)}
    cache = CodeCache(LIMITS, GcPolicy(concurrent=True, major_every=3))
    executing: list[int] = [-1]
    released: list[object] = []
    problems: list[str] = []

    def on_release(key: object, payload: object) -> None:
        if key == executing[0]:
            problems.append(f"released {key} while executing it")
        released.append(key)

    def on_unlink(src: object, dst: object) -> None:
        if src not in cache:
            problems.append(f"unlinked from a dead entry {src}")

    cache.on_release.append(on_release)
    cache.on_unlink.append(on_unlink)
    recent = [-1] * 16

    pc = 0
    for step in range(6000):
        cache.safepoint(recent, (pc,))
        assert len(cache) <= LIMITS.blocks and cache.size_bytes <= LIMITS.bytes
        if pc not in cache:
            cache.insert(pc, rng.randrange(100, 400))
            for target in successors[pc]:
                cache.link(pc, target)
        recent[pc % 16] = pc
        executing[0] = pc
        if step % 97 == 0:  # a store into code: the page of the running translation and its neighbours
            cache.invalidate(range(pc - 2, pc + 3))
        executing[0] = -1
        nexts = successors[pc]
        pc = rng.choice(nexts) if nexts and rng.random() < 0.9 else rng.randrange(400)
        for key in cache.keys():
            for dst in cache.links_of(key):
                assert dst in cache, f"{key} chained to dead {dst}"
    assert not problems, problems[:5]
    assert cache.stats["gc_collections"] > 50 and cache.stats["gc_minor_collections"] > 0
    assert cache.stats["gc_invalidated_translations"] > 0 and len(released) > 1000
    assert cache.stats["gc_mark_seconds"] > 0, "no marking ran in the background"
