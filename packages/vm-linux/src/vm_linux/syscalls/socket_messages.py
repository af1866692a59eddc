"""Sending and receiving on sockets: sendto/recvfrom, sendmsg/recvmsg, sendmmsg/recvmmsg.

Data is copied between the guest's buffers and host buffers of the same
shape (one host piece per guest ``iovec``), at most :data:`DATA_MAX` bytes a
call; the guest's destination pages are checked before anything is
received, so data is never consumed and then lost to ``EFAULT``.

Control messages cross as the kernel lays them out (the layouts are the
same, :mod:`vm_linux.sockaddr`) but for ``SCM_RIGHTS``: the guest's fd
numbers are sent as the host descriptors behind them, and descriptors
received are installed in the guest's table (``MSG_CMSG_CLOEXEC`` setting
its close-on-exec flag; the host side is always close-on-exec). When the
table is full the rest are closed and ``MSG_CTRUNC`` is set, as Linux's
``scm_detach_fds`` does.

``sendmmsg`` and ``recvmmsg`` are the kernel's loops of ``sendmsg`` and
``recvmsg``: the count of messages done, or the first message's error;
``MSG_WAITFORONE`` makes the messages after the first non-blocking, and the
``recvmmsg`` timeout is checked after each message (it does not interrupt a
blocking receive, as ``recvmmsg(2)`` documents).

``SO_PEERCRED`` and ``SCM_CREDENTIALS`` show the guest its own pid where the
host's has vm's (they differ after ``vm resume``), and the other way round
for credentials the guest sends.

Sending on a stream whose peer is gone is ``EPIPE`` with ``SIGPIPE`` unless
``MSG_NOSIGNAL``.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Sequence
from typing import Any

from vm_core.errors import MemoryFault

from vm_linux import hostsock
from vm_linux.guest_errno import GuestErrno
from vm_linux.signals import SI_USER, SIGPIPE, make_siginfo
from vm_linux.sockaddr import (
    MMSG_LEN_OFFSET,
    MMSGHDR_SIZE,
    MSG_CMSG_CLOEXEC,
    MSG_CONTROLLEN_OFFSET,
    MSG_CTRUNC,
    MSG_FLAGS_OFFSET,
    MSG_NAMELEN_OFFSET,
    MSG_WAITFORONE,
    MSGHDR,
    SOCKADDR_MAX,
    SOCKLEN,
    Cmsg,
    MsgHeader,
    build_cmsgs,
    parse_cmsgs,
    with_pid,
)
from vm_linux.state import ProcessState
from vm_linux.syscalls.fileio import writable
from vm_linux.syscalls.registry import s32, syscall, u32
from vm_linux.syscalls.sockets import host_address, read_address, write_address
from vm_linux.syscalls.structs import IOVEC, NSEC, TIMESPEC

#: The most bytes one call moves (larger requests are short, as a stream may be; datagrams this large do not exist).
DATA_MAX = 1 << 24
UIO_MAXIOV = 1024
#: The most control data vm copies (the kernel's ``optmem_max`` is far smaller: ``ENOBUFS``).
CONTROL_MAX = 1 << 20
MSG_DONTWAIT = 0x40
MSG_NOSIGNAL = 0x4000


def _iovecs(st: ProcessState, ptr: int, count: int) -> list[tuple[int, int]]:
    """The guest's ``iovec`` array, lengths capped so that the total stays within :data:`DATA_MAX`."""
    if count > UIO_MAXIOV:
        raise GuestErrno(errno.EMSGSIZE)
    raw = st.mem.read(ptr, IOVEC.size * count) if count else b""
    out = []
    total = 0
    for i in range(count):
        base, length = IOVEC.unpack_from(raw, i * IOVEC.size)
        if length >> 63:
            raise GuestErrno(errno.EINVAL)
        length = min(length, DATA_MAX - total)
        out.append((base, length))
        total += length
    return out


def _sent(st: ProcessState, host_fd: int, message: hostsock.HostMessage, flags: int) -> int:
    try:
        return hostsock.sendmsg(host_fd, message, flags)
    except BrokenPipeError:
        if not flags & MSG_NOSIGNAL:
            st.signals.queue(SIGPIPE, make_siginfo(SIGPIPE, SI_USER, pid=st.pid, uid=os.getuid()))
        raise


