"""The RV64 register file as vm's flat :class:`~vm_translate.ir.RegisterLayout`.

Index map (the contract every RISC-V extension module and engine relies on):

* ``0..31``  the integer registers ``x0..x31`` (``x0`` is never read or
  written by lifted code: the front end reads it as zero and drops writes);
* ``32..63`` the floating-point registers ``f0..f31`` as raw 64-bit
  patterns (single-precision values are NaN-boxed by the F extension);
* ``64`` ``frm`` (3 bits), ``65`` ``fflags`` (5 bits): the two fields of
  ``fcsr``;
* ``66`` the LR/SC reservation address, all ones when no reservation is held.

Layout names use the architectural names (``x5``, ``f10``); :data:`ABI_NAMES`
gives the ABI names (``t0``, ``fa0``) for traces.
"""

from __future__ import annotations

from vm_translate.ir import RegisterLayout

X0, X1, X2, X3, X4, X5, X6, X7 = range(8)
X8, X9, X10, X11, X12, X13, X14, X15 = range(8, 16)
X16, X17, X18, X19, X20, X21, X22, X23 = range(16, 24)
X24, X25, X26, X27, X28, X29, X30, X31 = range(24, 32)

#: Register index of ``f0``; ``f<n>`` is ``F0 + n``.
F0 = 32
#: The dynamic rounding mode (``fcsr[7:5]``).
FRM = 64
#: The accrued floating-point exception flags (``fcsr[4:0]``).
FFLAGS = 65
#: The address reserved by the last LR, or :data:`NO_RESERVATION`.
RESERVATION = 66
#: Number of registers in the layout.
NREGS = 67

#: Value of :data:`RESERVATION` when no reservation is held.
NO_RESERVATION = (1 << 64) - 1

#: Architectural register names, indexed like the layout.
ARCH_NAMES: tuple[str, ...] = (
    tuple(f"x{i}" for i in range(32)) + tuple(f"f{i}" for i in range(32)) + ("frm", "fflags", "reservation")
)

_X_ABI = (
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
    "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
)  # fmt: skip
_F_ABI = (
    "ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2", "fa3",
    "fa4", "fa5", "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9", "fs10", "fs11",
    "ft8", "ft9", "ft10", "ft11",
)  # fmt: skip

#: ABI register names (``zero``, ``ra``, ``sp`` ... ``ft11``), indexed like the layout.
ABI_NAMES: tuple[str, ...] = _X_ABI + _F_ABI + ("frm", "fflags", "reservation")

#: The RV64 register layout.
LAYOUT = RegisterLayout(names=ARCH_NAMES, pc_name="pc", alt_names=ABI_NAMES)


def x_name(index: int) -> str:
    """ABI name of integer register ``index`` (0..31)."""
    return _X_ABI[index]


def f_name(index: int) -> str:
    """ABI name of floating-point register ``f<index>`` (0..31)."""
    return _F_ABI[index]
