"""Reading a Linux x86 bzImage: its real-mode setup header and its protected-mode kernel.

A bzImage (Documentation/arch/x86/boot.rst, "The Linux/x86 Boot Protocol")
is ``(setup_sects + 1) * 512`` bytes of real-mode setup code, with the
*setup header* at offset 0x1f1, followed by the protected-mode kernel. The
header says which boot-protocol version the kernel speaks (magic ``HdrS`` at
0x202, version at 0x206), where it wants to be loaded (``pref_address``,
2.10+), how much memory it needs from there (``init_size``), how long a
command line may be (``cmdline_size``, 2.06+), where an initrd may go
(``initrd_addr_max``) and, through ``xloadflags`` (2.12+), whether it has a
64-bit entry point at load address + 0x200 (``XLF_KERNEL_64``).

:func:`parse_bzimage` checks all of that and raises
:class:`vm_core.errors.BadProgramError` for a file that is not a bzImage
(or is truncated) and :class:`vm_core.errors.UnsupportedError` for a real
bzImage this loader cannot start (too old a protocol, no 64-bit entry).
"""

from __future__ import annotations

import struct
from pathlib import Path

import attrs
from vm_core.errors import BadProgramError, NotFoundError, UnsupportedError

SECTOR = 512
SETUP_HEADER_OFFSET = 0x1F1
BOOT_FLAG = 0xAA55
HEADER_MAGIC = b"HdrS"
MIN_PROTOCOL = 0x0206
MIN_64BIT_PROTOCOL = 0x020C
DEFAULT_SETUP_SECTS = 4  # setup_sects == 0 means 4 (boot.rst)
LEGACY_LOAD_ADDRESS = 0x100000  # bzImage load address before pref_address (2.10)
DEFAULT_CMDLINE_SIZE = 255  # the limit before protocol 2.06
DEFAULT_INITRD_ADDR_MAX = 0x37FFFFFF  # before protocol 2.03
ENTRY_64_OFFSET = 0x200  # startup_64 = load address + 0x200 (64-bit boot protocol)

# Setup-header field offsets within the image (and within boot_params), from
# arch/x86/include/uapi/asm/bootparam.h (struct setup_header at 0x1f1).
OFF_SETUP_SECTS = 0x1F1
OFF_SYSSIZE = 0x1F4
OFF_BOOT_FLAG = 0x1FE
OFF_JUMP = 0x200
OFF_HEADER = 0x202
OFF_VERSION = 0x206
OFF_KERNEL_VERSION = 0x20E
OFF_LOADFLAGS = 0x211
OFF_INITRD_ADDR_MAX = 0x22C
OFF_KERNEL_ALIGNMENT = 0x230
OFF_RELOCATABLE_KERNEL = 0x234
OFF_XLOADFLAGS = 0x236
OFF_CMDLINE_SIZE = 0x238
OFF_PREF_ADDRESS = 0x258
OFF_INIT_SIZE = 0x260

# loadflags and xloadflags bits (bootparam.h).
LOADED_HIGH = 1 << 0
XLF_KERNEL_64 = 1 << 0
XLF_CAN_BE_LOADED_ABOVE_4G = 1 << 1


@attrs.frozen
class SetupHeader:
    """The fields of a bzImage's setup header that a 64-bit loader acts on."""

    setup_sects: int
    version: int
    loadflags: int
    xloadflags: int
    syssize: int
    pref_address: int
    init_size: int
    kernel_alignment: int
    relocatable: bool
    cmdline_size: int
    initrd_addr_max: int
    header_end: int
    kernel_version: str = ""

    @property
    def protocol(self) -> str:
        """The boot-protocol version as written in boot.rst (``"2.15"``)."""
        return f"{self.version >> 8}.{self.version & 0xFF:02d}"

    @property
    def has_64bit_entry(self) -> bool:
        return self.version >= MIN_64BIT_PROTOCOL and bool(self.xloadflags & XLF_KERNEL_64)

    @property
    def can_load_above_4g(self) -> bool:
        return self.version >= MIN_64BIT_PROTOCOL and bool(self.xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G)


@attrs.frozen
class BzImage:
    """A parsed bzImage: its header, the raw setup header bytes and the protected-mode kernel."""

    header: SetupHeader
    setup_header: bytes  # image bytes [0x1f1, header_end): copied into boot_params
    kernel: bytes  # the protected-mode kernel, loaded at load_address

    @property
    def load_address(self) -> int:
        """Where the protected-mode kernel goes: ``pref_address`` (2.10+), else 1 MiB."""
        if self.header.version >= 0x020A and self.header.pref_address:
            return self.header.pref_address
        return LEGACY_LOAD_ADDRESS

    @property
    def entry_64(self) -> int:
        """The 64-bit entry point (``startup_64``)."""
        return self.load_address + ENTRY_64_OFFSET

    @property
    def memory_needed(self) -> int:
        """Bytes from the load address the kernel needs before it relocates itself (``init_size``)."""
        return max(self.header.init_size, len(self.kernel))


