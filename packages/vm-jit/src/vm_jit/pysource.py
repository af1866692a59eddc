"""Tier 1: turning one IR block into Python source, then into a function.

The generated function takes the register list, keeps every guest register
the block touches in a Python local, reaches guest memory through the
address space's page dictionaries (the fast path keeps permission checks:
only readable pages are in ``readable``, only writable, non-code pages in
``writable``; everything else takes the address space's checked slow path)
and returns the next guest pc. If a load, store or helper faults, the
``except`` clause writes the registers back, sets ``cpu.pc`` to the
faulting instruction and counts the instructions before it, so the guest
state is exactly what the reference executor leaves.
"""

from __future__ import annotations

import struct
from typing import Any

from vm_core.errors import GuestFault
from vm_translate import ir
from vm_translate.helpers import get_helper
from vm_translate.passes import uses
from vm_translate.semantics import atomic_new, divide, unop, vector

_U = {1: "B", 2: "H", 4: "I", 8: "Q"}
_S = {1: "b", 2: "h", 4: "i", 8: "q"}


def _runtime() -> dict[str, Any]:
    env: dict[str, Any] = {"GuestFault": GuestFault, "GuestTrap": ir.GuestTrap}
    for size, code in _U.items():
        env[f"LU{size}"] = struct.Struct("<" + code).unpack_from
        env[f"LS{size}"] = struct.Struct("<" + _S[size]).unpack_from
        env[f"ST{size}"] = struct.Struct("<" + code).pack_into
    # division, bit reversal and atomics are rare: call their definitions (vm_translate.semantics)
    env["DIV"] = divide
    env["UNOP"] = unop
    env["ATOMIC"] = atomic_new
    env["VEC"] = vector
    return env


RUNTIME = _runtime()


def _in_page(size: int) -> str:
    """The fast path's page-crossing check (none needed for single bytes)."""
    return "" if size == 1 else f" and a & 4095 <= {4096 - size}"


