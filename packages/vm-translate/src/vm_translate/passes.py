"""IR passes: transformations that never change what a block computes.

* :func:`fold_constants` evaluates statements whose operands are all
  constants (using the reference executor's own arithmetic, so folding can
  never disagree with execution) and propagates the results.
* :func:`eliminate_overwritten_puts` drops register writes that a later write
  to the same register hides before anything can observe them.
* :func:`eliminate_dead_code` drops pure statements whose results are unused.
* :func:`optimize` runs both to a fixed point.

Hypothesis checks in the tests that an optimized block leaves exactly the
same registers, memory and next pc as the original.
"""

from __future__ import annotations

import attrs

from vm_translate import ir
from vm_translate.helpers import HELPERS
from vm_translate.semantics import binop, carry_arith, compare, extend, unop, vector


def _subst(op: ir.Operand, env: dict[int, ir.Operand]) -> ir.Operand:
    if isinstance(op, ir.Temp):
        return env.get(op.id, op)
    return op


def _replace_operands(stmt: ir.Stmt, env: dict[int, ir.Operand]) -> ir.Stmt:
    changes: dict[str, object] = {}
    for field in attrs.fields(type(stmt)):
        value = getattr(stmt, field.name)
        if field.name == "dst":
            continue
        if isinstance(value, ir.Temp):
            new = _subst(value, env)
            if new is not value:
                changes[field.name] = new
        elif field.name == "args":
            changes["args"] = tuple(_subst(a, env) for a in value)
    return attrs.evolve(stmt, **changes) if changes else stmt  # type: ignore[arg-type]


def _fold(stmt: ir.Stmt) -> ir.Const | None:
    if isinstance(stmt, ir.BinOp) and isinstance(stmt.a, ir.Const) and isinstance(stmt.b, ir.Const):
        if stmt.op in ir.COMPARE_OPS:
            return ir.Const(compare(stmt.op, stmt.a.value, stmt.b.value, stmt.a.width), 1)
        try:
            return ir.Const(binop(stmt.op, stmt.a.value, stmt.b.value, stmt.dst.width), stmt.dst.width)
        except ir.DivideError:
            return None  # the division traps at run time: keep it
    if isinstance(stmt, ir.VecOp) and isinstance(stmt.a, ir.Const) and isinstance(stmt.b, ir.Const):
        return ir.Const(vector(stmt.op, stmt.lane, stmt.a.value, stmt.b.value), 128)
    if isinstance(stmt, ir.UnOp) and isinstance(stmt.a, ir.Const):
        return ir.Const(unop(stmt.op, stmt.a.value, stmt.dst.width), stmt.dst.width)
    if isinstance(stmt, ir.Ext) and isinstance(stmt.a, ir.Const):
        return ir.Const(extend(stmt.a.value, stmt.a.width, stmt.dst.width, stmt.signed), stmt.dst.width)
    if isinstance(stmt, ir.Select) and isinstance(stmt.cond, ir.Const):
        chosen = stmt.a if stmt.cond.value else stmt.b
        if isinstance(chosen, ir.Const):
            return chosen
    return None


def _is_const(op: ir.Operand, value: int) -> bool:
    return isinstance(op, ir.Const) and op.value == value


def _identity(stmt: ir.Stmt) -> ir.Operand | None:
    """``x + 0``, ``x * 1``, ``x & ~0``, ``x * 0``, no-op extensions, ``c ? x : x``... (None if none applies)."""
    if isinstance(stmt, ir.BinOp) and stmt.op not in ir.COMPARE_OPS:
        a, b, op, w = stmt.a, stmt.b, stmt.op, stmt.dst.width
        if op in ("add", "sub", "or", "xor", "shl", "shr", "sar", "rotl", "rotr") and _is_const(b, 0):
            return a
        if op in ("add", "or", "xor") and _is_const(a, 0):
            return b
        if op == "mul" and _is_const(b, 1):
            return a
        if op == "mul" and _is_const(a, 1):
            return b
        if op in ("and", "mul") and (_is_const(a, 0) or _is_const(b, 0)):
            return ir.Const(0, w)
        if op == "and" and _is_const(b, ir.mask(w)):
            return a
        if op == "and" and _is_const(a, ir.mask(w)):
            return b
    if isinstance(stmt, ir.Ext) and stmt.a.width == stmt.dst.width:
        return stmt.a
    if isinstance(stmt, ir.Select) and stmt.a == stmt.b:
        return stmt.a
    return None


