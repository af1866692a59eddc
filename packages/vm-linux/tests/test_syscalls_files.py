"""File system calls, with results compared to what the host kernel answers for the same operation."""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import termios

import pytest
import structlog
from vm_core.errors import MemoryFault

AT_FDCWD = -100
O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_APPEND, O_DIRECTORY = 0, 1, 2, 0o100, 0o200, 0o2000, 0o200000
O_CLOEXEC, O_NOFOLLOW = 0o2000000, 0o400000
AT_SYMLINK_NOFOLLOW, AT_REMOVEDIR, AT_EMPTY_PATH = 0x100, 0x200, 0x1000
STAT = struct.Struct("<QQIIIIQQqiiqqQqQqQII")


def open_guest(h, path, flags=O_RDONLY, mode=0o644) -> int:
    fd = h.call("openat", AT_FDCWD, h.cstr(str(path)), flags, mode)
    assert fd >= 0, errno.errorcode.get(-fd)
    return fd


def assert_stat_matches(raw: bytes, host: os.stat_result) -> None:
    f = STAT.unpack(raw)
    assert f[0] == host.st_dev and f[1] == host.st_ino and f[2] == host.st_mode
    assert f[3] == host.st_nlink and f[4] == host.st_uid and f[5] == host.st_gid and f[6] == host.st_rdev
    assert f[8] == host.st_size and f[9] == host.st_blksize and f[11] == host.st_blocks
    assert f[14] * 10**9 + f[15] == host.st_mtime_ns
    assert f[16] * 10**9 + f[17] == host.st_ctime_ns


def test_write_reaches_the_host_descriptor(sys_harness) -> None:
    h = sys_harness
    r, w = os.pipe()
    fd = h.state.fds.install(w)
    buf = h.alloc(b"hello, world\n")
    assert h.call("write", fd, buf, 13) == 13
    assert os.read(r, 100) == b"hello, world\n"
    assert h.call("write", fd, 0x1234, 4) == -errno.EFAULT
    iov = h.alloc(struct.pack("<QQQQ", buf, 5, buf + 7, 6))
    assert h.call("writev", fd, iov, 2) == 11
    assert os.read(r, 100) == b"helloworld\n"
    os.close(r)
    assert h.call("write", fd, buf, 1) == -errno.EPIPE
    assert 13 in h.state.signals.pending  # SIGPIPE, as the kernel raises it


def test_read_with_bad_buffer_consumes_nothing(sys_harness) -> None:
    h = sys_harness
    r, w = os.pipe()
    fd = h.state.fds.install(r)
    os.write(w, b"abcdef")
    assert h.call("read", fd, 0x5000, 6) == -errno.EFAULT
    buf = h.alloc(16)
    assert h.call("read", fd, buf, 16) == 6
    assert h.mem.read(buf, 6) == b"abcdef"
    iov_bufs = h.alloc(8), h.alloc(8)
    os.write(w, b"0123456789")
    iov = h.alloc(struct.pack("<QQQQ", iov_bufs[0], 4, iov_bufs[1], 8))
    assert h.call("readv", fd, iov, 2) == 10
    assert h.mem.read(iov_bufs[0], 4) == b"0123" and h.mem.read(iov_bufs[1], 6) == b"456789"
    os.close(w)
    assert h.call("read", fd, buf, 16) == 0
    assert h.call("readv", fd, iov, 5000) == -errno.EINVAL


def test_open_stat_and_errors_match_the_host(sys_harness, tmp_path) -> None:
    h = sys_harness
    target = tmp_path / "file.txt"
    target.write_bytes(b"x" * 5000)
    fd = open_guest(h, target)
    statbuf = h.alloc(128)
    assert h.call("fstat", fd, statbuf) == 0
    assert_stat_matches(h.mem.read(statbuf, 128), os.stat(target))
    assert h.call("newfstatat", AT_FDCWD, h.cstr(str(target)), statbuf, 0) == 0
    assert_stat_matches(h.mem.read(statbuf, 128), os.stat(target))
    assert h.call("newfstatat", fd, h.cstr(""), statbuf, AT_EMPTY_PATH) == 0
    assert_stat_matches(h.mem.read(statbuf, 128), os.stat(target))
    link = tmp_path / "link"
    link.symlink_to(target)
    assert h.call("newfstatat", AT_FDCWD, h.cstr(str(link)), statbuf, AT_SYMLINK_NOFOLLOW) == 0
    assert_stat_matches(h.mem.read(statbuf, 128), os.lstat(link))
    missing = h.cstr(str(tmp_path / "missing"))
    assert h.call("openat", AT_FDCWD, missing, O_RDONLY, 0) == -errno.ENOENT
    assert h.call("newfstatat", AT_FDCWD, missing, statbuf, 0) == -errno.ENOENT
    assert h.call("openat", AT_FDCWD, h.cstr(str(target) + "/x"), O_RDONLY, 0) == -errno.ENOTDIR
    assert h.call("openat", AT_FDCWD, h.cstr(str(link)), O_RDONLY | O_NOFOLLOW, 0) == -errno.ELOOP
    assert h.call("openat", AT_FDCWD, h.cstr(str(target)), O_CREAT | O_EXCL | O_WRONLY, 0o600) == -errno.EEXIST
    assert h.call("openat", AT_FDCWD, 0xDEAD0000, O_RDONLY, 0) == -errno.EFAULT
    assert h.call("fstat", 999, statbuf) == -errno.EBADF
    assert h.call("close", fd) == 0
    assert h.call("close", fd) == -errno.EBADF


