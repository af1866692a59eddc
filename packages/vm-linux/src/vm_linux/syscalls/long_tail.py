"""The long tail of calls C libraries and coreutils make: file-data movement, locks, sync, caps, odds.

``sendfile``, ``copy_file_range``, ``splice``, ``tee``, ``fallocate``,
``flock``, ``sync``/``syncfs``/``sync_file_range``, ``fadvise64`` and
``memfd_create`` act on the host descriptors behind the guest's (the guest
never names another); a call that may block on a pipe or a lock waits through
:mod:`vm_linux.waiting`, so a guest signal interrupts it. ``times`` reports the
VM process's CPU times in clock ticks (``USER_HZ`` = 100), ``capget`` the
host's capabilities of the VM process (what qemu-user reports too),
``membarrier`` is the host's (the guest's one thread is the VM's), ``mincore``
says which guest pages exist (a page never touched is not resident, as for
untouched anonymous memory under Linux), ``personality`` keeps the guest's
persona.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import struct
from collections.abc import Sequence
from typing import Any

from vm_linux.guest_errno import GuestErrno
from vm_linux.state import ProcessState
from vm_linux.syscalls.fileio import MAX_RW_COUNT, writable
from vm_linux.syscalls.registry import s32, s64, syscall
from vm_linux.waiting import POLLIN, POLLOUT, Restart, deadline_after, wait, wait_ready

_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
_libc.tee.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint]
_libc.tee.restype = ctypes.c_ssize_t
_libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
_libc.syscall.restype = ctypes.c_long

MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_HUGETLB = 1, 2, 4
MFD_NAME_MAX = 249
LOCK_NB = 4
SPLICE_F_NONBLOCK = 2
USER_HZ = 100
PER_QUERY = 0xFFFFFFFF
CAP_VERSIONS = {0x19980330: 1, 0x20071026: 2, 0x20080522: 2}
CAP_VERSION_3 = 0x20080522
#: the host's membarrier number (only hosts vm runs on)
_HOST_MEMBARRIER = {"x86_64": 324, "aarch64": 283, "riscv64": 283}.get(platform.machine())
PAGE = 4096


def _check(result: int) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def _is_pipe_like(host_fd: int) -> bool:
    import stat

    return not stat.S_ISREG(os.fstat(host_fd).st_mode)


def _read_offset(st: ProcessState, ptr: int) -> int | None:
    if not ptr:
        return None
    (offset,) = struct.unpack("<q", st.mem.read(ptr, 8))
    if offset < 0:
        raise GuestErrno(errno.EINVAL)
    return int(offset)


def _write_offset(st: ProcessState, ptr: int, offset: int | None, moved: int) -> None:
    if ptr and offset is not None:
        st.mem.write(ptr, struct.pack("<q", offset + moved))


@syscall("memfd_create")
def sys_memfd_create(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    raw = st.mem.read_cstring(a[0], MFD_NAME_MAX + 1)
    flags = a[1] & 0xFFFFFFFF
    if len(raw) > MFD_NAME_MAX or flags & ~(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | (0x3F << 26)):
        raise GuestErrno(errno.EINVAL)
    host_flags = os.MFD_CLOEXEC | (os.MFD_ALLOW_SEALING if flags & MFD_ALLOW_SEALING else 0)
    if flags & MFD_HUGETLB:
        host_flags |= flags & (os.MFD_HUGETLB | (0x3F << 26))
    host = os.memfd_create(os.fsdecode(raw), host_flags)
    return st.fds.install(host, cloexec=bool(flags & MFD_CLOEXEC))


@syscall("sendfile")
def sys_sendfile(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    out_fd, in_fd = st.fds.host(s32(a[0])), st.fds.host(s32(a[1]))
    offset = _read_offset(st, a[2])
    count = min(a[3], MAX_RW_COUNT)
    if _is_pipe_like(out_fd):
        wait_ready(st, out_fd, POLLOUT)
    moved = os.sendfile(out_fd, in_fd, offset, count)
    _write_offset(st, a[2], offset, moved)
    return moved


@syscall("copy_file_range")
def sys_copy_file_range(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    in_fd, out_fd = st.fds.host(s32(a[0])), st.fds.host(s32(a[2]))
    off_in, off_out = _read_offset(st, a[1]), _read_offset(st, a[3])
    if a[5]:
        raise GuestErrno(errno.EINVAL)
    moved = os.copy_file_range(in_fd, out_fd, min(a[4], MAX_RW_COUNT), off_in, off_out)
    _write_offset(st, a[1], off_in, moved)
    _write_offset(st, a[3], off_out, moved)
    return moved


@syscall("splice")
def sys_splice(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    in_fd, out_fd = st.fds.host(s32(a[0])), st.fds.host(s32(a[2]))
    off_in, off_out = _read_offset(st, a[1]), _read_offset(st, a[3])
    flags = a[5] & 0xFFFFFFFF
    if not flags & SPLICE_F_NONBLOCK:
        if off_in is None and _is_pipe_like(in_fd):
            wait_ready(st, in_fd, POLLIN)
        if off_out is None and _is_pipe_like(out_fd):
            wait_ready(st, out_fd, POLLOUT)
    moved = os.splice(in_fd, out_fd, min(a[4], MAX_RW_COUNT), off_in, off_out, flags)
    _write_offset(st, a[1], off_in, moved)
    _write_offset(st, a[3], off_out, moved)
    return moved


@syscall("tee")
def sys_tee(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    in_fd, out_fd = st.fds.host(s32(a[0])), st.fds.host(s32(a[1]))
    flags = a[3] & 0xFFFFFFFF
    if not flags & SPLICE_F_NONBLOCK:
        wait_ready(st, in_fd, POLLIN)
    return _check(_libc.tee(in_fd, out_fd, min(a[2], MAX_RW_COUNT), flags))


@syscall("fallocate")
def sys_fallocate(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    host = st.fds.host(s32(a[0]))
    if _libc.fallocate(host, s32(a[1]), s64(a[2]), s64(a[3])) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return 0


@syscall("fadvise64")
def sys_fadvise64(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    os.posix_fadvise(st.fds.host(s32(a[0])), s64(a[1]), s64(a[2]), s32(a[3]))
    return 0


@syscall("flock")
def sys_flock(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    host, op = st.fds.host(s32(a[0])), s32(a[1])  # the host kernel validates op, as under qemu-user
    while True:
        try:
            fcntl.flock(host, op | LOCK_NB)
            return 0
        except BlockingIOError:
            if op & LOCK_NB:
                raise
        # held by another host process: look again every 10 ms, interruptibly (ERESTARTSYS, as Linux)
        wait(st, deadline_ns=deadline_after(10_000_000), restart=Restart.SYS)


@syscall("sync")
def sys_sync(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    os.sync()
    return 0


@syscall("syncfs")
def sys_syncfs(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    _check(_libc.syncfs(st.fds.host(s32(a[0]))))
    return 0


@syscall("sync_file_range")
def sys_sync_file_range(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    _check(_libc.sync_file_range(st.fds.host(s32(a[0])), s64(a[1]), s64(a[2]), a[3] & 0xFFFFFFFF))
    return 0


@syscall("times")
def sys_times(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    now = os.times()
    if a[0]:
        ticks = [
            round(value * USER_HZ) for value in (now.user, now.system, now.children_user, now.children_system)
        ]
        st.mem.write(a[0], struct.pack("<4q", *ticks))
    return round(now.elapsed * USER_HZ)


@syscall("capget")
def sys_capget(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    header_ptr, data_ptr = a[0], a[1]
    version, pid = struct.unpack("<Ii", st.mem.read(header_ptr, 8))
    structs = CAP_VERSIONS.get(version)
    if structs is None:  # the kernel's version goes back; a probe (no data pointer) succeeds
        st.mem.write(header_ptr, struct.pack("<I", CAP_VERSION_3))
        if not data_ptr:
            return 0
        raise GuestErrno(errno.EINVAL)
    if pid < 0 or pid not in (0, st.pid):
        raise GuestErrno(errno.EINVAL if pid < 0 else errno.ESRCH)
    if not data_ptr:
        return 0
    header = ctypes.create_string_buffer(struct.pack("<Ii", version, 0), 8)
    data = ctypes.create_string_buffer(12 * structs)
    _check(_libc.capget(header, data))
    st.mem.write(data_ptr, data.raw)
    return 0


@syscall("membarrier")
def sys_membarrier(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    if _HOST_MEMBARRIER is None:
        raise GuestErrno(errno.ENOSYS)
    return _check(
        _libc.syscall(
            _HOST_MEMBARRIER,
            ctypes.c_int(s32(a[0])),
            ctypes.c_uint(a[1] & 0xFFFFFFFF),
            ctypes.c_int(s32(a[2])),
        )
    )


@syscall("mincore")
def sys_mincore(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    addr, length, vec = a[0], a[1], a[2]
    if addr % PAGE:
        raise GuestErrno(errno.EINVAL)
    pages = (length + PAGE - 1) // PAGE
    if pages == 0:
        return 0
    if addr + pages * PAGE > st.abi.user_address_limit or not st.mem.is_mapped(addr, pages * PAGE):
        raise GuestErrno(errno.ENOMEM)
    if not writable(st.mem, vec, pages):
        raise GuestErrno(errno.EFAULT)
    present = getattr(st.mem, "pages", None)  # touched pages (an accelerator's memory is all resident)
    first = addr // PAGE
    out = bytes(1 if present is None or first + i in present else 0 for i in range(pages))
    st.mem.write(vec, out)
    return 0


@syscall("personality")
def sys_personality(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    old = st.personality
    persona = a[0] & 0xFFFFFFFF
    if persona != PER_QUERY:
        st.personality = persona
    return old
