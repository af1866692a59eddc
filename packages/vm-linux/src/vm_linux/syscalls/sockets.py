"""Socket system calls: sockets are host sockets, the guest's addresses translated where they name files.

Every socket is a host socket in the guest's descriptor table (its kind is
the host kernel's: ``SO_DOMAIN``/``SO_TYPE``, ``socket:[ino]`` in
``/proc/self/fd``). AF_INET and AF_INET6 addresses go to the host unchanged:
the network is not confined by ``--root`` (docs/security.md). ``vm run --net
none`` (``ProcessState.inet_allowed`` False) refuses every family but AF_UNIX
with ``EACCES``, in ``socket`` and ``socketpair``.

AF_UNIX path names are guest paths, resolved inside the root through
:mod:`vm_linux.fs` as every other path:

* ``bind`` creates the socket in the directory that holds the last
  component, resolved to an ``O_PATH`` descriptor: the host binds
  ``/proc/self/fd/<dir>/<name>``. The kernel never follows the last
  component of a name it creates (an existing name, a symbolic link
  included, is ``EADDRINUSE``), and the directory is pinned by its
  descriptor, so a link planted anywhere cannot move the socket out of the
  root.
* ``connect`` and ``sendto`` resolve the whole path inside the root (symbolic
  links followed as the guest's kernel would, inside the root) to an
  ``O_PATH`` descriptor of the socket file and connect through
  ``/proc/self/fd/<fd>``: the host kernel follows only that magic link, to
  the inode the resolver found.
* The names the kernel reports back (``getsockname``, ``getpeername``,
  ``accept``, ``recvfrom``) show the guest's own name for sockets vm bound
  (:class:`~vm_linux.sockaddr.UnixNames`).
* Abstract names (a leading NUL) are host-global: without ``--root`` they
  pass through as under qemu-user; under ``--root`` binding, connecting or
  sending to one is ``EACCES`` (autobind, ``bind`` with only the family, is
  allowed: nothing outside can be reached through it).

Options (``getsockopt``/``setsockopt``) pass through at the levels whose
layouts are the same for guest and host (``SOL_SOCKET``, ``IPPROTO_IP``,
``IPPROTO_TCP``, ``IPPROTO_UDP``, ``IPPROTO_IPV6``), except the few that carry
guest pointers or descriptors (socket filters, BPF, ``SO_PEERPIDFD``,
``TCP_ZEROCOPY_RECEIVE``, netfilter's table replacement): ``ENOPROTOOPT``;
other levels get the errno Linux gives for a level the socket does not have. The message calls are in
:mod:`vm_linux.syscalls.socket_messages`.

Blocking calls (``accept``, ``connect``, ``recv*``) block vm in the host call.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
from collections.abc import Iterator, Sequence
from typing import Any

from vm_linux import hostsock
from vm_linux.fs import LastType
from vm_linux.guest_errno import GuestErrno
from vm_linux.sockaddr import (
    AF_UNIX,
    SOCK_CLOEXEC,
    SOCKADDR_MAX,
    SOCKLEN,
    UNIX_PATH_MAX,
    family_of,
    pack_unix_path,
    parse_unix,
    with_pid,
)
from vm_linux.state import AT_FDCWD, ProcessState
from vm_linux.syscalls.fileio import writable
from vm_linux.syscalls.registry import s32, syscall

SOL_SOCKET, IPPROTO_IP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_IPV6 = 1, 0, 6, 17, 41
SO_ATTACH_FILTER, SO_ATTACH_BPF, SO_ATTACH_REUSEPORT_CBPF, SO_ATTACH_REUSEPORT_EBPF = 26, 50, 51, 52
SO_PEERCRED, SO_PEERPIDFD = 17, 77
TCP_ZEROCOPY_RECEIVE = 35
IPT_SO_SET_REPLACE, IPT_SO_SET_ADD_COUNTERS = 64, 65  # netfilter tables: struct ipt_replace holds a pointer
PASSED_LEVELS = frozenset({SOL_SOCKET, IPPROTO_IP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_IPV6})
REFUSED_OPTIONS = frozenset(
    {
        (SOL_SOCKET, SO_ATTACH_FILTER),
        (SOL_SOCKET, SO_ATTACH_BPF),
        (SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF),
        (SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF),
        (SOL_SOCKET, SO_PEERPIDFD),
        (IPPROTO_TCP, TCP_ZEROCOPY_RECEIVE),
        (IPPROTO_IP, IPT_SO_SET_REPLACE),
        (IPPROTO_IP, IPT_SO_SET_ADD_COUNTERS),
        (IPPROTO_IPV6, IPT_SO_SET_REPLACE),
        (IPPROTO_IPV6, IPT_SO_SET_ADD_COUNTERS),
    }
)
#: The most option bytes vm copies either way (the kernel's own limits are smaller for every option).
OPTION_MAX = 1 << 16


# ---------------------------------------------------------------------------------- addresses


def read_address(st: ProcessState, ptr: int, length: int) -> bytes:
    """A guest ``struct sockaddr`` (``move_addr_to_kernel``: ``EINVAL`` for a bad length)."""
    if length < 0 or length > SOCKADDR_MAX:
        raise GuestErrno(errno.EINVAL)
    return bytes(st.mem.read(ptr, length)) if length else b""


def write_address(st: ProcessState, raw: bytes, ptr: int, len_ptr: int) -> None:
    """Give the guest an address the host reported (``move_addr_to_user``); nothing if ``ptr`` is NULL."""
    if not ptr:
        return
    capacity = s32(SOCKLEN.unpack(st.mem.read(len_ptr, SOCKLEN.size))[0])
    if capacity < 0:
        raise GuestErrno(errno.EINVAL)
    raw = st.unix_names.to_guest(raw)
    if capacity and raw:
        st.mem.write(ptr, raw[:capacity])
    st.mem.write(len_ptr, SOCKLEN.pack(len(raw)))


def _unix_socket(host_fd: int, raw: bytes) -> bool:
    return bool(raw) and family_of(raw) == AF_UNIX and hostsock.domain(host_fd) == AF_UNIX


@contextlib.contextmanager
def host_address(st: ProcessState, host_fd: int, raw: bytes, *, binding: bool = False) -> Iterator[bytes]:
    """The host address for guest address ``raw`` used on ``host_fd`` (valid inside the ``with``).

    Only AF_UNIX path names change (see the module docstring); the
    descriptors they name stay open until the ``with`` ends.
    """
    if not _unix_socket(host_fd, raw):
        yield raw
        return
    address = parse_unix(raw)
    if address.abstract is not None:
        if st.fs.confined:
            raise GuestErrno(errno.EACCES)
        yield raw
        return
    if address.unnamed:
        yield raw
        return
    path = os.fsdecode(address.path)
    if binding:
        with st.parent(AT_FDCWD, path) as where:
            if where.dir.virtual is not None:
                raise GuestErrno(errno.ENOENT)
            if where.last is not LastType.NORM or st.fs.mounted(where):
                raise GuestErrno(errno.EADDRINUSE)
            yield _proc_fd_address(where.dir.fd, where.name + ("/" if where.trailing_slash else ""))
        return
    with st.lookup(AT_FDCWD, path) as node:
        if node.virtual is not None or node.outside:
            raise GuestErrno(errno.ECONNREFUSED)
        yield _proc_fd_address(node.fd)


def _proc_fd_address(fd: int, name: str = "") -> bytes:
    host_path = os.fsencode(f"/proc/self/fd/{fd}" + (f"/{name}" if name else ""))
    if len(host_path) >= UNIX_PATH_MAX:  # the guest's name is too long to be put behind a descriptor path
        raise GuestErrno(errno.ENAMETOOLONG)
    return pack_unix_path(host_path)


# ---------------------------------------------------------------------------------- sockets


def _check_family(st: ProcessState, family: int) -> None:
    if not st.inet_allowed and family != AF_UNIX:
        raise GuestErrno(errno.EACCES)  # vm run --net none


@syscall("socket")
def sys_socket(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    family, kind, protocol = s32(a[0]), s32(a[1]), s32(a[2])
    _check_family(st, family)
    host_fd = hostsock.socket(family, kind | SOCK_CLOEXEC, protocol)
    return st.fds.install(host_fd, cloexec=bool(kind & SOCK_CLOEXEC))


@syscall("socketpair")
def sys_socketpair(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    family, kind, protocol, out = s32(a[0]), s32(a[1]), s32(a[2]), a[3]
    _check_family(st, family)
    if not writable(st.mem, out, 8):
        raise GuestErrno(errno.EFAULT)
    first, second = hostsock.socketpair(family, kind | SOCK_CLOEXEC, protocol)
    cloexec = bool(kind & SOCK_CLOEXEC)
    try:
        guest_first = st.fds.install(first, cloexec=cloexec)
    except GuestErrno:
        os.close(second)
        raise
    try:
        guest_second = st.fds.install(second, cloexec=cloexec)
    except GuestErrno:
        st.fds.close(guest_first)
        raise
    st.mem.write(out, struct.pack("<ii", guest_first, guest_second))
    return 0


@syscall("bind")
def sys_bind(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    host_fd = st.fds.host(s32(a[0]))
    raw = read_address(st, a[1], s32(a[2]))
    with host_address(st, host_fd, raw, binding=True) as host_raw:
        hostsock.bind(host_fd, host_raw)
        if host_raw != raw:
            st.unix_names.remember(host_raw[2:-1], parse_unix(raw).path)
    return 0


@syscall("connect")
def sys_connect(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    host_fd = st.fds.host(s32(a[0]))
    raw = read_address(st, a[1], s32(a[2]))
    with host_address(st, host_fd, raw) as host_raw:
        hostsock.connect(host_fd, host_raw)
    return 0


@syscall("listen")
def sys_listen(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    hostsock.listen(st.fds.host(s32(a[0])), s32(a[1]))
    return 0


@syscall("accept4")
def sys_accept4(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return _accept(st, s32(a[0]), a[1], a[2], s32(a[3]))


@syscall("accept")
def sys_accept(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return _accept(st, s32(a[0]), a[1], a[2], 0)


def _accept(st: ProcessState, fd: int, addr: int, len_ptr: int, flags: int) -> int:
    host_fd = st.fds.host(fd)
    if addr:
        st.mem.read(len_ptr, SOCKLEN.size)  # EFAULT before a connection is taken
    new_host, peer = hostsock.accept4(host_fd, flags | SOCK_CLOEXEC)
    try:
        write_address(st, peer, addr, len_ptr)
    except BaseException:
        os.close(new_host)  # the connection is lost, as in Linux when the address cannot be stored
        raise
    return st.fds.install(new_host, cloexec=bool(flags & SOCK_CLOEXEC))


@syscall("getsockname")
def sys_getsockname(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    write_address(st, hostsock.getsockname(st.fds.host(s32(a[0]))), a[1], a[2])
    return 0


@syscall("getpeername")
def sys_getpeername(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    write_address(st, hostsock.getpeername(st.fds.host(s32(a[0]))), a[1], a[2])
    return 0


@syscall("shutdown")
def sys_shutdown(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    hostsock.shutdown(st.fds.host(s32(a[0])), s32(a[1]))
    return 0


# ---------------------------------------------------------------------------------- options


def _passed_option(host_fd: int, level: int, name: int) -> None:
    """Refuse what is not passed through: as Linux answers a level the socket lacks (AF_UNIX sockets have
    only ``SOL_SOCKET``: ``EOPNOTSUPP``; others ``ENOPROTOOPT``), and ``ENOPROTOOPT`` for the refused options."""
    if (level, name) in REFUSED_OPTIONS:
        raise GuestErrno(errno.ENOPROTOOPT)
    if level not in PASSED_LEVELS:
        raise GuestErrno(errno.EOPNOTSUPP if hostsock.domain(host_fd) == AF_UNIX else errno.ENOPROTOOPT)


@syscall("setsockopt")
def sys_setsockopt(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    host_fd = st.fds.host(s32(a[0]))
    level, name, length = s32(a[1]), s32(a[2]), s32(a[4])
    _passed_option(host_fd, level, name)
    if length < 0:
        raise GuestErrno(errno.EINVAL)
    value = bytes(st.mem.read(a[3], min(length, OPTION_MAX))) if length else b""
    hostsock.setsockopt(host_fd, level, name, value)
    return 0


@syscall("getsockopt")
def sys_getsockopt(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    host_fd = st.fds.host(s32(a[0]))
    level, name, len_ptr = s32(a[1]), s32(a[2]), a[4]
    _passed_option(host_fd, level, name)
    length = s32(SOCKLEN.unpack(st.mem.read(len_ptr, SOCKLEN.size))[0])
    if length < 0:
        raise GuestErrno(errno.EINVAL)
    value = hostsock.getsockopt(host_fd, level, name, min(length, OPTION_MAX))
    if (level, name) == (SOL_SOCKET, SO_PEERCRED):
        value = with_pid(value, os.getpid(), st.pid)
    if value:
        st.mem.write(a[3], value)
    st.mem.write(len_ptr, SOCKLEN.pack(len(value)))
    return 0
