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
from vm_translate.ir import mask, to_signed


def _binop(op: str, a: int, b: int, width: int) -> int:
    m = mask(width)
    if op == "add":
        return (a + b) & m
    if op == "sub":
        return (a - b) & m
    if op == "mul":
        return (a * b) & m
    if op == "and":
        return a & b
    if op == "or":
        return a | b
    if op == "xor":
        return a ^ b
    if op == "shl":
        return (a << (b % width)) & m
    if op == "shr":
        return a >> (b % width)
    if op == "sar":
        return (to_signed(a, width) >> (b % width)) & m
    if op == "mulhu":
        return (a * b) >> width
    if op == "mulhs":
        return ((to_signed(a, width) * to_signed(b, width)) >> width) & m
    if op == "mulhsu":
        return ((to_signed(a, width) * b) >> width) & m
    if op == "rotl":
        k = b % width
        return (a << k | a >> (width - k)) & m
    if op == "rotr":
        k = b % width
        return (a >> k | a << (width - k)) & m
    if op in ir.DIVISION_OPS:
        return _divide(op, a, b, width)
    raise ValueError(f"unknown binary op {op!r}")


def _divide(op: str, a: int, b: int, width: int) -> int:
    """Truncating division; :class:`~vm_translate.ir.DivideError` for a zero divisor or signed overflow."""
    if b == 0:
        raise ir.DivideError("integer division by zero")
    if op == "divu":
        return a // b
    if op == "remu":
        return a % b
    sa, sb = to_signed(a, width), to_signed(b, width)
    if sa == -(1 << (width - 1)) and sb == -1:
        raise ir.DivideError("signed integer division overflow")
    if op == "divs":
        q = abs(sa) // abs(sb)
        return (-q if (sa < 0) != (sb < 0) else q) & mask(width)
    r = abs(sa) % abs(sb)
    return (-r if sa < 0 else r) & mask(width)


