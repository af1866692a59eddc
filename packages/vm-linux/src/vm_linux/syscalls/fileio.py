"""System calls on open file descriptors: read/write and friends, dup, pipes, fcntl, ioctl, getdents64.

Data moves between guest memory and the host descriptor in chunks of at most
1 MiB, so a huge ``count`` never makes the VM allocate more than that at a
time. A read never consumes input it cannot store: the destination pages are
checked first (``EFAULT`` when the first chunk's are bad, a short count
later). Writing to a pipe with no reader returns ``-EPIPE`` and makes
``SIGPIPE`` pending, as the kernel does. A blocking ``read``/``write`` on
anything but a regular file (pipe, tty, socket, eventfd, timerfd) first waits
in :func:`vm_linux.waiting.wait_ready`, so a guest signal interrupts it
(``EINTR``, or a restart under ``SA_RESTART``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
from collections.abc import Sequence
from typing import Any

from vm_core.errors import MemoryFault

from vm_linux import hostcalls
from vm_linux.guest_errno import GuestErrno
from vm_linux.signals import SI_USER, SIGPIPE, make_siginfo
from vm_linux.state import ProcessState
from vm_linux.syscalls import openflags
from vm_linux.syscalls.registry import s32, s64, syscall
from vm_linux.syscalls.structs import FLOCK_SIZE, IOVEC, TERMIOS_SIZE, WINSIZE_SIZE
from vm_linux.vfs import virtual_dirents
from vm_linux.waiting import POLLIN, POLLOUT, wait_ready

CHUNK = 1 << 20
MAX_RW_COUNT = 0x7FFFF000
IOV_MAX = 1024
PAGE = 4096
PROT_WRITE = 2

F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_GETLK, F_SETLK, F_SETLKW = 0, 1, 2, 3, 4, 5, 6, 7
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
F_DUPFD_CLOEXEC = 1030
F_SETPIPE_SZ, F_GETPIPE_SZ, F_ADD_SEALS, F_GET_SEALS = 1031, 1032, 1033, 1034
FD_CLOEXEC = 1

TCGETS, TCSETS, TCSETSW, TCSETSF = 0x5401, 0x5402, 0x5403, 0x5404
TIOCGPGRP, TIOCGWINSZ, TIOCSWINSZ, FIONREAD, FIONBIO = 0x540F, 0x5413, 0x5414, 0x541B, 0x5421
FIONCLEX, FIOCLEX = 0x5450, 0x5451
_IOCTL_OUT = {TCGETS: TERMIOS_SIZE, TIOCGWINSZ: WINSIZE_SIZE, FIONREAD: 4, TIOCGPGRP: 4}
_IOCTL_IN = {TCSETS: TERMIOS_SIZE, TCSETSW: TERMIOS_SIZE, TCSETSF: TERMIOS_SIZE, TIOCSWINSZ: WINSIZE_SIZE}


def writable(mem: Any, addr: int, n: int) -> bool:
    """Whether every page of guest ``[addr, addr+n)`` is mapped writable (O(mappings in the range))."""
    return bool(mem.has_access(addr, max(n, 1), PROT_WRITE))


def _is_regular(host_fd: int) -> bool:
    return stat.S_ISREG(os.fstat(host_fd).st_mode)


def read_to_guest(st: ProcessState, host_fd: int, buf: int, count: int, offset: int | None = None) -> int:
    """Read up to ``count`` bytes from ``host_fd`` into guest ``buf``; the byte count read."""
    count = min(count, MAX_RW_COUNT)
    if count == 0:
        os.read(host_fd, 0) if offset is None else os.pread(host_fd, 0, offset)
        return 0
    regular = _is_regular(host_fd)
    if not regular and offset is None:  # a pipe, tty, socket or event object: wait, interruptibly
        wait_ready(st, host_fd, POLLIN)
    total = 0
    while total < count:
        want = min(count - total, CHUNK)
        if not writable(st.mem, buf + total, want):
            if total == 0:
                raise GuestErrno(errno.EFAULT)
            break
        data = os.read(host_fd, want) if offset is None else os.pread(host_fd, want, offset + total)
        st.mem.write(buf + total, data)
        total += len(data)
        if len(data) < want or not regular:
            break
    return total


def _broken_pipe(st: ProcessState) -> int:
    st.signals.queue(SIGPIPE, make_siginfo(SIGPIPE, SI_USER, pid=st.pid, uid=os.getuid()))
    return -errno.EPIPE


def write_from_guest(st: ProcessState, host_fd: int, buf: int, count: int, offset: int | None = None) -> int:
    """Write ``count`` bytes from guest ``buf`` to ``host_fd``; the byte count written."""
    count = min(count, MAX_RW_COUNT)
    total = 0
    if offset is None and not _is_regular(host_fd):
        wait_ready(st, host_fd, POLLOUT)
    try:
        while total < count or count == 0:
            want = min(count - total, CHUNK)
            try:
                data = st.mem.read(buf + total, want)
            except MemoryFault:
                if total == 0:
                    raise
                break
            done = os.write(host_fd, data) if offset is None else os.pwrite(host_fd, data, offset + total)
            total += done
            if done < want or count == 0:
                break
    except BrokenPipeError:
        if total == 0:
            return _broken_pipe(st)
    return total


@syscall("read")
def sys_read(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    entry = st.fds.get(s32(a[0]))
    if entry.special is not None:  # a signalfd: records of the guest's pending signals
        return int(entry.special.read(st, entry.host_fd, a[1], a[2]))
    return read_to_guest(st, entry.host_fd, a[1], a[2])


@syscall("write")
def sys_write(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return write_from_guest(st, st.fds.host(s32(a[0])), a[1], a[2])


@syscall("pread64")
def sys_pread64(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    if s64(a[3]) < 0:
        raise GuestErrno(errno.EINVAL)
    return read_to_guest(st, st.fds.host(s32(a[0])), a[1], a[2], s64(a[3]))


@syscall("pwrite64")
def sys_pwrite64(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    if s64(a[3]) < 0:
        raise GuestErrno(errno.EINVAL)
    return write_from_guest(st, st.fds.host(s32(a[0])), a[1], a[2], s64(a[3]))


def _iovecs(st: ProcessState, ptr: int, count: int) -> list[tuple[int, int]]:
    if count < 0 or count > IOV_MAX:
        raise GuestErrno(errno.EINVAL)
    if count == 0:
        return []
    raw = st.mem.read(ptr, IOVEC.size * count)
    vecs = [IOVEC.unpack_from(raw, i * IOVEC.size) for i in range(count)]
    if any(length >> 63 for _base, length in vecs):
        raise GuestErrno(errno.EINVAL)
    return vecs


@syscall("writev")
def sys_writev(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    host_fd = st.fds.host(s32(a[0]))
    parts = []
    size = 0
    for base, length in _iovecs(st, a[1], s32(a[2])):
        length = min(length, MAX_RW_COUNT - size)
        if length:
            try:
                parts.append(st.mem.read(base, length))
            except MemoryFault:
                if not parts:
                    raise
                break
            size += length
    if not _is_regular(host_fd):
        wait_ready(st, host_fd, POLLOUT)
    try:
        return os.writev(host_fd, parts) if parts else os.write(host_fd, b"")
    except BrokenPipeError:
        return _broken_pipe(st)


@syscall("readv")
def sys_readv(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    host_fd = st.fds.host(s32(a[0]))
    vecs = [(base, length) for base, length in _iovecs(st, a[1], s32(a[2])) if length]
    for base, length in vecs:
        if not writable(st.mem, base, min(length, CHUNK)):
            raise GuestErrno(errno.EFAULT)
    total = min(sum(length for _b, length in vecs), CHUNK)
    if not _is_regular(host_fd):
        wait_ready(st, host_fd, POLLIN)
    data = os.read(host_fd, total)
    done = 0
    for base, length in vecs:
        piece = data[done : done + length]
        if not piece:
            break
        st.mem.write(base, piece)
        done += len(piece)
    return done


@syscall("lseek")
def sys_lseek(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    entry = st.fds.get(s32(a[0]))
    if entry.virtual is not None and entry.virtual.is_dir:
        if s32(a[2]) != os.SEEK_SET or s64(a[1]) < 0:
            raise GuestErrno(errno.EINVAL)
        entry.virtual.position = s64(a[1])
        return s64(a[1])
    return os.lseek(entry.host_fd, s64(a[1]), s32(a[2]))


@syscall("close")
def sys_close(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    st.fds.close(s32(a[0]))
    return 0


@syscall("dup")
def sys_dup(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return st.fds.dup(s32(a[0]))


@syscall("dup3")
def sys_dup3(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    old, new, flags = s32(a[0]), s32(a[1]), s32(a[2])
    if flags & ~openflags.O_CLOEXEC or old == new:
        raise GuestErrno(errno.EINVAL)
    return st.fds.dup_to(old, new, cloexec=bool(flags & openflags.O_CLOEXEC))


@syscall("pipe2")
def sys_pipe2(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    flags = s32(a[1])
    allowed = openflags.O_CLOEXEC | openflags.O_NONBLOCK | openflags.O_DIRECT
    if flags & ~allowed:
        raise GuestErrno(errno.EINVAL)
    if not writable(st.mem, a[0], 8):
        raise GuestErrno(errno.EFAULT)
    read_end, write_end = os.pipe2(openflags.to_host(flags & ~openflags.O_CLOEXEC) | os.O_CLOEXEC)
    cloexec = bool(flags & openflags.O_CLOEXEC)
    rfd = st.fds.install(read_end, cloexec=cloexec)
    try:
        wfd = st.fds.install(write_end, cloexec=cloexec)
    except GuestErrno:
        st.fds.close(rfd)
        raise
    st.mem.write(a[0], struct.pack("<ii", rfd, wfd))
    return 0


@syscall("fcntl")
def sys_fcntl(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    fd, cmd, arg = s32(a[0]), s32(a[1]), a[2]
    entry = st.fds.get(fd)
    if cmd in (F_DUPFD, F_DUPFD_CLOEXEC):
        lowest = s32(arg)
        if lowest < 0 or lowest >= st.fds.limit:
            raise GuestErrno(errno.EINVAL)
        return st.fds.dup(fd, lowest=lowest, cloexec=cmd == F_DUPFD_CLOEXEC)
    if cmd == F_GETFD:
        return FD_CLOEXEC if entry.cloexec else 0
    if cmd == F_SETFD:
        entry.cloexec = bool(arg & FD_CLOEXEC)
        return 0
    if cmd == F_GETFL:
        return openflags.to_guest(fcntl.fcntl(entry.host_fd, fcntl.F_GETFL))
    if cmd == F_SETFL:
        return fcntl.fcntl(entry.host_fd, fcntl.F_SETFL, openflags.to_host(s32(arg)))
    if cmd in (F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW):
        lock = st.mem.read(arg, FLOCK_SIZE)
        answer = fcntl.fcntl(entry.host_fd, cmd, lock)
        if cmd in (F_GETLK, F_OFD_GETLK):
            st.mem.write(arg, answer)
        return 0
    if cmd in (F_SETPIPE_SZ, F_GETPIPE_SZ, F_ADD_SEALS, F_GET_SEALS):
        return fcntl.fcntl(entry.host_fd, cmd, s32(arg))
    raise GuestErrno(errno.EINVAL)


@syscall("ioctl")
def sys_ioctl(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    fd, request, arg = s32(a[0]), a[1] & 0xFFFFFFFF, a[2]
    entry = st.fds.get(fd)
    if request == FIOCLEX or request == FIONCLEX:
        entry.cloexec = request == FIOCLEX
        return 0
    if request in _IOCTL_OUT:
        size = _IOCTL_OUT[request]
        if not writable(st.mem, arg, size):
            raise GuestErrno(errno.EFAULT)
        st.mem.write(arg, fcntl.ioctl(entry.host_fd, request, bytes(size)))
        return 0
    if request in _IOCTL_IN:
        fcntl.ioctl(entry.host_fd, request, st.mem.read(arg, _IOCTL_IN[request]))
        return 0
    if request == FIONBIO:
        fcntl.ioctl(entry.host_fd, request, st.mem.read(arg, 4))
        return 0
    raise GuestErrno(errno.ENOTTY)


@syscall("getdents64")
def sys_getdents64(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    entry = st.fds.get(s32(a[0]))
    count = min(a[2] & 0xFFFFFFFF, CHUNK)
    if not writable(st.mem, a[1], count):
        raise GuestErrno(errno.EFAULT)
    if entry.virtual is not None:
        data = virtual_dirents(entry.virtual, count)
    else:
        data = hostcalls.getdents64(entry.host_fd, count)
    st.mem.write(a[1], data)
    return len(data)


@syscall("fsync")
def sys_fsync(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    os.fsync(st.fds.host(s32(a[0])))
    return 0


@syscall("fdatasync")
def sys_fdatasync(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    os.fdatasync(st.fds.host(s32(a[0])))
    return 0


@syscall("ftruncate")
def sys_ftruncate(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    length = s64(a[1])
    if length < 0:
        raise GuestErrno(errno.EINVAL)
    os.ftruncate(st.fds.host(s32(a[0])), length)
    return 0
