"""The reference executor: the definition of what IR means.

:func:`execute_block` interprets one :class:`~vm_translate.ir.Block` over a
:class:`~vm_translate.cpu.CpuState`, writing registers through as it goes so
the state is precise at any fault. :class:`ReferenceEngine` runs guest code
block by block with a front end; it is the ``interp`` engine, and the
yardstick every faster engine is tested against.
"""

from __future__ import annotations

from collections.abc import Callable

from vm_core.errors import Breakpoint, GuestFault, IllegalInstruction, MemoryFault
from vm_core.types import StopKind, StopReason

from vm_translate import ir
from vm_translate.cpu import CpuState
from vm_translate.frontend import FrontEnd
from vm_translate.helpers import get_helper
from vm_translate.ir import mask
from vm_translate.semantics import atomic_new, binop, carry_arith, compare, extend, unop, vector


def execute_block(block: ir.Block, cpu: CpuState) -> int:
    """Run ``block`` on ``cpu``; return the next pc (or raise a guest fault).

    On return ``cpu.icount`` has grown by ``block.insn_count``. On a fault
    ``cpu.pc`` is the faulting instruction's address and ``cpu.icount``
    counts only the instructions before it. A ``SyscallExit`` returns its
    ``next_pc`` after counting the ecall; a ``TrapExit`` raises the trap.
    """
    regs = cpu.regs
    mem = cpu.mem
    temps: dict[int, int] = {}
    retired = -1
    insn_pc = block.pc

    def val(op: ir.Operand) -> int:
        return op.value if isinstance(op, ir.Const) else temps[op.id]

    try:
        for stmt in block.stmts:
            kind = type(stmt)
            if kind is ir.InsnStart:
                retired += 1
                insn_pc = stmt.pc  # type: ignore[union-attr]
            elif kind is ir.GetReg:
                temps[stmt.dst.id] = regs[stmt.reg]  # type: ignore[union-attr]
            elif kind is ir.PutReg:
                regs[stmt.reg] = val(stmt.src)  # type: ignore[union-attr]
            elif kind is ir.BinOp:
                s = stmt
                if s.op in ir.COMPARE_OPS:  # type: ignore[union-attr]
                    temps[s.dst.id] = compare(s.op, val(s.a), val(s.b), s.a.width)  # type: ignore[union-attr]
                else:
                    temps[s.dst.id] = binop(s.op, val(s.a), val(s.b), s.dst.width)  # type: ignore[union-attr]
            elif kind is ir.UnOp:
                s = stmt
                temps[s.dst.id] = unop(s.op, val(s.a), s.dst.width)  # type: ignore[union-attr]
            elif kind is ir.CarryArith:
                s = stmt
                results = carry_arith(s.op, val(s.a), val(s.b), val(s.carry_in), s.a.width)  # type: ignore[union-attr]
                for dst, value in zip(s.dsts, results, strict=True):  # type: ignore[union-attr]
                    temps[dst.id] = value
            elif kind is ir.VecOp:
                s = stmt
                temps[s.dst.id] = vector(s.op, s.lane, val(s.a), val(s.b))  # type: ignore[union-attr]
            elif kind is ir.CondTrap:
                s = stmt
                if val(s.cond):  # type: ignore[union-attr]
                    raise ir.GuestTrap(s.signo, s.si_code)  # type: ignore[union-attr]
            elif kind is ir.AtomicRMW:
                s = stmt
                addr, size = val(s.addr), s.size  # type: ignore[union-attr]
                old = mem.load(addr, size)
                mem.store(addr, size, atomic_new(s.op, old, val(s.src), size * 8))  # type: ignore[union-attr]
                temps[s.dst.id] = old  # type: ignore[union-attr]
            elif kind is ir.CompareSwap:
                s = stmt
                addr, size = val(s.addr), s.size  # type: ignore[union-attr]
                old = mem.load(addr, size)
                # the old value is written back on failure (as x86 CMPXCHG): write permission either way
                mem.store(addr, size, val(s.new) if old == val(s.expected) else old)  # type: ignore[union-attr]
                temps[s.dst.id] = old  # type: ignore[union-attr]
            elif kind is ir.Ext:
                s = stmt
                temps[s.dst.id] = extend(val(s.a), s.a.width, s.dst.width, s.signed)  # type: ignore[union-attr]
            elif kind is ir.Select:
                s = stmt
                temps[s.dst.id] = val(s.a) if val(s.cond) else val(s.b)  # type: ignore[union-attr]
            elif kind is ir.Load:
                s = stmt
                raw = mem.load(val(s.addr), s.size)  # type: ignore[union-attr]
                temps[s.dst.id] = extend(raw, s.size * 8, s.dst.width, s.signed)  # type: ignore[union-attr]
            elif kind is ir.Store:
                s = stmt
                mem.store(val(s.addr), s.size, val(s.src) & mask(s.size * 8))  # type: ignore[union-attr]
            elif kind is ir.Call:
                s = stmt
                helper = get_helper(s.helper)  # type: ignore[union-attr]
                args = [val(a) for a in s.args]  # type: ignore[union-attr]
                result = helper.fn(cpu, *args) if helper.takes_cpu else helper.fn(*args)
                dsts = s.dsts  # type: ignore[union-attr]
                if len(dsts) == 1:
                    temps[dsts[0].id] = result
                elif dsts:
                    for dst, value in zip(dsts, result, strict=True):
                        temps[dst.id] = value
            elif kind is ir.Fence:
                pass
            else:
                raise TypeError(f"unknown IR statement {stmt!r}")
    except GuestFault as fault:
        cpu.pc = insn_pc
        cpu.icount += max(retired, 0)
        if fault.pc is None:
            fault.pc = insn_pc
        raise
    cpu.icount += block.insn_count
    exit_ = block.exit
    if isinstance(exit_, ir.Jump):
        return val(exit_.target)
    if isinstance(exit_, ir.Branch):
        return exit_.taken if val(exit_.cond) else exit_.fallthrough
    if isinstance(exit_, ir.SyscallExit):
        return exit_.next_pc
    if isinstance(exit_, ir.TrapExit):
        cpu.pc = exit_.pc
        raise trap_fault(exit_, block.isa)
    raise TypeError(f"unknown block exit {exit_!r}")


