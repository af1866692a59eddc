"""The ``llvm`` engine's compiler thread: regions' LLVM IR in, object code out, in order, off the guest's thread.

:func:`~vm_jit.native.compiler.compile_object` touches no shared LLVM state
and llvmlite releases the GIL inside LLVM, so a guest keeps running while
its hot regions compile. Finished jobs wait in ``done`` until the engine
installs them at its next dispatch.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time
from collections import deque
from typing import Any

import attrs
from vm_core.logging import get_logger

from vm_jit.native.llvm_ir import RegionCode

log = get_logger("vm_jit.native.compile_thread")


@attrs.frozen
class CompileJob:
    """A region on its way through the compiler thread."""

    code: RegionCode
    pages: frozenset[int]
    generations: tuple[int, ...]
    cache_key: str | None


class CompilerThread:
    """One daemon thread that compiles jobs in order; at interpreter exit it finishes only the current one."""

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.done: deque[tuple[CompileJob, bytes | None, float]] = deque()
        self.stopping = False
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

    def submit(self, job: CompileJob, store: Any) -> None:
        self.jobs.put((job, store))

    def stop(self) -> None:
        self.stopping = True
        self.jobs.put(None)
        self.thread.join()
