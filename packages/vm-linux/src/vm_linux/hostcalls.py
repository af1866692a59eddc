"""Host system calls Python's ``os`` module lacks, through ctypes on the host's libc.

``statx``, ``renameat2``, ``getdents64`` and ``sched_getaffinity`` return kernel structures whose
layouts are the same on every 64-bit Linux, so the guest gets the host
kernel's bytes unchanged. Failures raise :class:`OSError` with the host errno,
which the system-call dispatcher hands to the guest negated.
"""

from __future__ import annotations

import ctypes
import os
import platform

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
AT_FDCWD = -100
STATX_SIZE = 256
_GETDENTS64_NUMBERS = {"x86_64": 217, "aarch64": 61, "riscv64": 61, "loongarch64": 61}
GETDENTS64_NR = _GETDENTS64_NUMBERS.get(platform.machine())
_SCHED_GETAFFINITY_NUMBERS = {"x86_64": 204, "aarch64": 123, "riscv64": 123, "loongarch64": 123}
SCHED_GETAFFINITY_NR = _SCHED_GETAFFINITY_NUMBERS.get(platform.machine())


def _raise_errno() -> None:
    code = ctypes.get_errno()
    raise OSError(code, os.strerror(code))


def statx(path: str, flags: int, mask: int, dir_fd: int = AT_FDCWD) -> bytes:
    """The host's ``struct statx`` (256 bytes) for ``path`` relative to ``dir_fd``."""
    buf = ctypes.create_string_buffer(STATX_SIZE)
    if _libc.statx(dir_fd, os.fsencode(path), flags, mask, buf) != 0:
        _raise_errno()
    return buf.raw


def renameat2(old: str, new: str, flags: int) -> None:
    """``renameat2(AT_FDCWD, old, AT_FDCWD, new, flags)`` on the host."""
    if _libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags) != 0:
        _raise_errno()


def getdents64(fd: int, count: int) -> bytes:
    """Up to ``count`` bytes of ``struct linux_dirent64`` records from host directory ``fd``."""
    if GETDENTS64_NR is None:
        raise OSError(38, f"getdents64 is not wired up for host {platform.machine()}")
    buf = ctypes.create_string_buffer(count)
    got = _libc.syscall(GETDENTS64_NR, fd, buf, count)
    if got < 0:
        _raise_errno()
    return buf.raw[:got]


def sched_getaffinity(pid: int, size: int) -> bytes:
    """The host kernel's answer to ``sched_getaffinity(pid, size, buf)``: the bytes it filled in."""
    if SCHED_GETAFFINITY_NR is None:
        raise OSError(38, f"sched_getaffinity is not wired up for host {platform.machine()}")
    buf = ctypes.create_string_buffer(size)
    got = _libc.syscall(SCHED_GETAFFINITY_NR, pid, ctypes.c_size_t(size), buf)
    if got < 0:
        _raise_errno()
    return buf.raw[:got]
