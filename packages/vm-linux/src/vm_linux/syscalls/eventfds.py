"""Descriptors that deliver events: eventfd, timerfd and signalfd.

``eventfd`` and ``timerfd`` are the host's objects (``os.eventfd``; the C
library's ``timerfd_create``/``timerfd_settime``/``timerfd_gettime``, whose
``struct itimerspec`` is the guest's on every 64-bit ABI), owned by the guest
alone: reads, writes, ``poll`` and ``epoll`` on them are the host kernel's,
and blocking reads go through :func:`vm_linux.waiting.wait_ready`.

A signalfd must read the guest's pending signals, which only vm knows, so it
is virtual: :class:`SignalFd` holds the mask, and its descriptor's host object
is an eventfd that :meth:`SignalFd.refresh` keeps readable exactly while a
signal of the mask is pending (vm refreshes before every wait), so ``poll``,
``select`` and ``epoll`` see it ready as Linux would. ``read`` takes the
pending signals of the mask off the guest and returns one
``struct signalfd_siginfo`` (128 bytes) each.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
from collections.abc import Sequence
from typing import Any

from vm_linux.guest_errno import GuestErrno
from vm_linux.signals import SIGSET_SIZE, UNBLOCKABLE, sigbit
from vm_linux.state import ProcessState
from vm_linux.syscalls.registry import s32, syscall
from vm_linux.waiting import Restart, wait

O_NONBLOCK = 0o4000
O_CLOEXEC = 0o2000000
EFD_SEMAPHORE = 1
TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET = 1, 2
TIMERFD_CLOCKS = frozenset({0, 1, 7, 8, 9})  # REALTIME, MONOTONIC, BOOTTIME, REALTIME_ALARM, BOOTTIME_ALARM
ITIMERSPEC_SIZE = 32
SIGNALFD_SIGINFO_SIZE = 128
SI_USER, SI_QUEUE, SI_TIMER, SI_TKILL, SI_KERNEL = 0, -1, -2, -6, 0x80
FAULT_SIGNALS = frozenset({4, 5, 7, 8, 11})  # SIGILL SIGTRAP SIGBUS SIGFPE SIGSEGV

_libc = ctypes.CDLL(None, use_errno=True)


def _host_flags(flags: int) -> int:
    """Host ``O_NONBLOCK`` for the guest's; host descriptors are always close-on-exec (the guest's flag is vm's)."""
    return (os.O_NONBLOCK if flags & O_NONBLOCK else 0) | os.O_CLOEXEC


def _check(result: int) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


