"""What one collection did, and the collector's tunables: value types shared by the cache and its users."""

from __future__ import annotations

import enum

import attrs
from vm_core.errors import ConfigurationError


class CollectionKind(enum.Enum):
    """Which translations a collection may reclaim, and from which roots it marks.

    ``MINOR``: only young translations; old ones (and their links into the
    young generation, the remembered set) count as live.
    ``MAJOR``: every translation, marked from the roots.
    ``EMERGENCY``: every translation, marked from the pinned entries alone
    (not their chain links): used only when a major collection leaves the
    cache over its bound, i.e. the recently used working set is bigger than
    the cache. It keeps what the vCPU is about to run and drops the rest.
    """

    MINOR = "minor"
    MAJOR = "major"
    EMERGENCY = "emergency"


@attrs.frozen
class CollectionReport:
    """One finished collection (also logged as the ``gc_collection`` event).

    ``pause_seconds`` is the guest-visible part (root snapshot, final remark
    and sweep, both stop-the-world at a safepoint); ``mark_seconds`` is the
    thread time the concurrent marker spent while the guest kept running.
    """

    number: int
    kind: CollectionKind
    pause_seconds: float
    mark_seconds: float
    condemned: int
    reclaimed: int
    reclaimed_bytes: int
    survivors: int
    promoted: int
    blocks_after: int
    bytes_after: int


@attrs.frozen
class GcPolicy:
    """Tunables of the generational collector.

    ``trigger_fraction``: a collection starts (concurrently) when the cache
    passes this fraction of its bound; at the bound itself the guest stops
    and finishes the collection (mutator assist).
    ``promote_after``: collections a young translation must survive to be
    promoted to the old generation.
    ``major_every``: every n-th collection is major (old translations are
    scanned only then); a minor one that leaves the cache over its trigger
    makes the next one major too.
    ``concurrent``: mark in a background thread; ``False`` marks inside the
    pause (deterministic, for tests and debugging).
    """

    trigger_fraction: float = 0.75
    promote_after: int = 1
    major_every: int = 4
    concurrent: bool = True

    def __attrs_post_init__(self) -> None:
        if not 0.0 < self.trigger_fraction <= 1.0:
            raise ConfigurationError(f"gc trigger fraction must be in (0, 1], got {self.trigger_fraction}")
        if self.promote_after < 1:
            raise ConfigurationError(f"gc promote_after must be at least 1, got {self.promote_after}")
        if self.major_every < 1:
            raise ConfigurationError(f"gc major_every must be at least 1, got {self.major_every}")
