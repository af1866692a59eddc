"""Readiness: ppoll, pselect6, epoll (and x86-64's poll, select, epoll_wait, epoll_create).

Every guest descriptor has a host descriptor of its own (a signalfd's is a
host eventfd kept readable while one of its signals is pending), so readiness
is the host kernel's: ``ppoll``/``pselect6`` wait in
:func:`vm_linux.waiting.wait` on the host descriptors behind the guest's, and
an epoll instance is a host epoll instance (``select.epoll``) whose interest
list holds those host descriptors, with the guest's ``epoll_data`` kept per
descriptor. A guest signal interrupts the wait with ``EINTR`` (never
restarted after a handler, signal(7)); ``ppoll``, ``pselect6`` and
``epoll_pwait`` swap in the guest's mask for the wait; ``ppoll`` and
``pselect6`` write the time left back to their timeout, as Linux does.
"""

from __future__ import annotations

import errno
import os
import select
import struct
from collections.abc import Sequence
from typing import Any

from vm_linux.guest_errno import GuestErrno
from vm_linux.signals import SIGSET_SIZE, UNBLOCKABLE
from vm_linux.state import ProcessState
from vm_linux.syscalls.registry import s32, syscall
from vm_linux.syscalls.sleeping import read_timespec
from vm_linux.syscalls.structs import TIMEVAL, pack_timespec_ns
from vm_linux.waiting import (
    POLLERR,
    POLLHUP,
    POLLIN,
    POLLNVAL,
    POLLOUT,
    POLLPRI,
    Interrupted,
    Restart,
    deadline_after,
    monotonic_ns,
    restore_mask,
    swap_mask,
    wait,
)

NSEC = 1_000_000_000
POLLFD = struct.Struct("<ihh")
POLLRDNORM, POLLRDBAND, POLLWRNORM, POLLWRBAND = 0x40, 0x80, 0x100, 0x200
POLLIN_SET = POLLRDNORM | POLLRDBAND | POLLIN | POLLHUP | POLLERR
POLLOUT_SET = POLLWRBAND | POLLWRNORM | POLLOUT | POLLERR
POLLEX_SET = POLLPRI
EPOLL_CLOEXEC = 0o2000000
EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD = 1, 2, 3
EPOLL_MAX_EVENTS = 0x7FFFFFFF // 12


def _swap_guest_mask(st: ProcessState, ptr: int, size: int) -> None:
    if not ptr:
        return
    if size != SIGSET_SIZE:
        raise GuestErrno(errno.EINVAL)
    (mask,) = struct.unpack("<Q", st.mem.read(ptr, SIGSET_SIZE))
    swap_mask(st, mask & ~UNBLOCKABLE)


def _wait_with_mask(st: ProcessState, fds: list[tuple[int, int]], deadline: int | None) -> dict[int, int]:
    """Wait on host ``fds``; host fd -> revents. Restores a swapped mask unless interrupted."""
    ready = wait(st, fds=fds, deadline_ns=deadline, restart=Restart.NOHAND)
    restore_mask(st)
    return dict(ready)


