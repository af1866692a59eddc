"""The ``python`` engine: hot blocks compiled to Python functions, cold ones interpreted.

Each guest block is lifted once, optimised by vm-translate's IR passes and
run by the reference executor until it has run ``compile_threshold`` times;
then it is compiled by :mod:`vm_jit.pysource` and dispatched from a dict
keyed by guest pc. A store into a guest page that holds translated code
(vm-mem's code watch) drops every translation of that page before it runs
again.
"""

from __future__ import annotations

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

from vm_jit.pysource import compile_block
from vm_jit.settings import JitSettings

log = get_logger("vm_jit.engine")

NORMAL, SYSCALL = 0, 1  # a block's kind; a trapping block's kind is its TrapExit


class _Translation:
    """One guest block: its IR, how often it ran cold, and its compiled function once hot."""

    __slots__ = ("block", "fn", "kind", "n", "runs")
    kind: int | ir.TrapExit

    def __init__(self, block: ir.Block) -> None:
        self.block = block
        self.n = block.insn_count
        self.runs = 0
        self.fn: Callable[[list[int]], int] | None = None
        exit_ = block.exit
        if isinstance(exit_, ir.SyscallExit):
            self.kind = SYSCALL
        elif isinstance(exit_, ir.TrapExit):
            self.kind = exit_
        else:
            self.kind = NORMAL


class PythonEngine:
    """Tier 1 (see the module docstring). ``stats`` counts compilations and instructions per tier."""

    name = "python"

    def __init__(self, frontend: FrontEnd, settings: JitSettings | None = None) -> None:
        self.frontend = frontend
        self.settings = settings or JitSettings()
        self.translations: dict[int, _Translation] = {}
        self.hot: dict[int, tuple[Callable[[list[int]], int], int, Any]] = {}
        self.pages: dict[int, set[int]] = {}
        self.stats = {"compiled_blocks": 0, "interpreted_insns": 0, "compiled_insns": 0, "compile_seconds": 0.0}
        self._mem: Any = None

    # -- translation cache ------------------------------------------------------
    def _attach(self, mem: Any) -> None:
        if self._mem is mem:
            return
        self._mem = mem
        self.translations.clear()
        self.hot.clear()
        self.pages.clear()
        callbacks = getattr(mem, "on_code_write", None)
        if callbacks is not None:
            callbacks.append(self.invalidate_page)

    def invalidate_page(self, page: int) -> None:
        """Drop every translation that covers guest page ``page``."""
        for pc in self.pages.pop(page, ()):
            self.translations.pop(pc, None)
            self.hot.pop(pc, None)

    def _translate(self, cpu: CpuState, pc: int) -> _Translation:
        block = optimize(self.frontend.lift_block(cpu.mem, pc, self.settings.max_block_insns))
        t = _Translation(block)
        self.translations[pc] = t
        watch = getattr(cpu.mem, "watch_code", None)
        for page in {pc >> 12, (pc + max(block.size, 1) - 1) >> 12}:
            pcs = self.pages.setdefault(page, set())
            if not pcs and watch is not None:
                watch(page)
            pcs.add(pc)
        return t

    def _compile(self, cpu: CpuState, t: _Translation) -> None:
        import time

        start = time.perf_counter()
        t.fn = compile_block(t.block, cpu)
        self.stats["compile_seconds"] += time.perf_counter() - start
        self.stats["compiled_blocks"] += 1
        self.hot[t.block.pc] = (t.fn, t.n, t.kind)

    # -- execution --------------------------------------------------------------
    def run(self, cpu: CpuState, budget: int) -> StopReason:
        """Execute up to ``budget`` guest instructions (see vm_core's StopReason)."""
        self._attach(cpu.mem)
        regs = cpu.regs
        hot = self.hot
        start = cpu.icount
        pc = cpu.pc
        done = 0  # retired by compiled blocks and not yet added to cpu.icount
        limit = budget
        try:
            while True:
                entry = hot.get(pc)
                if entry is not None:
                    fn, n, kind = entry
                    if done + n <= limit:
                        pc = fn(regs)
                        done += n
                        if kind:
                            cpu.pc = pc
                            if kind == SYSCALL:
                                return StopReason(StopKind.SYSCALL, pc)
                            raise trap_fault(kind, cpu.isa)
                        continue
                cpu.pc = pc
                cpu.icount += done
                self.stats["compiled_insns"] += done
                done = 0
                stop = self._cold_step(cpu, budget - (cpu.icount - start))
                if stop is not None:
                    return stop
                pc = cpu.pc
                limit = budget - (cpu.icount - start)
        except GuestFault as fault:
            kind_ = StopKind.BREAKPOINT if isinstance(fault, Breakpoint) else StopKind.FAULT
            return StopReason(kind_, cpu.pc, fault=fault, signal=fault.signo)
        finally:
            cpu.icount += done
            self.stats["compiled_insns"] += done

    def _cold_step(self, cpu: CpuState, remaining: int) -> StopReason | None:
        """Run one block outside the compiled fast path; return a stop reason or None."""
        if remaining <= 0:
            return StopReason(StopKind.BUDGET, cpu.pc)
        pc = cpu.pc
        t = self.translations.get(pc) or self._translate(cpu, pc)
        if t.n > remaining:
            block = optimize(self.frontend.lift_block(cpu.mem, pc, remaining))
            cpu.pc = execute_block(block, cpu)
            # a block cut short by the budget ends in a plain jump, never a syscall
            self.stats["interpreted_insns"] += block.insn_count
            return None
        t.runs += 1
        if t.runs >= self.settings.compile_threshold:
            self._compile(cpu, t)
            return None
        cpu.pc = execute_block(t.block, cpu)
        self.stats["interpreted_insns"] += t.n
        if t.kind == SYSCALL:
            return StopReason(StopKind.SYSCALL, cpu.pc)
        return None
