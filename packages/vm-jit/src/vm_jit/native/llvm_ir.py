"""Tier 2 code generation: a region of IR blocks as one LLVM IR function (text).

The function is ``i64 @name(ptr %ctx)``; ``ctx`` is an array of 64-bit
slots (see :data:`CTX_SLOTS`): the addresses of the guest register file and
of the readable and writable host page tables (:mod:`.pagetable`), the
instruction budget, the pc to start at (any block of the region is an
entry), the retired-instruction count at entry (for ``rdinstret``), two
out slots that receive the next pc and the instructions retired, and the
chaining slots (below). The return value is a status: :data:`LEFT` (the
next pc is outside the region, or the next block does not fit in the
budget), :data:`SYSCALL` (the next pc follows the ``ecall``), :data:`TRAP`
(the next pc is the trapping instruction) or :data:`SLOW` (the instruction
at the next pc must run on Python's checked slow path: a page-table miss, a
page-crossing or misaligned access, ...).

Chaining: a region that leaves for a pc outside itself (a call, a return,
a jump to another region) looks that pc up in the engine's *chain table*, a
direct-mapped table of :data:`CHAIN_SLOTS` ``(pc, function address)``
pairs indexed by ``(pc >> 1) & (CHAIN_SLOTS - 1)`` (like qemu's jump
cache). On a hit, with budget left, it passes the budget, start pc and
instruction count on in ``ctx`` and tail-calls that region's function
(``musttail``: the host stack does not grow), so execution stays in native
code across regions and returns to Python only for system calls, traps,
slow paths, pcs with no native code and an exhausted budget.
``ctx[CTX_CHAINED]`` (zeroed by the caller) sums what the earlier regions
of a chain retired, so ``CTX_OUT_N`` is the chain's total. Since every
region in a chain reads and writes the register file, the caller must load
it with every register that any installed region uses. A null table
address turns chaining off.

Guest registers are read and written in the register file itself, with
scoped no-alias metadata saying guest memory never aliases it, so LLVM keeps
them in host registers where it can and the file holds the guest state at
every exit; since the IR puts every statement that can fault before the
instruction's first ``PutReg``, the state at a :data:`SLOW` exit is exactly
the state before that instruction. Only blocks whose statements are all
implemented here are compiled (:func:`native_supported`). A helper call is
compiled when the helper declares a :class:`~vm_translate.helpers.NativeLowering`
this module implements (:data:`NATIVE_LOWERINGS`: ``retired_count``,
``alignment_check``, ``conditional_store``, and on x86-64 hosts ``float``,
see :mod:`.float_ops`); this module knows helpers by their lowering, never
by name, and a helper without one (the clock) keeps its block in tier 1.
IR semantics follow :mod:`vm_translate.executor` exactly (divisions wider
than 64 bits by :mod:`.bit_ops`' own long division); a division that
would trap, a :class:`~vm_translate.ir.CondTrap` that fires and atomics
native code does not do (:mod:`.bit_ops`) leave for the slow path.
"""

from __future__ import annotations

import attrs
from vm_translate import ir
from vm_translate.helpers import HELPERS, NativeLowering
from vm_translate.ir import to_signed

from vm_jit.native.bit_ops import BitLowering, bit_stmt_supported
from vm_jit.native.float_ops import FloatLowering, float_call_supported
from vm_jit.native.vector_ops import VectorLowering

#: ctx slot indexes.
CTX_REGS, CTX_READ, CTX_WRITE, CTX_BUDGET, CTX_START, CTX_ICOUNT, CTX_OUT_PC, CTX_OUT_N = range(8)
CTX_CHAIN_TABLE, CTX_CHAINED = 8, 9
CTX_SLOTS = 10

LEFT, SYSCALL, TRAP, SLOW = 0, 1, 2, 3
#: Internal status: leave with LEFT, but do not chain (the budget ran out, or the start pc is no entry).
_STAY = 4
#: Slots of the chain table (a power of two); each slot is two 64-bit words, pc then function address.
CHAIN_SLOTS = 1 << 16
#: The pc an empty chain-table slot holds (no guest pc is odd).
CHAIN_EMPTY = (1 << 64) - 1

