"""vm's intermediate representation: the contract between ISA front ends and engines.

A guest basic block is lifted into a :class:`Block`: a straight-line tuple of
statements over SSA temporaries, closed by exactly one exit. Nothing here is
RISC-V specific; each ISA describes its register file with a
:class:`RegisterLayout` and its own rules (RISC-V's ``x0`` reads as zero; it
is the front end that never emits ``GetReg(0)``/``PutReg(0)``).

Semantics, which every engine must implement identically (the reference
executor in :mod:`vm_translate.executor` is the definition):

* Values are Python ints, unsigned, always reduced to their width in bits
  (1, 8, 16, 32, 64 or 128). A :class:`Temp` is assigned exactly once.
* :class:`BinOp` operands have the destination's width, except comparisons,
  whose destination is 1 bit wide and whose operands share one width, and
  shifts, whose amount is any width and is taken modulo the value width.
  Division is total: ``divu``/``divs`` by zero give all ones, ``remu``/``rems``
  by zero give the dividend, ``divs`` overflow (MIN / -1) gives MIN and
  ``rems`` overflow gives 0. Front ends of ISAs that trap instead emit an
  explicit check.
* :class:`Ext` converts between widths: truncation when narrowing, sign or
  zero extension when widening.
* :class:`Load`/:class:`Store` access guest memory little-endian; a load
  produces ``size * 8`` bits extended (signed or not) to the dst width.
  Either may raise :class:`vm_core.errors.MemoryFault`.
* :class:`Call` invokes a named helper from :mod:`vm_translate.helpers`
  (floating point, CSRs, conditional stores...). Helpers return one value or
  a tuple matching ``dsts``, may raise a guest fault, and never touch the
  register file (inputs come through ``args``, results go out through
  ``dsts``); helpers marked ``takes_cpu`` receive the CPU state first for
  memory access.
* Every guest instruction starts with :class:`InsnStart`. Within one guest
  instruction every statement that can fault (Load, Store, Call) comes
  before the instruction's first :class:`PutReg`, so an engine that writes
  registers through as it goes keeps guest state precise at a fault.
* Exits: :class:`Jump` (to a computed or constant address), :class:`Branch`
  (two constant targets), :class:`SyscallExit` (the guest asks the OS;
  execution resumes at ``next_pc``), :class:`TrapExit` (illegal instruction
  or breakpoint at ``pc``).
"""

from __future__ import annotations

import attrs

WIDTHS = (1, 8, 16, 32, 64, 128)


def mask(width: int) -> int:
    """All ones of ``width`` bits."""
    return (1 << width) - 1


def to_signed(value: int, width: int) -> int:
    """Interpret an unsigned ``width``-bit value as two's complement."""
    return value - (1 << width) if value >> (width - 1) & 1 else value


@attrs.frozen
class Const:
    """A constant operand, already reduced to ``width`` bits."""

    value: int
    width: int = 64

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.value <= mask(self.width):
            raise ValueError(f"constant {self.value:#x} does not fit {self.width} bits")

    def __str__(self) -> str:
        return f"{self.value:#x}:{self.width}"


@attrs.frozen
class Temp:
    """An SSA temporary: numbered per block, assigned once."""

    id: int
    width: int = 64

    def __str__(self) -> str:
        return f"t{self.id}:{self.width}"


Operand = Const | Temp

BINARY_OPS = frozenset(
    {
        "add", "sub", "mul", "and", "or", "xor", "shl", "shr", "sar",
        "mulhu", "mulhs", "mulhsu", "divu", "divs", "remu", "rems",
    }
)
COMPARE_OPS = frozenset({"eq", "ne", "ltu", "lts", "leu", "les"})
UNARY_OPS = frozenset({"not", "neg"})


@attrs.frozen
class GetReg:
    """``dst = regs[reg]``."""

    dst: Temp
    reg: int


@attrs.frozen
class PutReg:
    """``regs[reg] = src``."""

    reg: int
    src: Operand


@attrs.frozen
class BinOp:
    """``dst = a <op> b`` (see the module docstring for each op's rules)."""

    dst: Temp
    op: str
    a: Operand
    b: Operand

    def __attrs_post_init__(self) -> None:
        if self.op not in BINARY_OPS and self.op not in COMPARE_OPS:
            raise ValueError(f"unknown binary op {self.op!r}")


