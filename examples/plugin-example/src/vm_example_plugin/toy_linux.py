"""A Linux user-mode ABI for toy64, in vm-linux's terms (:class:`vm_linux.abi.LinuxAbi`).

:func:`toy64_linux_abi` builds it from toy64's :class:`~vm_core.arch.ArchInfo`
(:data:`vm_example_plugin.toy.TOY64`), which owns the registers: the
system-call number is in ``r0``, the arguments in ``r1`` .. ``r6``, the
result in ``r1``; ``r7`` is the stack pointer; Linux starts a program with
every register zero but the stack pointer. This module adds only what the
Linux layer owns. The numbers are
asm-generic's (those of riscv64 and aarch64) for the four calls toy64
programs can make: ``write``, ``exit``, ``exit_group`` and ``getpid``;
vm-linux's shared handlers serve them. Other numbers return ``-ENOSYS``.
There is no ``rt_sigaction`` in the table, so a toy64 program never has a
signal handler: every signal takes its default action, and the signal-frame
codec below is never asked to build a frame.
"""

from __future__ import annotations

from typing import Any

from vm_core.arch import ArchInfo
from vm_core.errors import UnsupportedError
from vm_linux.abi import LinuxAbi
from vm_linux.syscalls.structs import pack_generic_stat

from vm_example_plugin.toy import ISA, assemble

TOY64_SYSCALLS = {64: "write", 93: "exit", 94: "exit_group", 172: "getpid"}


class NoSignalFrames:
    """toy64 programs cannot install signal handlers (no ``rt_sigaction``), so no frame is ever built."""

    frame_size = 0
    #: The page vm-linux maps as the signal-return trampoline: ``exit_group(0)``, never reached.
    trampoline_code = assemble([("li", 0, 94), ("li", 1, 0), ("syscall",)])

    def push_frame(self, cpu: Any, **frame: Any) -> None:
        raise UnsupportedError("toy64 has no signal handlers")

    def pop_frame(self, cpu: Any) -> tuple[int, tuple[int, int, int]]:
        raise UnsupportedError("toy64 has no signal handlers")


def toy64_linux_abi(arch: ArchInfo) -> LinuxAbi:
    """The ``SyscallTableSpec`` factory: toy64's Linux ABI on ``arch`` (the registered ``IsaSpec.arch``)."""
    return LinuxAbi(
        arch=arch,
        syscall_names=TOY64_SYSCALLS,
        uname_machine=ISA,
        pack_stat=pack_generic_stat,
        signal_frames=NoSignalFrames(),
    )