#: The helper lowerings (:class:`~vm_translate.helpers.NativeLowering` kinds) native code implements.
NATIVE_LOWERINGS = frozenset({"retired_count", "alignment_check", "conditional_store", "float"})
_ACCESS_SIZES = (1, 2, 4, 8)
_WIDE_OPS = frozenset({"mulhu", "mulhs", "mulhsu", "divu", "divs", "remu", "rems"})
_ICMP = {"eq": "eq", "ne": "ne", "ltu": "ult", "leu": "ule", "lts": "slt", "les": "sle"}
_SIMPLE = {"add": "add", "sub": "sub", "mul": "mul", "and": "and", "or": "or", "xor": "xor"}
_SHIFT = {"shl": "shl", "shr": "lshr", "sar": "ashr"}
#: The guest register file and guest memory never alias: scoped no-alias metadata lets LLVM keep
#: registers in host registers across guest stores (the register file stays the state at every exit).
_REGS_SCOPE = "!alias.scope !2, !noalias !3"
_GUEST_SCOPE = "!alias.scope !3, !noalias !2"
_METADATA = """
!0 = !{}
!1 = !{!"branch_weights", i32 1, i32 2000}
!2 = !{!5}
!3 = !{!6}
!4 = distinct !{!4, !"vm"}
!5 = distinct !{!5, !4, !"guest registers"}
!6 = distinct !{!6, !4, !"guest memory"}
"""


@attrs.frozen
class RegionCode:
    """The LLVM IR of one region and what the engine needs to run it."""

    name: str
    text: str
    block_pcs: tuple[int, ...]
    entries: tuple[int, ...]  # the block pcs the function can start at
    reg_low: int  # registers [reg_low, reg_high) cover every register the region reads or writes
    reg_high: int
    traps: tuple[ir.TrapExit, ...]


def _stmt_supported(stmt: ir.Stmt) -> bool:
    if isinstance(stmt, ir.Load):
        return stmt.size in _ACCESS_SIZES and stmt.dst.width <= 64
    if isinstance(stmt, ir.Store):
        return stmt.size in _ACCESS_SIZES
    if isinstance(stmt, ir.Call):
        lowering = _lowering(stmt)
        if lowering is None or lowering.kind not in NATIVE_LOWERINGS:
            return False
        if lowering.kind == "float":
            return float_call_supported(stmt, lowering)
        if lowering.kind == "retired_count":
            return len(stmt.args) == 1 and isinstance(stmt.args[0], ir.Const) and len(stmt.dsts) == 1
        if lowering.kind == "alignment_check":
            return len(stmt.args) == 3 and isinstance(stmt.args[1], ir.Const) and not stmt.dsts
        size = stmt.args[3] if len(stmt.args) == 4 else None
        return isinstance(size, ir.Const) and size.value in _ACCESS_SIZES and len(stmt.dsts) == 1
    if isinstance(stmt, ir.BinOp) and stmt.op in _WIDE_OPS:
        return stmt.dst.width <= 64 or stmt.op in ir.DIVISION_OPS
    return bit_stmt_supported(stmt)


def _lowering(stmt: ir.Call) -> NativeLowering | None:
    helper = HELPERS.get(stmt.helper)
    return None if helper is None else helper.native


def native_supported(block: ir.Block) -> bool:
    """Whether every statement of ``block`` has a native implementation."""
    return all(_stmt_supported(stmt) for stmt in block.stmts)


def _const(value: int, width: int) -> str:
    if width == 1:
        return "true" if value else "false"
    return str(to_signed(value, width))


