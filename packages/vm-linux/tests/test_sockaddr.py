"""vm_linux.sockaddr's layouts and control-message walk against the host's (LP64 little-endian, as the guests).

The oracle is the host: its C structures (through ctypes), Python's ``socket.CMSG_LEN``/``CMSG_SPACE``
(the C macros), and control data the host kernel itself builds for a real ``SCM_RIGHTS`` transfer.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct

import pytest
from vm_linux import hostsock, sockaddr
from vm_linux.guest_errno import GuestErrno


def test_struct_layouts_are_the_hosts() -> None:
    assert sockaddr.MSGHDR.size == ctypes.sizeof(hostsock.MsgHdr)
    assert sockaddr.MSG_NAMELEN_OFFSET == hostsock.MsgHdr.namelen.offset
    assert sockaddr.MSG_CONTROLLEN_OFFSET == hostsock.MsgHdr.controllen.offset
    assert sockaddr.MSG_FLAGS_OFFSET == hostsock.MsgHdr.flags.offset

    class MMsgHdr(ctypes.Structure):
        _fields_ = [("hdr", hostsock.MsgHdr), ("len", ctypes.c_uint32)]

    assert sockaddr.MMSGHDR_SIZE == ctypes.sizeof(MMsgHdr)
    assert sockaddr.MMSG_LEN_OFFSET == MMsgHdr.len.offset
    for count in range(5):
        data = count * 4
        assert sockaddr.CMSGHDR.size + data == socket.CMSG_LEN(data)
        assert sockaddr.cmsg_align(sockaddr.CMSGHDR.size + data) == socket.CMSG_SPACE(data)
    assert (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6) == (
        sockaddr.AF_UNIX,
        sockaddr.AF_INET,
        sockaddr.AF_INET6,
    )
    assert (socket.SOCK_NONBLOCK, socket.SOCK_CLOEXEC) == (sockaddr.SOCK_NONBLOCK, sockaddr.SOCK_CLOEXEC)
    assert (socket.MSG_CTRUNC, socket.MSG_TRUNC, socket.MSG_CMSG_CLOEXEC) == (
        sockaddr.MSG_CTRUNC,
        sockaddr.MSG_TRUNC,
        sockaddr.MSG_CMSG_CLOEXEC,
    )


def test_control_data_the_kernel_built_parses_and_rebuilds_byte_for_byte() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    read_end, write_end = os.pipe()
    try:
        # credentials too, so the buffer holds two messages of different sizes
        right.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        left.sendmsg(
            [b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("<2i", read_end, write_end))]
        )
        message = hostsock.HostMessage.incoming(False, [16], socket.CMSG_SPACE(8) + socket.CMSG_SPACE(12))
        control = hostsock.recvmsg(right.fileno(), message, 0).control  # raw: Python's recvmsg splits it
        parsed = sockaddr.parse_cmsgs(control)
        assert sorted((c.level, c.type, len(c.data)) for c in parsed) == [
            (socket.SOL_SOCKET, socket.SCM_RIGHTS, 8),
            (socket.SOL_SOCKET, socket.SCM_CREDENTIALS, 12),
        ]
        assert sockaddr.build_cmsgs(parsed) == control
        rights = next(c for c in parsed if c.is_rights)
        for fd in rights.fds():
            assert os.path.samestat(os.fstat(fd), os.fstat(read_end)) or os.path.samestat(
                os.fstat(fd), os.fstat(write_end)
            )
            os.close(fd)
    finally:
        for fd in (read_end, write_end):
            os.close(fd)
        left.close()
        right.close()


@pytest.mark.parametrize(
    "raw",
    [
        sockaddr.CMSGHDR.pack(15, 1, 1) + bytes(8),  # shorter than its header
        sockaddr.CMSGHDR.pack(64, 1, 1) + bytes(8),  # runs past the buffer
    ],
)
def test_malformed_control_data_is_einval_as_scm_send_says(raw: bytes) -> None:
    with pytest.raises(GuestErrno) as caught:
        sockaddr.parse_cmsgs(raw)
    assert caught.value.code == errno.EINVAL


def test_unix_addresses_as_unix_validate_addr_reads_them() -> None:
    family = struct.pack("<H", socket.AF_UNIX)
    assert sockaddr.parse_unix(family).unnamed
    assert sockaddr.parse_unix(family + b"\0abc").abstract == b"abc"
    assert sockaddr.parse_unix(family + b"dir/sock\0junk").path == b"dir/sock"
    assert sockaddr.parse_unix(family + b"x" * 108).path == b"x" * 108
    for bad in (b"\1", family + b"x" * 109, struct.pack("<H", socket.AF_INET) + b"sock\0"):
        with pytest.raises(GuestErrno):
            sockaddr.parse_unix(bad)
    names = sockaddr.UnixNames()
    names.remember(b"/proc/self/fd/5/sock", b"sock")
    assert names.to_guest(family + b"/proc/self/fd/5/sock\0") == family + b"sock\0"
    assert names.to_guest(family + b"/elsewhere\0") == family + b"/elsewhere\0"
    assert names.to_guest(family + b"\0abstract") == family + b"\0abstract"
