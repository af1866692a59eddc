"""Tier 1: regions of hot blocks compiled to Python functions (:mod:`vm_jit.pysource`).

When a block has run ``compile_threshold`` times in the interpreter, the
engine asks this tier for the region at it: the block and the blocks its
constant exits lead to that have already run (breadth first, at most
``max_region_blocks``), optimised by vm-translate's IR passes and compiled
into one function in which blocks chain to their successors directly, with
guest registers kept in Python locals, so a hot loop runs without returning
to the dispatcher. The region shares its entry block's code cache entry
(grown by the function's size): it lives and dies with it. Python code
holds nothing to free.
"""

from __future__ import annotations

import time
from typing import Any

from vm_gc import estimate_function_bytes
from vm_translate import ir
from vm_translate.cpu import CpuState

from vm_jit.pysource import compile_region
from vm_jit.translation_cache import CompiledRegion, TranslationCache, block_pages, successors


class PythonTier:
    """Tier 1 (see the module docstring)."""

    name = "python"
    enabled = True
    busy = False

    def __init__(self, cache: TranslationCache, level: int) -> None:
        self.cache = cache
        self.level = level
        self.threshold = cache.settings.compile_threshold
        self.stats = cache.stats

    def attach(self, mem: Any) -> None:
        pass  # everything it compiled is in the cache

    def begin_run(self, cpu: CpuState) -> None:
        pass

    def translated(self, cpu: CpuState, translation: Any) -> None:
        pass

    def supports(self, block: ir.Block) -> bool:
        return True

    def install_finished(self, cpu: CpuState) -> None:
        pass

    def close(self) -> None:
        pass

    def region_blocks(self, entry: int) -> list[ir.Block]:
        """The optimised blocks of the region at ``entry``: it, then the blocks that ran reachable from it."""
        translations = self.cache.translations
        first = translations[entry].block
        blocks = [first]
        seen = {first.pc}
        queue = successors(first)
        while queue and len(blocks) < self.cache.settings.max_region_blocks:
            pc = queue.pop(0)
            if pc in seen:
                continue
            seen.add(pc)
            t = translations.get(pc)
            if t is None or t.runs == 0:
                continue  # never ran: leave it to the dispatcher
            blocks.append(t.block)
            queue.extend(successors(t.block))
        return blocks

    def compile(self, cpu: CpuState, blocks: list[ir.Block]) -> CompiledRegion:
        """``blocks`` (entry first) as one region function, not yet installed."""
        fn, traps = compile_region(blocks, cpu)
        return CompiledRegion(
            self,
            self.level,
            fn,
            entries=(blocks[0].pc,),
            blocks=tuple(b.pc for b in blocks),
            exits=[target for b in blocks for target in successors(b)],
            pages=frozenset(page for b in blocks for page in block_pages(b)),
            traps=traps.values(),
            size=estimate_function_bytes(fn),
            own_entry=False,
        )

    def promote(self, cpu: CpuState, entry: int) -> None:
        start = time.perf_counter()
        self.cache.install(self.compile(cpu, self.region_blocks(entry)))
        self.stats["compile_seconds"] += time.perf_counter() - start
        self.stats["compiled_regions"] += 1

    # -- what the cache tells it: Python functions hold nothing to free ----------------
    def withdrawn(self, region: CompiledRegion, pc: int) -> None:
        pass

    def retired(self, region: CompiledRegion) -> None:
        pass

    def release(self, region: CompiledRegion) -> None:
        pass
