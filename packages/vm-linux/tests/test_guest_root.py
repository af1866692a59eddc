"""Guest-root tests: every escape attempt stays inside the root; guest paths are what the guest sees."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

AT_FDCWD = -100
O_RDONLY, O_WRONLY, O_CREAT, O_DIRECTORY = 0, 1, 0o100, 0o200000


@pytest.fixture(params=["openat2", "walk"])
def rooted(tmp_path: Path, make_harness, request):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("guest passwd\n")
    (root / "home" / "user").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "bin" / "prog").write_text("program")
    (root / "abs_etc").symlink_to("/etc")
    (root / "climb").symlink_to("../../../../../../etc")
    (root / "loop1").symlink_to("loop2")
    (root / "loop2").symlink_to("loop1")
    (root / "home" / "user" / "up").symlink_to("../..")
    (root / "dangling").symlink_to("/created-through-link")
    (tmp_path / "secret").write_text("host secret\n")
    return make_harness(root=str(root), exe=str(root / "bin" / "prog"), resolver=request.param), root, tmp_path


def read_guest_file(h, path: str, dirfd: int = AT_FDCWD) -> bytes | int:
    fd = h.call("openat", dirfd, h.cstr(path), O_RDONLY, 0)
    if fd < 0:
        return fd
    buf = h.alloc(256)
    n = h.call("read", fd, buf, 256)
    h.call("close", fd)
    return h.mem.read(buf, n)


GUEST_PASSWD = b"guest passwd\n"


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../../etc/passwd",
        "/../../../../etc/passwd",
        "/abs_etc/passwd",
        "/climb/passwd",
        "abs_etc/../etc/passwd",
        "/home/user/up/home/user/up/../../etc/passwd",
        "/home/user/up/etc/passwd",
    ],
)
def test_escape_attempts_stay_in_the_root(rooted, path: str) -> None:
    h, _root, _outside = rooted
    assert read_guest_file(h, path) == GUEST_PASSWD


def test_host_files_outside_are_unreachable(rooted) -> None:
    h, _root, outside = rooted
    assert read_guest_file(h, "/../secret") == -errno.ENOENT
    assert read_guest_file(h, str(outside / "secret")) == -errno.ENOENT
    assert read_guest_file(h, "/loop1") == -errno.ELOOP


def test_dirfd_relative_lookups(rooted) -> None:
    h, _root, _outside = rooted
    dfd = h.call("openat", AT_FDCWD, h.cstr("/home/user"), O_RDONLY | O_DIRECTORY, 0)
    assert dfd >= 0
    assert read_guest_file(h, "../../etc/passwd", dfd) == GUEST_PASSWD
    assert read_guest_file(h, "../../../../../../secret", dfd) == -errno.ENOENT
    assert read_guest_file(h, "up/../../../etc/passwd", dfd) == GUEST_PASSWD


def test_links_read_back_as_guest_paths(rooted) -> None:
    h, root, _outside = rooted
    buf = h.alloc(256)
    n = h.call("readlinkat", AT_FDCWD, h.cstr("/abs_etc"), buf, 256)
    assert h.mem.read(buf, n) == b"/etc"
    n = h.call("readlinkat", AT_FDCWD, h.cstr("/proc/self/exe"), buf, 256)
    assert h.mem.read(buf, n) == b"/bin/prog"
    assert read_guest_file(h, "/proc/self/exe") == b"program"
    assert h.call("unlinkat", AT_FDCWD, h.cstr("/abs_etc"), 0) == 0
    assert not (root / "abs_etc").is_symlink() and Path("/etc").is_dir()


def test_cwd_is_a_guest_path(rooted) -> None:
    h, _root, _outside = rooted
    buf = h.alloc(256)
    n = h.call("getcwd", buf, 256)
    assert h.mem.read(buf, n) == b"/\0"
    assert h.call("chdir", h.cstr("/home/user/up/home/user")) == 0
    n = h.call("getcwd", buf, 256)
    assert h.mem.read(buf, n) == b"/home/user\0"
    assert read_guest_file(h, "../../etc/passwd") == GUEST_PASSWD
    assert h.call("chdir", h.cstr("../../../../..")) == 0
    n = h.call("getcwd", buf, 256)
    assert h.mem.read(buf, n) == b"/\0"


def test_creation_lands_inside_the_root(rooted) -> None:
    h, root, outside = rooted
    fd = h.call("openat", AT_FDCWD, h.cstr("/dangling"), O_WRONLY | O_CREAT, 0o644)
    assert fd >= 0
    assert (root / "created-through-link").exists()
    assert not Path("/created-through-link").exists()
    assert h.call("mkdirat", AT_FDCWD, h.cstr("/../../made"), 0o755) == 0
    assert (root / "made").is_dir() and not (outside / "made").exists()
    statbuf = h.alloc(128)
    assert h.call("newfstatat", AT_FDCWD, h.cstr("/etc/passwd/x"), statbuf, 0) == -errno.ENOTDIR
    assert h.call("newfstatat", AT_FDCWD, h.cstr("/nope/x"), statbuf, 0) == -errno.ENOENT
    assert h.call("newfstatat", AT_FDCWD, h.cstr("/climb"), statbuf, 0) == 0
    assert int.from_bytes(h.mem.read(statbuf + 8, 8), "little") == os.stat(root / "etc").st_ino
