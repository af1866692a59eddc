"""Translating ``open`` flags between the guest's generic Linux values and the host's.

riscv64 (like x86-64 and most ISAs) uses the asm-generic ``O_*`` values;
hosts such as arm64 differ for ``O_DIRECTORY``/``O_NOFOLLOW``/``O_DIRECT``/
``O_LARGEFILE``, so every bit goes through this table. Unknown guest bits are
ignored, as the kernel ignores them.
"""

from __future__ import annotations

import os
import platform

O_ACCMODE = 0o3
O_CREAT = 0o100
O_EXCL = 0o200
O_NOCTTY = 0o400
O_TRUNC = 0o1000
O_APPEND = 0o2000
O_NONBLOCK = 0o4000
O_DSYNC = 0o10000
O_ASYNC = 0o20000
O_DIRECT = 0o40000
O_LARGEFILE = 0o100000
O_DIRECTORY = 0o200000
O_NOFOLLOW = 0o400000
O_NOATIME = 0o1000000
O_CLOEXEC = 0o2000000
O_SYNC_BIT = 0o4000000
O_PATH = 0o10000000
O_TMPFILE_BIT = 0o20000000

_HOST_LARGEFILE = {"aarch64": 0o400000, "ppc64le": 0o200000}.get(platform.machine(), 0o100000)

_BITS: list[tuple[int, int]] = [
    (O_CREAT, os.O_CREAT),
    (O_EXCL, os.O_EXCL),
    (O_NOCTTY, os.O_NOCTTY),
    (O_TRUNC, os.O_TRUNC),
    (O_APPEND, os.O_APPEND),
    (O_NONBLOCK, os.O_NONBLOCK),
    (O_DSYNC, os.O_DSYNC),
    (O_ASYNC, getattr(os, "O_ASYNC", 0)),
    (O_DIRECT, getattr(os, "O_DIRECT", 0)),
    (O_LARGEFILE, _HOST_LARGEFILE),
    (O_DIRECTORY, os.O_DIRECTORY),
    (O_NOFOLLOW, os.O_NOFOLLOW),
    (O_NOATIME, getattr(os, "O_NOATIME", 0)),
    (O_CLOEXEC, os.O_CLOEXEC),
    (O_SYNC_BIT, os.O_SYNC & ~os.O_DSYNC),
    (O_PATH, getattr(os, "O_PATH", 0)),
    (O_TMPFILE_BIT, getattr(os, "O_TMPFILE", 0) & ~os.O_DIRECTORY),
]


def to_host(guest: int) -> int:
    """Host ``open``/``F_SETFL`` flags for guest flags (``O_LARGEFILE`` dropped: 64-bit hosts imply it)."""
    host = guest & O_ACCMODE
    for guest_bit, host_bit in _BITS:
        if guest & guest_bit and guest_bit != O_LARGEFILE:
            host |= host_bit
    return host


def to_guest(host: int) -> int:
    """Guest flags for host ``F_GETFL`` flags."""
    guest = host & O_ACCMODE
    for guest_bit, host_bit in _BITS:
        if host_bit and host & host_bit == host_bit:
            guest |= guest_bit
    return guest
