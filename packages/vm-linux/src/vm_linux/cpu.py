"""What vm-linux needs from a guest CPU, and the riscv64 register-file layout.

The engines (vm-translate, vm-jit) own the concrete CPU object; vm-linux only
reads and writes its flat register file, its program counter and its memory,
so it codes against the structural :class:`GuestCpu` protocol. The RISC-V 64
layout of ``regs`` is: ``x0..x31`` at 0..31 (``x0`` is never written),
``f0..f31`` raw 64-bit patterns at 32..63, ``frm`` at 64, ``fflags`` at 65 and
the LR/SC reservation address at 66.
"""

from __future__ import annotations

from typing import Any, Protocol


class GuestCpu(Protocol):
    """The architectural state of one guest thread as vm-linux sees it."""

    regs: list[int]
    pc: int
    mem: Any
    icount: int


# RISC-V 64 integer registers (ABI names).
RV_RA = 1
RV_SP = 2
RV_GP = 3
RV_TP = 4
RV_A0 = 10
RV_A1 = 11
RV_A2 = 12
RV_A3 = 13
RV_A4 = 14
RV_A5 = 15
RV_A7 = 17
RV_F0 = 32
RV_FRM = 64
RV_FFLAGS = 65
RV_RESERVATION = 66
RV_REGISTER_COUNT = 67
