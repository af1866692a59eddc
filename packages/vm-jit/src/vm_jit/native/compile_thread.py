"""The ``llvm`` engine's compiler thread: regions' LLVM IR in, object code out, in order, off the guest's thread.

:func:`~vm_jit.native.compiler.compile_object` touches no shared LLVM state
and llvmlite releases the GIL inside LLVM, so a guest keeps running while
its hot regions compile. Finished jobs wait in ``done`` until the native tier
installs them at its next dispatch.
"""

from __future__ import annotations

import atexit
import os
import queue
import sys
import threading
import time
import weakref
from collections import deque
from typing import Any

import attrs
from vm_core.logging import get_logger

from vm_jit.native.llvm_ir import RegionCode

log = get_logger("vm_jit.native.compile_thread")

#: The interpreter's thread switch interval (seconds) while native compiles are in flight.
COMPILE_SWITCH_INTERVAL = 0.0005


@attrs.frozen
class CompileJob:
    """A region on its way through the compiler thread."""

    code: RegionCode
    pages: frozenset[int]
    generations: tuple[int, ...]
    cache_key: str | None
    aliases: tuple[str, ...] = ()  # the cache keys of its other blocks, each to lead to cache_key


#: The compiler threads of this process, for the fork hooks below.
LIVE: weakref.WeakSet[CompilerThread] = weakref.WeakSet()


def _before_fork() -> None:
    """A guest fork copies the process: let every compile in flight finish, so no LLVM lock is held."""
    for compiler in list(LIVE):
        compiler.quiesce()


def _after_fork_in_child() -> None:
    """Threads do not survive a fork: each compiler gets a new queue, lock and thread in the child."""
    for compiler in list(LIVE):
        compiler.restart_in_child()


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


class CompilerThread:
    """One daemon thread that compiles jobs in order; at interpreter exit it finishes only the current one.

    Fork-safe: before a fork the jobs in flight finish (their results wait in
    ``done`` and are installed by the parent and, being the same bytes, by the
    child); after it the child starts its own thread.

    While jobs are in flight the interpreter's thread switch interval is
    :data:`COMPILE_SWITCH_INTERVAL`: a compile makes some 25 LLVM calls, each
    of which releases the GIL, and at Python's default interval (5 ms) the
    thread waits up to that long for it back after each while the guest runs
    Python code (measured: compiles of bench_sieve's regions took 2-3 times
    their CPU time in wall time, 1.5-2 times at 0.5 ms).
    """

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.done: deque[tuple[CompileJob, bytes | None, float]] = deque()
        self.stopping = False
        self._in_flight = 0
        self._saved_interval = sys.getswitchinterval()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="vm-llvm-compiler", daemon=True)
        self.thread.start()
        atexit.register(self.stop)
        LIVE.add(self)

    def quiesce(self) -> None:
        """Wait until no job is queued or compiling (the thread then waits on the empty queue)."""
        while self._in_flight and self.thread.is_alive() and not self.stopping:
            time.sleep(0.0005)

    def restart_in_child(self) -> None:
        self.jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._in_flight = 0
        sys.setswitchinterval(self._saved_interval)
        if not self.stopping:
            self.thread = threading.Thread(target=self._loop, name="vm-llvm-compiler", daemon=True)
            self.thread.start()

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

    def submit(self, job: CompileJob, store: Any) -> None:
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
