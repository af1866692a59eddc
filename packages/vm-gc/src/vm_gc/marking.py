"""The code cache's graph nodes and one marking cycle (tri-colour, optionally in a background thread).

An :class:`Entry` is one translation in the cache: its estimated size, its
generation, its mark and its edges. Edges are kept by key: ``links`` (the
chain links a translation's constant exits make to other live translations),
``members`` (the blocks compiled into a region) and, in reverse, ``preds``
(every live translation with an edge to this one, so a dying translation can
be unchained from all of them). ``wants`` holds exits whose target has no
translation yet: the cache turns them into links when the target appears.

A :class:`MarkCycle` colours entries with its epoch: an entry whose ``mark``
equals the cycle's epoch is grey (on the ``grey`` stack) or black (scanned);
any other entry is white. Only *condemned* entries are shaded: in a minor
cycle the young generation, otherwise all. Every read and write of the
graph happens under the cache's lock; the marker thread takes it for one
batch of entries at a time and yields between batches, so the guest keeps
running while it marks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from vm_core.logging import get_logger

from vm_gc.report import CollectionKind

log = get_logger("vm_gc.marking")

Key = Hashable

#: Entries the marker scans per lock hold before yielding to the guest.
MARK_BATCH = 64


class Entry:
    """One translation in the code cache (see the module docstring)."""

    __slots__ = (
        "age",
        "born",
        "dead",
        "generation",
        "key",
        "links",
        "mark",
        "members",
        "payload",
        "preds",
        "size",
        "wants",
    )

    def __init__(self, key: Key, size: int, payload: Any) -> None:
        self.key = key
        self.size = size
        self.payload = payload
        self.generation = 0
        self.age = 0
        self.mark = 0
        self.born = 0
        self.links: set[Key] = set()
        self.members: set[Key] = set()
        self.preds: set[Key] = set()
        self.wants: set[Key] = set()
        self.dead = False

    def edges(self) -> set[Key]:
        """Every key this entry keeps alive: its links and its members."""
        return self.links | self.members


class MarkCycle:
    """One collection's marking: roots shaded at the snapshot, then the grey stack drained.

    ``drain`` may be called by the guest's thread (in the pause, or to finish
    marking early) or by the background thread started by :meth:`start_thread`.
    """

    def __init__(
        self, entries: dict[Key, Entry], lock: threading.RLock, epoch: int, kind: CollectionKind
    ) -> None:
        self.entries = entries
        self.lock = lock
        self.epoch = epoch
        self.kind = kind
        self.grey: list[Entry] = []
        self.done = False
        self.cancelled = False
        self.mark_seconds = 0.0
        self.scanned = 0
        self.background = False
        self._thread: threading.Thread | None = None

    def condemned(self, entry: Entry) -> bool:
        """Whether this cycle may reclaim ``entry`` (a minor cycle spares the old generation)."""
        return self.kind is not CollectionKind.MINOR or entry.generation == 0

    def shade(self, key: Key) -> None:
        """Make the entry at ``key`` grey if it is a white, condemned entry (the caller holds the lock)."""
        entry = self.entries.get(key)
        if entry is not None and entry.mark != self.epoch and self.condemned(entry):
            entry.mark = self.epoch
            self.grey.append(entry)

    def scan(self, entry: Entry) -> None:
        """Shade what ``entry`` keeps alive: its members, and its links except in an emergency cycle."""
        for key in entry.members:
            self.shade(key)
        if self.kind is not CollectionKind.EMERGENCY:
            for key in entry.links:
                self.shade(key)
        self.scanned += 1

    def drain(self, limit: int | None = None) -> bool:
        """Scan grey entries (at most ``limit``); True when none are left (the caller holds the lock)."""
        grey = self.grey
        count = 0
        while grey:
            if limit is not None and count >= limit:
                return False
            entry = grey.pop()
            count += 1
            if not entry.dead:
                self.scan(entry)
        return True

    # -- the background marker ----------------------------------------------------
    def start_thread(self, on_done: Callable[[], None]) -> None:
        """Mark concurrently in a daemon thread; ``on_done`` runs (under the lock) when the grey stack is empty."""
        self.background = True
        self._thread = threading.Thread(target=self._mark, args=(on_done,), name="vm-gc-marker", daemon=True)
        self._thread.start()

    def _mark(self, on_done: Callable[[], None]) -> None:
        started = time.thread_time()
        try:
            while True:
                with self.lock:
                    if self.cancelled:
                        return
                    if self.drain(MARK_BATCH):
                        self.done = True
                        on_done()
                        return
                time.sleep(0)  # let the guest's thread run between batches
        except Exception as err:  # a marker bug must not kill the guest: the pause finishes marking
            log.error("gc_marker_failed", error=repr(err))
        finally:
            self.mark_seconds += time.thread_time() - started

    def forget_thread(self) -> None:
        """In a forked child: the marker thread is gone (the pause drains what is left)."""
        self._thread = None

    def stop(self) -> None:
        """Stop the background marker, if any, and wait for it (the caller must not hold the lock)."""
        with self.lock:
            self.cancelled = True
        if self._thread is not None:
            self._thread.join()
            self._thread = None
