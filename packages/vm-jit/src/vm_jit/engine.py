"""The ``python`` engine: hot code compiled to Python functions, cold code interpreted.

Each guest block is lifted once, optimised by vm-translate's IR passes and
run by the reference executor until it has run ``compile_threshold`` times.
Then it is compiled by :mod:`vm_jit.pysource` together with the blocks its
constant exits lead to (a *region*, at most ``max_region_blocks`` blocks that
have already run): inside a region, blocks chain to their successors
directly, with guest registers kept in Python locals, so a hot loop runs
without returning to the dispatcher. Regions are dispatched from a dict
keyed by their entry pc.

A store into a guest page that holds translated code (vm-mem's code watch)
drops every translation and region covering that page before it runs again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from vm_core.errors import Breakpoint, GuestFault
from vm_core.logging import get_logger
from vm_core.types import StopKind, StopReason
from vm_translate import ir
from vm_translate.cpu import CpuState
from vm_translate.executor import execute_block, trap_fault
from vm_translate.frontend import FrontEnd
from vm_translate.passes import optimize

from vm_jit.pysource import compile_region
from vm_jit.settings import JitSettings

log = get_logger("vm_jit.engine")

Region = Callable[[list[int], int], tuple[int, int, int]]


class _Translation:
    """One guest block: its IR and how often it ran in the interpreter."""

    __slots__ = ("block", "n", "runs")

    def __init__(self, block: ir.Block) -> None:
        self.block = block
        self.n = block.insn_count
        self.runs = 0


def _successors(block: ir.Block) -> list[int]:
    exit_ = block.exit
    if isinstance(exit_, ir.Branch):
        return [exit_.taken, exit_.fallthrough]
    if isinstance(exit_, ir.Jump) and isinstance(exit_.target, ir.Const):
        return [exit_.target.value]
    return []


class PythonEngine:
    """Tier 1 (see the module docstring). ``stats`` counts compilations and instructions per tier."""

    name = "python"

    def __init__(self, frontend: FrontEnd, settings: JitSettings | None = None) -> None:
        self.frontend = frontend
        self.settings = settings or JitSettings()
        self.translations: dict[int, _Translation] = {}
        self.regions: dict[int, Region] = {}
        self.traps: dict[int, ir.TrapExit] = {}
        self.pages: dict[int, set[int]] = {}  # guest page -> pcs of translations and regions touching it
        self.stats: dict[str, float] = {
            "compiled_regions": 0,
            "interpreted_insns": 0,
            "compiled_insns": 0,
            "compile_seconds": 0.0,
        }
        self._mem: Any = None

    # -- translation cache ------------------------------------------------------
    def _attach(self, mem: Any) -> None:
        if self._mem is mem:
            return
        self._mem = mem
        self.translations.clear()
        self.regions.clear()
        self.pages.clear()
        callbacks = getattr(mem, "on_code_write", None)
        if callbacks is not None:
            callbacks.append(self.invalidate_page)

    def invalidate_page(self, page: int) -> None:
        """Drop every translation and region that covers guest page ``page``."""
        for pc in self.pages.pop(page, ()):
            self.translations.pop(pc, None)
            self.regions.pop(pc, None)

    def _note_pages(self, mem: Any, key: int, block: ir.Block) -> None:
        watch = getattr(mem, "watch_code", None)
        for page in {block.pc >> 12, (block.pc + max(block.size, 1) - 1) >> 12}:
            keys = self.pages.setdefault(page, set())
            if not keys and watch is not None:
                watch(page)
            keys.add(key)

    def _translate(self, cpu: CpuState, pc: int) -> _Translation:
        block = optimize(self.frontend.lift_block(cpu.mem, pc, self.settings.max_block_insns))
        t = _Translation(block)
        self.translations[pc] = t
        self._note_pages(cpu.mem, pc, block)
        if isinstance(block.exit, ir.TrapExit):
            self.traps[block.exit.pc] = block.exit
        return t

    def _compile(self, cpu: CpuState, entry: _Translation) -> None:
        start = time.perf_counter()
        blocks = [entry.block]
        seen = {entry.block.pc}
        queue = _successors(entry.block)
        while queue and len(blocks) < self.settings.max_region_blocks:
            pc = queue.pop(0)
            if pc in seen:
                continue
            seen.add(pc)
            t = self.translations.get(pc)
            if t is None or t.runs == 0:
                continue  # never ran: leave it to the dispatcher
            blocks.append(t.block)
            queue.extend(_successors(t.block))
        fn, traps = compile_region(blocks, cpu)
        self.traps.update(traps)
        self.regions[entry.block.pc] = fn
        for block in blocks:
            self._note_pages(cpu.mem, entry.block.pc, block)
        self.stats["compile_seconds"] += time.perf_counter() - start
        self.stats["compiled_regions"] += 1

    # -- execution --------------------------------------------------------------
    def run(self, cpu: CpuState, budget: int) -> StopReason:
        """Execute up to ``budget`` guest instructions (see vm_core's StopReason)."""
        self._attach(cpu.mem)
        regs = cpu.regs
        regions = self.regions
        start = cpu.icount
        try:
            while True:
                remaining = budget - (cpu.icount - start)
                region = regions.get(cpu.pc)
                if region is not None:
                    pc, n, kind = region(regs, remaining)
                    cpu.pc = pc
                    cpu.icount += n
                    self.stats["compiled_insns"] += n
                    if kind:
                        if kind == 1:
                            return StopReason(StopKind.SYSCALL, pc)
                        raise trap_fault(self.traps[pc], cpu.isa)
                    if n:
                        continue
                stop = self._cold_step(cpu, remaining)
                if stop is not None:
                    return stop
        except GuestFault as fault:
            kind_ = StopKind.BREAKPOINT if isinstance(fault, Breakpoint) else StopKind.FAULT
            return StopReason(kind_, cpu.pc, fault=fault, signal=fault.signo)

    def _cold_step(self, cpu: CpuState, remaining: int) -> StopReason | None:
        """Run one block outside compiled code; return a stop reason or None."""
        if remaining <= 0:
            return StopReason(StopKind.BUDGET, cpu.pc)
        pc = cpu.pc
        t = self.translations.get(pc) or self._translate(cpu, pc)
        if t.n > remaining or (t.n == remaining and isinstance(t.block.exit, ir.TrapExit)):
            # cut the block to the budget; a cut block ends in a plain jump, never a syscall
            block = optimize(self.frontend.lift_block(cpu.mem, pc, remaining))
            cpu.pc = execute_block(block, cpu)
            self.stats["interpreted_insns"] += block.insn_count
            return None
        t.runs += 1
        if t.runs >= self.settings.compile_threshold and pc not in self.regions:
            self._compile(cpu, t)
            return None
        cpu.pc = execute_block(t.block, cpu)
        self.stats["interpreted_insns"] += t.n
        if isinstance(t.block.exit, ir.SyscallExit):
            return StopReason(StopKind.SYSCALL, cpu.pc)
        return None
