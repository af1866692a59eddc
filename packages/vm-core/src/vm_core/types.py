"""Shared value types: what plugins register, and what engines report.

All are frozen ``attrs`` classes so they can be hashed, compared and logged.
The ``factory`` fields are plain callables; vm-core never imports the
package that provides them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import attrs

from vm_core.arch import ArchInfo


@attrs.frozen
class IsaSpec:
    """An instruction-set front end.

    ``factory()`` returns the front end object of vm-translate's
    ``FrontEnd`` protocol (decode + lift one block into IR).
    ``elf_machine`` is the ELF ``e_machine`` value it handles (e.g. 243 for
    RISC-V); ``bits`` the native word size. ``arch`` is the ISA's
    :class:`~vm_core.arch.ArchInfo` (registers, ABI registers, page size,
    Linux start state...), owned by the front end: whoever needs an ISA fact
    reads it here. ``emulated`` is False for an ISA whose facts are known but
    which has no emulation front end yet (its ``factory`` raises
    :class:`~vm_core.errors.UnsupportedError`; such programs run only through
    an accelerator).
    """

    name: str
    factory: Callable[[], Any]
    elf_machine: int
    bits: int = 64
    description: str = ""
    aliases: tuple[str, ...] = ()
    arch: ArchInfo | None = None
    emulated: bool = True


@attrs.frozen
class EngineSpec:
    """An execution engine (interpreter or compiler tier).

    ``factory(settings)`` returns an object with ``run(cpu, budget)``; see
    vm-translate's ``Engine`` protocol. ``rank`` orders engines for
    automatic selection (higher wins) when no plugin's
    ``vm_select_engine`` answers.
    """

    name: str
    factory: Callable[..., Any]
    description: str = ""
    rank: int = 0


@attrs.frozen
class AcceleratorSpec:
    """A hardware accelerator (KVM, HVF, WHPX, ...).

    ``isas`` lists guest ISAs it can run; ``probe()`` returns ``None`` when
    usable here or raises :class:`vm_core.errors.AcceleratorUnavailable`
    naming the failed check; ``factory()`` opens it.
    """

    name: str
    factory: Callable[..., Any]
    probe: Callable[[], None]
    isas: tuple[str, ...]
    description: str = ""


@attrs.frozen
class DeviceSpec:
    """A device model (UART, virtio, ...) that system-mode machines can attach."""

    name: str
    factory: Callable[..., Any]
    description: str = ""


@attrs.frozen
class SyscallTableSpec:
    """An operating-system call table for one guest ISA (``os``/``isa``, e.g. linux/riscv64)."""

    os: str
    isa: str
    factory: Callable[..., Any]
    description: str = ""


@attrs.frozen
class LoaderSpec:
    """A guest program format (ELF, ...). ``probe(header_bytes)`` says whether it applies."""

    name: str
    probe: Callable[[bytes], bool]
    factory: Callable[..., Any]
    description: str = ""


class StopKind(enum.Enum):
    """Why an engine returned control to its caller."""

    BUDGET = "budget"  # ran the requested number of instructions
    SYSCALL = "syscall"  # guest asked the OS for something (ecall / syscall)
    BREAKPOINT = "breakpoint"  # ebreak / int3
    FAULT = "fault"  # a guest fault (see StopReason.fault)
    UNTIL = "until"  # reached the requested stop address
    EXITED = "exited"  # the guest process ended (exit status or signal)


@attrs.frozen
class StopReason:
    """Why a run stopped, with the program counter it stopped at."""

    kind: StopKind
    pc: int
    fault: BaseException | None = None
    exit_status: int | None = None
    signal: int | None = None
