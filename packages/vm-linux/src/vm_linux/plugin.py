"""vm-linux's plugin: what this package registers with vm through vm_core's hooks.

Loaded through the entry point `linux` of the group `vm_core.plugins`. It
registers the ELF loader (``LoaderSpec("elf")``; its factory loads a program
into an address space, see :func:`vm_linux.elf.load_elf`) and one Linux
system-call table per supported ISA (``SyscallTableSpec("linux", isa)``; its
factory takes the ISA's :class:`vm_core.arch.ArchInfo` and returns its
:class:`vm_linux.abi.LinuxAbi`). The composition root builds the ABI from the
ISA's registered ArchInfo (``spec.factory(isa.arch)``) and a
:class:`vm_linux.process.LinuxProcess` with that ABI, the plugins' system-call
overrides and the chosen loader to run a program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vm_core.hookspecs import hookimpl
from vm_core.types import LoaderSpec, SyscallTableSpec

from vm_linux.elf import LoadedProgram, load_elf
from vm_linux.syscalls import ABI_BUILDERS, SYSCALL_TABLES

ELF_MAGIC = b"\x7fELF"


def is_elf(header: bytes) -> bool:
    """Whether a file starting with ``header`` is an ELF file."""
    return header[:4] == ELF_MAGIC


def elf_machine_of(header: bytes) -> int:
    """The ``e_machine`` of an ELF file starting with ``header`` (in the file's byte order)."""
    if len(header) < 20:
        return -1
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def load_elf_program(mem: Any, path: str, machine: int, *, limit: int, data: bytes | None = None) -> LoadedProgram:
    """The ``elf`` loader's factory: map the static ELF at ``path`` into ``mem``."""
    return load_elf(mem, path, machine, limit=limit, data=data)


@hookimpl
def vm_register_loaders(register: Callable[[LoaderSpec], None]) -> None:
    register(
        LoaderSpec(
            name="elf",
            probe=is_elf,
            factory=load_elf_program,
            machine=elf_machine_of,
            description="static ELF64 executables (ET_EXEC and static-pie ET_DYN)",
        )
    )


@hookimpl
def vm_register_syscall_tables(register: Callable[[SyscallTableSpec], None]) -> None:
    for isa, build in sorted(ABI_BUILDERS.items()):
        register(
            SyscallTableSpec(
                os="linux",
                isa=isa,
                factory=build,
                description=f"Linux user-mode ABI for {isa} ({len(SYSCALL_TABLES[isa])} system-call numbers)",
            )
        )