def trap_fault(exit_: ir.TrapExit, isa: str) -> GuestFault:
    """The guest fault a :class:`~vm_translate.ir.TrapExit` stands for."""
    if exit_.kind == "breakpoint":
        return Breakpoint(f"breakpoint at {exit_.pc:#x}", pc=exit_.pc)
    return IllegalInstruction(exit_.word, pc=exit_.pc, isa=isa, length=exit_.length)


class ReferenceEngine:
    """The ``interp`` engine: lift with a front end, interpret the IR.

    Lifted blocks are cached by pc; ``invalidate_page`` drops the blocks of a
    guest page (self-modifying code), and the engine registers itself with
    the address space's code watch when it has one.
    """

    name = "interp"

    def __init__(self, frontend: FrontEnd, *, max_block_insns: int = 64) -> None:
        self.frontend = frontend
        self.max_block_insns = max_block_insns
        self.blocks: dict[int, ir.Block] = {}
        self._watched: set[int] = set()
        self._mem: object | None = None

    def _attach(self, mem: object) -> None:
        if self._mem is mem:
            return
        self._mem = mem
        self.blocks.clear()
        self._watched.clear()
        callbacks: list[Callable[[int], None]] | None = getattr(mem, "on_code_write", None)
        if callbacks is not None:
            callbacks.append(self.invalidate_page)

    def invalidate_page(self, page: int) -> None:
        """Forget every block that starts or ends in guest page ``page``."""
        # in place: a run() in progress holds this dict
        for pc in [pc for pc, b in self.blocks.items() if pc >> 12 == page or (pc + b.size - 1) >> 12 == page]:
            del self.blocks[pc]
        self._watched.discard(page)

    def _lift(self, cpu: CpuState, pc: int, max_insns: int) -> ir.Block:
        block = self.frontend.lift_block(cpu.mem, pc, max_insns)
        watch = getattr(cpu.mem, "watch_code", None)
        if watch is not None:
            for page in {pc >> 12, (pc + max(block.size, 1) - 1) >> 12}:
                if page not in self._watched:
                    watch(page)
                    self._watched.add(page)
        return block

    def run(self, cpu: CpuState, budget: int) -> StopReason:
        """Execute up to ``budget`` instructions; see vm_core's StopReason."""
        self._attach(cpu.mem)
        start = cpu.icount
        blocks = self.blocks
        while True:
            remaining = budget - (cpu.icount - start)
            if remaining <= 0:
                return StopReason(StopKind.BUDGET, cpu.pc)
            pc = cpu.pc
            try:
                block = blocks.get(pc)
                if block is None:
                    block = self._lift(cpu, pc, self.max_block_insns)
                    blocks[pc] = block
                if block.insn_count > remaining or (
                    block.insn_count == remaining and isinstance(block.exit, ir.TrapExit)
                ):
                    # the budget ends before the trapping instruction: it is not attempted
                    block = self._lift(cpu, pc, remaining)
                cpu.pc = execute_block(block, cpu)
            except MemoryFault as fault:
                if fault.pc is None:
                    fault.pc = cpu.pc
                return StopReason(StopKind.FAULT, cpu.pc, fault=fault, signal=fault.signo)
            except GuestFault as fault:
                kind = StopKind.BREAKPOINT if isinstance(fault, Breakpoint) else StopKind.FAULT
                return StopReason(kind, cpu.pc, fault=fault, signal=fault.signo)
            if isinstance(block.exit, ir.SyscallExit):
                return StopReason(StopKind.SYSCALL, cpu.pc)