def _host_control(st: ProcessState, ptr: int, length: int) -> bytes:
    """The guest's control data with ``SCM_RIGHTS`` fd numbers replaced by the host's descriptors."""
    if not length:
        return b""
    if length > CONTROL_MAX:
        raise GuestErrno(errno.ENOBUFS)
    out = []
    for cmsg in parse_cmsgs(bytes(st.mem.read(ptr, length))):
        if cmsg.is_rights:
            cmsg = Cmsg.rights([st.fds.host(fd) for fd in cmsg.fds()])
        elif cmsg.is_credentials:
            cmsg = Cmsg(cmsg.level, cmsg.type, with_pid(cmsg.data, st.pid, os.getpid()))
        out.append(cmsg)
    return build_cmsgs(out)


def _send_message(st: ProcessState, host_fd: int, header: MsgHeader, flags: int) -> int:
    if header.namelen >> 31:
        raise GuestErrno(errno.EINVAL)
    name = read_address(st, header.name, min(header.namelen, SOCKADDR_MAX)) if header.name else b""
    pieces = [bytes(st.mem.read(base, length)) for base, length in _iovecs(st, header.iov, header.iovlen)]
    control = _host_control(st, header.control, header.controllen)
    with host_address(st, host_fd, name) as host_name:
        message = hostsock.HostMessage.outgoing(host_name or None, pieces, control)
        return _sent(st, host_fd, message, flags)


