"""vm-linux: the Linux user-mode ABI for vm guests.

ELF loading (:mod:`vm_linux.elf`), the initial stack (:mod:`vm_linux.stack`),
system calls (:mod:`vm_linux.syscalls`), the guest file system view
(:mod:`vm_linux.fs`), signals (:mod:`vm_linux.signals`) and the process that
runs it all (:mod:`vm_linux.process`).
"""

from vm_linux.abi import LinuxAbi
from vm_linux.cpu import GuestCpu
from vm_linux.elf import STATIC_PIE_BASE, LoadedProgram, load_elf
from vm_linux.fs import GuestFilesystem
from vm_linux.process import LinuxProcess, ProcessResult, abi_for, installed_arch
from vm_linux.stack import STACK_SIZE, InitialStack, build_initial_stack, parse_initial_stack
from vm_linux.syscalls import ABI_BUILDERS, SyscallDispatcher

__all__ = [
    "ABI_BUILDERS",
    "STACK_SIZE",
    "STATIC_PIE_BASE",
    "GuestCpu",
    "GuestFilesystem",
    "InitialStack",
    "LinuxAbi",
    "LinuxProcess",
    "LoadedProgram",
    "ProcessResult",
    "SyscallDispatcher",
    "abi_for",
    "build_initial_stack",
    "installed_arch",
    "load_elf",
    "parse_initial_stack",
]
