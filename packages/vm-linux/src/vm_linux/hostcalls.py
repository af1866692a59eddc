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


# ---------------------------------------------------------------------------------- path resolution

#: ``openat2`` is number 437 on every 64-bit Linux (it came after the syscall tables were unified).
OPENAT2_NR = 437
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
AT_EMPTY_PATH = 0x1000
AT_SYMLINK_NOFOLLOW = 0x100


class OpenHow(ctypes.Structure):
    """``struct open_how`` (include/uapi/linux/openat2.h)."""

    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dir_fd: int, path: str, flags: int, mode: int, resolve: int) -> int:
    """The host's ``openat2(dir_fd, path, {flags, mode, resolve})``: a new host fd (OSError on failure)."""
    how = OpenHow(flags & 0xFFFFFFFF, mode, resolve)
    fd = _libc.syscall(OPENAT2_NR, dir_fd, os.fsencode(path), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        _raise_errno()
    return int(fd)


def have_openat2() -> bool:
    """Whether this kernel has ``openat2`` with ``RESOLVE_IN_ROOT`` (Linux 5.6+; seccomp may refuse it)."""
    try:
        fd = openat2(AT_FDCWD, "/", os.O_PATH | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    except OSError:
        return False
    os.close(fd)
    return True


def renameat2_at(old_dir: int, old: str, new_dir: int, new: str, flags: int) -> None:
    """``renameat2(old_dir, old, new_dir, new, flags)`` on the host."""
    if _libc.renameat2(old_dir, os.fsencode(old), new_dir, os.fsencode(new), ctypes.c_uint(flags)) != 0:
        _raise_errno()


def fchownat_empty(fd: int, uid: int, gid: int) -> None:
    """``fchownat(fd, "", uid, gid, AT_EMPTY_PATH)``: change the owner of what O_PATH ``fd`` names."""
    if _libc.fchownat(fd, b"", ctypes.c_uint32(uid), ctypes.c_uint32(gid), AT_EMPTY_PATH) != 0:
        _raise_errno()


def utimensat_empty(fd: int, times: bytes | None, flags: int) -> None:
    """``utimensat(fd, "", times, AT_EMPTY_PATH | flags)`` (``times``: two raw ``struct timespec``)."""
    buf = None if times is None else ctypes.create_string_buffer(times, len(times))
    if _libc.utimensat(fd, b"", buf, AT_EMPTY_PATH | flags) != 0:
        _raise_errno()


def linkat_empty(fd: int, new_dir: int, new: str) -> None:
    """``linkat(fd, "", new_dir, new, AT_EMPTY_PATH)``: a new name for the file ``fd`` names."""
    if _libc.linkat(fd, b"", new_dir, os.fsencode(new), AT_EMPTY_PATH) != 0:
        _raise_errno()


STATFS_SIZE = 120  # struct statfs of every 64-bit Linux ABI vm serves (__statfs_word is long)


def fstatfs(fd: int) -> bytes:
    """The host's ``struct statfs`` for ``fd`` (an O_PATH fd is enough)."""
    buf = ctypes.create_string_buffer(STATFS_SIZE)
    if _libc.fstatfs(fd, buf) != 0:
        _raise_errno()
    return buf.raw


def current_umask() -> int:
    """This process's umask (the guest's: ``umask`` acts on the VM process)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
