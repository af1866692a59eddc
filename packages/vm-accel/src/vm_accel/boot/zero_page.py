"""The Linux x86 ``struct boot_params`` ("zero page") and its E820 memory map.

The 64-bit boot protocol (Documentation/arch/x86/boot.rst) hands the kernel
one 4 KiB page, zeroed, holding a copy of the image's setup header at
0x1f1 (up to ``0x202 + jump byte``) in which the loader fills in
``type_of_loader``, the command line pointer and the initrd's address and
size, plus the E820 table of RAM and reserved ranges
(Documentation/arch/x86/zero-page.rst).

:func:`build_boot_params` writes such a page; :func:`parse_boot_params`
reads one back (for checks and diagnostics). The offsets below are those of
``struct boot_params`` / ``struct setup_header`` / ``struct boot_e820_entry``
in arch/x86/include/uapi/asm/bootparam.h; the tests compare them with the
host's copy of that header when it is installed (linux-libc-dev).
"""

from __future__ import annotations

import enum
import struct

import attrs
from vm_core.errors import ConfigurationError

from vm_accel.boot.bzimage import SETUP_HEADER_OFFSET, BzImage

BOOT_PARAMS_SIZE = 4096

# struct boot_params (bootparam.h; the comments there give these offsets).
OFF_EXT_RAMDISK_IMAGE = 0x0C0
OFF_EXT_RAMDISK_SIZE = 0x0C4
OFF_EXT_CMD_LINE_PTR = 0x0C8
OFF_E820_ENTRIES = 0x1E8
OFF_SENTINEL = 0x1EF
OFF_HDR = SETUP_HEADER_OFFSET  # struct setup_header hdr, 0x1f1
OFF_E820_TABLE = 0x2D0
# struct setup_header fields, as offsets within boot_params.
OFF_VERSION = 0x206
OFF_TYPE_OF_LOADER = 0x210
OFF_LOADFLAGS = 0x211
OFF_RAMDISK_IMAGE = 0x218
OFF_RAMDISK_SIZE = 0x21C
OFF_CMD_LINE_PTR = 0x228
OFF_CMDLINE_SIZE = 0x238

E820_MAX_ENTRIES_ZEROPAGE = 128
E820_ENTRY_FORMAT = "<QQI"  # struct boot_e820_entry { __u64 addr; __u64 size; __u32 type; } __packed
E820_ENTRY_SIZE = struct.calcsize(E820_ENTRY_FORMAT)  # 20
TYPE_OF_LOADER_UNDEFINED = 0xFF  # boot.rst: "0xFF: undefined" loader (no assigned ID)


class E820Type(enum.IntEnum):
    """E820 range types (arch/x86/include/asm/e820/types.h)."""

    RAM = 1
    RESERVED = 2
    ACPI = 3
    NVS = 4
    UNUSABLE = 5
    PMEM = 7


@attrs.frozen
class E820Entry:
    """One range of the physical memory map: ``size`` bytes at ``address`` of ``type``."""

    address: int
    size: int
    type: int

    @property
    def end(self) -> int:
        return self.address + self.size

    def pack(self) -> bytes:
        return struct.pack(E820_ENTRY_FORMAT, self.address, self.size, self.type)

    def describe(self) -> str:
        try:
            kind = E820Type(self.type).name.lower()
        except ValueError:
            kind = f"type {self.type}"
        return f"[{self.address:#018x}-{self.end - 1:#018x}] {kind}"


@attrs.frozen
class BootParams:
    """What a zero page says (decoded by :func:`parse_boot_params`)."""

    version: int
    type_of_loader: int
    loadflags: int
    cmd_line_ptr: int
    ramdisk_image: int
    ramdisk_size: int
    e820: tuple[E820Entry, ...]
    setup_header: bytes


