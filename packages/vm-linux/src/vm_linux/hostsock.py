"""Host socket calls on raw address bytes, through ctypes on the host's libc.

Python's :mod:`socket` parses addresses into tuples; vm hands the guest's
``struct sockaddr`` bytes to the host kernel unchanged (the layouts are the
same, see :mod:`vm_linux.sockaddr`), so these wrappers take and return bytes.
Each raises :class:`OSError` with the host errno on failure. Calls that block
(``accept4``, ``connect``, ``recvmsg``, ...) block the calling thread with the
GIL released.
"""

from __future__ import annotations

import ctypes
import os

import attrs

from vm_linux.sockaddr import SOCKADDR_MAX

_libc = ctypes.CDLL(None, use_errno=True)
SOL_SOCKET = 1
SO_DOMAIN = 39
MSG_CMSG_CLOEXEC = 0x40000000


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class MsgHdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(IoVec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


def _check(result: int) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def socket(family: int, kind: int, protocol: int) -> int:
    return _check(_libc.socket(family, kind, protocol))


def socketpair(family: int, kind: int, protocol: int) -> tuple[int, int]:
    pair = (ctypes.c_int * 2)()
    _check(_libc.socketpair(family, kind, protocol, pair))
    return pair[0], pair[1]


def bind(fd: int, addr: bytes) -> None:
    _check(_libc.bind(fd, addr, ctypes.c_uint32(len(addr))))


def connect(fd: int, addr: bytes) -> None:
    _check(_libc.connect(fd, addr, ctypes.c_uint32(len(addr))))


def listen(fd: int, backlog: int) -> None:
    _check(_libc.listen(fd, backlog))


def shutdown(fd: int, how: int) -> None:
    _check(_libc.shutdown(fd, how))


def accept4(fd: int, flags: int) -> tuple[int, bytes]:
    """(the new host fd, the peer's address)."""
    buf = ctypes.create_string_buffer(SOCKADDR_MAX)
    size = ctypes.c_uint32(SOCKADDR_MAX)
    new = _check(_libc.accept4(fd, buf, ctypes.byref(size), flags))
    return new, buf.raw[: min(size.value, SOCKADDR_MAX)]


def _name_call(func: object, fd: int) -> bytes:
    buf = ctypes.create_string_buffer(SOCKADDR_MAX)
    size = ctypes.c_uint32(SOCKADDR_MAX)
    _check(func(fd, buf, ctypes.byref(size)))  # type: ignore[operator]
    return buf.raw[: min(size.value, SOCKADDR_MAX)]


def getsockname(fd: int) -> bytes:
    return _name_call(_libc.getsockname, fd)


def getpeername(fd: int) -> bytes:
    return _name_call(_libc.getpeername, fd)


def getsockopt(fd: int, level: int, name: int, size: int) -> bytes:
    """The option's value: at most ``size`` bytes, as many as the kernel reports."""
    buf = ctypes.create_string_buffer(max(size, 1))
    length = ctypes.c_uint32(size)
    _check(_libc.getsockopt(fd, level, name, buf, ctypes.byref(length)))
    return buf.raw[: min(length.value, size)]


def setsockopt(fd: int, level: int, name: int, value: bytes) -> None:
    _check(_libc.setsockopt(fd, level, name, value, ctypes.c_uint32(len(value))))


def domain(fd: int) -> int | None:
    """The address family of host socket ``fd`` (None if it is no socket)."""
    try:
        return int.from_bytes(getsockopt(fd, SOL_SOCKET, SO_DOMAIN, 4), "little")
    except OSError:
        return None


# ---------------------------------------------------------------------------------- messages


@attrs.define
class HostMessage:
    """One message's host buffers: its address, data pieces and control data (owned by ctypes)."""

    name: ctypes.Array[ctypes.c_char] | None
    pieces: list[ctypes.Array[ctypes.c_char]]
    control: ctypes.Array[ctypes.c_char] | None
    iov: ctypes.Array[IoVec]

    @classmethod
    def outgoing(cls, name: bytes | None, pieces: list[bytes], control: bytes) -> HostMessage:
        return cls._make(
            None if name is None else ctypes.create_string_buffer(name, len(name)),
            [ctypes.create_string_buffer(piece, len(piece)) for piece in pieces],
            ctypes.create_string_buffer(control, len(control)) if control else None,
        )

    @classmethod
    def incoming(cls, want_name: bool, sizes: list[int], controllen: int) -> HostMessage:
        return cls._make(
            ctypes.create_string_buffer(SOCKADDR_MAX) if want_name else None,
            [ctypes.create_string_buffer(size) for size in sizes],
            ctypes.create_string_buffer(controllen) if controllen else None,
        )

    @classmethod
    def _make(
        cls,
        name: ctypes.Array[ctypes.c_char] | None,
        pieces: list[ctypes.Array[ctypes.c_char]],
        control: ctypes.Array[ctypes.c_char] | None,
    ) -> HostMessage:
        iov = (IoVec * max(len(pieces), 1))()
        for i, piece in enumerate(pieces):
            iov[i].base = ctypes.cast(piece, ctypes.c_void_p)
            iov[i].len = len(piece)
        return cls(name, pieces, control, iov)

    def header(self) -> MsgHdr:
        hdr = MsgHdr()
        if self.name is not None:
            hdr.name = ctypes.cast(self.name, ctypes.c_void_p)
            hdr.namelen = len(self.name)
        hdr.iov = ctypes.cast(self.iov, ctypes.POINTER(IoVec))
        hdr.iovlen = len(self.pieces)
        if self.control is not None:
            hdr.control = ctypes.cast(self.control, ctypes.c_void_p)
            hdr.controllen = len(self.control)
        return hdr


@attrs.frozen
class Received:
    """What one host ``recvmsg`` gave: byte count, sender address, data, control data, ``msg_flags``."""

    count: int
    name: bytes
    data: bytes
    control: bytes
    flags: int


def _received(message: HostMessage, hdr: MsgHdr, count: int) -> Received:
    data = b"".join(piece.raw for piece in message.pieces)[:count]
    name = b"" if message.name is None else message.name.raw[: min(hdr.namelen, SOCKADDR_MAX)]
    control = b"" if message.control is None else message.control.raw[: hdr.controllen]
    return Received(count, name, data, control, hdr.flags)


def sendmsg(fd: int, message: HostMessage, flags: int) -> int:
    hdr = message.header()
    return _check(_libc.sendmsg(fd, ctypes.byref(hdr), flags))


def recvmsg(fd: int, message: HostMessage, flags: int) -> Received:
    hdr = message.header()
    count = _check(_libc.recvmsg(fd, ctypes.byref(hdr), flags | MSG_CMSG_CLOEXEC))
    return _received(message, hdr, count)
