"""vm-linux's x86-64 ABI against the host: the kernel's syscall numbers, struct stat, arch_prctl errors.

Oracles: the installed kernel header ``<asm/unistd_64.h>``, the bytes the
host kernel writes for ``stat()`` (captured by a C program built with the
host gcc), and the host kernel's own ``arch_prctl`` answers.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_accel.kvm.state import FpuState
from vm_accel.usermode.cpu_setup import fpu_from_fxsave, fxsave_image
from vm_linux.syscalls.x86_64 import (
    ARCH_GET_FS,
    ARCH_SET_FS,
    ARCH_SET_GS,
    X86_64_SYSCALLS,
    pack_x86_64_stat,
    x86_64_abi,
)
from vm_mem import PROT_READ, PROT_WRITE, AddressSpace
from vm_translate.x86_64.archinfo import TASK_SIZE_MAX, X86_64

X86_64_ABI = x86_64_abi(X86_64)

UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
ON_X86_64 = platform.machine() == "x86_64"


@pytest.mark.skipif(not UNISTD.exists(), reason="the x86-64 kernel headers (linux-libc-dev) are not installed")
def test_syscall_table_is_the_kernel_header() -> None:
    numbers = {int(n): name for name, n in re.findall(r"#define __NR_(\w+) (\d+)", UNISTD.read_text())}
    assert numbers == X86_64_SYSCALLS


@pytest.mark.skipif(not ON_X86_64 or shutil.which("gcc") is None, reason="needs an x86-64 host with gcc")
def test_struct_stat_bytes_are_the_kernels(tmp_path: Path) -> None:
    source = tmp_path / "stat_bytes.c"
    source.write_text(
        "#include <stdio.h>\n#include <sys/stat.h>\n"
        "int main(int c, char **v) { struct stat s; (void)c; if (stat(v[1], &s)) return 1;\n"
        "  for (unsigned i = 0; i < sizeof s; i++) printf(\"%02x\", ((unsigned char *)&s)[i]); return 0; }\n"
    )
    binary = tmp_path / "stat_bytes"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(source)], check=True)
    target = tmp_path / "file.txt"
    target.write_bytes(b"x" * 12345)
    os.utime(target, ns=(1_600_000_000_123_456_789, 1_700_000_000_987_654_321))
    native = bytes.fromhex(subprocess.run([str(binary), str(target)], capture_output=True, text=True).stdout)
    assert pack_x86_64_stat(os.stat(target)) == native


class _Cpu:
    def __init__(self) -> None:
        self.regs = [0] * X86_64.register_count
        self.pc = 0
        self.mem = AddressSpace()
        self.icount = 0


def _arch_prctl(cpu: _Cpu, code: int, arg: int) -> int:
    from vm_linux.fdtable import FdTable
    from vm_linux.fs import GuestFilesystem
    from vm_linux.state import ProcessState
    from vm_linux.syscalls import SyscallDispatcher

    state = ProcessState(X86_64_ABI, cpu.mem, GuestFilesystem(None, "/bin/true"), FdTable.with_std_streams(0, 1, 2))
    rax, rdi, rsi = X86_64.indices("rax", "rdi", "rsi")
    cpu.regs[rax], cpu.regs[rdi], cpu.regs[rsi] = 158, code, arg
    SyscallDispatcher(X86_64_ABI).dispatch(state, cpu)
    result = cpu.regs[rax]
    return result - (1 << 64) if result >> 63 else result


def test_arch_prctl_sets_and_reads_the_fs_base() -> None:
    cpu = _Cpu()
    cpu.mem.map(0x10000, 0x1000, PROT_READ | PROT_WRITE)
    assert _arch_prctl(cpu, ARCH_SET_FS, 0x7F00_1234_5000) == 0
    assert cpu.regs[X86_64.index("fs_base")] == 0x7F00_1234_5000
    assert _arch_prctl(cpu, ARCH_GET_FS, 0x10008) == 0
    assert cpu.mem.load(0x10008, 8) == 0x7F00_1234_5000
    assert _arch_prctl(cpu, ARCH_GET_FS, 0x90000) == -errno.EFAULT


@pytest.mark.skipif(not ON_X86_64, reason="compares with the host kernel's arch_prctl")
@pytest.mark.parametrize(("code", "arg"), [(ARCH_SET_GS, TASK_SIZE_MAX), (ARCH_SET_GS, 1 << 63), (0x9999, 0)])
def test_arch_prctl_errors_match_the_host_kernel(code: int, arg: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    assert libc.syscall(ctypes.c_long(158), ctypes.c_long(code), ctypes.c_ulong(arg)) == -1
    assert _arch_prctl(_Cpu(), code, arg) == -ctypes.get_errno()


registers16 = st.binary(min_size=16, max_size=16)


@settings(max_examples=50, deadline=None)
@given(
    fpr=st.lists(st.binary(min_size=10, max_size=10).map(lambda b: b + bytes(6)), min_size=8, max_size=8),
    xmm=st.lists(registers16, min_size=16, max_size=16),
    words=st.tuples(*[st.integers(0, 0xFFFF)] * 3),
    ftw=st.integers(0, 0xFF),
    pointers=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
)
def test_fxsave_image_round_trips(
    fpr: list[bytes], xmm: list[bytes], words: tuple[int, int, int], ftw: int, pointers: tuple[int, int]
) -> None:
    fpu = FpuState(fpr=tuple(fpr), fcw=words[0], fsw=words[1], ftwx=ftw, last_opcode=words[2] & 0x7FF,
                   last_ip=pointers[0], last_dp=pointers[1], xmm=tuple(xmm), mxcsr=0x1F80)  # fmt: skip
    image = fxsave_image(fpu)
    assert len(image) == 512
    assert image[24:28] == (0x1F80).to_bytes(4, "little")  # MXCSR at byte 24 (SDM FXSAVE layout)
    assert image[160:176] == xmm[0] and image[32:48] == fpr[0]
    assert fpu_from_fxsave(image) == fpu