def build_boot_params(
    image: BzImage,
    *,
    e820: tuple[E820Entry, ...] | list[E820Entry],
    cmd_line_ptr: int,
    ramdisk_image: int = 0,
    ramdisk_size: int = 0,
) -> bytes:
    """The 4 KiB zero page for ``image`` (see the module documentation)."""
    entries = tuple(e820)
    if not 0 < len(entries) <= E820_MAX_ENTRIES_ZEROPAGE:
        raise ConfigurationError(f"an E820 map needs 1 to {E820_MAX_ENTRIES_ZEROPAGE} entries, not {len(entries)}")
    for value, what in ((cmd_line_ptr, "command line"), (ramdisk_image, "initrd"), (ramdisk_size, "initrd size")):
        if not 0 <= value < 1 << 64:
            raise ConfigurationError(f"{what} address {value:#x} does not fit 64 bits")
    if ramdisk_image >= 1 << 32 and not image.header.can_load_above_4g:
        raise ConfigurationError("this kernel cannot take an initrd above 4 GiB (no XLF_CAN_BE_LOADED_ABOVE_4G)")
    page = bytearray(BOOT_PARAMS_SIZE)
    page[OFF_HDR : OFF_HDR + len(image.setup_header)] = image.setup_header
    page[OFF_TYPE_OF_LOADER] = TYPE_OF_LOADER_UNDEFINED
    _split_u64(page, cmd_line_ptr, OFF_CMD_LINE_PTR, OFF_EXT_CMD_LINE_PTR)
    _split_u64(page, ramdisk_image, OFF_RAMDISK_IMAGE, OFF_EXT_RAMDISK_IMAGE)
    _split_u64(page, ramdisk_size, OFF_RAMDISK_SIZE, OFF_EXT_RAMDISK_SIZE)
    page[OFF_E820_ENTRIES] = len(entries)
    for i, entry in enumerate(entries):
        at = OFF_E820_TABLE + i * E820_ENTRY_SIZE
        page[at : at + E820_ENTRY_SIZE] = entry.pack()
    page[OFF_SENTINEL] = 0
    return bytes(page)


def parse_boot_params(page: bytes) -> BootParams:
    """Decode the loader-written fields and the E820 table of a zero page."""
    if len(page) < BOOT_PARAMS_SIZE:
        raise ConfigurationError(f"a zero page is {BOOT_PARAMS_SIZE} bytes, not {len(page)}")
    count = min(page[OFF_E820_ENTRIES], E820_MAX_ENTRIES_ZEROPAGE)
    e820 = tuple(
        E820Entry(*struct.unpack_from(E820_ENTRY_FORMAT, page, OFF_E820_TABLE + i * E820_ENTRY_SIZE))
        for i in range(count)
    )
    header_end = 0x202 + page[0x201]
    return BootParams(
        version=struct.unpack_from("<H", page, OFF_VERSION)[0],
        type_of_loader=page[OFF_TYPE_OF_LOADER],
        loadflags=page[OFF_LOADFLAGS],
        cmd_line_ptr=_join_u64(page, OFF_CMD_LINE_PTR, OFF_EXT_CMD_LINE_PTR),
        ramdisk_image=_join_u64(page, OFF_RAMDISK_IMAGE, OFF_EXT_RAMDISK_IMAGE),
        ramdisk_size=_join_u64(page, OFF_RAMDISK_SIZE, OFF_EXT_RAMDISK_SIZE),
        e820=e820,
        setup_header=bytes(page[OFF_HDR:header_end]),
    )


def _split_u64(page: bytearray, value: int, low_offset: int, high_offset: int) -> None:
    """A 64-bit value as the header's 32-bit field plus boot_params' ``ext_`` upper half (boot.rst)."""
    if value >> 32 >= 1 << 32:
        raise ConfigurationError(f"{value:#x} does not fit the 64 bits of a split boot_params field")
    struct.pack_into("<I", page, low_offset, value & 0xFFFF_FFFF)
    struct.pack_into("<I", page, high_offset, value >> 32)


def _join_u64(page: bytes, low_offset: int, high_offset: int) -> int:
    low: int = struct.unpack_from("<I", page, low_offset)[0]
    high: int = struct.unpack_from("<I", page, high_offset)[0]
    return low | high << 32