def test_statx_matches_host_stat(sys_harness, tmp_path) -> None:
    h = sys_harness
    target = tmp_path / "f"
    target.write_bytes(b"abc")
    buf = h.alloc(256)
    assert h.call("statx", AT_FDCWD, h.cstr(str(target)), 0, 0xFFF, buf) == 0
    raw = h.mem.read(buf, 256)
    mask, _blksize = struct.unpack_from("<II", raw, 0)
    nlink, uid, gid, mode = struct.unpack_from("<IIIH", raw, 16)
    ino, size = struct.unpack_from("<QQ", raw, 32)
    mtime_s, mtime_ns = struct.unpack_from("<qI", raw, 112)
    host = os.stat(target)
    assert mask & 0x7FF == 0x7FF
    assert (nlink, uid, gid, mode, ino, size) == (
        host.st_nlink, host.st_uid, host.st_gid, host.st_mode, host.st_ino, host.st_size
    )
    assert mtime_s * 10**9 + mtime_ns == host.st_mtime_ns


def test_offsets_pread_pwrite_and_append(sys_harness, tmp_path) -> None:
    h = sys_harness
    path = tmp_path / "data"
    fd = open_guest(h, path, O_RDWR | O_CREAT, 0o644)
    buf = h.alloc(b"0123456789")
    assert h.call("write", fd, buf, 10) == 10
    assert h.call("lseek", fd, -3, 2) == 7  # SEEK_END
    assert h.call("lseek", fd, -100, 0) == -errno.EINVAL
    out = h.alloc(8)
    assert h.call("pread64", fd, out, 4, 2) == 4
    assert h.mem.read(out, 4) == b"2345"
    assert h.call("pwrite64", fd, buf, 2, 8) == 2
    assert path.read_bytes() == b"0123456701"
    assert h.call("ftruncate", fd, 4) == 0 and path.read_bytes() == b"0123"
    appender = open_guest(h, path, O_WRONLY | O_APPEND)
    getfl = h.call("fcntl", appender, 3, 0)
    assert getfl & O_APPEND and getfl & 3 == O_WRONLY
    assert h.call("write", appender, buf, 2) == 2
    assert path.read_bytes() == b"012301"


def test_dup_fcntl_and_pipes(sys_harness) -> None:
    h = sys_harness
    fds = h.alloc(8)
    assert h.call("pipe2", fds, O_CLOEXEC) == 0
    rfd, wfd = struct.unpack("<ii", h.mem.read(fds, 8))
    assert h.call("fcntl", rfd, 1, 0) == 1  # F_GETFD: FD_CLOEXEC
    assert h.call("fcntl", rfd, 2, 0) == 0 and h.call("fcntl", rfd, 1, 0) == 0
    copy = h.call("dup", wfd)
    assert copy not in (rfd, wfd) and copy == min(set(range(100)) - {0, 1, 2, rfd, wfd})
    assert h.call("dup3", wfd, 50, O_CLOEXEC) == 50
    assert h.call("fcntl", 50, 1, 0) == 1
    assert h.call("dup3", wfd, wfd, 0) == -errno.EINVAL
    assert h.call("fcntl", wfd, 1030, 60) == 60  # F_DUPFD_CLOEXEC
    buf = h.alloc(b"ping")
    assert h.call("write", 50, buf, 4) == 4
    got = h.alloc(4)
    assert h.call("read", rfd, got, 4) == 4 and h.mem.read(got, 4) == b"ping"
    assert h.call("fcntl", wfd, 9999, 0) == -errno.EINVAL
    assert h.call("pipe2", fds, 0x1) == -errno.EINVAL


def test_ioctl_terminal_queries(sys_harness, tmp_path) -> None:
    h = sys_harness
    path = tmp_path / "plain"
    path.write_bytes(b"")
    fd = open_guest(h, path)
    buf = h.alloc(64)
    assert h.call("ioctl", fd, 0x5401, buf) == -errno.ENOTTY  # TCGETS on a regular file
    assert h.call("ioctl", fd, 0x12345678, buf) == -errno.ENOTTY
    master, slave = os.openpty()
    try:
        tty = h.state.fds.install(os.dup(slave))
        assert h.call("ioctl", tty, 0x5401, buf) == 0
        iflag, oflag, cflag, lflag = struct.unpack("<IIII", h.mem.read(buf, 16))
        host = termios.tcgetattr(slave)
        assert [iflag, oflag, cflag, lflag] == host[:4]
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("<HHHH", 24, 80, 0, 0))
        assert h.call("ioctl", tty, 0x5413, buf) == 0
        assert struct.unpack("<HHHH", h.mem.read(buf, 8)) == (24, 80, 0, 0)
    finally:
        os.close(master)
        os.close(slave)