class _Emitter:
    """Builds the source of one block function."""

    def __init__(self, block: ir.Block) -> None:
        self.block = block
        self.lines: list[str] = []
        self.exprs: dict[int, str] = {}  # temp id -> inlined expression
        self.helpers: dict[str, Any] = {}
        self.uses: dict[int, int] = {}
        self.regs_read: set[int] = set()
        self.regs_written: set[int] = set()
        self.index_of_pc: dict[int, int] = {}

    # -- operands -----------------------------------------------------------
    def v(self, op: ir.Operand) -> str:
        if isinstance(op, ir.Const):
            return hex(op.value)
        return self.exprs.get(op.id, f"t{op.id}")

    def bind(self, dst: ir.Temp, expr: str, inline: bool) -> None:
        if inline:
            self.exprs[dst.id] = f"({expr})"
        else:
            self.lines.append(f"t{dst.id} = {expr}")

    # -- analysis -----------------------------------------------------------
    def analyse(self) -> None:
        self.stmt_uses = [uses(stmt) for stmt in self.block.stmts]
        for stmt, used in zip(self.block.stmts, self.stmt_uses):
            for tid in used:
                self.uses[tid] = self.uses.get(tid, 0) + 1
            if isinstance(stmt, ir.GetReg):
                self.regs_read.add(stmt.reg)
            elif isinstance(stmt, ir.PutReg):
                self.regs_written.add(stmt.reg)
        for tid in uses(self.block.exit):
            self.uses[tid] = self.uses.get(tid, 0) + 1

    def alias_valid(self, index: int, get: ir.GetReg) -> bool:
        """Can every use of ``get.dst`` read the register local directly (no rewrite before)?"""
        remaining = self.uses.get(get.dst.id, 0)
        stmts = self.block.stmts
        for i in range(index + 1, len(stmts)):
            if remaining == 0:
                return True
            stmt = stmts[i]
            if isinstance(stmt, ir.PutReg) and stmt.reg == get.reg:
                return False
            remaining -= self.stmt_uses[i].count(get.dst.id)
        return True

    def inlinable(self, index: int, dst: ir.Temp) -> bool:
        """Single-use pure value whose use comes before any later PutReg or store."""
        if self.uses.get(dst.id, 0) != 1:
            return False
        stmts = self.block.stmts
        for i in range(index + 1, len(stmts)):
            stmt = stmts[i]
            if dst.id in self.stmt_uses[i]:
                return True
            if isinstance(stmt, (ir.PutReg, ir.Call, ir.InsnStart, *ir.MEMORY_STMTS)) or ir.may_fault(stmt):
                return False
        return True  # used by the exit

    # -- statements -----------------------------------------------------------
    def emit(self, ips: list[tuple[int, int]] | None = None) -> None:
        """Emit the statements; ``ips`` given means region mode (see :func:`region_source`)."""
        stmts = self.block.stmts
        insn = -1
        need_ip = True
        for i, stmt in enumerate(stmts):
            if isinstance(stmt, ir.InsnStart):
                insn += 1
                self.index_of_pc[stmt.pc] = insn
                need_ip = True
                current_pc = stmt.pc
                continue
            if ir.may_fault(stmt) and need_ip:
                if ips is None:
                    self.lines.append(f"ip = {current_pc:#x}")
                else:
                    self.lines.append(f"ip = {len(ips)}")
                    ips.append((current_pc, insn))
                need_ip = False
            if ips is not None and isinstance(stmt, ir.Call) and get_helper(stmt.helper).takes_cpu:
                # the helper may read cpu.pc / cpu.icount: during a block the reference executor
                # leaves them at the block's start, so make them say exactly that around the call
                # (restored in `finally`: the fault handler counts the region's instructions itself)
                self.lines += [f"cpu.pc = {self.block.pc:#x}; cpu.icount += n", "try:"]
                mark = len(self.lines)
                self.statement(i, stmt)
                self.lines[mark:] = ["    " + line for line in self.lines[mark:]]
                self.lines += ["finally:", "    cpu.icount -= n"]
                continue
            self.statement(i, stmt)

    def statement(self, i: int, s: ir.Stmt) -> None:
        if isinstance(s, ir.GetReg):
            if self.alias_valid(i, s):
                self.exprs[s.dst.id] = f"r{s.reg}"
            else:
                self.lines.append(f"t{s.dst.id} = r{s.reg}")
        elif isinstance(s, ir.PutReg):
            self.lines.append(f"r{s.reg} = {self.v(s.src)}")
        elif isinstance(s, ir.BinOp):
            # a division may trap: it stays where it is, after the `ip` of its instruction
            inline = s.op not in ir.DIVISION_OPS and self.inlinable(i, s.dst)
            self.bind(s.dst, self.binop(s), inline)
        elif isinstance(s, ir.UnOp):
            self.bind(s.dst, self.unop(s), self.inlinable(i, s.dst))
        elif isinstance(s, ir.CarryArith):
            self.carry_arith(s)
        elif isinstance(s, ir.VecOp):
            self.bind(s.dst, self.vector(s), self.inlinable(i, s.dst))
        elif isinstance(s, ir.CondTrap):
            self.lines.append(f"if {self.v(s.cond)}: raise GuestTrap({s.signo}, {s.si_code})")
        elif isinstance(s, (ir.AtomicRMW, ir.CompareSwap)):
            self.atomic(s)
        elif isinstance(s, ir.Ext):
            self.bind(s.dst, self.ext(s.a, s.dst.width, s.signed), self.inlinable(i, s.dst))
        elif isinstance(s, ir.Select):
            expr = f"{self.v(s.a)} if {self.v(s.cond)} else {self.v(s.b)}"
            self.bind(s.dst, expr, self.inlinable(i, s.dst))
        elif isinstance(s, ir.Load):
            self.load(s)
        elif isinstance(s, ir.Store):
            self.store(s)
        elif isinstance(s, ir.Call):
            helper = get_helper(s.helper)
            name = "H_" + s.helper.replace(".", "_")
            self.helpers[name] = helper.fn
            args = [self.v(a) for a in s.args]
            if helper.takes_cpu:
                args.insert(0, "cpu")
            call = f"{name}({', '.join(args)})"
            if not s.dsts:
                self.lines.append(call)
            elif len(s.dsts) == 1:
                self.lines.append(f"t{s.dsts[0].id} = {call}")
            else:
                self.lines.append(f"{', '.join(f't{d.id}' for d in s.dsts)} = {call}")
        elif isinstance(s, ir.Fence):
            pass
        else:
            raise TypeError(f"unknown IR statement {s!r}")

    def unop(self, s: ir.UnOp) -> str:
        a, w, op = self.v(s.a), s.dst.width, s.op
        m = ir.mask(w)
        if op == "not":
            return f"{a} ^ {m:#x}"
        if op == "neg":
            return f"-{a} & {m:#x}"
        if op == "clz":
            return f"{w} - {a}.bit_length()"
        if op == "ctz":
            guard = f"({a} | {1 << w:#x})"  # the bit above the value: ctz(0) = w
            return f"({guard} & -{guard}).bit_length() - 1"
        if op == "popcount":
            return f"{a}.bit_count()"
        if op == "bswap":
            return f"int.from_bytes({a}.to_bytes({w // 8}, 'little'), 'big')"
        return f"UNOP({op!r}, {a}, {w})"

    def vector(self, s: ir.VecOp) -> str:
        """Lane-wise add and sub as one 128-bit operation (carries stopped at lane tops); the rest by lanes."""
        a, b = self.v(s.a), self.v(s.b)
        high = sum(1 << (i + s.lane - 1) for i in range(0, 128, s.lane))
        low = ir.mask(128) ^ high
        if s.op == "add":
            return f"(({a} & {low:#x}) + ({b} & {low:#x})) ^ (({a} ^ {b}) & {high:#x})"
        if s.op == "sub":
            return f"(({a} | {high:#x}) - ({b} & {low:#x})) ^ (({a} ^ {b} ^ {high:#x}) & {high:#x})"
        return f"VEC({s.op!r}, {s.lane}, {a}, {b})"

    def carry_arith(self, s: ir.CarryArith) -> None:
        """value, carry, overflow: the carry from the exact sum, overflow from the sign bits."""
        value, carry, overflow = (f"t{d.id}" for d in s.dsts)
        a, b, c, w = self.v(s.a), self.v(s.b), self.v(s.carry_in), s.a.width
        exact = f"x{s.dsts[0].id}"
        if s.op == "add":
            self.lines += [f"{exact} = {a} + {b} + {c}", f"{value} = {exact} & {ir.mask(w):#x}",
                           f"{carry} = {exact} >> {w}",
                           f"{overflow} = (({a} ^ {value}) & ({b} ^ {value})) >> {w - 1} & 1"]  # fmt: skip
        else:
            self.lines += [f"{exact} = {a} - {b} - {c}", f"{value} = {exact} & {ir.mask(w):#x}",
                           f"{carry} = +({exact} < 0)",
                           f"{overflow} = (({a} ^ {b}) & ({a} ^ {value})) >> {w - 1} & 1"]  # fmt: skip

    def ext(self, a_op: ir.Operand, to: int, signed: bool) -> str:
        return self.ext_expr(self.v(a_op), a_op.width, to, signed)

    @staticmethod
    def ext_expr(a: str, frm: int, to: int, signed: bool) -> str:
        if to <= frm:
            return f"{a} & {ir.mask(to):#x}"
        if signed:
            sign = 1 << (frm - 1)
            return f"(({a} ^ {sign:#x}) - {sign:#x}) & {ir.mask(to):#x}"
        return a

    def binop(self, s: ir.BinOp) -> str:
        a, b, op = self.v(s.a), self.v(s.b), s.op
        w = s.a.width if op in ir.COMPARE_OPS else s.dst.width
        m = f"{ir.mask(w):#x}"
        sign = f"{1 << (w - 1):#x}"
        if op in ("add", "sub", "mul"):
            sym = {"add": "+", "sub": "-", "mul": "*"}[op]
            return f"{a} {sym} {b} & {m}"
        if op in ("and", "or", "xor"):
            return f"{a} { {'and': '&', 'or': '|', 'xor': '^'}[op]} {b}"
        amount = str(s.b.value % w) if isinstance(s.b, ir.Const) else f"({b} & {w - 1})"
        if op == "rotl":
            return f"({a} << {amount} | {a} >> ({w} - {amount})) & {m}"
        if op == "rotr":
            return f"({a} >> {amount} | {a} << ({w} - {amount})) & {m}"
        if op == "shl":
            return f"{a} << {amount} & {m}"
        if op == "shr":
            return f"{a} >> {amount}"
        if op == "sar":
            return f"(({a} ^ {sign}) - {sign}) >> {amount} & {m}"
        if op == "mulhu":
            return f"{a} * {b} >> {w}"
        if op == "mulhs":
            return f"(({a} ^ {sign}) - {sign}) * (({b} ^ {sign}) - {sign}) >> {w} & {m}"
        if op == "mulhsu":
            return f"(({a} ^ {sign}) - {sign}) * {b} >> {w} & {m}"
        if op in ir.DIVISION_OPS:
            return f"DIV({op!r}, {a}, {b}, {w})"
        cmp = {"eq": "==", "ne": "!=", "ltu": "<", "leu": "<=", "lts": "<", "les": "<="}[op]
        if op in ("lts", "les"):
            return f"+(({a} ^ {sign}) {cmp} ({b} ^ {sign}))"
        return f"+({a} {cmp} {b})"

    def load(self, s: ir.Load) -> None:
        size, a = s.size, self.v(s.addr)
        t = f"t{s.dst.id}"
        if size not in _U:
            self.lines.append(f"{t} = mem.load({a}, {size})")
        else:
            self.lines += [
                f"a = {a}",
                "p = RD.get(a >> 12)",
                f"if p is not None{_in_page(size)}: {t} = LU{size}(p, a & 4095)[0]",
                f"else: {t} = mem.load(a, {size})",
            ]
        if s.dst.width != size * 8:
            self.lines.append(f"{t} = {self.ext_expr(t, size * 8, s.dst.width, s.signed)}")

    def store(self, s: ir.Store) -> None:
        size = s.size
        value = self.v(s.src)
        if s.src.width > size * 8:
            value = f"{value} & {ir.mask(size * 8):#x}"
        if size not in _U:
            self.lines.append(f"mem.store({self.v(s.addr)}, {size}, {value})")
            return
        self.lines += [
            f"a = {self.v(s.addr)}",
            f"v = {value}",
            "p = WR.get(a >> 12)",
            f"if p is not None{_in_page(size)}: ST{size}(p, a & 4095, v)",
            f"else: mem.store(a, {size}, v)",
        ]

    def atomic(self, s: ir.AtomicRMW | ir.CompareSwap) -> None:
        """Load, compute, store with nothing in between (one guest thread per address space)."""
        size, t = s.size, f"t{s.dst.id}"
        if isinstance(s, ir.AtomicRMW):
            new = f"ATOMIC({s.op!r}, {t}, {self.v(s.src)}, {size * 8})"
        else:  # the old value goes back on failure: write permission either way, as the executor
            new = f"{self.v(s.new)} if {t} == {self.v(s.expected)} else {t}"
        self.lines += [f"a = {self.v(s.addr)}", "p = WR.get(a >> 12)"]
        if size in _U:  # the fast path: a writable (and readable) page, the access inside it
            self.lines += [
                f"if p is not None and (a >> 12) in RD{_in_page(size)}:",
                f"    {t} = LU{size}(p, a & 4095)[0]; ST{size}(p, a & 4095, {new})",
                "else:",
                f"    {t} = mem.load(a, {size}); mem.store(a, {size}, {new})",
            ]
        else:
            self.lines.append(f"{t} = mem.load(a, {size}); mem.store(a, {size}, {new})")

    def exit_expr(self) -> str:
        e = self.block.exit
        if isinstance(e, ir.Jump):
            return self.v(e.target)
        if isinstance(e, ir.Branch):
            cond = self.v(e.cond)
            if cond.startswith("(+(") and cond.endswith(")"):
                cond = cond[2:-1]  # an inlined comparison needs no int() in a condition
            return f"{e.taken:#x} if {cond} else {e.fallthrough:#x}"
        if isinstance(e, ir.SyscallExit):
            return hex(e.next_pc)
        if isinstance(e, ir.TrapExit):
            return hex(e.pc)
        raise TypeError(f"unknown exit {e!r}")