class _RegionEmitter:
    """Builds the text of one region function."""

    def __init__(self, blocks: list[ir.Block], name: str, entries: tuple[int, ...]) -> None:
        self.blocks = blocks
        self.name = name
        self.pcs = [b.pc for b in blocks]
        self.entries = entries
        self.in_region = set(self.pcs)
        self.lines: list[str] = []
        self.stubs: list[str] = []
        self.counter = 0
        self.vals: dict[int, str] = {}
        self.regs_read: set[int] = set()
        self.regs_written: set[int] = set()
        self.out_stubs: dict[int, str] = {}
        self.uses_sc = False
        self.traps: list[ir.TrapExit] = []
        self.fp = FloatLowering(self)
        self.ops = BitLowering(self)
        self.vectors = VectorLowering(self)
        self.guest_scope = _GUEST_SCOPE
        #: Intrinsic declarations the function uses.
        self.declarations: set[str] = set()

    # -- names ------------------------------------------------------------------
    def tmp(self) -> str:
        self.counter += 1
        return f"%v{self.counter}"

    def label(self) -> str:
        self.counter += 1
        return f"L{self.counter}"

    def emit(self, line: str) -> None:
        self.lines.append("  " + line)

    def start_label(self, label: str) -> None:
        self.lines.append(f"{label}:")

    def op(self, o: ir.Operand) -> str:
        if isinstance(o, ir.Const):
            return _const(o.value, o.width)
        return self.vals[o.id]

    def resize(self, value: str, frm: int, to: int, signed: bool = False) -> str:
        if frm == to:
            return value
        out = self.tmp()
        kind = "trunc" if to < frm else ("sext" if signed else "zext")
        self.emit(f"{out} = {kind} i{frm} {value} to i{to}")
        return out

    def bind(self, dst: ir.Temp, value: str) -> None:
        self.vals[dst.id] = value

    def intrinsic(self, name: str, width: int, arity: int, extra: str = "") -> str:
        """``@llvm.<name>.i<width>`` (declared once), taking ``arity`` such ints and ``extra`` arguments."""
        t = f"i{width}"
        params = ", ".join([t] * arity + ([extra] if extra else []))
        self.declarations.add(f"declare {t} @llvm.{name}.{t}({params})")
        return f"@llvm.{name}.{t}"

    # -- control flow -------------------------------------------------------------
    def exit_stub(self, pc_value: str, status: int, n_value: str) -> str:
        label = self.label()
        self.stubs += [
            f"{label}:",
            f"  store i64 {n_value}, ptr %n.addr",
            f"  store i64 {pc_value}, ptr %pc.addr",
            f"  store i64 {status}, ptr %st.addr",
            "  br label %exit",
        ]
        return label

    def target(self, pc: int) -> str:
        """The label that continues at constant ``pc`` (its block, or a stub that leaves the region)."""
        if pc in self.in_region:
            return f"B{pc:x}"
        stub = self.out_stubs.get(pc)
        if stub is None:
            label = self.label()
            self.stubs += [
                f"{label}:",
                f"  store i64 {to_signed(pc, 64)}, ptr %pc.addr",
                f"  store i64 {LEFT}, ptr %st.addr",
                "  br label %exit",
            ]
            stub = self.out_stubs[pc] = label
        return stub

    def check(self, bad: str, slow: str) -> None:
        """Continue if ``bad`` (i1) is false, else go to the slow-path label ``slow``."""
        cont = self.label()
        self.emit(f"br i1 {bad}, label %{slow}, label %{cont}, !prof !1")
        self.start_label(cont)

    def host_pointer(self, addr: str, size: int, table: str, slow: str) -> str:
        """The host pointer for a ``size``-byte access at guest ``addr`` through ``table``, or go slow.

        Addresses from 2^39 up clamp to the table's extra, empty top-level
        entry; no top-level entry is null (see :mod:`.pagetable`), so one
        test covers an absent page and an access crossing the page end.
        """
        top_index, clamped, entry_ptr, level2 = self.tmp(), self.tmp(), self.tmp(), self.tmp()
        self.emit(f"{top_index} = lshr i64 {addr}, 26")
        self.emit(f"{clamped} = call i64 @llvm.umin.i64(i64 {top_index}, i64 8192)")
        self.emit(f"{entry_ptr} = getelementptr i64, ptr {table}, i64 {clamped}")
        self.emit(f"{level2} = load i64, ptr {entry_ptr}, align 8, !invariant.load !0")
        level2_ptr, pn, index, page_ptr, page = self.tmp(), self.tmp(), self.tmp(), self.tmp(), self.tmp()
        self.emit(f"{level2_ptr} = inttoptr i64 {level2} to ptr")
        self.emit(f"{pn} = lshr i64 {addr}, 12")
        self.emit(f"{index} = and i64 {pn}, 16383")
        self.emit(f"{page_ptr} = getelementptr i64, ptr {level2_ptr}, i64 {index}")
        self.emit(f"{page} = load i64, ptr {page_ptr}, align 8, !invariant.load !0")
        offset, crosses, absent, bad = self.tmp(), self.tmp(), self.tmp(), self.tmp()
        self.emit(f"{offset} = and i64 {addr}, 4095")
        self.emit(f"{crosses} = icmp ugt i64 {offset}, {4096 - size}")
        self.emit(f"{absent} = icmp eq i64 {page}, 0")
        self.emit(f"{bad} = or i1 {absent}, {crosses}")
        self.check(bad, slow)
        host, ptr = self.tmp(), self.tmp()
        self.emit(f"{host} = add i64 {page}, {offset}")
        self.emit(f"{ptr} = inttoptr i64 {host} to ptr")
        return ptr

    def addr64(self, o: ir.Operand) -> str:
        return self.resize(self.op(o), o.width, 64)

    # -- statements ---------------------------------------------------------------
    def binop(self, s: ir.BinOp, slow: str) -> None:
        a, b, op = self.op(s.a), self.op(s.b), s.op
        out = self.tmp()
        if op in _ICMP:
            self.emit(f"{out} = icmp {_ICMP[op]} i{s.a.width} {a}, {b}")
            self.bind(s.dst, out)
            return
        w = s.dst.width
        t = f"i{w}"
        if op in _SIMPLE:
            self.emit(f"{out} = {_SIMPLE[op]} {t} {a}, {b}")
        elif op in _SHIFT:
            amount = self.resize(b, s.b.width, w)
            masked = self.tmp()
            self.emit(f"{masked} = and {t} {amount}, {w - 1}")
            self.emit(f"{out} = {_SHIFT[op]} {t} {a}, {masked}")
        elif op in ("rotl", "rotr"):
            amount = self.resize(b, s.b.width, w)
            funnel = self.intrinsic(f"fsh{op[3]}", w, 3)
            self.emit(f"{out} = call {t} {funnel}({t} {a}, {t} {a}, {t} {amount})")
        elif op in ("mulhu", "mulhs", "mulhsu"):
            wa = self.resize(a, w, 2 * w, signed=op != "mulhu")
            wb = self.resize(b, w, 2 * w, signed=op == "mulhs")
            product, high = self.tmp(), self.tmp()
            self.emit(f"{product} = mul i{2 * w} {wa}, {wb}")
            self.emit(f"{high} = lshr i{2 * w} {product}, {w}")
            self.emit(f"{out} = trunc i{2 * w} {high} to {t}")
        else:
            self.division(op, a, b, w, out, slow)
        self.bind(s.dst, out)

    def division(self, op: str, a: str, b: str, w: int, out: str, slow: str) -> None:
        """IR division: a zero divisor (or ``MIN / -1``) leaves for the slow path, which raises the trap."""
        t = f"i{w}"
        zero = self.tmp()
        self.emit(f"{zero} = icmp eq {t} {b}, 0")
        bad = zero
        if op in ("divs", "rems"):
            a_min, b_minus1, overflow, either = self.tmp(), self.tmp(), self.tmp(), self.tmp()
            self.emit(f"{a_min} = icmp eq {t} {a}, {_const(1 << (w - 1), w)}")
            self.emit(f"{b_minus1} = icmp eq {t} {b}, {_const((1 << w) - 1, w)}")
            self.emit(f"{overflow} = and i1 {a_min}, {b_minus1}")
            self.emit(f"{either} = or i1 {zero}, {overflow}")
            bad = either
        self.check(bad, slow)
        if w > 64:  # LLVM would call compiler-rt's __udivti3 and friends, which MCJIT cannot link
            self.ops.wide_division(op, a, b, w, out)
            return
        instr = {"divu": "udiv", "remu": "urem", "divs": "sdiv", "rems": "srem"}[op]
        self.emit(f"{out} = {instr} {t} {a}, {b}")

    def call(self, s: ir.Call, nv: str, slow: str) -> None:
        lowering = _lowering(s)
        assert lowering is not None
        if lowering.kind == "float":
            self.fp.call(s, lowering, slow)
            return
        if lowering.kind == "retired_count":
            assert isinstance(s.args[0], ir.Const)
            base, out = self.tmp(), self.tmp()
            self.emit(f"{base} = add i64 %icount0, {nv}")
            self.emit(f"{out} = add i64 {base}, {s.args[0].value}")
            self.bind(s.dsts[0], self.resize(out, 64, s.dsts[0].width))
            return
        if lowering.kind == "alignment_check":
            assert isinstance(s.args[1], ir.Const)
            self.aligned_or_slow(self.addr64(s.args[0]), s.args[1].value, slow)
            return
        # conditional_store(addr, value, reservation, size): 0 and store if addr holds the reservation
        size_op = s.args[3]
        assert isinstance(size_op, ir.Const)
        size = size_op.value
        self.uses_sc = True
        addr, reservation = self.addr64(s.args[0]), self.addr64(s.args[2])
        differs = self.tmp()
        attempt, join = self.label(), self.label()
        self.emit("store i64 1, ptr %sc.addr")
        self.emit(f"{differs} = icmp ne i64 {addr}, {reservation}")
        self.emit(f"br i1 {differs}, label %{join}, label %{attempt}")
        self.start_label(attempt)
        self.aligned_or_slow(addr, size, slow)
        ptr = self.host_pointer(addr, size, "%wr", slow)
        value = self.resize(self.op(s.args[1]), s.args[1].width, size * 8)
        self.emit(f"store i{size * 8} {value}, ptr {ptr}, align 1, {_GUEST_SCOPE}")
        self.emit("store i64 0, ptr %sc.addr")
        self.emit(f"br label %{join}")
        self.start_label(join)
        result = self.tmp()
        self.emit(f"{result} = load i64, ptr %sc.addr")
        self.bind(s.dsts[0], self.resize(result, 64, s.dsts[0].width))

    def aligned_or_slow(self, addr: str, size: int, slow: str) -> None:
        low, bad = self.tmp(), self.tmp()
        self.emit(f"{low} = and i64 {addr}, {size - 1}")
        self.emit(f"{bad} = icmp ne i64 {low}, 0")
        self.check(bad, slow)

    def statement(self, s: ir.Stmt, nv: str, slow: str) -> None:
        if isinstance(s, ir.GetReg):
            self.regs_read.add(s.reg)
            out = self.tmp()
            self.emit(f"{out} = load i64, ptr %r{s.reg}, align 8, {_REGS_SCOPE}")
            self.bind(s.dst, self.resize(out, 64, s.dst.width))
        elif isinstance(s, ir.PutReg):
            self.regs_written.add(s.reg)
            self.emit(f"store i64 {self.resize(self.op(s.src), s.src.width, 64)}, ptr %r{s.reg}, align 8, {_REGS_SCOPE}")
        elif isinstance(s, ir.BinOp):
            self.binop(s, slow)
        elif isinstance(s, ir.UnOp):
            self.bind(s.dst, self.ops.unop(s.op, self.op(s.a), s.dst.width))
        elif isinstance(s, ir.CarryArith):
            self.ops.carry_arith(s)
        elif isinstance(s, ir.VecOp):
            self.vectors.vec_op(s)
        elif isinstance(s, ir.CondTrap):
            self.check(self.resize(self.op(s.cond), s.cond.width, 1), slow)
        elif isinstance(s, ir.AtomicRMW):
            self.ops.atomic_rmw(s, slow)
        elif isinstance(s, ir.CompareSwap):
            self.ops.compare_swap(s, slow)
        elif isinstance(s, ir.Ext):
            self.bind(s.dst, self.resize(self.op(s.a), s.a.width, s.dst.width, s.signed))
        elif isinstance(s, ir.Select):
            out, t = self.tmp(), f"i{s.dst.width}"
            cond = self.resize(self.op(s.cond), s.cond.width, 1)
            self.emit(f"{out} = select i1 {cond}, {t} {self.op(s.a)}, {t} {self.op(s.b)}")
            self.bind(s.dst, out)
        elif isinstance(s, ir.Load):
            ptr = self.host_pointer(self.addr64(s.addr), s.size, "%rd", slow)
            raw = self.tmp()
            self.emit(f"{raw} = load i{s.size * 8}, ptr {ptr}, align 1, {_GUEST_SCOPE}")
            self.bind(s.dst, self.resize(raw, s.size * 8, s.dst.width, s.signed))
        elif isinstance(s, ir.Store):
            ptr = self.host_pointer(self.addr64(s.addr), s.size, "%wr", slow)
            value = self.resize(self.op(s.src), s.src.width, s.size * 8)
            self.emit(f"store i{s.size * 8} {value}, ptr {ptr}, align 1, {_GUEST_SCOPE}")
        elif isinstance(s, ir.Call):
            self.call(s, nv, slow)
        elif not isinstance(s, ir.Fence):
            raise TypeError(f"unknown IR statement {s!r}")

    # -- blocks -------------------------------------------------------------------
    def block(self, block: ir.Block) -> None:
        self.vals = {}
        pc = block.pc
        nv, need, over, body = self.tmp(), self.tmp(), self.tmp(), self.label()
        self.start_label(f"B{pc:x}")
        self.emit(f"{nv} = load i64, ptr %n.addr")
        self.emit(f"{need} = add i64 {nv}, {block.insn_count}")
        self.emit(f"{over} = icmp ugt i64 {need}, %budget")
        self.emit(f"br i1 {over}, label %{self.exit_stub(str(to_signed(pc, 64)), _STAY, nv)}, label %{body}")
        self.start_label(body)
        index, slow = -1, ""
        insn_pc = pc
        for stmt in block.stmts:
            if isinstance(stmt, ir.InsnStart):
                index += 1
                insn_pc = stmt.pc
                slow = ""
                continue
            if not slow and ir.may_fault(stmt):
                done = self.tmp()
                label = self.label()
                self.stubs += [f"{label}:", f"  {done} = add i64 {nv}, {max(index, 0)}"]
                self.stubs.append(f"  store i64 {done}, ptr %n.addr")
                self.stubs += [f"  store i64 {to_signed(insn_pc, 64)}, ptr %pc.addr",
                               f"  store i64 {SLOW}, ptr %st.addr", "  br label %exit"]  # fmt: skip
                slow = label
            self.statement(stmt, nv, slow)
        self.emit(f"store i64 {need}, ptr %n.addr")
        self.block_exit(block.exit)

    def block_exit(self, e: ir.Exit) -> None:
        if isinstance(e, ir.Jump):
            if isinstance(e.target, ir.Const):
                self.emit(f"br label %{self.target(e.target.value)}")
                return
            value = self.addr64(e.target)
            dynamic = self.label()
            cases = " ".join(f"i64 {to_signed(pc, 64)}, label %B{pc:x}" for pc in self.pcs)
            self.emit(f"switch i64 {value}, label %{dynamic} [ {cases} ]")
            self.start_label(dynamic)
            self.emit(f"store i64 {value}, ptr %pc.addr")
            self.emit(f"store i64 {LEFT}, ptr %st.addr")
            self.emit("br label %exit")
        elif isinstance(e, ir.Branch):
            cond = self.resize(self.op(e.cond), e.cond.width, 1)
            self.emit(f"br i1 {cond}, label %{self.target(e.taken)}, label %{self.target(e.fallthrough)}")
        elif isinstance(e, (ir.SyscallExit, ir.TrapExit)):
            status, pc = (SYSCALL, e.next_pc) if isinstance(e, ir.SyscallExit) else (TRAP, e.pc)
            if isinstance(e, ir.TrapExit):
                self.traps.append(e)
            self.emit(f"store i64 {to_signed(pc, 64)}, ptr %pc.addr")
            self.emit(f"store i64 {status}, ptr %st.addr")
            self.emit("br label %exit")
        else:
            raise TypeError(f"unknown block exit {e!r}")

    def function(self) -> str:
        for block in self.blocks:
            self.block(block)
        regs = sorted(self.regs_read | self.regs_written)
        strict = " strictfp" if self.fp.used else ""
        head = [f"define i64 @{self.name}(ptr noalias %ctx) nounwind{strict} {{", "entry:"]

        def slot(index: int, name: str) -> None:
            head.append(f"  %{name}.p = getelementptr i64, ptr %ctx, i64 {index}")
            head.append(f"  %{name} = load i64, ptr %{name}.p")

        slot(CTX_REGS, "regs.i")
        slot(CTX_READ, "rd.i")
        slot(CTX_WRITE, "wr.i")
        slot(CTX_BUDGET, "budget")
        slot(CTX_START, "start")
        slot(CTX_ICOUNT, "icount0")
        head += ["  %regs = inttoptr i64 %regs.i to ptr", "  %rd = inttoptr i64 %rd.i to ptr",
                 "  %wr = inttoptr i64 %wr.i to ptr",
                 f"  %out.pc.p = getelementptr i64, ptr %ctx, i64 {CTX_OUT_PC}",
                 f"  %out.n.p = getelementptr i64, ptr %ctx, i64 {CTX_OUT_N}"]  # fmt: skip
        head += ["  %n.addr = alloca i64", "  %pc.addr = alloca i64", "  %st.addr = alloca i64"]
        if self.uses_sc:
            head.append("  %sc.addr = alloca i64")
        if self.fp.used:
            head += self.fp.prologue()
        for r in regs:
            head.append(f"  %r{r} = getelementptr i64, ptr %regs, i64 {r}")
        head.append("  store i64 0, ptr %n.addr")
        cases = " ".join(f"i64 {to_signed(pc, 64)}, label %B{pc:x}" for pc in self.entries)
        head.append(f"  switch i64 %start, label %{self.exit_stub('%start', _STAY, '0')} [ {cases} ]")
        tail = ["exit:", *(self.fp.epilogue() if self.fp.used else []), *_EXIT]
        body = head + self.lines + self.stubs + tail
        return "\n".join(body) + "\n"


