"""The RV64 register file as vm's flat :class:`~vm_translate.ir.RegisterLayout`, built from :data:`RV64`.

The index map is the ISA's :class:`~vm_core.arch.ArchInfo`
(:mod:`vm_translate.riscv.archinfo`): ``x0..x31`` at 0..31, ``f0..f31`` at
32..63, ``frm`` 64, ``fflags`` 65, the LR/SC reservation 66. The names here
are read from it, for the extension modules and traces.

Layout names use the architectural names (``x5``, ``f10``); :data:`ABI_NAMES`
gives the ABI names (``t0``, ``fa0``) for traces.
"""

from __future__ import annotations

from vm_translate.ir import RegisterLayout
from vm_translate.riscv.archinfo import F_ABI_NAMES, RV64, X_ABI_NAMES

X0, X1, X2, X3, X4, X5, X6, X7 = range(8)
X8, X9, X10, X11, X12, X13, X14, X15 = range(8, 16)
X16, X17, X18, X19, X20, X21, X22, X23 = range(16, 24)
X24, X25, X26, X27, X28, X29, X30, X31 = range(24, 32)

#: Register index of ``f0``; ``f<n>`` is ``F0 + n``.
F0 = RV64.index("f0")
#: The dynamic rounding mode (``fcsr[7:5]``).
FRM = RV64.index("frm")
#: The accrued floating-point exception flags (``fcsr[4:0]``).
FFLAGS = RV64.index("fflags")
#: The address reserved by the last LR, or :data:`NO_RESERVATION`.
RESERVATION = RV64.index("reservation")
#: Number of registers in the layout.
NREGS = RV64.register_count

#: Value of :data:`RESERVATION` when no reservation is held.
NO_RESERVATION = (1 << 64) - 1

#: Architectural register names, indexed like the layout.
ARCH_NAMES: tuple[str, ...] = RV64.names

#: ABI register names (``zero``, ``ra``, ``sp`` ... ``ft11``), indexed like the layout.
ABI_NAMES: tuple[str, ...] = tuple(r.aliases[0] if r.aliases else r.name for r in RV64.registers)

#: The RV64 register layout.
LAYOUT = RegisterLayout(names=ARCH_NAMES, pc_name=RV64.pc_name, alt_names=ABI_NAMES)


def x_name(index: int) -> str:
    """ABI name of integer register ``index`` (0..31)."""
    return X_ABI_NAMES[index]


def f_name(index: int) -> str:
    """ABI name of floating-point register ``f<index>`` (0..31)."""
    return F_ABI_NAMES[index]