def _unop(op: str, a: int, width: int) -> int:
    m = mask(width)
    if op == "not":
        return ~a & m
    if op == "neg":
        return -a & m
    if op == "clz":
        return width - a.bit_length()
    if op == "ctz":
        return width if a == 0 else (a & -a).bit_length() - 1
    if op == "popcount":
        return a.bit_count()
    if op == "bswap":
        return int.from_bytes(a.to_bytes(width // 8, "little"), "big")
    if op == "bitrev":
        return int(format(a, f"0{width}b")[::-1], 2)
    raise ValueError(f"unknown unary op {op!r}")


def _carry_arith(op: str, a: int, b: int, carry_in: int, width: int) -> tuple[int, int, int]:
    """(value, carry, overflow) of :class:`~vm_translate.ir.CarryArith` by its definition."""
    lo, hi = -(1 << (width - 1)), 1 << (width - 1)
    sa, sb = to_signed(a, width), to_signed(b, width)
    if op == "add":
        exact, signed = a + b + carry_in, sa + sb + carry_in
        carry = int(exact >> width != 0)
    else:
        exact, signed = a - b - carry_in, sa - sb - carry_in
        carry = int(exact < 0)
    return exact & mask(width), carry, int(not lo <= signed < hi)


def _vector(op: str, lane: int, a: int, b: int) -> int:
    """:class:`~vm_translate.ir.VecOp` by its definition, lane by lane."""
    m, count = mask(lane), 128 // lane
    if op == "dup":
        return sum((a & m) << (i * lane) for i in range(count))
    lanes_a = [a >> (i * lane) & m for i in range(count)]
    if op == "msb":
        return sum((x >> (lane - 1)) << i for i, x in enumerate(lanes_a))
    if op == "shuffle":
        out = [lanes_a[index] if (index := b >> (8 * i) & 0xFF) < 16 else 0 for i in range(16)]
    elif op in ir.VECTOR_SHIFTS:
        if b >= lane:
            out = [m if op == "sar" and x >> (lane - 1) else 0 for x in lanes_a]
        else:
            out = [_binop(op, x, b, lane) for x in lanes_a]
    else:
        lanes_b = [b >> (i * lane) & m for i in range(count)]
        if op in ir.VECTOR_PACKS:
            return _pack(op, lane, lanes_a + lanes_b)
        if op in ir.VECTOR_PERMUTES:
            out = _permute(op, lanes_a, lanes_b)
        else:
            out = [_lane_op(op, x, y, lane) for x, y in zip(lanes_a, lanes_b)]
    return sum(v << (i * lane) for i, v in enumerate(out))


def _lane_op(op: str, x: int, y: int, lane: int) -> int:
    """One lane of a two-operand :class:`~vm_translate.ir.VecOp` (``x``, ``y`` unsigned lanes)."""
    m = mask(lane)
    if op in ("add", "sub", "mul", "mulhu", "mulhs"):
        return _binop(op, x, y, lane)
    if op in ir.VECTOR_SATURATING:
        sx, sy = (to_signed(x, lane), to_signed(y, lane)) if op[-1] == "s" else (x, y)
        exact = sx + sy if op.startswith("add") else sx - sy
        low, high = (-(1 << (lane - 1)), (1 << (lane - 1)) - 1) if op[-1] == "s" else (0, m)
        return min(max(exact, low), high) & m
    if op == "avgu":
        return (x + y + 1) >> 1
    if op in ("mins", "maxs", "minu", "maxu"):
        rmw = {"mins": "smin", "maxs": "smax", "minu": "umin", "maxu": "umax"}[op]
        return _atomic_new(rmw, x, y, lane)
    if op == "eq":
        return m * int(x == y)
    if op == "gts":
        return m * int(to_signed(x, lane) > to_signed(y, lane))
    if op == "gtu":
        return m * int(x > y)
    raise ValueError(f"unknown vector op {op!r}")


def _pack(op: str, lane: int, lanes: list[int]) -> int:
    """``packss``/``packsu``/``packuu``: every source lane narrowed to ``lane / 2`` bits with saturation."""
    half = lane // 2
    low, high = (-(1 << (half - 1)), (1 << (half - 1)) - 1) if op == "packss" else (0, mask(half))
    values = [to_signed(x, lane) if op != "packuu" else x for x in lanes]
    return sum((min(max(v, low), high) & mask(half)) << (i * half) for i, v in enumerate(values))


def _permute(op: str, xs: list[int], ys: list[int]) -> list[int]:
    """``ziplo``/``ziphi``/``unzipeven``/``unzipodd`` of the lane lists ``xs`` and ``ys``."""
    half = len(xs) // 2
    if op in ("ziplo", "ziphi"):
        start = 0 if op == "ziplo" else half
        return [v for i in range(start, start + half) for v in (xs[i], ys[i])]
    first = 0 if op == "unzipeven" else 1
    return xs[first::2] + ys[first::2]


def _atomic_new(op: str, old: int, src: int, width: int) -> int:
    """The value an :class:`~vm_translate.ir.AtomicRMW` stores."""
    if op == "swap":
        return src
    if op == "smin":
        return old if to_signed(old, width) <= to_signed(src, width) else src
    if op == "smax":
        return old if to_signed(old, width) >= to_signed(src, width) else src
    if op == "umin":
        return min(old, src)
    if op == "umax":
        return max(old, src)
    return _binop(op, old, src, width)


def _compare(op: str, a: int, b: int, width: int) -> int:
    if op == "eq":
        return int(a == b)
    if op == "ne":
        return int(a != b)
    if op == "ltu":
        return int(a < b)
    if op == "leu":
        return int(a <= b)
    if op == "lts":
        return int(to_signed(a, width) < to_signed(b, width))
    if op == "les":
        return int(to_signed(a, width) <= to_signed(b, width))
    raise ValueError(f"unknown compare op {op!r}")


def _extend(value: int, from_width: int, to_width: int, signed: bool) -> int:
    if to_width <= from_width:
        return value & mask(to_width)
    if signed:
        return to_signed(value, from_width) & mask(to_width)
    return value


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
                    temps[s.dst.id] = _compare(s.op, val(s.a), val(s.b), s.a.width)  # type: ignore[union-attr]
                else:
                    temps[s.dst.id] = _binop(s.op, val(s.a), val(s.b), s.dst.width)  # type: ignore[union-attr]
            elif kind is ir.UnOp:
                s = stmt
                temps[s.dst.id] = _unop(s.op, val(s.a), s.dst.width)  # type: ignore[union-attr]
            elif kind is ir.CarryArith:
                s = stmt
                results = _carry_arith(s.op, val(s.a), val(s.b), val(s.carry_in), s.a.width)  # type: ignore[union-attr]
                for dst, value in zip(s.dsts, results, strict=True):  # type: ignore[union-attr]
                    temps[dst.id] = value
            elif kind is ir.VecOp:
                s = stmt
                temps[s.dst.id] = _vector(s.op, s.lane, val(s.a), val(s.b))  # type: ignore[union-attr]
            elif kind is ir.CondTrap:
                s = stmt
                if val(s.cond):  # type: ignore[union-attr]
                    raise ir.GuestTrap(s.signo, s.si_code)  # type: ignore[union-attr]
            elif kind is ir.AtomicRMW:
                s = stmt
                addr, size = val(s.addr), s.size  # type: ignore[union-attr]
                old = mem.load(addr, size)
                mem.store(addr, size, _atomic_new(s.op, old, val(s.src), size * 8))  # type: ignore[union-attr]
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
                temps[s.dst.id] = _extend(val(s.a), s.a.width, s.dst.width, s.signed)  # type: ignore[union-attr]
            elif kind is ir.Select:
                s = stmt
                temps[s.dst.id] = val(s.a) if val(s.cond) else val(s.b)  # type: ignore[union-attr]
            elif kind is ir.Load:
                s = stmt
                raw = mem.load(val(s.addr), s.size)  # type: ignore[union-attr]
                temps[s.dst.id] = _extend(raw, s.size * 8, s.dst.width, s.signed)  # type: ignore[union-attr]
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