@syscall("sendto")
def sys_sendto(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    host_fd = st.fds.host(s32(a[0]))
    data = bytes(st.mem.read(a[1], min(a[2], DATA_MAX))) if a[2] else b""
    name = read_address(st, a[4], s32(a[5])) if a[4] else b""
    with host_address(st, host_fd, name) as host_name:
        return _sent(st, host_fd, hostsock.HostMessage.outgoing(host_name or None, [data], b""), s32(a[3]))


@syscall("sendmsg")
def sys_sendmsg(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    host_fd = st.fds.host(s32(a[0]))
    return _send_message(st, host_fd, MsgHeader.unpack(st.mem.read(a[1], MSGHDR.size)), s32(a[2]))


@syscall("sendmmsg")
def sys_sendmmsg(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    host_fd = st.fds.host(s32(a[0]))
    vector, count, flags = a[1], min(u32(a[2]), UIO_MAXIOV), s32(a[3])
    done = 0
    while done < count:
        entry = vector + done * MMSGHDR_SIZE
        try:
            sent = _send_message(st, host_fd, MsgHeader.unpack(st.mem.read(entry, MSGHDR.size)), flags)
            st.mem.write(entry + MMSG_LEN_OFFSET, SOCKLEN.pack(sent))
        except (GuestErrno, OSError, MemoryFault):
            if done == 0:
                raise
            break
        done += 1
    return done


# ---------------------------------------------------------------------------------- receiving


def _guest_rights(st: ProcessState, host_fds: list[int], cloexec: bool) -> tuple[list[int], bool]:
    """Install received host descriptors in the guest table: (guest numbers, whether some were dropped)."""
    installed: list[int] = []
    for i, host_fd in enumerate(host_fds):
        try:
            installed.append(st.fds.install(host_fd, cloexec=cloexec))
        except GuestErrno:  # install closed this one; close the rest
            for rest in host_fds[i + 1 :]:
                os.close(rest)
            return installed, True
    return installed, False


def _guest_control(st: ProcessState, control: bytes, capacity: int, cloexec: bool) -> tuple[bytes, bool]:
    """The host's received control data for the guest (received descriptors installed), and MSG_CTRUNC."""
    if not control:
        return b"", False
    truncated = False
    out = []
    for cmsg in parse_cmsgs(control):
        if cmsg.is_rights:
            fds, dropped = _guest_rights(st, cmsg.fds(), cloexec)
            truncated |= dropped
            cmsg = Cmsg.rights(fds)
        elif cmsg.is_credentials:
            cmsg = Cmsg(cmsg.level, cmsg.type, with_pid(cmsg.data, os.getpid(), st.pid))
        out.append(cmsg)
    return build_cmsgs(out)[:capacity], truncated


def _receive_message(st: ProcessState, host_fd: int, at: int, flags: int) -> int:
    """Receive one message into the guest's ``struct msghdr`` at ``at``; the byte count."""
    header = MsgHeader.unpack(st.mem.read(at, MSGHDR.size))
    if header.namelen >> 31:
        raise GuestErrno(errno.EINVAL)
    vecs = _iovecs(st, header.iov, header.iovlen)
    for base, length in vecs:
        if length and not writable(st.mem, base, length):
            raise GuestErrno(errno.EFAULT)
    if header.controllen > CONTROL_MAX:
        raise GuestErrno(errno.ENOBUFS)
    message = hostsock.HostMessage.incoming(
        bool(header.name), [length for _b, length in vecs], header.controllen
    )
    got = hostsock.recvmsg(host_fd, message, flags & ~MSG_CMSG_CLOEXEC)
    control, truncated = _guest_control(st, got.control, header.controllen, bool(flags & MSG_CMSG_CLOEXEC))
    done = 0
    for base, length in vecs:
        piece = got.data[done : done + length]
        if piece:
            st.mem.write(base, piece)
        done += len(piece)
    if header.name:
        write_address(st, got.name, header.name, at + MSG_NAMELEN_OFFSET)
    if control:
        st.mem.write(header.control, control)
    st.mem.write(at + MSG_CONTROLLEN_OFFSET, len(control).to_bytes(8, "little"))
    st.mem.write(
        at + MSG_FLAGS_OFFSET, SOCKLEN.pack((got.flags | (MSG_CTRUNC if truncated else 0)) & 0xFFFFFFFF)
    )
    return got.count


@syscall("recvfrom")
def sys_recvfrom(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    host_fd = st.fds.host(s32(a[0]))
    buf, size, flags, addr, len_ptr = a[1], min(a[2], DATA_MAX), s32(a[3]), a[4], a[5]
    if size and not writable(st.mem, buf, size):
        raise GuestErrno(errno.EFAULT)
    if addr:
        st.mem.read(len_ptr, SOCKLEN.size)
    got = hostsock.recvmsg(host_fd, hostsock.HostMessage.incoming(bool(addr), [size], 0), flags)
    if got.data:
        st.mem.write(buf, got.data)
    if addr:
        write_address(st, got.name, addr, len_ptr)
    return got.count


@syscall("recvmsg")
def sys_recvmsg(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return _receive_message(st, st.fds.host(s32(a[0])), a[1], s32(a[2]))


@syscall("recvmmsg")
def sys_recvmmsg(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    host_fd = st.fds.host(s32(a[0]))
    vector, count, flags, timeout_ptr = a[1], min(u32(a[2]), UIO_MAXIOV), s32(a[3]), a[4]
    deadline = None
    if timeout_ptr:
        sec, nsec = TIMESPEC.unpack(st.mem.read(timeout_ptr, TIMESPEC.size))
        if sec < 0 or not 0 <= nsec < NSEC:
            raise GuestErrno(errno.EINVAL)
        deadline = time.monotonic_ns() + sec * NSEC + nsec
    done = 0
    while done < count:
        try:
            received = _receive_message(st, host_fd, vector + done * MMSGHDR_SIZE, flags)
        except (GuestErrno, OSError, MemoryFault):
            if done == 0:
                raise
            break
        st.mem.write(vector + done * MMSGHDR_SIZE + MMSG_LEN_OFFSET, SOCKLEN.pack(received & 0xFFFFFFFF))
        done += 1
        if flags & MSG_WAITFORONE:
            flags |= MSG_DONTWAIT
        if deadline is not None and time.monotonic_ns() >= deadline:
            break
    if deadline is not None:
        left = max(deadline - time.monotonic_ns(), 0)
        st.mem.write(timeout_ptr, TIMESPEC.pack(*divmod(left, NSEC)))
    return done
