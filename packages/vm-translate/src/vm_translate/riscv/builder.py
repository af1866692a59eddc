"""The IR builder every RISC-V extension module lifts through.

A :class:`Builder` accumulates the statements of one block: it allocates
:class:`~vm_translate.ir.Temp` s, emits statements and closes the block
with one exit. It applies the RISC-V register rules so extension modules do
not have to: :meth:`Builder.get_x` of ``x0`` is the constant 0 and
:meth:`Builder.put_x` to ``x0`` is dropped.

Register reads are forwarded within a block: after ``put_x(r, v)`` a later
``get_x(r)`` returns ``v`` itself, and a register is read with ``GetReg`` at
most once until it is written. The IR stays exact because the reference
executor runs statements in order.

Lift functions must keep the IR rule that every statement that can fault
(``load``, ``store``, ``call``) of an instruction comes before its first
``put_x``/``put_reg``: read and compute first, write registers last.
"""

from __future__ import annotations

import attrs

from vm_translate import ir
from vm_translate.ir import Const, Operand, Temp

MASK64 = (1 << 64) - 1


@attrs.frozen
class InsnMark:
    """Where an instruction's statements begin, to roll the builder back to."""

    stmt_count: int
    temp_count: int
    insn_index: int
    cache: dict[int, Operand] = attrs.field(eq=False)


