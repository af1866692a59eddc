"""What differs between the guest ISAs' Linux ABIs, gathered in one value per ISA.

A :class:`LinuxAbi` pairs the ISA's :class:`~vm_core.arch.ArchInfo` (owned by
its front end: which registers carry the system-call number, the arguments
and the result, the stack pointer, ``AT_HWCAP``, the start state, the
address-space layout) with what only the Linux layer knows: the system-call
numbers (number -> handler name), the ``uname`` machine, the ``struct stat``
layout and the signal-frame codec. The handlers themselves are shared by
every ISA. Register indices are read from the ArchInfo once, when the value
is built; nothing here numbers registers itself. A new ISA means one more
table module under :mod:`vm_linux.syscalls` (a function from its ArchInfo to
its LinuxAbi) plus its signal frame, listed in :data:`vm_linux.syscalls.ABI_BUILDERS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs
from vm_core.arch import ArchInfo

from vm_linux.cpu import GuestCpu

#: The user address-space ceiling vm gives riscv64 guests: qemu-riscv64 7.2's on x86-64 hosts (see ``LinuxAbi``).
QEMU_USER_ADDRESS_LIMIT = 0x7FFF_FFFF_F000


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
    """One ISA's Linux user-mode ABI (see the module docstring).

    ``hwcap_override`` replaces the ISA's ``AT_HWCAP`` (KVM puts the value of
    the CPU the guest really runs on); ``address_limit_override`` the ISA's
    ``TASK_SIZE`` (see ``user_address_limit``). The register indices, ``hwcap``
    and ``user_address_limit`` are derived from ``arch``.
    """

    arch: ArchInfo
    syscall_names: Mapping[int, str]
    uname_machine: str
    pack_stat: Callable[[os.stat_result], bytes]
    signal_frames: Any
    sigaction_has_restorer: bool = False
    minsigstksz: int = 2048
    at_minsigstksz: int = 2048
    hwcap_override: int | None = None
    address_limit_override: int | None = None
    #: bytes of the system-call instruction (``ecall``: 4; ``syscall``: 2): a restarted call goes back this far
    syscall_insn_length: int = 4
    #: ``struct epoll_event`` is packed (12 bytes: x86-64) rather than padded to 16
    epoll_event_packed: bool = False
    isa: str = attrs.field(init=False)
    elf_machine: int = attrs.field(init=False)
    nr_register: int = attrs.field(init=False)
    arg_registers: tuple[int, ...] = attrs.field(init=False)
    result_register: int = attrs.field(init=False)
    sp_register: int = attrs.field(init=False)
    register_count: int = attrs.field(init=False)
    hwcap: int = attrs.field(init=False)
    #: One past the highest user address (Linux's ``TASK_SIZE``): what ``mmap``, ``munmap``, ``mprotect``
    #: and ``brk`` check against; the ISA's unless overridden. qemu-user 7.2 gives a 64-bit guest the host's
    #: user space, so vm's riscv64 ABI overrides it with x86-64's 0x7fff_ffff_f000 (2^47 - 4 KiB), which
    #: is what qemu-riscv64 gives on an x86-64 host, where the ISA's sv39 ``TASK_SIZE`` would be 2^38.
    user_address_limit: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        arch, convention = self.arch, self.arch.syscall
        derived = {
            "isa": arch.name,
            "elf_machine": arch.elf_machine,
            "nr_register": arch.index(convention.number),
            "arg_registers": arch.indices(*convention.args),
            "result_register": arch.index(convention.result),
            "sp_register": arch.index(arch.stack_pointer),
            "register_count": arch.register_count,
            "hwcap": arch.hwcap if self.hwcap_override is None else self.hwcap_override,
            "user_address_limit": (
                arch.user_address_limit if self.address_limit_override is None else self.address_limit_override
            ),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    def init_registers(self, cpu: GuestCpu, entry: int, sp: int) -> None:
        """Linux's ``start_thread``: the ISA's start state (all zero but ``sp`` and a few) and ``pc`` = entry."""
        self.arch.reset_registers(cpu.regs, sp)
        cpu.pc = entry

    def syscall_number(self, name: str) -> int:
        """The number of the system call called ``name`` in this ABI."""
        for number, known in self.syscall_names.items():
            if known == name:
                return number
        raise KeyError(name)
