"""RV64A: load-reserved/store-conditional and the atomic memory operations.

An AMO is one IR :class:`~vm_translate.ir.AtomicRMW` (``amomin`` is
``smin``, ``amominu`` ``umin``...) with the ordering its ``aq``/``rl`` bits
give, after the alignment check RISC-V requires. LR records its address in the
reservation register (:data:`~vm_translate.riscv.registers.RESERVATION`);
SC goes through the ``riscv_store_conditional`` helper, which stores only
when the address equals the reservation and reports 0 (success) or 1. Every
SC clears the reservation, as the ISA requires. The helper gets the
reservation as an argument and returns the result: it never touches the
register file.

Alignment follows qemu-riscv64 user mode (checked against it): a misaligned
LR or AMO address raises :class:`MisalignedAccess` (SIGBUS, ``BUS_ADRALN``)
before any access; an SC whose address does not hold the reservation fails
without touching memory (so it never faults), one that does but is
misaligned for its size raises :class:`MisalignedAccess`. ``.w`` results are
sign-extended; ``amomin[u].w``/``amomax[u].w`` compare the low 32 bits (the
IR op works on the 32-bit access).
"""

from __future__ import annotations

import signal

from vm_core.errors import GuestFault

from vm_translate import ir
from vm_translate.helpers import NativeLowering, register_helper
from vm_translate.riscv.builder import Builder
from vm_translate.riscv.decoder import Fields, InsnSpec, LiftFn
from vm_translate.riscv.registers import NO_RESERVATION, RESERVATION

OP_AMO = 0x2F
_MASK_AMO = 0xF800707F
_MASK_LR = 0xF9F0707F


class MisalignedAccess(GuestFault):
    """A guest access that must be naturally aligned was not (SIGBUS, ``si_code`` BUS_ADRALN)."""

    signo = int(signal.SIGBUS)
    #: ``si_code`` Linux reports: BUS_ADRALN.
    si_code = 1

    def __init__(self, address: int, access: str, *, pc: int | None = None) -> None:
        super().__init__(f"misaligned guest {access} at {address:#x}", pc=pc)
        self.address = address
        self.access = access


@register_helper("riscv_check_aligned", results=0, pure=False, native=NativeLowering("alignment_check"))
def check_aligned(addr: int, size: int, is_store: int) -> None:
    """Raise :class:`MisalignedAccess` unless ``addr`` is a multiple of ``size``."""
    if addr % size:
        raise MisalignedAccess(addr, "write" if is_store else "read")


@register_helper(
    "riscv_store_conditional", takes_cpu=True, pure=False, native=NativeLowering("conditional_store")
)
def store_conditional(cpu: object, addr: int, value: int, reservation: int, size: int) -> int:
    """Store ``value`` if ``addr`` holds the reservation; 0 on success, 1 on failure."""
    if addr != reservation:
        return 1
    if addr % size:
        raise MisalignedAccess(addr, "write")
    cpu.mem.store(addr, size, value & ((1 << (size * 8)) - 1))  # type: ignore[attr-defined]
    return 0


def _lr(size: int) -> LiftFn:
    def lift(b: Builder, f: Fields) -> None:
        addr = b.get_x(f.rs1)
        b.call("riscv_check_aligned", (addr, b.const(size), b.const(0)), ())
        value = b.load(addr, size, signed=True)
        b.put_reg(RESERVATION, addr)
        b.put_x(f.rd, value)

    return lift


def _sc(size: int) -> LiftFn:
    def lift(b: Builder, f: Fields) -> None:
        addr, src = b.get_x(f.rs1), b.get_x(f.rs2)
        reservation = b.get_reg(RESERVATION)
        result = b.call1("riscv_store_conditional", addr, src, reservation, b.const(size))
        b.put_reg(RESERVATION, b.const(NO_RESERVATION))
        b.put_x(f.rd, result)

    return lift


#: RISC-V's AMO operations as the IR's atomic read-modify-write operations.
_RMW_OPS = {"swap": "swap", "add": "add", "xor": "xor", "and": "and", "or": "or",
            "min": "smin", "max": "smax", "minu": "umin", "maxu": "umax"}  # fmt: skip


def ordering(f: Fields) -> str:
    """The IR memory ordering of an AMO's ``aq``/``rl`` bits (both set: sequentially consistent)."""
    return ("relaxed", "release", "acquire", "seq_cst")[f.aq << 1 | f.rl]


def _amo(size: int, op: str) -> LiftFn:
    bits = size * 8

    def lift(b: Builder, f: Fields) -> None:
        addr = b.get_x(f.rs1)
        src = b.trunc(b.get_x(f.rs2), bits)
        b.call("riscv_check_aligned", (addr, b.const(size), b.const(1)), ())
        old = b.temp(bits)
        b.emit(ir.AtomicRMW(old, _RMW_OPS[op], addr, src, size, ordering(f)))
        b.put_x(f.rd, b.sext(old))

    return lift


_AMO_FUNCT5 = (
    ("amoadd", 0b00000, "add"),
    ("amoswap", 0b00001, "swap"),
    ("amoxor", 0b00100, "xor"),
    ("amoor", 0b01000, "or"),
    ("amoand", 0b01100, "and"),
    ("amomin", 0b10000, "min"),
    ("amomax", 0b10100, "max"),
    ("amominu", 0b11000, "minu"),
    ("amomaxu", 0b11100, "maxu"),
)


def _rows() -> list[InsnSpec]:
    rows: list[InsnSpec] = []
    for suffix, funct3, size in (("w", 2, 4), ("d", 3, 8)):
        base = (funct3 << 12) | OP_AMO
        rows.append(InsnSpec(f"lr.{suffix}", _MASK_LR, (0b00010 << 27) | base, "AMO", _lr(size)))
        rows.append(InsnSpec(f"sc.{suffix}", _MASK_AMO, (0b00011 << 27) | base, "AMO", _sc(size)))
        for name, funct5, op in _AMO_FUNCT5:
            rows.append(InsnSpec(f"{name}.{suffix}", _MASK_AMO, (funct5 << 27) | base, "AMO", _amo(size, op)))
    return rows


INSTRUCTIONS: list[InsnSpec] = _rows()
