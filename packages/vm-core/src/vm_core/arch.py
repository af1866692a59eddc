"""What one instruction-set architecture is, as data: :class:`ArchInfo` (after angr's ``archinfo``).

An ISA's facts have exactly one owner: the front end of that ISA
(``vm_translate.riscv.archinfo``, ``vm_translate.x86_64.archinfo``), which
registers its :class:`ArchInfo` with its :class:`~vm_core.types.IsaSpec`
(``IsaSpec.arch``). Everyone else (the Linux layer, the accelerators, the
embedding API, a gdb stub) reads registers, ABI registers and constants from
that value, never from a table of its own. The type lives here, in the
bottom layer, so any package may name it without importing vm-translate.

The register file is the flat ``CpuState.regs`` list of the ISA:
``registers[i]`` describes ``regs[i]``; the program counter is not in the
list (``CpuState.pc``) and is described by ``pc_name``/``pc_gdb_number``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from vm_core.errors import ConfigurationError, NotFoundError


class RegisterGroup(enum.Enum):
    """What kind of register a :class:`RegisterInfo` is."""

    GENERAL = "general"  # integer / general-purpose registers
    FLOAT = "float"  # floating-point registers (raw bit patterns)
    SYSTEM = "system"  # control and status: CSR fields, flags, segment bases
    INTERNAL = "internal"  # emulator state that is not architecturally visible (e.g. an LR/SC reservation)


class UnknownRegister(NotFoundError, ConfigurationError):
    """A register name or index the ISA does not have."""


class RegisterValueError(ConfigurationError):
    """A value that does not fit the register it is written to."""


@attrs.frozen
class RegisterInfo:
    """One register of the flat register file: ``regs[index]``, ``bits`` wide.

    ``aliases`` are other names for it (RISC-V's ABI names ``a0``/``sp``,
    x86's ``eflags`` for ``rflags``); ``gdb_number`` is its number in gdb's
    register list for the ISA (``None`` when gdb does not show it, or numbers
    it by target description). ``hardwired_zero``: reads as zero, writes are
    dropped (RISC-V ``x0``).
    """

    name: str
    index: int
    bits: int
    group: RegisterGroup
    aliases: tuple[str, ...] = ()
    gdb_number: int | None = None
    hardwired_zero: bool = False

    @property
    def mask(self) -> int:
        """All ones in the register's width."""
        return (1 << self.bits) - 1

    def fit(self, value: int) -> int:
        """``value`` as the register stores it (unsigned); negative values in two's complement.

        Raises :class:`RegisterValueError` when ``value`` needs more than ``bits`` bits
        (below ``-2**(bits-1)`` or at least ``2**bits``).
        """
        if not -(1 << (self.bits - 1)) <= value <= self.mask:
            raise RegisterValueError(
                f"{value:#x} does not fit {self.name} ({self.bits} bits)",
                hint=f"write a value in [{-(1 << (self.bits - 1))}, {self.mask:#x}]",
            )
        return value & self.mask


@attrs.frozen
class SyscallConvention:
    """Registers of a Linux system call: the number, the arguments in order, the result."""

    number: str
    args: tuple[str, ...]
    result: str


@attrs.frozen
class HwcapBit:
    """One bit of ``AT_HWCAP`` and what it announces."""

    bit: int
    meaning: str


@attrs.frozen
class ArchInfo:
    """The facts of one ISA (see the module docstring).

    Linux user-mode facts (the ISA's Linux ABI, not vm-linux's policy):
    ``syscall`` registers, ``hwcap`` (``AT_HWCAP``) with ``hwcap_bits`` naming
    its set bits, ``initial_registers`` (at ``execve`` every register is zero
    except the stack pointer, which points at ``argc``, and these), and the
    non-randomised address-space layout: ``user_address_limit`` (the kernel's
    ``TASK_SIZE``), ``stack_top`` (where the initial stack ends) and
    ``mmap_base`` (top of the top-down ``mmap`` area).
    """

    name: str
    elf_machine: int
    endianness: str  # "little" or "big"
    word_bits: int
    page_size: int
    registers: tuple[RegisterInfo, ...]
    pc_name: str
    stack_pointer: str
    syscall: SyscallConvention
    hwcap: int
    hwcap_bits: tuple[HwcapBit, ...]
    initial_registers: tuple[tuple[str, int], ...]
    user_address_limit: int
    stack_top: int
    mmap_base: int
    gdb_architecture: str
    gdb_features: tuple[str, ...]
    return_address: str | None = None  # None: the call instruction pushes it (x86)
    pc_gdb_number: int | None = None
    _by_name: Mapping[str, RegisterInfo] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        by_name: dict[str, RegisterInfo] = {}
        for position, register in enumerate(self.registers):
            if register.index != position:
                raise ValueError(f"{self.name}: register {register.name} has index {register.index}, not {position}")
            for name in (register.name, *register.aliases):
                if name in by_name or name == self.pc_name:
                    raise ValueError(f"{self.name}: register name {name!r} used twice")
                by_name[name] = register
        object.__setattr__(self, "_by_name", by_name)
        for name in (self.stack_pointer, self.syscall.number, self.syscall.result, *self.syscall.args,
                     *(name for name, _ in self.initial_registers), *((self.return_address,) if self.return_address else ())):  # fmt: skip
            self.register(name)

    @property
    def register_count(self) -> int:
        """Length of the ISA's ``CpuState.regs``."""
        return len(self.registers)

    @property
    def pc(self) -> RegisterInfo:
        """The program counter as a register (``index`` -1: it is ``CpuState.pc``, not in ``regs``)."""
        return RegisterInfo(self.pc_name, -1, self.word_bits, RegisterGroup.SYSTEM, gdb_number=self.pc_gdb_number)

    @property
    def names(self) -> tuple[str, ...]:
        """Register names in index order (each register's canonical name)."""
        return tuple(r.name for r in self.registers)

    def register(self, name: str | int) -> RegisterInfo:
        """The register called ``name`` (any of its names) or at index ``name``; :class:`UnknownRegister` if none."""
        if isinstance(name, int):
            if 0 <= name < len(self.registers) and not isinstance(name, bool):
                return self.registers[name]
            raise UnknownRegister(f"{self.name} has no register number {name} (0..{len(self.registers) - 1})")
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            raise UnknownRegister(
                f"{self.name} has no register named {name!r}",
                hint=f"e.g. {', '.join(self.names[:4])}, {self.stack_pointer}, {self.pc_name}",
            ) from None

    def index(self, name: str | int) -> int:
        """Index in ``regs`` of register ``name``."""
        return self.register(name).index

    def indices(self, *names: str) -> tuple[int, ...]:
        """Indices of several registers, in order."""
        return tuple(self.register(name).index for name in names)

    def group(self, group: RegisterGroup) -> tuple[RegisterInfo, ...]:
        """The registers of ``group``, in index order."""
        return tuple(r for r in self.registers if r.group is group)

    def reset_registers(self, regs: list[int], sp: int) -> None:
        """Linux's ``start_thread`` on ``regs``: all zero, then the stack pointer and ``initial_registers``."""
        for i in range(len(regs)):
            regs[i] = 0
        regs[self.index(self.stack_pointer)] = sp
        for name, value in self.initial_registers:
            regs[self.index(name)] = value
