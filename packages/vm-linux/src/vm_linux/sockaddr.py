"""Socket addresses and message headers as the guest lays them out, and their translation.

Every ABI vm serves (riscv64, x86-64) is LP64 little-endian, and so are the
hosts it runs on, so ``struct msghdr``, ``struct mmsghdr``, ``struct
cmsghdr``, ``struct sockaddr_*``, ``struct linger`` and ``struct timeval``
have one layout, kept here. What does change between guest and host is the
*meaning* of two things, also translated here:

* AF_UNIX path names: the guest's path lives inside its root, the host's is
  ``/proc/self/fd/<parent dir fd>/<name>`` (see
  :mod:`vm_linux.syscalls.sockets`). :class:`UnixNames` remembers which host
  name stands for which guest name, so the addresses the kernel reports back
  (``getsockname``, ``getpeername``, ``accept``, ``recvfrom``) show the guest
  the name it bound.
* ``SCM_RIGHTS`` descriptors: guest fd numbers in the guest's control data,
  host fds in the host's (:func:`parse_cmsgs`, :func:`build_cmsgs`).
"""

from __future__ import annotations

import errno
import struct

import attrs

from vm_linux.guest_errno import GuestErrno

AF_UNSPEC, AF_UNIX, AF_INET, AF_INET6 = 0, 1, 2, 10
SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET = 1, 2, 5
SOCK_TYPE_MASK = 0xF
SOCK_NONBLOCK = 0o4000
SOCK_CLOEXEC = 0o2000000
SOL_SOCKET = 1
SCM_RIGHTS, SCM_CREDENTIALS = 1, 2
MSG_CTRUNC = 0x8
MSG_TRUNC = 0x20
MSG_WAITFORONE = 0x10000
MSG_CMSG_CLOEXEC = 0x40000000

#: ``sizeof(struct sockaddr_storage)``: the largest address any family returns.
SOCKADDR_MAX = 128
SUN_PATH_OFFSET = 2  # offsetof(struct sockaddr_un, sun_path)
UNIX_PATH_MAX = 108
SOCKADDR_UN_SIZE = SUN_PATH_OFFSET + UNIX_PATH_MAX

# struct msghdr: name, namelen (+pad), iov, iovlen, control, controllen, flags (+pad)
MSGHDR = struct.Struct("<QI4xQQQQi4x")
MSG_NAMELEN_OFFSET = 8
MSG_CONTROLLEN_OFFSET = 40
MSG_FLAGS_OFFSET = 48
# struct mmsghdr: msghdr, msg_len (+pad)
MMSGHDR_SIZE = MSGHDR.size + 8
MMSG_LEN_OFFSET = MSGHDR.size
CMSGHDR = struct.Struct("<Qii")  # cmsg_len (size_t), cmsg_level, cmsg_type
LINGER = struct.Struct("<ii")
FD = struct.Struct("<i")
SOCKLEN = struct.Struct("<I")
UCRED = struct.Struct("<iII")  # pid, uid, gid: SO_PEERCRED and SCM_CREDENTIALS


def with_pid(ucred: bytes, old: int, new: int) -> bytes:
    """A ``struct ucred`` whose pid ``old`` reads ``new`` (the guest's pid differs from vm's after a resume)."""
    if len(ucred) < UCRED.size or UCRED.unpack_from(ucred)[0] != old:
        return ucred
    return UCRED.pack(new, *UCRED.unpack_from(ucred)[1:]) + ucred[UCRED.size :]


def cmsg_align(length: int) -> int:
    """``CMSG_ALIGN``: control messages are padded to the size of ``size_t``."""
    return (length + 7) & ~7


@attrs.frozen
class MsgHeader:
    """The guest's ``struct msghdr``, unpacked (pointers are guest addresses)."""

    name: int
    namelen: int
    iov: int
    iovlen: int
    control: int
    controllen: int
    flags: int

    @classmethod
    def unpack(cls, raw: bytes) -> MsgHeader:
        return cls(*MSGHDR.unpack(raw[: MSGHDR.size]))


