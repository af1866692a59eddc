"""Where everything goes in a booted guest's physical memory, and the E820 map that says so.

A PC-like layout (the one QEMU and Firecracker use for direct kernel boot):

* RAM from 0 to 639 KiB, the EBDA (639-640 KiB) and the BIOS area
  (960 KiB-1 MiB) reported as reserved, RAM again from 1 MiB;
* at most 3 GiB of RAM below 4 GiB (the PCI/APIC hole stays free), the rest
  from 4 GiB;
* the zero page at 0x7000, the long-mode system area (page tables, GDT, IDT,
  boot stack; :mod:`vm_accel.kvm.long_mode`) at 0x10000, the command line at
  0x20000, the kernel at its preferred address and the initrd as high as the
  kernel allows in RAM below 4 GiB, page aligned.

:func:`parse_memory_size` reads sizes such as ``512M`` or ``2G``.
"""

from __future__ import annotations

import re

import attrs
from vm_core.errors import ConfigurationError

from vm_accel.boot.bzimage import BzImage
from vm_accel.boot.zero_page import E820Entry, E820Type

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
PAGE = 4 * KIB

ZERO_PAGE_ADDRESS = 0x7000
LONG_MODE_AREA = 0x10000
COMMAND_LINE_ADDRESS = 0x20000
COMMAND_LINE_AREA_END = 0x30000
EBDA_START = 0x9FC00
LOW_RAM_END = 0xA0000
BIOS_AREA = 0xF0000
HIGH_MEMORY = 1 * MIB
LOW_MEMORY_LIMIT = 3 * GIB  # RAM below 4 GiB stops here; [3 GiB, 4 GiB) is the PCI/APIC hole
ABOVE_4G = 4 * GIB
MIN_MEMORY = 16 * MIB
MAX_MEMORY = 1 << 46

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": MIB, "k": KIB, "m": MIB, "g": GIB, "t": 1 << 40}


def parse_memory_size(text: str) -> int:
    """``512M``, ``2G``, ``1536m``, ``65536K`` or a bare number of MiB (as qemu's ``-m``) in bytes."""
    match = _SIZE.match(text)
    if match is None:
        raise ConfigurationError(f"memory size {text!r} is not a number with an optional K/M/G/T suffix")
    size = int(match.group(1)) * _UNITS[match.group(2).lower()]
    if size % PAGE:
        raise ConfigurationError(f"memory size {text!r} is not a multiple of 4 KiB")
    if not MIN_MEMORY <= size <= MAX_MEMORY:
        raise ConfigurationError(f"memory size {text!r} is outside 16M..64T")
    return size


@attrs.frozen
class RamRange:
    """Guest-physical RAM: ``size`` bytes at ``address`` (one KVM memory slot)."""

    address: int
    size: int

    @property
    def end(self) -> int:
        return self.address + self.size


@attrs.frozen
class MemoryLayout:
    """The RAM of a guest of ``memory_size`` bytes and the E820 map describing it."""

    memory_size: int

    @property
    def low_end(self) -> int:
        """One past the last byte of RAM below 4 GiB."""
        return min(self.memory_size, LOW_MEMORY_LIMIT)

    @property
    def ram(self) -> tuple[RamRange, ...]:
        """The RAM ranges (what KVM gets as memory slots)."""
        ranges = [RamRange(0, self.low_end)]
        if self.memory_size > LOW_MEMORY_LIMIT:
            ranges.append(RamRange(ABOVE_4G, self.memory_size - LOW_MEMORY_LIMIT))
        return tuple(ranges)

    def e820(self) -> tuple[E820Entry, ...]:
        """RAM and reserved ranges, in address order, as a PC BIOS reports them."""
        entries = [
            E820Entry(0, EBDA_START, E820Type.RAM),
            E820Entry(EBDA_START, LOW_RAM_END - EBDA_START, E820Type.RESERVED),
            E820Entry(BIOS_AREA, HIGH_MEMORY - BIOS_AREA, E820Type.RESERVED),
            E820Entry(HIGH_MEMORY, self.low_end - HIGH_MEMORY, E820Type.RAM),
        ]
        if self.memory_size > LOW_MEMORY_LIMIT:
            entries.append(E820Entry(ABOVE_4G, self.memory_size - LOW_MEMORY_LIMIT, E820Type.RAM))
        return tuple(entries)


@attrs.frozen
class BootPlacement:
    """Where the loader puts the kernel, the command line and the initrd."""

    kernel_address: int
    kernel_end: int
    command_line_address: int
    initrd_address: int
    initrd_size: int


def place(layout: MemoryLayout, image: BzImage, command_line_size: int, initrd_size: int) -> BootPlacement:
    """Choose addresses for ``image``, a command line of that many bytes and an initrd; clear errors if they don't fit."""
    header = image.header
    kernel = image.load_address
    if header.kernel_alignment and kernel % header.kernel_alignment and not header.relocatable:
        raise ConfigurationError(
            f"kernel load address {kernel:#x} is not aligned to its kernel_alignment {header.kernel_alignment:#x}"
        )
    if kernel < COMMAND_LINE_AREA_END:
        raise ConfigurationError(f"the kernel wants to load at {kernel:#x}, inside the boot structures")
    kernel_end = _page_up(kernel + image.memory_needed)
    if kernel_end > layout.low_end:
        raise ConfigurationError(
            f"the kernel needs RAM up to {kernel_end:#x} (load address {kernel:#x} + init_size "
            f"{image.memory_needed:#x}); the guest has {layout.memory_size // MIB} MiB",
            hint="give the guest more memory with --memory",
        )
    limit = header.cmdline_size + 1
    if command_line_size > limit:
        raise ConfigurationError(
            f"the command line is {command_line_size - 1} bytes; this kernel takes at most {header.cmdline_size}"
        )
    if COMMAND_LINE_ADDRESS + command_line_size > COMMAND_LINE_AREA_END:
        raise ConfigurationError(f"a {command_line_size}-byte command line does not fit the boot area")
    initrd = 0
    if initrd_size:
        top = min(layout.low_end, header.initrd_addr_max + 1)
        initrd = (top - initrd_size) // PAGE * PAGE
        if initrd < kernel_end:
            raise ConfigurationError(
                f"an initrd of {initrd_size} bytes does not fit between the kernel's end ({kernel_end:#x}) and "
                f"{top:#x}",
                hint="give the guest more memory with --memory",
            )
    return BootPlacement(
        kernel_address=kernel,
        kernel_end=kernel_end,
        command_line_address=COMMAND_LINE_ADDRESS,
        initrd_address=initrd,
        initrd_size=initrd_size,
    )


def _page_up(value: int) -> int:
    return (value + PAGE - 1) // PAGE * PAGE