def test_directories_links_and_renames(sys_harness, tmp_path) -> None:
    h = sys_harness
    for name in ("a", "b", "c"):
        (tmp_path / name).write_text(name)
    dfd = open_guest(h, tmp_path, O_RDONLY | O_DIRECTORY)
    buf = h.alloc(4096)
    names = set()
    while (n := h.call("getdents64", dfd, buf, 4096)) > 0:
        raw = h.mem.read(buf, n)
        pos = 0
        while pos < n:
            _ino, _off, reclen, _type = struct.unpack_from("<QqHB", raw, pos)
            names.add(raw[pos + 19 : pos + reclen].split(b"\0")[0].decode())
            pos += reclen
    assert names == {".", "..", *os.listdir(tmp_path)}
    assert h.call("mkdirat", dfd, h.cstr("sub"), 0o755) == 0 and (tmp_path / "sub").is_dir()
    assert h.call("mkdirat", dfd, h.cstr("sub"), 0o755) == -errno.EEXIST
    assert h.call("symlinkat", h.cstr("a"), dfd, h.cstr("lnk")) == 0
    out = h.alloc(64)
    assert h.call("readlinkat", dfd, h.cstr("lnk"), out, 64) == 1 and h.mem.read(out, 1) == b"a"
    assert h.call("readlinkat", dfd, h.cstr("a"), out, 64) == -errno.EINVAL
    assert h.call("renameat2", dfd, h.cstr("a"), dfd, h.cstr("b"), 1) == -errno.EEXIST  # RENAME_NOREPLACE
    assert h.call("renameat2", dfd, h.cstr("a"), dfd, h.cstr("z"), 0) == 0
    assert (tmp_path / "z").read_text() == "a"
    assert h.call("unlinkat", dfd, h.cstr("sub"), 0) == -errno.EISDIR
    assert h.call("unlinkat", dfd, h.cstr("sub"), AT_REMOVEDIR) == 0
    assert h.call("unlinkat", dfd, h.cstr("z"), 0) == 0 and not (tmp_path / "z").exists()
    assert h.call("faccessat", dfd, h.cstr("b"), 4) == 0
    assert h.call("faccessat", dfd, h.cstr("nope"), 4) == -errno.ENOENT
    assert h.call("faccessat", dfd, h.cstr("b"), 8) == -errno.EINVAL
    assert h.call("getdents64", 1000, buf, 4096) == -errno.EBADF


def test_cwd_follows_chdir(sys_harness, tmp_path) -> None:
    h = sys_harness
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("in d")
    assert h.call("chdir", h.cstr(str(tmp_path))) == 0
    assert h.call("chdir", h.cstr("d")) == 0
    buf = h.alloc(4096)
    expected = os.fsencode(os.path.realpath(tmp_path / "d")) + b"\0"
    assert h.call("getcwd", buf, 4096) == len(expected)
    assert h.mem.read(buf, len(expected)) == expected
    assert h.call("getcwd", buf, 3) == -errno.ERANGE
    fd = open_guest(h, "f")  # relative to the guest cwd, not the VM's
    out = h.alloc(8)
    assert h.call("read", fd, out, 8) == 4 and h.mem.read(out, 4) == b"in d"
    assert h.call("chdir", h.cstr("f")) == -errno.ENOTDIR
    assert h.call("chdir", h.cstr("nowhere")) == -errno.ENOENT


def test_unknown_syscall_is_enosys_and_logged_once(sys_harness) -> None:
    # logged at info (shown by `vm -v`), so that by default the guest's stderr is its own, as under qemu
    from vm_core.logging import configure

    h = sys_harness
    configure(1)
    try:
        with structlog.testing.capture_logs() as logs:
            assert h.call("add_key", 0, 0, 0) == -errno.ENOSYS
            assert h.call("add_key", 0, 0, 0) == -errno.ENOSYS
    finally:
        configure(0)
    warnings = [e for e in logs if e["event"] == "unsupported_syscall"]
    assert len(warnings) == 1 and warnings[0]["name"] == "add_key" and warnings[0]["number"] == 217


def test_bad_pointer_in_memory_fault_is_efault_not_a_crash(sys_harness) -> None:
    h = sys_harness
    with pytest.raises(MemoryFault):
        h.mem.read(0x1000, 1)
    assert h.call("getcwd", 0x1000, 4096) == -errno.EFAULT
    assert h.call("uname", 0x1000) == -errno.EFAULT
