"""Linux system calls for vm guests: the shared handlers and one number table per ISA.

Importing this package registers every handler (the modules below register
themselves by Linux name); :data:`ABI_BUILDERS` maps an ISA name to the
function that builds its :class:`~vm_linux.abi.LinuxAbi` from the ISA's
:class:`~vm_core.arch.ArchInfo` (see :func:`vm_linux.process.abi_for`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from vm_core.arch import ArchInfo

from vm_linux.abi import LinuxAbi
from vm_linux.guest_errno import GuestErrno
from vm_linux.syscalls import (  # noqa: F401  (registration)
    eventfds,
    exec_calls,
    fileio,
    long_tail,
    memory,
    pathmods,
    paths,
    polling,
    proc_calls,
    process_time,
    signal_calls,
    sleeping,
    socket_messages,
    sockets,
    timer_calls,
)
from vm_linux.syscalls.dispatch import SyscallDispatcher
from vm_linux.syscalls.registry import HANDLERS, syscall
from vm_linux.syscalls.riscv64 import RISCV64_SYSCALLS, riscv64_abi
from vm_linux.syscalls.x86_64 import X86_64_SYSCALLS, x86_64_abi

#: ISA name -> the function from its ArchInfo to its Linux ABI.
ABI_BUILDERS: dict[str, Callable[[ArchInfo], LinuxAbi]] = {"riscv64": riscv64_abi, "x86_64": x86_64_abi}
#: ISA name -> its system-call numbers (number -> Linux name).
SYSCALL_TABLES: dict[str, Mapping[int, str]] = {"riscv64": RISCV64_SYSCALLS, "x86_64": X86_64_SYSCALLS}

__all__ = ["ABI_BUILDERS", "HANDLERS", "SYSCALL_TABLES", "GuestErrno", "LinuxAbi", "SyscallDispatcher", "syscall"]