@attrs.frozen
class UnOp:
    """``dst = <op> a`` for ``not`` (bitwise) and ``neg`` (two's complement)."""

    dst: Temp
    op: str
    a: Operand

    def __attrs_post_init__(self) -> None:
        if self.op not in UNARY_OPS:
            raise ValueError(f"unknown unary op {self.op!r}")


@attrs.frozen
class Ext:
    """Width conversion: truncate, or sign/zero extend ``a`` to ``dst.width``."""

    dst: Temp
    a: Operand
    signed: bool = False


@attrs.frozen
class Select:
    """``dst = a if cond else b`` (``cond`` is 1 bit)."""

    dst: Temp
    cond: Operand
    a: Operand
    b: Operand


@attrs.frozen
class Load:
    """``dst = extend(memory[addr : addr + size])``; may fault."""

    dst: Temp
    addr: Operand
    size: int
    signed: bool = False


@attrs.frozen
class Store:
    """``memory[addr : addr + size] = low bytes of src``; may fault."""

    addr: Operand
    src: Operand
    size: int


@attrs.frozen
class Call:
    """``dsts = helper(*args)`` for a helper named in :mod:`vm_translate.helpers`."""

    dsts: tuple[Temp, ...]
    helper: str
    args: tuple[Operand, ...]


@attrs.frozen
class Fence:
    """A memory-ordering point (``kind``: "rw", "i" for instruction fetch...).

    Single-threaded engines need no action for data fences; an instruction
    fence ends the block so code written before it is re-fetched.
    """

    kind: str


@attrs.frozen
class InsnStart:
    """The first statement of each guest instruction at ``pc`` of ``length`` bytes."""

    pc: int
    length: int


Stmt = GetReg | PutReg | BinOp | UnOp | Ext | Select | Load | Store | Call | Fence | InsnStart


@attrs.frozen
class Jump:
    """Continue at ``target`` (constant for direct jumps, a temp for indirect ones)."""

    target: Operand


@attrs.frozen
class Branch:
    """Continue at ``taken`` if ``cond`` else at ``fallthrough``."""

    cond: Operand
    taken: int
    fallthrough: int


@attrs.frozen
class SyscallExit:
    """The guest asks the operating system; afterwards execution resumes at ``next_pc``."""

    pc: int
    next_pc: int


@attrs.frozen
class TrapExit:
    """A trap at ``pc``: ``kind`` is "illegal" (with the instruction ``word``) or "breakpoint"."""

    kind: str
    pc: int
    word: int = 0
    length: int = 4


Exit = Jump | Branch | SyscallExit | TrapExit


@attrs.frozen
class Block:
    """One lifted guest block.

    ``insn_count`` counts the guest instructions whose statements the block
    holds (a :class:`TrapExit` instruction is not counted: it does not retire).
    ``size`` is the number of guest code bytes covered, starting at ``pc``.
    """

    isa: str
    pc: int
    stmts: tuple[Stmt, ...]
    exit: Exit
    insn_count: int
    size: int

    def __str__(self) -> str:
        lines = [f"block {self.isa} {self.pc:#x} ({self.insn_count} insns, {self.size} bytes)"]
        lines += [f"  {stmt}" for stmt in self.stmts]
        lines.append(f"  exit {self.exit}")
        return "\n".join(lines)


@attrs.frozen
class RegisterLayout:
    """An ISA's flat register file: ``names[i]`` is register ``i``'s name.

    ``alt_names`` (same length, when given) holds a second name per register,
    such as RISC-V's ABI names (``a0`` for ``x10``).
    """

    names: tuple[str, ...]
    pc_name: str = "pc"
    alt_names: tuple[str, ...] = ()

    def index(self, name: str) -> int:
        """The index of register ``name`` (either name); ValueError if unknown."""
        if name in self.names:
            return self.names.index(name)
        if name in self.alt_names:
            return self.alt_names.index(name)
        raise ValueError(f"no register named {name!r}")

    @property
    def size(self) -> int:
        return len(self.names)