def block_source(block: ir.Block) -> tuple[str, dict[str, Any], dict[int, int]]:
    """Python source of a factory ``make(cpu, mem, RD, WR, IDX)`` returning the block function."""
    em = _Emitter(block)
    em.analyse()
    em.emit()
    exit_expr = em.exit_expr()
    regs = sorted(em.regs_read | em.regs_written)
    body = ["def make(cpu, mem, RD, WR, IDX):", "    def block(regs):"]
    ind = "        "
    if regs:
        body.append(ind + "; ".join(f"r{r} = regs[{r}]" for r in regs))
    written = sorted(em.regs_written)
    writeback = "; ".join(f"regs[{r}] = r{r}" for r in written)
    faulting = any(ir.may_fault(s) for s in block.stmts)
    if faulting:
        body.append(ind + "try:")
        body += [ind + "    " + line for line in em.lines]
        body.append(ind + "except GuestFault as fault:")
        if writeback:
            body.append(ind + "    " + writeback)
        body.append(ind + "    cpu.pc = ip; cpu.icount += IDX[ip]")
        body.append(ind + "    if fault.pc is None: fault.pc = ip")
        body.append(ind + "    raise")
    else:
        body += [ind + line for line in em.lines]
    if writeback:
        body.append(ind + writeback)
    body.append(ind + f"return {exit_expr}")
    body.append("    return block")
    return "\n".join(body) + "\n", em.helpers, em.index_of_pc