@syscall("eventfd2")
def sys_eventfd2(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    initval, flags = a[0] & 0xFFFFFFFF, s32(a[1])
    if flags & ~(O_NONBLOCK | O_CLOEXEC | EFD_SEMAPHORE):
        raise GuestErrno(errno.EINVAL)
    host = os.eventfd(initval, _host_flags(flags) | (os.EFD_SEMAPHORE if flags & EFD_SEMAPHORE else 0))
    return st.fds.install(host, cloexec=bool(flags & O_CLOEXEC))


@syscall("eventfd")
def sys_eventfd(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return st.fds.install(os.eventfd(a[0] & 0xFFFFFFFF, os.O_CLOEXEC))


@syscall("timerfd_create")
def sys_timerfd_create(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    clock, flags = s32(a[0]), s32(a[1])
    if clock not in TIMERFD_CLOCKS or flags & ~(O_NONBLOCK | O_CLOEXEC):
        raise GuestErrno(errno.EINVAL)
    host = _check(_libc.timerfd_create(clock, _host_flags(flags)))
    return st.fds.install(host, cloexec=bool(flags & O_CLOEXEC))


@syscall("timerfd_settime")
def sys_timerfd_settime(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    host_fd, flags, new_ptr, old_ptr = st.fds.host(s32(a[0])), s32(a[1]), a[2], a[3]
    if flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET):
        raise GuestErrno(errno.EINVAL)
    new = ctypes.create_string_buffer(st.mem.read(new_ptr, ITIMERSPEC_SIZE), ITIMERSPEC_SIZE)
    old = ctypes.create_string_buffer(ITIMERSPEC_SIZE)
    _check(_libc.timerfd_settime(host_fd, flags, new, old))
    if old_ptr:
        st.mem.write(old_ptr, old.raw)
    return 0


@syscall("timerfd_gettime")
def sys_timerfd_gettime(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    current = ctypes.create_string_buffer(ITIMERSPEC_SIZE)
    _check(_libc.timerfd_gettime(st.fds.host(s32(a[0])), current))
    st.mem.write(a[1], current.raw)
    return 0


def signalfd_siginfo(info: bytes) -> bytes:
    """``struct signalfd_siginfo`` from a guest ``siginfo_t`` (Linux's ``signalfd_copyinfo``)."""
    signo, err, code = struct.unpack_from("<iii", info)
    pid = uid = tid = overrun = status = 0
    ptr = addr = 0
    if code == SI_TIMER:
        tid, overrun, ptr = struct.unpack_from("<iiQ", info, 16)
    elif code > 0 and code != SI_KERNEL and signo in FAULT_SIGNALS:
        (addr,) = struct.unpack_from("<Q", info, 16)
    else:
        pid, uid = struct.unpack_from("<iI", info, 16)
        if code == SI_QUEUE:
            (ptr,) = struct.unpack_from("<Q", info, 24)
    head = struct.pack(
        "<IiiIIiIIIIiiQQQQ",
        signo,
        err,
        code,
        pid & 0xFFFFFFFF,
        uid,
        0,
        tid & 0xFFFFFFFF,
        0,
        overrun & 0xFFFFFFFF,
        0,
        status,
        ptr & 0xFFFFFFFF,
        ptr,
        0,
        0,
        addr,
    )
    return head.ljust(SIGNALFD_SIGINFO_SIZE, b"\0")


class SignalFd:
    """A guest signalfd (module docstring): its mask and whether its host eventfd reads as ready."""

    #: what ``readlink("/proc/self/fd/N")`` shows, as Linux
    link_text = "anon_inode:[signalfd]"

    def __init__(self, mask: int) -> None:
        self.mask = mask
        self.signalled = False

    def wanted(self, st: ProcessState) -> int | None:
        return min((signo for signo in st.signals.pending if self.mask & sigbit(signo)), default=None)

    def refresh(self, st: ProcessState, host_fd: int) -> None:
        """Make the eventfd behind ``host_fd`` (every guest copy shares it) ready iff a signal is pending."""
        ready = self.wanted(st) is not None
        if ready and not self.signalled:
            os.eventfd_write(host_fd, 1)
        elif not ready and self.signalled:
            os.eventfd_read(host_fd)  # the count is 1: this never blocks
        self.signalled = ready

    def read(self, st: ProcessState, host_fd: int, buf: int, count: int) -> int:
        if count < SIGNALFD_SIGINFO_SIZE:
            raise GuestErrno(errno.EINVAL)
        if self.wanted(st) is None:
            if fcntl.fcntl(host_fd, fcntl.F_GETFL) & os.O_NONBLOCK:
                raise GuestErrno(errno.EAGAIN)
            wait(st, restart=Restart.SYS, until=lambda: self.wanted(st) is not None)
        out = b""
        while len(out) + SIGNALFD_SIGINFO_SIZE <= count and (signo := self.wanted(st)) is not None:
            out += signalfd_siginfo(st.signals.pending.pop(signo))
        st.mem.write(buf, out)
        self.refresh(st, host_fd)
        return len(out)


def _read_mask(st: ProcessState, ptr: int, size: int) -> int:
    if size != SIGSET_SIZE:
        raise GuestErrno(errno.EINVAL)
    (mask,) = struct.unpack("<Q", st.mem.read(ptr, SIGSET_SIZE))
    return int(mask) & ~UNBLOCKABLE


def _signalfd(st: ProcessState, fd: int, mask: int, flags: int) -> int:
    if flags & ~(O_NONBLOCK | O_CLOEXEC):
        raise GuestErrno(errno.EINVAL)
    if fd != -1:
        entry = st.fds.get(fd)
        if not isinstance(entry.special, SignalFd):
            raise GuestErrno(errno.EINVAL)
        entry.special.mask = mask
        entry.special.refresh(st, entry.host_fd)
        return fd
    host = os.eventfd(0, _host_flags(flags))
    special = SignalFd(mask)
    special.refresh(st, host)
    return st.fds.install(host, cloexec=bool(flags & O_CLOEXEC), special=special)


@syscall("signalfd4")
def sys_signalfd4(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return _signalfd(st, s32(a[0]), _read_mask(st, a[1], a[2]), s32(a[3]))


@syscall("signalfd")
def sys_signalfd(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return _signalfd(st, s32(a[0]), _read_mask(st, a[1], a[2]), 0)
