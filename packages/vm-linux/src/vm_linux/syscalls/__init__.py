"""Linux system calls for vm guests: the shared handlers and one number table per ISA.

Importing this package registers every handler (the modules below register
themselves by Linux name); :data:`ABIS` maps an ISA name to its
:class:`~vm_linux.abi.LinuxAbi`.
"""

from __future__ import annotations

from vm_linux.abi import LinuxAbi
from vm_linux.guest_errno import GuestErrno
from vm_linux.syscalls import fileio, memory, pathmods, paths, process_time, signal_calls  # noqa: F401  (registration)
from vm_linux.syscalls.dispatch import SyscallDispatcher
from vm_linux.syscalls.registry import HANDLERS, syscall
from vm_linux.syscalls.riscv64 import RISCV64_ABI
from vm_linux.syscalls.x86_64 import X86_64_ABI

ABIS: dict[str, LinuxAbi] = {RISCV64_ABI.isa: RISCV64_ABI, X86_64_ABI.isa: X86_64_ABI}

__all__ = ["ABIS", "HANDLERS", "RISCV64_ABI", "X86_64_ABI", "GuestErrno", "LinuxAbi", "SyscallDispatcher", "syscall"]
