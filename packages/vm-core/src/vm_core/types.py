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
    naming the failed check; ``factory()`` opens the accelerator device
    itself (the raw backend, for library use; the composition root uses the
    two capabilities below). Each capability is ``None`` when the accelerator
    lacks it:

    * ``user_mode(isa, arch)`` (``vm run``), when the accelerator can run
      user programs under an OS personality (vm-linux), opens one such guest
      for the ISA named ``isa`` whose :class:`~vm_core.arch.ArchInfo` is
      ``arch`` (the registered ``IsaSpec.arch``: the ``cpu``'s register file
      follows it) and returns a context with ``mem`` (an address space with
      vm-mem's API), ``cpu`` (the registers in the ISA's layout, ``pc``,
      ``icount``), ``engine`` (``run(cpu, budget)`` returning a
      :class:`StopReason`, like every engine), ``hwcap`` (the ``AT_HWCAP`` of
      the CPU the program really runs on, or ``None``), ``stats`` (a dict of
      counters) and ``close()``.
    * ``system_mode(isa, request)`` (``vm boot``), when the accelerator can
      boot an operating system kernel for ``isa``, checks the
      :class:`BootRequest` (kernel, RAM size...), opens the accelerator and
      returns a context with ``boot()``, which runs the guest with its
      console on the request's file descriptors until it ends and returns a
      :class:`BootOutcome`, and ``close()``. Errors in the request raise
      :class:`vm_core.errors.VmError` subclasses before anything is opened.
    """

    name: str
    factory: Callable[..., Any]
    probe: Callable[[], None]
    isas: tuple[str, ...]
    description: str = ""
    user_mode: Callable[[str, ArchInfo], Any] | None = None
    system_mode: Callable[[str, BootRequest], Any] | None = None


@attrs.frozen
class BootRequest:
    """What ``vm boot`` asks an accelerator's ``system_mode`` to boot, as the user gave it.

    ``kernel`` and ``initrd`` are host paths; ``memory`` is the guest RAM as
    written on the command line (``512M``, ``2G``; the accelerator parses it
    and says which sizes it takes); ``command_line`` is the kernel's;
    ``timeout`` (seconds) ends the guest when it runs out. The guest's
    console writes to ``console_output_fd`` and reads ``console_input_fd``
    (``None``: no input).
    """

    kernel: str
    memory: str = "512M"
    command_line: str = ""
    initrd: str | None = None
    timeout: float | None = None
    console_output_fd: int = 1
    console_input_fd: int | None = 0


class GuestStopKind(enum.Enum):
    """How a booted guest ended."""

    POWEROFF = "poweroff"
    REBOOT = "reboot"
    QUIT = "quit"  # stopped from the console (Ctrl-A x)
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"  # SIGINT
    HALTED = "halted"  # halted for good
    CRASHED = "crashed"  # a triple fault, an exception before the kernel could handle it


@attrs.frozen
class BootOutcome:
    """How a booted guest ended (``kind``, with what the accelerator saw: ``detail``) after ``wall_s`` seconds."""

    kind: GuestStopKind
    detail: str
    wall_s: float


@attrs.frozen
class SyscallTableSpec:
    """An operating-system call table for one guest ISA (``os``/``isa``, e.g. linux/riscv64).

    ``factory(arch)`` builds the personality's ABI for the ISA from the ISA's
    :class:`~vm_core.arch.ArchInfo` (the one its front end registered as
    ``IsaSpec.arch``): registers, ``AT_HWCAP``, start state and layout are the
    ArchInfo's, the table adds only what the OS layer owns (numbers, ``uname``
    machine, stat layout, signal frames). The composition root calls it as
    ``spec.factory(isa.arch)``; an ISA registered without an ArchInfo cannot
    run under an OS personality.
    """

    os: str
    isa: str
    factory: Callable[[ArchInfo], Any]
    description: str = ""


@attrs.frozen
class SyscallSpec:
    """One system-call handler a plugin adds to, or overrides in, an OS personality's tables.

    ``os`` names the personality (``"linux"``); ``isa`` the guest ISA, or
    ``"*"`` for every ISA of that OS; ``syscall`` the call's name as the ISA's
    table spells it (``"getpid"``) or its number (a number the table lacks adds
    a new call). ``handler`` has the OS layer's signature; vm-linux's is
    ``handler(state, cpu, args) -> int | None`` (see :mod:`vm_linux.syscalls.registry`).
    An ISA-specific registration wins over a ``"*"`` one, and both over the
    table's own handler; two plugins registering the same (os, isa, syscall)
    is a :class:`~vm_core.errors.PluginError`.
    """

    os: str
    isa: str
    syscall: str | int
    handler: Callable[..., Any]
    description: str = ""


@attrs.frozen
class LoaderSpec:
    """A guest program format (ELF, ...).

    ``probe(header)`` says whether a file starting with ``header`` (its first
    64 bytes or fewer) is in this format; ``machine(header)`` names the ISA it
    is built for as an ELF ``e_machine`` value (what :attr:`IsaSpec.elf_machine`
    matches); ``factory(mem, path, machine, *, limit, data=None)`` maps the
    program into ``mem`` below ``limit`` and returns what the OS personality
    needs to start it (vm-linux: a ``LoadedProgram``). Exactly one loader
    may accept a file: when two probes accept it the composition root refuses
    it with a :class:`~vm_core.errors.PluginError` naming both.
    """

    name: str
    probe: Callable[[bytes], bool]
    factory: Callable[..., Any]
    machine: Callable[[bytes], int]
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
