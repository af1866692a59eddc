"""A guest fork copies the vm process while the background marker may be running: the child must finish the cycle."""

from __future__ import annotations

import os

from vm_gc import CacheLimits, CodeCache, CollectionKind, GcPolicy


def test_a_fork_during_background_marking_leaves_the_child_a_working_collector() -> None:
    cache = CodeCache(CacheLimits(blocks=100_000, bytes=1 << 30), GcPolicy(concurrent=True))
    for i in range(20_000):  # enough that marking is still going on when the fork comes
        cache.insert(i, 1)
        if i:
            cache.link(i - 1, i)
    cache.begin_collection(roots={0}, kind=CollectionKind.MAJOR)
    pid = os.fork()
    if pid == 0:
        try:
            # the marker thread did not come along: the next safepoint finishes the cycle in its pause
            assert cache.safepoint_due
            cache.safepoint(roots={19_999})
            ok = not cache.marking and len(cache) == 20_000 and cache.links_of(0) == frozenset({1})
            report = cache.collect(roots={19_999}, kind=CollectionKind.MAJOR)
            ok = ok and cache.keys() == [19_999] and report is not None
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    cache.safepoint(roots={19_999})  # the parent's own cycle ends as usual
    assert not cache.marking
