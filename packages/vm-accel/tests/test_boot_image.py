"""The bzImage parser, the zero page and the guest memory layout, without KVM.

Oracles: the struct layout of Linux's arch/x86/include/uapi/asm/bootparam.h
(the host's copy from linux-libc-dev, compiled into a C program that reads
the zero page we build through ``struct boot_params``), the offsets
documented in Documentation/arch/x86/boot.rst, and the project's test
kernel built from guest/kernel/ by the host toolchain.
"""

from __future__ import annotations

import itertools
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as stst
from vm_accel.boot import (
    E820Entry,
    E820Type,
    MemoryLayout,
    build_boot_params,
    parse_boot_params,
    parse_bzimage,
    parse_memory_size,
    place,
    read_bzimage,
)
from vm_accel.boot import zero_page as zp
from vm_accel.boot.layout import COMMAND_LINE_ADDRESS, GIB, MIB
from vm_core.errors import BadProgramError, ConfigurationError, NotFoundError, UnsupportedError, VmError

from .test_boot_support import bootparam_header_missing, compile_c, kernel_build_module, synthetic_bzimage

# --- the bzImage --------------------------------------------------------------------------------


def test_synthetic_header_fields_are_read_from_their_documented_offsets() -> None:
    image = parse_bzimage(
        synthetic_bzimage(pref_address=0x2000000, init_size=0x5000, cmdline_size=4095, initrd_addr_max=0x3FFFFFFF)
    )
    header = image.header
    assert (header.version, header.protocol, header.setup_sects) == (0x020F, "2.15", 1)
    assert header.has_64bit_entry and header.can_load_above_4g
    assert (header.pref_address, header.init_size, header.cmdline_size) == (0x2000000, 0x5000, 4095)
    assert header.initrd_addr_max == 0x3FFFFFFF and header.header_end == 0x26C
    assert image.load_address == 0x2000000 and image.entry_64 == 0x2000200
    assert image.kernel == b"\xf4" * 0x300
    assert image.setup_header[0] == 1 and image.setup_header[0x202 - 0x1F1 :][:4] == b"HdrS"


