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
  shifts and rotates, whose amount is any width and is taken modulo the
  value width. ``mulhu``/``mulhs``/``mulhsu`` are the high half of the
  double-width product (unsigned x unsigned, signed x signed, signed x
  unsigned); at width 64 they are the 128-bit multiply-high of every ISA.
* Division (``divu``, ``divs``, ``remu``, ``rems``) truncates toward zero,
  the remainder taking the dividend's sign. It is *partial*: a zero divisor,
  or ``MIN / -1`` for the signed ops, raises :class:`DivideError` (SIGFPE,
  ``FPE_INTDIV``) instead of producing a value. The IR fixes no ISA's
  results for those cases: a front end whose ISA defines them (RISC-V: all
  ones, the dividend, ``MIN``, 0; AArch64: 0) guards the divisor with
  ``Select`` first, one whose ISA traps (x86 ``#DE``) lets the op trap or
  emits its own :class:`CondTrap`. A division therefore *may fault*
  (:func:`may_fault`).
* :class:`UnOp` and :class:`CarryArith` are defined in their docstrings;
  the unary bit operations (``clz``, ``ctz``, ``popcount``, ``bswap``,
  ``bitrev``) give the operand's width.
* :class:`VecOp` (:mod:`vm_translate.ir_vector`) works on 128-bit values
  as lanes of 8, 16, 32 or 64 bits (lane 0 in the low bits); see its
  docstring. Whole-vector bitwise
  operations, lane extraction (``shr`` then a narrowing ``Ext``) and lane
  insertion (``and``/``or`` with masks) are ordinary 128-bit ``BinOp`` s
  and ``Ext`` s.
* :class:`CondTrap` raises :class:`GuestTrap` with the signal and
  ``si_code`` the front end chose when its 1-bit condition is set.
* :class:`AtomicRMW` and :class:`CompareSwap` are single read-modify-write
  accesses of naturally sized memory with a memory-ordering annotation.
  vm's engines run one guest thread per address space, so the interpreting
  engines perform them as a load, a computation and a store with nothing in
  between (their ordering needs no action); native code uses the host's
  atomic instructions with the given ordering. The IR does not require
  alignment (x86 ``LOCK`` does not); a front end whose ISA does emits its
  own check first.
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
  instruction every statement that can fault (:func:`may_fault`) comes
  before the instruction's first :class:`PutReg`, so an engine that writes
  registers through as it goes keeps guest state precise at a fault.
* Exits: :class:`Jump` (to a computed or constant address), :class:`Branch`
  (two constant targets), :class:`SyscallExit` (the guest asks the OS;
  execution resumes at ``next_pc``), :class:`TrapExit` (illegal instruction
  or breakpoint at ``pc``).
"""

from __future__ import annotations

import signal

import attrs
from vm_core.errors import GuestFault

from vm_translate.ir_values import WIDTHS, Const, Operand, Temp, mask, to_signed  # noqa: F401  (the IR's API)
from vm_translate.ir_vector import (  # noqa: F401  (the IR's API)
    LANES,
    VECTOR_ARITH,
    VECTOR_MULHIGH,
    VECTOR_OPS,
    VECTOR_PACKS,
    VECTOR_PERMUTES,
    VECTOR_SATURATING,
    VECTOR_SCALAR_A,
    VECTOR_SCALAR_B,
    VECTOR_SHIFTS,
    VecOp,
    vector_lanes,
)

DIVISION_OPS = frozenset({"divu", "divs", "remu", "rems"})
BINARY_OPS = frozenset(
    {
        "add", "sub", "mul", "and", "or", "xor", "shl", "shr", "sar", "rotl", "rotr",
        "mulhu", "mulhs", "mulhsu", *DIVISION_OPS,
    }
)
COMPARE_OPS = frozenset({"eq", "ne", "ltu", "lts", "leu", "les"})
UNARY_OPS = frozenset({"not", "neg", "clz", "ctz", "popcount", "bswap", "bitrev"})
CARRY_OPS = frozenset({"add", "sub"})
#: Read-modify-write operations of :class:`AtomicRMW` (``new = op(old, src)``; ``swap``: ``new = src``).
ATOMIC_OPS = frozenset({"add", "sub", "and", "or", "xor", "swap", "smin", "smax", "umin", "umax"})
#: Memory orderings, weakest first (C11's names; LLVM's ``monotonic`` is ``relaxed``).
ORDERINGS = ("relaxed", "acquire", "release", "acq_rel", "seq_cst")
ATOMIC_SIZES = (1, 2, 4, 8, 16)


class DivideError(GuestFault):
    """An IR division by zero, or a signed division that overflows (SIGFPE, ``FPE_INTDIV``)."""

    signo = int(signal.SIGFPE)
    si_code = 1  # FPE_INTDIV

    def __init__(self, message: str = "integer division by zero or overflow", *, pc: int | None = None) -> None:
        super().__init__(message, pc=pc)


class GuestTrap(GuestFault):
    """A :class:`CondTrap` that fired: the signal and ``si_code`` its front end chose."""

    def __init__(self, signo: int, si_code: int, *, pc: int | None = None) -> None:
        super().__init__(f"guest trap (signal {signo}, code {si_code})", pc=pc)
        self.signo = signo
        self.si_code = si_code


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
    """``dst = <op> a``, ``dst`` as wide as ``a`` (``w`` bits).

    ``not``: bitwise complement. ``neg``: two's complement negation.
    ``clz``/``ctz``: the number of leading/trailing zero bits, ``w`` for 0
    (x86 ``LZCNT``/``TZCNT``, AArch64 ``CLZ``; ``BSR``/``BSF`` front ends
    derive theirs). ``popcount``: the number of one bits. ``bswap``: the
    bytes in reverse order (``w`` a multiple of 8; identity for 8).
    ``bitrev``: the bits in reverse order (AArch64 ``RBIT``).
    """

    dst: Temp
    op: str
    a: Operand

    def __attrs_post_init__(self) -> None:
        if self.op not in UNARY_OPS:
            raise ValueError(f"unknown unary op {self.op!r}")
        if self.op == "bswap" and self.dst.width % 8:
            raise ValueError(f"bswap of a {self.dst.width}-bit value")


@attrs.frozen
class CarryArith:
    """Addition or subtraction with carry in and out: ``dsts = (value, carry, overflow)``.

    ``a``, ``b`` and ``value`` are ``w`` bits wide, ``carry_in``, ``carry``
    and ``overflow`` 1 bit. With unsigned ``a``, ``b``, ``c = carry_in``:

    * ``add``: ``value = (a + b + c) mod 2^w``; ``carry = (a + b + c) >= 2^w``.
    * ``sub``: ``value = (a - b - c) mod 2^w``; ``carry = a < b + c`` (the
      *borrow*: x86's CF after ``SUB``/``SBB``, with ``c`` its CF in;
      AArch64's C flag after ``SUBS``/``SBCS`` is ``not carry``, and its C in
      enters as ``c = not C``).
    * ``overflow``: the exact signed result (``sa + sb + c`` or
      ``sa - sb - c`` of the two's complement readings) lies outside
      ``[-2^(w-1), 2^(w-1))`` (x86 OF, AArch64 V).

    Zero, sign and parity flags are plain comparisons of ``value``; the
    front end derives each ISA's flag register from these three results.
    """

    dsts: tuple[Temp, Temp, Temp]
    op: str
    a: Operand
    b: Operand
    carry_in: Operand

    def __attrs_post_init__(self) -> None:
        if self.op not in CARRY_OPS:
            raise ValueError(f"unknown carry op {self.op!r}")
        if len(self.dsts) != 3 or self.dsts[1].width != 1 or self.dsts[2].width != 1:
            raise ValueError("CarryArith needs (value, 1-bit carry, 1-bit overflow) destinations")


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
class CondTrap:
    """If ``cond`` (1 bit) is set, raise :class:`GuestTrap` (``signo``, ``si_code``); else nothing.

    x86 ``#DE`` is ``(SIGFPE, FPE_INTDIV=1)``, ``INTO`` ``(SIGSEGV, SI_KERNEL=0x80)``,
    a failed ``BOUND`` ``(SIGSEGV, SI_KERNEL)``: the front end chooses.
    """

    cond: Operand
    signo: int
    si_code: int = 0


@attrs.frozen
class AtomicRMW:
    """``dst = memory[addr : addr + size]; memory[...] = op(dst, src)`` as one atomic access.

    ``dst`` and ``src`` are ``size * 8`` bits wide (size 1, 2, 4 or 8);
    ``op`` is in :data:`ATOMIC_OPS` (``smin``/``smax`` compare as signed,
    ``umin``/``umax`` as unsigned, ``swap`` stores ``src``), ``order`` in
    :data:`ORDERINGS`. May fault like a load or a store (nothing is written
    then).
    """

    dst: Temp
    op: str
    addr: Operand
    src: Operand
    size: int
    order: str = "seq_cst"

    def __attrs_post_init__(self) -> None:
        if self.op not in ATOMIC_OPS:
            raise ValueError(f"unknown atomic op {self.op!r}")
        _check_atomic(self.size, self.order, self.dst, self.src)


@attrs.frozen
class CompareSwap:
    """``dst = memory[addr : addr + size]; if dst == expected: memory[...] = new``, atomically.

    ``dst``, ``expected`` and ``new`` are ``size * 8`` bits wide (size 1, 2,
    4, 8 or 16, the last for ``CMPXCHG16B``/``CASP``); success is
    ``eq(dst, expected)``, for the front end to compute. On failure ``dst``
    is written back (as x86 ``CMPXCHG`` does), so the access needs write
    permission either way. ``order`` applies on success and on failure
    alike. May fault (nothing is written then).
    """

    dst: Temp
    addr: Operand
    expected: Operand
    new: Operand
    size: int
    order: str = "seq_cst"

    def __attrs_post_init__(self) -> None:
        _check_atomic(self.size, self.order, self.dst, self.expected, self.new)


def _check_atomic(size: int, order: str, *values: Operand) -> None:
    if size not in ATOMIC_SIZES:
        raise ValueError(f"atomic access of {size} bytes")
    if order not in ORDERINGS:
        raise ValueError(f"unknown memory ordering {order!r}")
    if any(v.width != size * 8 for v in values):
        raise ValueError(f"atomic {size}-byte access with operands of widths {[v.width for v in values]}")


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


Stmt = (
    GetReg | PutReg | BinOp | UnOp | CarryArith | VecOp | Ext | Select | Load | Store | CondTrap | AtomicRMW
    | CompareSwap | Call | Fence | InsnStart
)
#: Statements that access guest memory (and may fault).
MEMORY_STMTS = (Load, Store, AtomicRMW, CompareSwap)


def may_fault(stmt: Stmt) -> bool:
    """Whether ``stmt`` can raise a guest fault (memory accesses, helper calls, traps, division)."""
    if isinstance(stmt, BinOp):
        return stmt.op in DIVISION_OPS
    return isinstance(stmt, (Load, Store, AtomicRMW, CompareSwap, Call, CondTrap))


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
