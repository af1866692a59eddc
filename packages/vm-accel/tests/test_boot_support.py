"""Helpers of the boot tests (no tests here): building the test kernel, synthetic bzImages, the bootparam.h oracle."""

from __future__ import annotations

import importlib.util
import shutil
import struct
import subprocess
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[3]
KERNEL_BUILD_SCRIPT = REPO_ROOT / "guest" / "kernel" / "build.py"
BOOTPARAM_HEADERS = (
    Path("/usr/include/x86_64-linux-gnu/asm/bootparam.h"),
    Path("/usr/include/asm/bootparam.h"),
)


def kernel_build_module() -> ModuleType:
    """guest/kernel/build.py, loaded by path."""
    spec = importlib.util.spec_from_file_location("vm_guest_kernel_build", KERNEL_BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bootparam_header_missing() -> str | None:
    """Why the bootparam.h oracle cannot run here, or None."""
    if shutil.which("gcc") is None:
        return "no host gcc (apt-get install gcc)"
    if not any(path.exists() for path in BOOTPARAM_HEADERS):
        return "no asm/bootparam.h (apt-get install linux-libc-dev)"
    return None


def compile_c(source: str, directory: Path, name: str) -> Path:
    """Compile a host C program; returns the executable."""
    c_file = directory / f"{name}.c"
    c_file.write_text(source)
    exe = directory / name
    subprocess.run(["gcc", "-O0", "-Wall", "-o", str(exe), str(c_file)], check=True, capture_output=True)
    return exe


def synthetic_bzimage(
    *,
    version: int = 0x020F,
    setup_sects: int = 1,
    xloadflags: int = 0x3,
    loadflags: int = 0x1,
    pref_address: int = 0x1000000,
    init_size: int = 0x3000,
    cmdline_size: int = 2047,
    initrd_addr_max: int = 0x7FFFFFFF,
    kernel_alignment: int = 0x200000,
    relocatable: int = 0,
    kernel: bytes = b"\xf4" * 0x300,
    magic: bytes = b"HdrS",
    boot_flag: int = 0xAA55,
    header_length_byte: int = 0x6A,
) -> bytes:
    """A bzImage whose setup header holds exactly these values (offsets: bootparam.h)."""
    setup = bytearray((setup_sects + 1) * 512 if setup_sects else 5 * 512)
    setup[0x1F1] = setup_sects
    struct.pack_into("<I", setup, 0x1F4, (len(kernel) + 15) // 16)
    struct.pack_into("<H", setup, 0x1FE, boot_flag)
    setup[0x200] = 0xEB
    setup[0x201] = header_length_byte
    setup[0x202:0x206] = magic
    struct.pack_into("<H", setup, 0x206, version)
    setup[0x211] = loadflags
    struct.pack_into("<I", setup, 0x22C, initrd_addr_max)
    struct.pack_into("<I", setup, 0x230, kernel_alignment)
    setup[0x234] = relocatable
    struct.pack_into("<H", setup, 0x236, xloadflags)
    struct.pack_into("<I", setup, 0x238, cmdline_size)
    struct.pack_into("<Q", setup, 0x258, pref_address)
    struct.pack_into("<I", setup, 0x260, init_size)
    return bytes(setup) + kernel