def eliminate_overwritten_puts(block: ir.Block) -> ir.Block:
    """Drop a ``PutReg`` whose register is written again before anything could observe it.

    Observers are a ``GetReg`` of the register and every statement that can
    fault (a fault must see the register as it was at the faulting
    instruction).
    """
    pending: dict[int, int] = {}  # reg -> index in `out` of its unobserved PutReg
    out: list[ir.Stmt | None] = []
    for stmt in block.stmts:
        if isinstance(stmt, ir.PutReg):
            earlier = pending.get(stmt.reg)
            if earlier is not None:
                out[earlier] = None
            pending[stmt.reg] = len(out)
        elif isinstance(stmt, ir.GetReg):
            pending.pop(stmt.reg, None)
        elif ir.may_fault(stmt):
            pending.clear()
        out.append(stmt)
    kept = tuple(s for s in out if s is not None)
    return block if len(kept) == len(block.stmts) else attrs.evolve(block, stmts=kept)


def _fold_exit(exit_: ir.Exit, env: dict[int, ir.Operand]) -> ir.Exit:
    if isinstance(exit_, ir.Jump):
        return ir.Jump(_subst(exit_.target, env))
    if isinstance(exit_, ir.Branch):
        cond = _subst(exit_.cond, env)
        if isinstance(cond, ir.Const):
            return ir.Jump(ir.Const(exit_.taken if cond.value else exit_.fallthrough, 64))
        return ir.Branch(cond, exit_.taken, exit_.fallthrough)
    return exit_


def fold_constants(block: ir.Block) -> ir.Block:
    """Evaluate constant statements, apply algebraic identities, substitute the results everywhere."""
    env: dict[int, ir.Operand] = {}
    out: list[ir.Stmt] = []
    for stmt in block.stmts:
        stmt = _replace_operands(stmt, env)
        if isinstance(stmt, ir.CarryArith) and all(isinstance(o, ir.Const) for o in (stmt.a, stmt.b, stmt.carry_in)):
            values = carry_arith(stmt.op, stmt.a.value, stmt.b.value, stmt.carry_in.value, stmt.a.width)  # type: ignore[union-attr]
            for dst, value in zip(stmt.dsts, values, strict=True):
                env[dst.id] = ir.Const(value, dst.width)
            continue
        folded: ir.Operand | None = _fold(stmt)
        if folded is None:
            folded = _identity(stmt)
        if folded is not None:
            env[stmt.dst.id] = folded  # type: ignore[union-attr]
            continue
        out.append(stmt)
    return attrs.evolve(block, stmts=tuple(out), exit=_fold_exit(block.exit, env))


_OPERAND_FIELDS: dict[type, tuple[str, ...]] = {}


def uses(stmt: ir.Stmt | ir.Exit) -> list[int]:
    """Ids of the temporaries ``stmt`` reads (in field order, repeated as often as read)."""
    kind = type(stmt)
    names = _OPERAND_FIELDS.get(kind)
    if names is None:
        names = tuple(f.name for f in attrs.fields(kind) if f.name not in ("dst", "dsts"))
        _OPERAND_FIELDS[kind] = names
    used = []
    for name in names:
        value = getattr(stmt, name)
        if type(value) is ir.Temp:
            used.append(value.id)
        elif name == "args":
            used.extend(a.id for a in value if type(a) is ir.Temp)
    return used


def _is_pure(stmt: ir.Stmt) -> bool:
    if isinstance(stmt, ir.BinOp):
        return stmt.op not in ir.DIVISION_OPS  # a division may trap
    if isinstance(stmt, (ir.GetReg, ir.UnOp, ir.CarryArith, ir.VecOp, ir.Ext, ir.Select)):
        return True
    if isinstance(stmt, ir.Call):
        helper = HELPERS.get(stmt.helper)
        return helper is not None and helper.pure
    return False


def eliminate_dead_code(block: ir.Block) -> ir.Block:
    """Remove pure statements (and pure helper calls) whose results nobody reads."""
    live: set[int] = set(uses(block.exit))
    kept: list[ir.Stmt] = []
    for stmt in reversed(block.stmts):
        if _is_pure(stmt):
            dsts = stmt.dsts if isinstance(stmt, (ir.Call, ir.CarryArith)) else (stmt.dst,)  # type: ignore[union-attr]
            if not any(d.id in live for d in dsts):
                continue
        live.update(uses(stmt))
        kept.append(stmt)
    kept.reverse()
    return attrs.evolve(block, stmts=tuple(kept))


def optimize(block: ir.Block) -> ir.Block:
    """Constant folding, overwritten-register elimination and dead-code elimination to a fixed point."""
    while True:
        new = eliminate_dead_code(eliminate_overwritten_puts(fold_constants(block)))
        if new == block:
            return new
        block = new