#: The common exit: chain to the region that has the next pc (see the module docstring), or return.
_EXIT = f"""\
  %out.pc = load i64, ptr %pc.addr
  %out.n = load i64, ptr %n.addr
  %status = load i64, ptr %st.addr
  %chained.p = getelementptr i64, ptr %ctx, i64 {CTX_CHAINED}
  %chained = load i64, ptr %chained.p
  %table.p = getelementptr i64, ptr %ctx, i64 {CTX_CHAIN_TABLE}
  %table.i = load i64, ptr %table.p
  %left = icmp eq i64 %status, {LEFT}
  %fits = icmp ult i64 %out.n, %budget
  %has.table = icmp ne i64 %table.i, 0
  %may = and i1 %left, %fits
  %may.chain = and i1 %may, %has.table
  br i1 %may.chain, label %chain.look, label %finish
chain.look:
  %table = inttoptr i64 %table.i to ptr
  %half = lshr i64 %out.pc, 1
  %slot = and i64 %half, {CHAIN_SLOTS - 1}
  %slot.word = shl i64 %slot, 1
  %slot.pc.p = getelementptr i64, ptr %table, i64 %slot.word
  %slot.pc = load i64, ptr %slot.pc.p
  %hit = icmp eq i64 %slot.pc, %out.pc
  br i1 %hit, label %chain, label %finish
chain:
  %slot.fn.p = getelementptr i64, ptr %slot.pc.p, i64 1
  %slot.fn.i = load i64, ptr %slot.fn.p
  %slot.fn = inttoptr i64 %slot.fn.i to ptr
  %chained.next = add i64 %chained, %out.n
  store i64 %chained.next, ptr %chained.p
  %budget.next = sub i64 %budget, %out.n
  store i64 %budget.next, ptr %budget.p
  store i64 %out.pc, ptr %start.p
  %icount.next = add i64 %icount0, %out.n
  store i64 %icount.next, ptr %icount0.p
  %chain.status = musttail call i64 %slot.fn(ptr %ctx)
  ret i64 %chain.status
finish:
  store i64 %out.pc, ptr %out.pc.p
  %total = add i64 %out.n, %chained
  store i64 %total, ptr %out.n.p
  %stay = icmp eq i64 %status, {_STAY}
  %status.out = select i1 %stay, i64 {LEFT}, i64 %status
  ret i64 %status.out
}}""".splitlines()