@attrs.frozen
class Cmsg:
    """One control message: level, type and its data (fd numbers for ``SCM_RIGHTS``)."""

    level: int
    type: int
    data: bytes

    @property
    def is_rights(self) -> bool:
        return self.level == SOL_SOCKET and self.type == SCM_RIGHTS

    @property
    def is_credentials(self) -> bool:
        return self.level == SOL_SOCKET and self.type == SCM_CREDENTIALS

    def fds(self) -> list[int]:
        count = len(self.data) // FD.size
        return list(struct.unpack_from(f"<{count}i", self.data))

    @classmethod
    def rights(cls, fds: list[int]) -> Cmsg:
        return cls(SOL_SOCKET, SCM_RIGHTS, struct.pack(f"<{len(fds)}i", *fds))


def parse_cmsgs(raw: bytes) -> list[Cmsg]:
    """The control messages of a ``msg_control`` buffer, as the kernel's ``__scm_send`` walks it.

    A header whose ``cmsg_len`` is shorter than the header or runs past the
    buffer is ``EINVAL``; a tail shorter than a header ends the walk.
    """
    out: list[Cmsg] = []
    offset = 0
    while len(raw) - offset >= CMSGHDR.size:
        length, level, kind = CMSGHDR.unpack_from(raw, offset)
        if length < CMSGHDR.size or length > len(raw) - offset:
            raise GuestErrno(errno.EINVAL)
        out.append(Cmsg(level, kind, raw[offset + CMSGHDR.size : offset + length]))
        offset += cmsg_align(length)
    return out


def build_cmsgs(cmsgs: list[Cmsg]) -> bytes:
    """A ``msg_control`` buffer holding ``cmsgs``, each padded to ``CMSG_SPACE``."""
    out = b""
    for cmsg in cmsgs:
        length = CMSGHDR.size + len(cmsg.data)
        out += CMSGHDR.pack(length, cmsg.level, cmsg.type) + cmsg.data + bytes(cmsg_align(length) - length)
    return out


# ---------------------------------------------------------------------------------- AF_UNIX names


@attrs.frozen
class UnixAddress:
    """An AF_UNIX address: a path name, an abstract name (leading NUL) or none (autobind/unnamed)."""

    path: bytes = b""
    abstract: bytes | None = None

    @property
    def unnamed(self) -> bool:
        return not self.path and self.abstract is None


def family_of(raw: bytes) -> int:
    """``sa_family`` of a guest address (``AF_UNSPEC`` if shorter than the field)."""
    return int.from_bytes(raw[:2], "little") if len(raw) >= 2 else AF_UNSPEC


def parse_unix(raw: bytes) -> UnixAddress:
    """A guest ``struct sockaddr_un`` of ``len(raw)`` bytes, checked as ``unix_validate_addr`` does."""
    if len(raw) < SUN_PATH_OFFSET or len(raw) > SOCKADDR_UN_SIZE or family_of(raw) != AF_UNIX:
        raise GuestErrno(errno.EINVAL)
    sun_path = raw[SUN_PATH_OFFSET:]
    if not sun_path:
        return UnixAddress()
    if sun_path[0] == 0:
        return UnixAddress(abstract=sun_path[1:])
    return UnixAddress(path=sun_path.split(b"\0", 1)[0])


def pack_unix_path(path: bytes) -> bytes:
    """The address the kernel reports for a socket bound to ``path`` (with its terminating NUL)."""
    return AF_UNIX.to_bytes(2, "little") + path + b"\0"


class UnixNames:
    """Host AF_UNIX path names vm bound for the guest -> the guest's names for them.

    Keyed by the host name (``/proc/self/fd/<dir>/<name>``), the only thing a
    peer's address carries: a later bind that reuses the descriptor number and
    the name replaces the entry. A name another process bound the same way
    (another vm) shows as the host name.
    """

    def __init__(self) -> None:
        self._guest_of: dict[bytes, bytes] = {}

    def remember(self, host_path: bytes, guest_path: bytes) -> None:
        self._guest_of[host_path] = guest_path

    def to_guest(self, raw: bytes) -> bytes:
        """A host address as the guest should see it (AF_UNIX names vm made become the guest's)."""
        if family_of(raw) != AF_UNIX or len(raw) <= SUN_PATH_OFFSET or raw[SUN_PATH_OFFSET] == 0:
            return raw
        host_path = raw[SUN_PATH_OFFSET:].split(b"\0", 1)[0]
        guest = self._guest_of.get(host_path)
        return raw if guest is None else pack_unix_path(guest)