def test_setup_sects_zero_means_four() -> None:
    image = parse_bzimage(synthetic_bzimage(setup_sects=0))
    assert image.header.setup_sects == 4 and image.kernel == b"\xf4" * 0x300


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({"magic": b"HdrX"}, BadProgramError, "HdrS"),
        ({"boot_flag": 0x1234}, BadProgramError, "boot_flag"),
        ({"version": 0x0205}, UnsupportedError, "older than 2.06"),
        ({"xloadflags": 0x2}, UnsupportedError, "XLF_KERNEL_64"),
        ({"version": 0x020B}, UnsupportedError, "XLF_KERNEL_64"),  # xloadflags only exist from 2.12
        ({"loadflags": 0}, UnsupportedError, "zImage"),
    ],
)
def test_bad_headers_are_refused_with_a_clear_error(changes: dict, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        parse_bzimage(synthetic_bzimage(**changes))


def test_truncated_images_are_bad_programs() -> None:
    whole = synthetic_bzimage()
    with pytest.raises(BadProgramError, match="truncated"):
        parse_bzimage(whole[:-0x100])
    with pytest.raises(BadProgramError, match="too short"):
        parse_bzimage(whole[:600])


def test_missing_and_directory_paths(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        read_bzimage(tmp_path / "nope")
    with pytest.raises(BadProgramError, match="directory"):
        read_bzimage(tmp_path)


@settings(max_examples=300, deadline=None)
@given(stst.binary(min_size=0, max_size=1500), stst.integers(0, 1400), stst.binary(min_size=1, max_size=8))
def test_any_bytes_parse_or_fail_with_a_vm_error(noise: bytes, at: int, patch: bytes) -> None:
    base = bytearray(synthetic_bzimage())
    base[at : at + len(patch)] = patch
    for data in (noise, bytes(base)):
        try:
            parse_bzimage(data)
        except VmError:
            pass


@settings(max_examples=100, deadline=None)
@given(
    version=stst.integers(0x020C, 0x02FF),
    pref=stst.integers(1, 0xFFFF).map(lambda x: x * 0x200000),
    init_size=stst.integers(0x300, 1 << 31),
    cmdline_size=stst.integers(1, 1 << 20),
    xlf=stst.integers(0, 0xFFFF).map(lambda x: x | 1),
)
def test_header_round_trip(version: int, pref: int, init_size: int, cmdline_size: int, xlf: int) -> None:
    image = parse_bzimage(
        synthetic_bzimage(
            version=version, pref_address=pref, init_size=init_size, cmdline_size=cmdline_size, xloadflags=xlf
        )
    )
    assert (image.header.version, image.header.pref_address, image.header.init_size) == (version, pref, init_size)
    assert image.header.cmdline_size == cmdline_size and image.header.xloadflags == xlf
    assert image.header.can_load_above_4g == bool(xlf & 2)


# --- the zero page --------------------------------------------------------------------------------

# Offsets written in the comments of arch/x86/include/uapi/asm/bootparam.h (Linux 6.x) and boot.rst.
DOCUMENTED_OFFSETS = {
    "OFF_EXT_RAMDISK_IMAGE": 0x0C0,
    "OFF_EXT_RAMDISK_SIZE": 0x0C4,
    "OFF_EXT_CMD_LINE_PTR": 0x0C8,
    "OFF_E820_ENTRIES": 0x1E8,
    "OFF_SENTINEL": 0x1EF,
    "OFF_HDR": 0x1F1,
    "OFF_E820_TABLE": 0x2D0,
    "OFF_VERSION": 0x206,
    "OFF_TYPE_OF_LOADER": 0x210,
    "OFF_LOADFLAGS": 0x211,
    "OFF_RAMDISK_IMAGE": 0x218,
    "OFF_RAMDISK_SIZE": 0x21C,
    "OFF_CMD_LINE_PTR": 0x228,
    "OFF_CMDLINE_SIZE": 0x238,
}


def test_offsets_match_the_documented_layout() -> None:
    assert {name: getattr(zp, name) for name in DOCUMENTED_OFFSETS} == DOCUMENTED_OFFSETS
    assert zp.E820_ENTRY_SIZE == 20 and zp.BOOT_PARAMS_SIZE == 4096 and zp.E820_MAX_ENTRIES_ZEROPAGE == 128


_READER = r"""
#include <stdio.h>
#include <stdint.h>
#include <asm/bootparam.h>
int main(int argc, char **argv) {
    static struct boot_params bp;
    FILE *f = fopen(argv[1], "rb");
    if (!f || fread(&bp, 1, sizeof bp, f) != sizeof bp || sizeof bp != 4096) return 2;
    printf("version %u\nloader %u\nloadflags %u\n", bp.hdr.version, bp.hdr.type_of_loader, bp.hdr.loadflags);
    printf("cmdline %llu\n", (unsigned long long)bp.hdr.cmd_line_ptr | (unsigned long long)bp.ext_cmd_line_ptr << 32);
    printf("ramdisk %llu\n", (unsigned long long)bp.hdr.ramdisk_image | (unsigned long long)bp.ext_ramdisk_image << 32);
    printf("ramdisk_size %llu\n", (unsigned long long)bp.hdr.ramdisk_size | (unsigned long long)bp.ext_ramdisk_size << 32);
    printf("pref_address %llu\ninit_size %u\n", (unsigned long long)bp.hdr.pref_address, bp.hdr.init_size);
    printf("sentinel %u\nentries %u\n", bp.sentinel, bp.e820_entries);
    for (unsigned i = 0; i < bp.e820_entries; i++)
        printf("e820 %llu %llu %u\n", (unsigned long long)bp.e820_table[i].addr,
               (unsigned long long)bp.e820_table[i].size, bp.e820_table[i].type);
    return 0;
}
"""


@pytest.fixture(scope="module")
def bootparam_reader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = bootparam_header_missing()
    if reason is not None:
        pytest.skip(f"bootparam.h oracle unavailable: {reason}")
    return compile_c(_READER, tmp_path_factory.mktemp("bootparam"), "read_boot_params")


def _c_view(reader: Path, page: bytes, directory: Path) -> list[str]:
    path = directory / "zero_page.bin"
    path.write_bytes(page)
    return subprocess.run([str(reader), str(path)], capture_output=True, text=True, check=True).stdout.splitlines()


_e820_entries = stst.lists(
    stst.builds(E820Entry, stst.integers(0, (1 << 52) - 1), stst.integers(0, (1 << 52) - 1), stst.integers(1, 20)),
    min_size=1,
    max_size=128,
)


@settings(max_examples=25, deadline=None)
@given(
    e820=_e820_entries,
    cmdline=stst.integers(0, (1 << 64) - 1),
    ramdisk=stst.integers(0, (1 << 46) - 1),
    ramdisk_size=stst.integers(0, (1 << 40) - 1),
)
def test_linux_struct_boot_params_reads_what_we_wrote(
    bootparam_reader: Path, tmp_path_factory: pytest.TempPathFactory, e820: list, cmdline: int, ramdisk: int,
    ramdisk_size: int,
) -> None:
    image = parse_bzimage(synthetic_bzimage(pref_address=0x1000000, init_size=0x4000))
    page = build_boot_params(image, e820=e820, cmd_line_ptr=cmdline, ramdisk_image=ramdisk, ramdisk_size=ramdisk_size)
    lines = _c_view(bootparam_reader, page, tmp_path_factory.mktemp("page"))
    expected = [
        f"version {0x020F}",
        "loader 255",
        "loadflags 1",
        f"cmdline {cmdline}",
        f"ramdisk {ramdisk}",
        f"ramdisk_size {ramdisk_size}",
        f"pref_address {0x1000000}",
        f"init_size {0x4000}",
        "sentinel 0",
        f"entries {len(e820)}",
        *(f"e820 {e.address} {e.size} {e.type}" for e in e820),
    ]
    assert lines == expected
    decoded = parse_boot_params(page)
    assert decoded.e820 == tuple(e820) and (decoded.cmd_line_ptr, decoded.ramdisk_image) == (cmdline, ramdisk)
    assert decoded.type_of_loader == 0xFF and decoded.setup_header[0x206 - 0x1F1 :][:2] == b"\x0f\x02"


def test_zero_page_refuses_impossible_values() -> None:
    image = parse_bzimage(synthetic_bzimage(xloadflags=0x1))
    ram = [E820Entry(0, 0x9FC00, E820Type.RAM)]
    with pytest.raises(ConfigurationError):
        build_boot_params(image, e820=[], cmd_line_ptr=0x20000)
    with pytest.raises(ConfigurationError):
        build_boot_params(image, e820=ram * 129, cmd_line_ptr=0x20000)
    with pytest.raises(ConfigurationError, match="above 4 GiB"):
        build_boot_params(image, e820=ram, cmd_line_ptr=0x20000, ramdisk_image=1 << 32, ramdisk_size=1)
    with pytest.raises(ConfigurationError):
        build_boot_params(image, e820=ram, cmd_line_ptr=1 << 64)


# --- the guest memory layout ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [("512M", 512 * MIB), ("2G", 2 * GIB), ("1536m", 1536 * MIB), ("65536K", 64 * MIB), ("256", 256 * MIB),
     ("1GiB", GIB), ("4g", 4 * GIB)],
)
def test_memory_sizes(text: str, size: int) -> None:
    assert parse_memory_size(text) == size


