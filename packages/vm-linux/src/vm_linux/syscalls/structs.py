"""Byte layouts of the kernel structures system calls exchange with a 64-bit guest.

All little-endian, LP64. ``struct stat`` is per ISA (asm-generic's 128-byte
layout here, used by riscv64 and arm64); the others are shared by every
64-bit Linux ABI.
"""

from __future__ import annotations

import os
import struct

# asm-generic struct stat: dev ino mode nlink uid gid rdev pad size blksize pad blocks {a,m,c}time(sec,nsec) 2*unused
_GENERIC_STAT = struct.Struct("<QQIIIIQQqiiqqQqQqQII")
TIMESPEC = struct.Struct("<qq")
TIMEVAL = struct.Struct("<qq")
IOVEC = struct.Struct("<QQ")
RLIMIT64 = struct.Struct("<QQ")
STACK_T = struct.Struct("<QiiQ")  # ss_sp, ss_flags, pad, ss_size
UTSNAME_FIELD = 65
TERMIOS_SIZE = 36  # c_iflag c_oflag c_cflag c_lflag (u32) c_line c_cc[19]
WINSIZE_SIZE = 8
FLOCK_SIZE = 32
RUSAGE_SIZE = 144
NSEC = 1_000_000_000


def _split_ns(ns: int) -> tuple[int, int]:
    sec, nsec = divmod(ns, NSEC)
    return sec, nsec


def pack_generic_stat(st: os.stat_result) -> bytes:
    """asm-generic ``struct stat`` (128 bytes) from a host stat result."""
    a = _split_ns(st.st_atime_ns)
    m = _split_ns(st.st_mtime_ns)
    c = _split_ns(st.st_ctime_ns)
    return _GENERIC_STAT.pack(
        st.st_dev & (2**64 - 1), st.st_ino & (2**64 - 1), st.st_mode, st.st_nlink & 0xFFFFFFFF,
        st.st_uid, st.st_gid, st.st_rdev & (2**64 - 1), 0, st.st_size, st.st_blksize, 0, st.st_blocks,
        a[0], a[1], m[0], m[1], c[0], c[1], 0, 0,
    )


def unpack_timespec(raw: bytes) -> tuple[int, int]:
    """(tv_sec, tv_nsec) of a 16-byte ``struct timespec``."""
    sec, nsec = TIMESPEC.unpack(raw)
    return sec, nsec


def pack_timespec_ns(ns: int) -> bytes:
    return TIMESPEC.pack(*_split_ns(ns))


def pack_utsname(fields: list[str]) -> bytes:
    """``struct utsname``: six NUL-padded 65-byte fields."""
    out = b""
    for field in fields:
        raw = os.fsencode(field)[: UTSNAME_FIELD - 1]
        out += raw + bytes(UTSNAME_FIELD - len(raw))
    return out