def _write_left(st: ProcessState, ptr: int, deadline: int | None, *, timeval: bool = False) -> None:
    """Write the time left until ``deadline`` back to the guest's timeout (ppoll, pselect6, select)."""
    if not ptr or deadline is None:
        return
    left = max(deadline - monotonic_ns(), 0)
    if timeval:
        st.mem.write(ptr, TIMEVAL.pack(left // NSEC, left % NSEC // 1000))
    else:
        st.mem.write(ptr, pack_timespec_ns(left))


def do_poll(st: ProcessState, fds_ptr: int, nfds: int, timeout_ns: int | None) -> tuple[int, int | None]:
    """The common part of poll and ppoll: (ready count, the deadline used)."""
    if nfds > st.fds.limit:
        raise GuestErrno(errno.EINVAL)
    raw = bytearray(st.mem.read(fds_ptr, POLLFD.size * nfds)) if nfds else bytearray()
    entries = [POLLFD.unpack_from(raw, i * POLLFD.size) for i in range(nfds)]
    host: list[tuple[int, int]] = []
    revents = [0] * nfds
    which: list[int | None] = []
    for index, (fd, events, _revents) in enumerate(entries):
        if fd < 0:
            which.append(None)
            continue
        entry = st.fds.files.get(fd)
        if entry is None:
            revents[index] = POLLNVAL
            which.append(None)
            continue
        which.append(entry.host_fd)
        host.append((entry.host_fd, (events & 0xFFFF) | POLLERR | POLLHUP))
    deadline = deadline_after(timeout_ns)
    if any(revents):
        deadline = monotonic_ns()  # an invalid descriptor is ready at once
    ready = _wait_with_mask(st, host, deadline)
    for index, (fd, events, _revents) in enumerate(entries):
        host_fd = which[index]
        if host_fd is not None:
            revents[index] = ready.get(host_fd, 0) & ((events & 0xFFFF) | POLLERR | POLLHUP | POLLNVAL)
        POLLFD.pack_into(raw, index * POLLFD.size, fd, events, revents[index])
    if nfds:
        st.mem.write(fds_ptr, bytes(raw))
    return sum(1 for value in revents if value), deadline


@syscall("ppoll")
def sys_ppoll(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    fds_ptr, nfds, timeout_ptr, mask_ptr, mask_size = a[0], a[1] & 0xFFFFFFFF, a[2], a[3], a[4]
    timeout = read_timespec(st, timeout_ptr) if timeout_ptr else None
    _swap_guest_mask(st, mask_ptr, mask_size)
    deadline = deadline_after(timeout)
    try:
        count, _used = do_poll(st, fds_ptr, nfds, timeout)
    except Interrupted:
        _write_left(st, timeout_ptr, deadline)
        raise
    _write_left(st, timeout_ptr, deadline)
    return count


@syscall("poll")
def sys_poll(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    timeout_ms = s32(a[2])
    count, _used = do_poll(st, a[0], a[1] & 0xFFFFFFFF, None if timeout_ms < 0 else timeout_ms * 1_000_000)
    return count


def _table_size(st: ProcessState) -> int:
    """Linux's ``max_fds``: the descriptor table's size (64, grown to powers of two), past which bits are ignored."""
    size = 64
    while size <= max(st.fds.files, default=0):
        size *= 2
    return size


def do_select(
    st: ProcessState, nfds: int, sets: tuple[int, int, int], timeout_ns: int | None
) -> tuple[int, int | None]:
    """The common part of select and pselect6: (ready count, the deadline used)."""
    if nfds < 0:
        raise GuestErrno(errno.EINVAL)
    nfds = min(nfds, _table_size(st))
    size = (nfds + 63) // 64 * 8
    bits = [int.from_bytes(st.mem.read(ptr, size), "little") if ptr and size else 0 for ptr in sets]
    wanted: dict[int, int] = {}
    for fd in range(nfds):
        events = 0
        if bits[0] >> fd & 1:
            events |= POLLIN_SET
        if bits[1] >> fd & 1:
            events |= POLLOUT_SET
        if bits[2] >> fd & 1:
            events |= POLLEX_SET
        if events:
            wanted[fd] = events
    host = []
    for fd, events in wanted.items():
        entry = st.fds.files.get(fd)
        if entry is None:
            raise GuestErrno(errno.EBADF)
        host.append((entry.host_fd, events & (POLLIN | POLLOUT | POLLPRI)))
    deadline = deadline_after(timeout_ns)
    ready = _wait_with_mask(st, host, deadline)
    out = [0, 0, 0]
    count = 0
    for fd, events in wanted.items():
        got = ready.get(st.fds.files[fd].host_fd, 0)
        for index, group in enumerate((POLLIN_SET, POLLOUT_SET, POLLEX_SET)):
            if events & group and got & group:
                out[index] |= 1 << fd
                count += 1
    for ptr, value in zip(sets, out, strict=True):
        if ptr and size:
            st.mem.write(ptr, value.to_bytes(size, "little"))
    return count, deadline


@syscall("pselect6")
def sys_pselect6(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    nfds, sets, timeout_ptr, sig_ptr = s32(a[0]), (a[1], a[2], a[3]), a[4], a[5]
    timeout = read_timespec(st, timeout_ptr) if timeout_ptr else None
    if sig_ptr:
        mask_ptr, mask_size = struct.unpack("<QQ", st.mem.read(sig_ptr, 16))
        _swap_guest_mask(st, mask_ptr, mask_size)
    deadline = deadline_after(timeout)
    try:
        count, _used = do_select(st, nfds, sets, timeout)
    except Interrupted:
        _write_left(st, timeout_ptr, deadline)
        raise
    _write_left(st, timeout_ptr, deadline)
    return count


@syscall("select")
def sys_select(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    timeout = None
    if a[4]:
        sec, usec = TIMEVAL.unpack(st.mem.read(a[4], TIMEVAL.size))
        if sec < 0 or not 0 <= usec < 1_000_000:
            raise GuestErrno(errno.EINVAL)
        timeout = sec * NSEC + usec * 1000
    deadline = deadline_after(timeout)
    try:
        count, _used = do_select(st, s32(a[0]), (a[1], a[2], a[3]), timeout)
    except Interrupted:
        _write_left(st, a[4], deadline, timeval=True)
        raise
    _write_left(st, a[4], deadline, timeval=True)
    return count


# ---------------------------------------------------------------------------------------------- epoll


class EpollInstance:
    """A guest epoll instance: a host epoll object and the guest's ``epoll_data`` per host descriptor."""

    def __init__(self) -> None:
        self.host = select.epoll(flags=select.EPOLL_CLOEXEC)
        self.data: dict[int, int] = {}

    def refresh(self, st: ProcessState, host_fd: int) -> None:
        """Nothing to bring up to date (the host instance tracks readiness itself)."""


def _epoll(st: ProcessState, epfd: int) -> EpollInstance:
    entry = st.fds.get(epfd)
    if not isinstance(entry.special, EpollInstance):
        raise GuestErrno(errno.EINVAL)
    return entry.special


def _new_epoll(st: ProcessState, cloexec: bool) -> int:
    instance = EpollInstance()
    return st.fds.install(os.dup(instance.host.fileno()), cloexec=cloexec, special=instance)


@syscall("epoll_create1")
def sys_epoll_create1(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    flags = s32(a[0])
    if flags & ~EPOLL_CLOEXEC:
        raise GuestErrno(errno.EINVAL)
    return _new_epoll(st, bool(flags & EPOLL_CLOEXEC))


@syscall("epoll_create")
def sys_epoll_create(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    if s32(a[0]) <= 0:
        raise GuestErrno(errno.EINVAL)
    return _new_epoll(st, False)


def _event_struct(st: ProcessState) -> struct.Struct:
    return struct.Struct("<IQ" if st.abi.epoll_event_packed else "<I4xQ")


@syscall("epoll_ctl")
def sys_epoll_ctl(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    epfd, op, fd, event_ptr = s32(a[0]), s32(a[1]), s32(a[2]), a[3]
    st.fds.get(epfd)
    target = st.fds.get(fd)
    instance = _epoll(st, epfd)
    if fd == epfd:
        raise GuestErrno(errno.EINVAL)
    layout = _event_struct(st)
    if op in (EPOLL_CTL_ADD, EPOLL_CTL_MOD):
        events, data = layout.unpack(st.mem.read(event_ptr, layout.size))
        if op == EPOLL_CTL_ADD:
            instance.host.register(target.host_fd, events)
        else:
            instance.host.modify(target.host_fd, events)
        instance.data[target.host_fd] = data
        return 0
    if op == EPOLL_CTL_DEL:
        instance.host.unregister(target.host_fd)
        instance.data.pop(target.host_fd, None)
        return 0
    raise GuestErrno(errno.EINVAL)


def do_epoll_wait(st: ProcessState, a: Sequence[int], timeout_ns: int | None) -> int:
    epfd, events_ptr, maxevents = s32(a[0]), a[1], s32(a[2])
    if not 0 < maxevents <= EPOLL_MAX_EVENTS:
        raise GuestErrno(errno.EINVAL)
    instance = _epoll(st, epfd)
    layout = _event_struct(st)
    deadline = deadline_after(timeout_ns)
    while True:
        _wait_with_mask(st, [(instance.host.fileno(), POLLIN)], deadline)
        got = instance.host.poll(0, maxevents)
        if got or (deadline is not None and monotonic_ns() >= deadline):
            break
    out = b"".join(layout.pack(events, instance.data.get(host_fd, 0)) for host_fd, events in got)
    if out:
        st.mem.write(events_ptr, out)
    return len(got)


def _epoll_mask(st: ProcessState, ptr: int, size: int) -> None:
    _swap_guest_mask(st, ptr, size)


@syscall("epoll_pwait")
def sys_epoll_pwait(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    timeout_ms = s32(a[3])
    _epoll_mask(st, a[4], a[5])
    return do_epoll_wait(st, a, None if timeout_ms < 0 else timeout_ms * 1_000_000)


@syscall("epoll_wait")
def sys_epoll_wait(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    timeout_ms = s32(a[3])
    return do_epoll_wait(st, a, None if timeout_ms < 0 else timeout_ms * 1_000_000)


@syscall("epoll_pwait2")
def sys_epoll_pwait2(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    timeout = read_timespec(st, a[3]) if a[3] else None
    _epoll_mask(st, a[4], a[5])
    return do_epoll_wait(st, a, timeout)