def parse_bzimage(data: bytes, *, name: str = "kernel image") -> BzImage:
    """Check and split a bzImage; see the module documentation for the errors."""
    if len(data) < SECTOR * 2:
        raise BadProgramError(f"{name}: {len(data)} bytes is too short for a bzImage")
    if data[OFF_HEADER : OFF_HEADER + 4] != HEADER_MAGIC:
        raise BadProgramError(
            f"{name}: no 'HdrS' magic at offset 0x202: not a Linux x86 bzImage",
            hint="pass an x86 bzImage (arch/x86/boot/bzImage, /boot/vmlinuz-*), not a vmlinux ELF",
        )
    (boot_flag,) = struct.unpack_from("<H", data, OFF_BOOT_FLAG)
    if boot_flag != BOOT_FLAG:
        raise BadProgramError(f"{name}: boot_flag is {boot_flag:#06x}, not 0xaa55")
    (version,) = struct.unpack_from("<H", data, OFF_VERSION)
    if version < MIN_PROTOCOL:
        raise UnsupportedError(
            f"{name}: boot protocol {version >> 8}.{version & 0xFF:02d} is older than 2.06",
            hint="vm boot needs a kernel from Linux 2.6.22 or newer",
        )
    setup_sects = data[OFF_SETUP_SECTS] or DEFAULT_SETUP_SECTS
    setup_size = (setup_sects + 1) * SECTOR
    header_end = OFF_HEADER + data[OFF_JUMP + 1]
    if len(data) <= setup_size or header_end > setup_size:
        raise BadProgramError(f"{name}: truncated: the setup code alone needs {setup_size} bytes")
    kernel = data[setup_size:]
    (syssize,) = struct.unpack_from("<I", data, OFF_SYSSIZE)
    if syssize * 16 > len(kernel) + 15:
        raise BadProgramError(
            f"{name}: truncated: the header says the kernel is {syssize * 16} bytes, the file holds {len(kernel)}"
        )
    field = _FieldReader(data, header_end)
    header = SetupHeader(
        setup_sects=setup_sects,
        version=version,
        loadflags=data[OFF_LOADFLAGS],
        xloadflags=field.u16(OFF_XLOADFLAGS, 0x020C),
        syssize=syssize,
        pref_address=field.u64(OFF_PREF_ADDRESS, 0x020A),
        init_size=field.u32(OFF_INIT_SIZE, 0x020A),
        kernel_alignment=field.u32(OFF_KERNEL_ALIGNMENT, 0x0205),
        relocatable=bool(field.u8(OFF_RELOCATABLE_KERNEL, 0x0205)),
        cmdline_size=field.u32(OFF_CMDLINE_SIZE, 0x0206) or DEFAULT_CMDLINE_SIZE,
        initrd_addr_max=field.u32(OFF_INITRD_ADDR_MAX, 0x0203) or DEFAULT_INITRD_ADDR_MAX,
        header_end=header_end,
        kernel_version=_kernel_version(data, setup_size),
    )
    if not header.loadflags & LOADED_HIGH:
        raise UnsupportedError(f"{name}: a zImage (loaded low); only bzImages are supported")
    if not header.has_64bit_entry:
        raise UnsupportedError(
            f"{name}: boot protocol {header.protocol} kernel without a 64-bit entry point (XLF_KERNEL_64)",
            hint="vm boot enters kernels through the 64-bit boot protocol; use an x86-64 kernel, 3.8 or newer",
        )
    return BzImage(header=header, setup_header=bytes(data[SETUP_HEADER_OFFSET:header_end]), kernel=bytes(kernel))


def read_bzimage(path: str | Path) -> BzImage:
    """:func:`parse_bzimage` of a file, with clear errors for a missing or unreadable one."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such kernel image") from None
    except IsADirectoryError:
        raise BadProgramError(f"{path}: is a directory, not a kernel image") from None
    except PermissionError:
        raise BadProgramError(f"{path}: permission denied") from None
    return parse_bzimage(data, name=str(path))


class _FieldReader:
    """Header fields that exist only from a protocol version on and inside the header's length."""

    def __init__(self, data: bytes, header_end: int) -> None:
        self.data = data
        self.header_end = header_end
        (self.version,) = struct.unpack_from("<H", data, OFF_VERSION)

    def _read(self, offset: int, fmt: str, since: int) -> int:
        if self.version < since or offset + struct.calcsize(fmt) > self.header_end:
            return 0
        value: int = struct.unpack_from(fmt, self.data, offset)[0]
        return value

    def u8(self, offset: int, since: int) -> int:
        return self._read(offset, "<B", since)

    def u16(self, offset: int, since: int) -> int:
        return self._read(offset, "<H", since)

    def u32(self, offset: int, since: int) -> int:
        return self._read(offset, "<I", since)

    def u64(self, offset: int, since: int) -> int:
        return self._read(offset, "<Q", since)


def _kernel_version(data: bytes, setup_size: int) -> str:
    """The version string ``kernel_version`` points to (offset + 0x200 within the setup code), if any."""
    (pointer,) = struct.unpack_from("<H", data, OFF_KERNEL_VERSION)
    start = pointer + 0x200
    if not pointer or start >= setup_size:
        return ""
    end = data.find(b"\0", start, setup_size)
    raw = data[start : end if end >= 0 else setup_size]
    return raw.decode("ascii", "replace")