def _instantiate(source: str, helpers: dict[str, Any], name: str, cpu: Any, table: Any) -> Any:
    namespace: dict[str, Any] = dict(RUNTIME)
    namespace.update(helpers)
    exec(compile(source, name, "exec"), namespace)
    mem = cpu.mem
    return namespace["make"](cpu, mem, mem.readable, mem.writable, table)


def compile_block(block: ir.Block, cpu: Any) -> Any:
    """Compile ``block`` for ``cpu`` (whose address space it binds) into a function ``f(regs) -> next_pc``."""
    source, helpers, index = block_source(block)
    return _instantiate(source, helpers, f"<guest block {block.isa} {block.pc:#x}>", cpu, index)


def _may_write_memory(stmt: ir.Stmt) -> bool:
    if isinstance(stmt, (ir.Store, ir.AtomicRMW, ir.CompareSwap)):
        return True
    return isinstance(stmt, ir.Call) and get_helper(stmt.helper).takes_cpu


def region_source(blocks: list[ir.Block]) -> tuple[str, dict[str, Any], list[tuple[int, int]], dict[int, Any]]:
    """Python source of a factory ``make(cpu, mem, RD, WR, IPS)`` returning a region function.

    A region is several blocks (``blocks[0]`` is its entry) joined by their
    constant exits: ``region(regs, budget) -> (next_pc, retired, kind)``
    runs blocks while the next pc stays inside the region and the next block
    fits in ``budget``, with registers in locals throughout. ``kind`` is 0,
    1 after a system call, 2 at a trap (``next_pc`` is then the trap's pc).
    On a fault it writes registers back, sets ``cpu.pc`` and adds the
    instructions retired before the fault to ``cpu.icount`` itself.
    """
    ips: list[tuple[int, int]] = []
    helpers: dict[str, Any] = {}
    traps: dict[int, Any] = {}
    read: set[int] = set()
    written: set[int] = set()
    parts: list[str] = []
    ind = "                "
    # A store into the region's own code un-watches its page, which puts the page (if writable)
    # back in WR: leave the region after such a block, as its later blocks may be stale.
    code_pages = sorted({page for b in blocks for page in (b.pc >> 12, (b.pc + max(b.size, 1) - 1) >> 12)})
    code_written = " or ".join(f"{page:#x} in WR" for page in code_pages)
    for block in blocks:
        em = _Emitter(block)
        em.analyse()
        em.emit(ips)
        helpers.update(em.helpers)
        read |= em.regs_read
        written |= em.regs_written
        parts.append(f"            if pc == {block.pc:#x}:")
        # a trap is only attempted with budget left after the block's instructions
        over = ">=" if isinstance(block.exit, ir.TrapExit) else ">"
        parts.append(ind + f"if n + {block.insn_count} {over} budget: break")
        parts += [ind + line for line in em.lines]
        parts.append(ind + f"n += {block.insn_count}")
        exit_ = block.exit
        parts.append(ind + f"pc = {em.exit_expr()}")
        if isinstance(exit_, ir.SyscallExit):
            parts.append(ind + "kind = 1; break")
        elif isinstance(exit_, ir.TrapExit):
            traps[exit_.pc] = exit_
            parts.append(ind + "kind = 2; break")
        else:
            if any(_may_write_memory(s) for s in block.stmts):
                parts.append(ind + f"if {code_written}: break")
            parts.append(ind + "continue")
    regs = sorted(read | written)
    writeback = "; ".join(f"regs[{r}] = r{r}" for r in sorted(written))
    body = ["def make(cpu, mem, RD, WR, IPS):", "    def region(regs, budget):"]
    if regs:
        body.append("        " + "; ".join(f"r{r} = regs[{r}]" for r in regs))
    body += [f"        pc = {blocks[0].pc:#x}; n = 0; kind = 0; ip = 0", "        try:", "            while True:"]
    body += ["    " + line for line in parts]
    body += ["                break", "        except GuestFault as fault:"]
    if writeback:
        body.append("            " + writeback)
    body += [
        "            cpu.pc, k = IPS[ip]; cpu.icount += n + k",
        "            if fault.pc is None: fault.pc = cpu.pc",
        "            raise",
    ]
    if writeback:
        body.append("        " + writeback)
    body.append("        return pc, n, kind")
    body.append("    return region")
    return "\n".join(body) + "\n", helpers, ips, traps


def compile_region(blocks: list[ir.Block], cpu: Any) -> tuple[Any, dict[int, Any]]:
    """Compile a region (see :func:`region_source`); returns the function and its trap exits by pc."""
    source, helpers, ips, traps = region_source(blocks)
    name = f"<guest region {blocks[0].isa} {blocks[0].pc:#x}>"
    return _instantiate(source, helpers, name, cpu, ips), traps
