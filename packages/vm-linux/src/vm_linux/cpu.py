"""What vm-linux needs from a guest CPU.

The engines (vm-translate, vm-jit) own the concrete CPU object; vm-linux only
reads and writes its flat register file, its program counter and its memory,
so it codes against the structural :class:`GuestCpu` protocol. The layout of
``regs`` is the ISA's :class:`vm_core.arch.ArchInfo` (``LinuxAbi.arch``);
vm-linux looks register indices up there by name.
"""

from __future__ import annotations

from typing import Any, Protocol


class GuestCpu(Protocol):
    """The architectural state of one guest thread as vm-linux sees it."""

    regs: list[int]
    pc: int
    mem: Any
    icount: int
