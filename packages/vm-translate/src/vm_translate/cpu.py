"""The architectural state every engine runs on.

``regs`` is the flat register file laid out by the ISA's
:class:`~vm_translate.ir.RegisterLayout`; ``pc`` the program counter;
``mem`` the guest address space (vm-mem's ``AddressSpace``, or anything with
its ``load``/``store``/``fetch`` methods); ``icount`` the guest instructions
retired so far. Engines keep it exact at every stop.
"""

from __future__ import annotations

from typing import Any, Protocol


class GuestMemory(Protocol):
    """The part of vm-mem's ``AddressSpace`` that front ends and engines use."""

    readable: dict[int, bytearray]
    writable: dict[int, bytearray]

    def load(self, addr: int, size: int) -> int: ...
    def store(self, addr: int, size: int, value: int) -> None: ...
    def fetch(self, addr: int, n: int) -> bytes: ...


class CpuState:
    """One guest hart/CPU: registers, pc, memory and the retired-instruction count."""

    __slots__ = ("icount", "isa", "mem", "pc", "regs")

    def __init__(self, isa: str, nregs: int, mem: Any, pc: int = 0) -> None:
        self.isa = isa
        self.regs: list[int] = [0] * nregs
        self.pc = pc
        self.mem = mem
        self.icount = 0

    def __repr__(self) -> str:
        return f"CpuState(isa={self.isa!r}, pc={self.pc:#x}, icount={self.icount})"