class Builder:
    """Builds one :class:`~vm_translate.ir.Block` for ``isa`` starting at ``pc``."""

    def __init__(self, isa: str, block_pc: int) -> None:
        self.isa = isa
        self.block_pc = block_pc
        self.stmts: list[ir.Stmt] = []
        self.exit: ir.Exit | None = None
        #: Address and length of the instruction being lifted.
        self.pc = block_pc
        self.length = 4
        self._next_temp = 0
        self._regs: dict[int, Operand] = {}
        self._insn_mark: InsnMark | None = None
        #: Index within the block of the instruction being lifted (0 for the first).
        self.insn_index = -1

    # -- instruction bookkeeping -------------------------------------------------------------

    @property
    def next_pc(self) -> int:
        """Address of the instruction after the current one."""
        return (self.pc + self.length) & MASK64

    def start_insn(self, pc: int, length: int) -> InsnMark:
        """Begin the instruction at ``pc``; returns a mark for :meth:`rollback`."""
        mark = InsnMark(len(self.stmts), self._next_temp, self.insn_index, dict(self._regs))
        self.insn_index += 1
        self.pc = pc
        self.length = length
        self.stmts.append(ir.InsnStart(pc, length))
        self._insn_mark = mark
        return mark

    def rollback(self, mark: InsnMark) -> None:
        """Forget everything emitted since ``mark`` (including the exit)."""
        del self.stmts[mark.stmt_count :]
        self._next_temp = mark.temp_count
        self.insn_index = mark.insn_index
        self._regs = dict(mark.cache)
        self.exit = None

    @property
    def closed(self) -> bool:
        """Whether the block already has its exit."""
        return self.exit is not None

    # -- operands ----------------------------------------------------------------------------

    def temp(self, width: int = 64) -> Temp:
        t = Temp(self._next_temp, width)
        self._next_temp += 1
        return t

    @staticmethod
    def const(value: int, width: int = 64) -> Const:
        """A constant, reduced modulo ``2**width`` (negative values allowed)."""
        return Const(value & ((1 << width) - 1), width)

    def emit(self, stmt: ir.Stmt) -> None:
        self.stmts.append(stmt)

    # -- registers ---------------------------------------------------------------------------

    def get_reg(self, reg: int, width: int = 64) -> Operand:
        """Read flat register ``reg`` (any layout index), forwarding an earlier write."""
        cached = self._regs.get(reg)
        if cached is None:
            t = self.temp(width)
            self.emit(ir.GetReg(t, reg))
            self._regs[reg] = t
            return t
        return cached

    def put_reg(self, reg: int, value: Operand) -> None:
        """Write flat register ``reg``."""
        self.emit(ir.PutReg(reg, value))
        self._regs[reg] = value

    def get_x(self, r: int) -> Operand:
        """Integer register ``x<r>``; ``x0`` is ``Const(0)``."""
        return Const(0) if r == 0 else self.get_reg(r)

    def put_x(self, r: int, value: Operand) -> None:
        """Write ``x<r>`` (a 64-bit operand); writes to ``x0`` are dropped."""
        if value.width != 64:
            raise ValueError(f"x registers are 64 bits wide, got {value}")
        if r != 0:
            self.put_reg(r, value)

    # -- arithmetic --------------------------------------------------------------------------

    def binop(self, op: str, a: Operand, b: Operand) -> Operand:
        """``a <op> b``; comparisons give a 1-bit result, other ops ``a``'s width."""
        width = 1 if op in ir.COMPARE_OPS else a.width
        t = self.temp(width)
        self.emit(ir.BinOp(t, op, a, b))
        return t

    def unop(self, op: str, a: Operand) -> Operand:
        t = self.temp(a.width)
        self.emit(ir.UnOp(t, op, a))
        return t

    def ext(self, a: Operand, width: int, signed: bool) -> Operand:
        """Truncate or extend ``a`` to ``width`` bits (no statement when widths match)."""
        if a.width == width:
            return a
        if isinstance(a, Const):
            value = ir.to_signed(a.value, a.width) if signed and width > a.width else a.value
            return self.const(value, width)
        t = self.temp(width)
        self.emit(ir.Ext(t, a, signed))
        return t

    def sext(self, a: Operand, width: int = 64) -> Operand:
        return self.ext(a, width, True)

    def zext(self, a: Operand, width: int = 64) -> Operand:
        return self.ext(a, width, False)

    def trunc(self, a: Operand, width: int) -> Operand:
        return self.ext(a, width, False)

    def select(self, cond: Operand, a: Operand, b: Operand) -> Operand:
        t = self.temp(a.width)
        self.emit(ir.Select(t, cond, a, b))
        return t

    def add_imm(self, a: Operand, imm: int) -> Operand:
        """``a + imm`` at ``a``'s width (``a`` itself when ``imm`` is 0)."""
        if imm == 0:
            return a
        if isinstance(a, Const):
            return self.const(a.value + imm, a.width)
        return self.binop("add", a, self.const(imm, a.width))

    # -- memory and helpers ------------------------------------------------------------------

    def load(self, addr: Operand, size: int, signed: bool = False, width: int = 64) -> Operand:
        t = self.temp(width)
        self.emit(ir.Load(t, addr, size, signed))
        return t

    def store(self, addr: Operand, value: Operand, size: int) -> None:
        self.emit(ir.Store(addr, value, size))

    def call(self, helper: str, args: tuple[Operand, ...], widths: tuple[int, ...] = (64,)) -> tuple[Temp, ...]:
        """Call helper ``helper``; returns one temp per result width (none for ``widths=()``)."""
        dsts = tuple(self.temp(w) for w in widths)
        self.emit(ir.Call(dsts, helper, args))
        return dsts

    def call1(self, helper: str, *args: Operand, width: int = 64) -> Temp:
        """Call a one-result helper."""
        return self.call(helper, args, (width,))[0]

    def fence(self, kind: str) -> None:
        self.emit(ir.Fence(kind))

    # -- exits -------------------------------------------------------------------------------

    def _close(self, exit_: ir.Exit) -> None:
        if self.exit is not None:
            raise ValueError(f"block at {self.block_pc:#x} already closed by {self.exit}")
        self.exit = exit_

    def jump(self, target: Operand | int) -> None:
        """End the block: continue at ``target`` (an int becomes a constant)."""
        self._close(ir.Jump(self.const(target) if isinstance(target, int) else target))

    def branch(self, cond: Operand, taken: int, fallthrough: int) -> None:
        """End the block with a conditional branch between two constant targets."""
        self._close(ir.Branch(cond, taken & MASK64, fallthrough & MASK64))

    def syscall(self) -> None:
        """End the block with a system call by the current instruction."""
        self._close(ir.SyscallExit(self.pc, self.next_pc))

    def trap(self, kind: str, word: int = 0) -> None:
        """End the block with a trap (``"breakpoint"`` or ``"illegal"``) at the current instruction.

        A trapping instruction does not retire, so its statements (and its
        ``InsnStart``) are dropped.
        """
        if self._insn_mark is not None:
            self.rollback(self._insn_mark)
            self._insn_mark = None
        self._close(ir.TrapExit(kind, self.pc, word, self.length))

    def illegal(self, pc: int, length: int, word: int) -> None:
        """End the block with an illegal-instruction trap for the undecodable word at ``pc``.

        Used by the lifter, outside any instruction: nothing already emitted is dropped.
        """
        self._insn_mark = None
        self.pc = pc
        self.length = length
        self._close(ir.TrapExit("illegal", pc, word, length))

    def end_block(self) -> None:
        """End the block after the current instruction (fall through to the next one)."""
        self.jump(self.next_pc)

    def finish(self, insn_count: int, size: int) -> ir.Block:
        """The finished block (the exit must have been set)."""
        if self.exit is None:
            raise ValueError(f"block at {self.block_pc:#x} has no exit")
        return ir.Block(self.isa, self.block_pc, tuple(self.stmts), self.exit, insn_count, size)
