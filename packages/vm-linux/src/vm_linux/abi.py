"""What differs between the guest ISAs' Linux ABIs, gathered in one value per ISA.

A :class:`LinuxAbi` names the system-call numbers (number -> handler name),
which registers carry the number, the arguments and the result, the
``uname`` machine, ``AT_HWCAP``, the ``struct stat`` layout, the signal-frame
codec and how the CPU starts. The handlers themselves are shared by every
ISA. Adding x86-64 means one more table module under
:mod:`vm_linux.syscalls` (numbers, rax/rdi/rsi/rdx/r10/r8/r9, its
``struct stat``) plus its signal frame, registered in :data:`ABIS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs

from vm_linux.cpu import GuestCpu

#: The user address-space ceiling vm gives guests: qemu-riscv64 7.2's on x86-64 hosts (see ``LinuxAbi``).
USER_ADDRESS_LIMIT = 0x7FFF_FFFF_F000


class SignalFrameCodec(Protocol):
    """Builds and unwinds an ISA's ``rt_sigframe`` (see :mod:`vm_linux.rv64_sigframe`)."""

    frame_size: int
    trampoline_code: bytes

    def push_frame(
        self, cpu: GuestCpu, *, sp: int, signo: int, siginfo: bytes, old_mask: int,
        altstack: tuple[int, int, int], handler: int, restorer: int,
    ) -> None: ...

    def pop_frame(self, cpu: GuestCpu) -> tuple[int, tuple[int, int, int]]: ...


@attrs.frozen
class LinuxAbi:
    """One ISA's Linux user-mode ABI (see the module docstring)."""

    isa: str
    elf_machine: int
    syscall_names: Mapping[int, str]
    nr_register: int
    arg_registers: tuple[int, ...]
    result_register: int
    sp_register: int
    register_count: int
    uname_machine: str
    hwcap: int
    pack_stat: Callable[[os.stat_result], bytes]
    signal_frames: Any
    init_registers: Callable[[GuestCpu, int, int], None]
    sigaction_has_restorer: bool = False
    minsigstksz: int = 2048
    at_minsigstksz: int = 2048
    #: One past the highest user address (Linux's ``TASK_SIZE``): what ``mmap``, ``munmap``, ``mprotect``
    #: and ``brk`` check against. qemu-user 7.2 gives a 64-bit guest the host's user space, so on an x86-64
    #: host the guest sees x86-64's 0x7fff_ffff_f000 (2^47 - 4 KiB); a riscv64 sv48 kernel's is 2^47.
    user_address_limit: int = USER_ADDRESS_LIMIT

    def syscall_number(self, name: str) -> int:
        """The number of the system call called ``name`` in this ABI."""
        for number, known in self.syscall_names.items():
            if known == name:
                return number
        raise KeyError(name)