@pytest.mark.parametrize("text", ["", "12X", "-5M", "1M", "4097K", "lots", "100T"])
def test_bad_memory_sizes(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_memory_size(text)


def test_e820_is_the_pc_map_qemu_reports() -> None:
    # qemu-system-x86_64 -m 64 (SeaBIOS) reports: usable 0-0x9fbff, reserved 0x9fc00-0x9ffff,
    # reserved 0xf0000-0xfffff, usable 0x100000-end (reserved firmware ranges at 4 GiB-256 KiB omitted).
    assert MemoryLayout(64 * MIB).e820() == (
        E820Entry(0, 0x9FC00, 1),
        E820Entry(0x9FC00, 0x400, 2),
        E820Entry(0xF0000, 0x10000, 2),
        E820Entry(0x100000, 63 * MIB, 1),
    )
    big = MemoryLayout(5 * GIB)
    assert big.e820()[-2:] == (E820Entry(0x100000, 3 * GIB - MIB, 1), E820Entry(4 * GIB, 2 * GIB, 1))
    assert [(r.address, r.size) for r in big.ram] == [(0, 3 * GIB), (4 * GIB, 2 * GIB)]


@settings(max_examples=200, deadline=None)
@given(stst.integers(4, 1 << 14).map(lambda n: n * 4 * MIB))
def test_e820_ranges_are_sorted_disjoint_and_count_all_ram(size: int) -> None:
    entries = MemoryLayout(size).e820()
    for before, after in itertools.pairwise(entries):
        assert before.end <= after.address
    ram = sum(e.size for e in entries if e.type == E820Type.RAM)
    assert ram == size - (0x100000 - 0x9FC00)  # everything but the EBDA/VGA/BIOS hole below 1 MiB


@settings(max_examples=200, deadline=None)
@given(memory=stst.integers(16, 8192).map(lambda n: n * MIB), initrd=stst.integers(0, 64 * MIB))
def test_initrd_placement(memory: int, initrd: int) -> None:
    image = parse_bzimage(synthetic_bzimage(init_size=0x800000))
    layout = MemoryLayout(memory)
    top = min(memory, 3 * GIB, 0x80000000)  # RAM below the PCI hole and the header's initrd_addr_max
    fits = 0x1800000 <= top and (initrd == 0 or (top - initrd) // 4096 * 4096 >= 0x1800000)
    if not fits:
        with pytest.raises(ConfigurationError, match="--memory"):
            place(layout, image, 100, initrd)
        return
    placed = place(layout, image, 100, initrd)
    assert placed.kernel_address == 0x1000000 and placed.kernel_end == 0x1800000
    assert placed.command_line_address == COMMAND_LINE_ADDRESS
    if initrd:
        assert placed.initrd_address % 4096 == 0
        assert placed.kernel_end <= placed.initrd_address
        assert placed.initrd_address + initrd <= min(layout.low_end, 0x80000000)
        assert min(layout.low_end, 0x80000000) - (placed.initrd_address + initrd) < 4096  # as high as it goes


def test_command_line_longer_than_the_kernel_allows() -> None:
    image = parse_bzimage(synthetic_bzimage(cmdline_size=10))
    place(MemoryLayout(64 * MIB), image, 11, 0)
    with pytest.raises(ConfigurationError, match="at most 10"):
        place(MemoryLayout(64 * MIB), image, 12, 0)


# --- the project's test kernel ----------------------------------------------------------------------


def test_the_test_kernel_is_a_protocol_2_15_bzimage(tmp_path: Path) -> None:
    build = kernel_build_module()
    missing = build.missing_tools()
    if missing:
        pytest.skip(f"cannot build guest/kernel: missing {', '.join(missing)} (apt-get install gcc binutils)")
    image = read_bzimage(build.build_kernel(tmp_path))
    assert image.header.protocol == "2.15" and image.header.has_64bit_entry
    assert image.load_address == 0x1000000 and image.header.init_size >= len(image.kernel)
    assert image.header.kernel_version.startswith("vmkernel 1.0")
    assert image.header.syssize == (len(image.kernel) + 15) // 16
    # kernel_info (2.15): "LToP" at kernel_info_offset inside the protected-mode part.
    offset = struct.unpack_from("<I", image.setup_header, 0x268 - 0x1F1)[0]
    assert image.kernel[offset : offset + 4] == b"LToP"
    # startup_64 begins with cli; cld (the head64.S entry), startup_32 with cli; hlt.
    assert image.kernel[0x200:0x202] == b"\xfa\xfc" and image.kernel[:2] == b"\xfa\xf4"