def region_code(blocks: list[ir.Block], name: str, entries: tuple[int, ...] | None = None) -> RegionCode:
    """The LLVM IR module text of the region ``blocks`` (``blocks[0]`` first).

    ``entries`` are the block pcs the function may start at (default: every
    block); every other block is only reached from inside. Fewer entries
    give LLVM a simpler control-flow graph: faster compiles, better code.
    """
    if not blocks:
        raise ValueError("a region needs at least one block")
    pcs = {b.pc for b in blocks}
    chosen = tuple(b.pc for b in blocks) if entries is None else tuple(pc for pc in entries if pc in pcs)
    if not chosen:
        raise ValueError("a region needs at least one entry")
    emitter = _RegionEmitter(blocks, name, chosen)
    function = emitter.function()
    declarations = "".join(line + "\n" for line in sorted(emitter.declarations))
    text = function + "\ndeclare i64 @llvm.umin.i64(i64, i64)\n" + declarations + _METADATA
    if emitter.fp.used:
        text += emitter.fp.module_tail()
    regs = emitter.regs_read | emitter.regs_written
    return RegionCode(
        name=name,
        text=text,
        block_pcs=tuple(emitter.pcs),
        entries=emitter.entries,
        reg_low=min(regs, default=0),
        reg_high=max(regs, default=-1) + 1,
        traps=tuple(emitter.traps),
    )
