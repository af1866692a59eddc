"""Zicsr: the CSR instructions, for the CSRs a Linux user-mode program can reach.

Supported CSRs:

* ``fflags`` (0x001), ``frm`` (0x002) and ``fcsr`` (0x003), read-write,
  mapped onto the :data:`~vm_translate.riscv.registers.FFLAGS` and
  :data:`~vm_translate.riscv.registers.FRM` registers (``fcsr = frm << 5 |
  fflags``; written values are truncated to the fields' widths);
* ``cycle`` (0xC00), ``time`` (0xC01) and ``instret`` (0xC02), read-only,
  read through helpers. ``instret`` and ``cycle`` are the guest's retired
  instruction count (deterministic: one instruction per cycle); ``time``
  counts at 10 MHz from the host's monotonic clock, the timebase Linux sees
  on qemu's ``virt`` machine. (qemu-riscv64 answers all three with the host's
  time-stamp counter, whose rate depends on the host.)

Any other CSR number, and any write to a read-only CSR (``csrrw[i]``
always writes; ``csrrs[i]``/``csrrc[i]`` write unless ``rs1``/``uimm`` is 0),
is an illegal instruction, rejected at decode time, as in Linux user mode.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from vm_translate.helpers import NativeLowering, register_helper
from vm_translate.ir import Operand
from vm_translate.riscv.builder import Builder
from vm_translate.riscv.decoder import Fields, InsnSpec, LiftFn
from vm_translate.riscv.registers import FFLAGS, FRM
from vm_translate.riscv.rv64i import MASK_F3, OP_SYSTEM, match_of

CSR_FFLAGS = 0x001
CSR_FRM = 0x002
CSR_FCSR = 0x003
CSR_CYCLE = 0xC00
CSR_TIME = 0xC01
CSR_INSTRET = 0xC02

#: Frequency of the ``time`` CSR in Hz.
TIMEBASE_HZ = 10_000_000

_READ_WRITE = frozenset({CSR_FFLAGS, CSR_FRM, CSR_FCSR})
_READ_ONLY = frozenset({CSR_CYCLE, CSR_TIME, CSR_INSTRET})
KNOWN_CSRS = _READ_WRITE | _READ_ONLY


@register_helper("riscv_read_instret", takes_cpu=True, pure=False, native=NativeLowering("retired_count"))
def read_instret(cpu: object, insn_index: int) -> int:
    """Instructions retired before the current one: the block's start count plus its index in the block."""
    return (cpu.icount + insn_index) & ((1 << 64) - 1)  # type: ignore[attr-defined]


@register_helper("riscv_read_time", pure=False)
def read_time() -> int:
    """The ``time`` CSR: the host's monotonic clock in ticks of 1 / :data:`TIMEBASE_HZ` s."""
    return time.monotonic_ns() // (1_000_000_000 // TIMEBASE_HZ)


def read_csr(b: Builder, csr: int) -> Operand:
    """The value of ``csr`` (one of :data:`KNOWN_CSRS`) as a 64-bit operand."""
    if csr == CSR_FFLAGS:
        return b.get_reg(FFLAGS)
    if csr == CSR_FRM:
        return b.get_reg(FRM)
    if csr == CSR_FCSR:
        return b.binop("or", b.binop("shl", b.get_reg(FRM), b.const(5)), b.get_reg(FFLAGS))
    if csr == CSR_TIME:
        return b.call1("riscv_read_time")
    return b.call1("riscv_read_instret", b.const(b.insn_index))


def write_csr(b: Builder, csr: int, value: Operand) -> None:
    """Write ``value`` to the read-write CSR ``csr``."""
    if csr in (CSR_FFLAGS, CSR_FCSR):
        b.put_reg(FFLAGS, b.binop("and", value, b.const(0x1F)))
    if csr == CSR_FRM:
        b.put_reg(FRM, b.binop("and", value, b.const(7)))
    elif csr == CSR_FCSR:
        b.put_reg(FRM, b.binop("and", b.binop("shr", value, b.const(5)), b.const(7)))


def _writes(op: str, f: Fields) -> bool:
    return op == "rw" or f.rs1 != 0


def _valid(op: str) -> Callable[[Fields], bool]:
    def valid(f: Fields) -> bool:
        if f.csr in _READ_WRITE:
            return True
        return f.csr in _READ_ONLY and not _writes(op, f)

    return valid


def _csr(op: str, immediate: bool) -> LiftFn:
    def lift(b: Builder, f: Fields) -> None:
        src = b.const(f.rs1) if immediate else b.get_x(f.rs1)
        old: Operand | None
        if op == "rw":
            old = read_csr(b, f.csr) if f.rd != 0 else None
            write_csr(b, f.csr, src)
        else:
            old = read_csr(b, f.csr)
            if f.rs1 != 0:
                rhs = src if op == "rs" else b.unop("not", src)
                write_csr(b, f.csr, b.binop("or" if op == "rs" else "and", old, rhs))
        if old is not None:
            b.put_x(f.rd, old)

    return lift


INSTRUCTIONS: list[InsnSpec] = [
    InsnSpec(name, MASK_F3, match_of(OP_SYSTEM, f3), "CSR", _csr(op, imm), _valid(op))
    for name, f3, op, imm in (
        ("csrrw", 1, "rw", False),
        ("csrrs", 2, "rs", False),
        ("csrrc", 3, "rc", False),
        ("csrrwi", 5, "rw", True),
        ("csrrsi", 6, "rs", True),
        ("csrrci", 7, "rc", True),
    )
]
