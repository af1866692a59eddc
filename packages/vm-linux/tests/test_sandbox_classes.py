"""Each class of escape the sandbox must make impossible, at the system-call level, on both resolvers.

A host ``secret`` and a host ``canary`` lie next to the guest root; after
every attack the secret was never read and the canary's content and
metadata are unchanged. The whole-program versions (C attack programs run
by ``vm run --root``) are in vm-cli's tests.
"""

from __future__ import annotations

import errno
import os
import resource
import stat
import threading
from pathlib import Path

import pytest
from vm_linux import hostcalls

AT_FDCWD = -100
O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_DIRECTORY, O_TRUNC = 0, 1, 2, 0o100, 0o200000, 0o1000
AT_SYMLINK_FOLLOW, AT_REMOVEDIR = 0x400, 0x200
RENAME_EXCHANGE = 2
SECRET = b"host secret: never read me\n"


def fingerprint(path: Path) -> tuple[bytes, int, int, int, int]:
    info = os.lstat(path)
    return path.read_bytes(), info.st_mode, info.st_nlink, info.st_mtime_ns, info.st_size


@pytest.fixture(params=["openat2", "walk"])
def box(tmp_path: Path, make_harness, request):
    """(harness, root, outside dir, program outside the root) with a secret and a canary outside."""
    root = tmp_path / "root"
    (root / "work").mkdir(parents=True)
    (root / "work" / "note").write_text("guest note\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(SECRET)
    (outside / "canary").write_bytes(b"canary\n")
    program = tmp_path / "prog"
    program.write_bytes(b"\x7fELF program bytes")
    before = {p: fingerprint(p) for p in (outside / "secret", outside / "canary", program)}
    h = make_harness(root=str(root), exe=str(program), resolver=request.param)
    yield h, root, outside, program
    assert {p: fingerprint(p) for p in before} == before
    assert sorted(os.listdir(outside)) == ["canary", "secret"]
    assert sorted(os.listdir(tmp_path)) == ["outside", "prog", "root"]


def cached_cstr(h, text: str) -> int:
    """The guest address of ``text``, written once per harness (the race loop reuses its strings)."""
    cache = h.__dict__.setdefault("strings", {})
    if text not in cache:
        cache[text] = h.cstr(text)
    return int(cache[text])


def read_all(h, path: str, dirfd: int = AT_FDCWD) -> bytes | int:
    fd = h.call("openat", dirfd, cached_cstr(h, path), O_RDONLY, 0)
    if fd < 0:
        return fd
    buf = h.__dict__.get("read_buf") or h.__dict__.setdefault("read_buf", h.alloc(4096))
    n = h.call("read", fd, buf, 4096)
    h.call("close", fd)
    return h.mem.read(buf, n) if n >= 0 else n


def readlink(h, path: str) -> bytes | int:
    buf = h.alloc(512)
    n = h.call("readlinkat", AT_FDCWD, h.cstr(path), buf, 512)
    return h.mem.read(buf, n) if n >= 0 else n


def test_proc_self_exe_is_the_program_whatever_the_root_holds(box) -> None:
    h, root, outside, program = box
    (root / "proc" / "self").mkdir(parents=True)  # a planted /proc/self/exe the guest made itself
    (root / "proc" / "self" / "exe").symlink_to(outside / "secret")
    assert read_all(h, "/proc/self/exe") == program.read_bytes()
    assert readlink(h, "/proc/self/exe") == b"/prog"  # never the host path
    assert h.call("openat", AT_FDCWD, h.cstr("/proc/self/exe"), O_WRONLY, 0) == -errno.ETXTBSY
    assert h.call("truncate", h.cstr("/proc/self/exe"), 0) == -errno.ETXTBSY
    assert h.call("fchmodat", AT_FDCWD, h.cstr("/proc/self/exe"), 0o777) == -errno.EPERM
    assert h.call("fchownat", AT_FDCWD, h.cstr("/proc/self/exe"), 0, 0, 0) == -errno.EPERM
    assert h.call("utimensat", AT_FDCWD, h.cstr("/proc/self/exe"), 0, 0) == -errno.EPERM
    assert h.call("unlinkat", AT_FDCWD, h.cstr("/proc/self/exe"), 0) == -errno.EPERM
    assert h.call("renameat2", AT_FDCWD, h.cstr("/proc/self/exe"), AT_FDCWD, h.cstr("/stolen"), 0) == -errno.EXDEV
    assert h.call("linkat", AT_FDCWD, h.cstr("/proc/self/exe"), AT_FDCWD, h.cstr("/l1"), 0) == -errno.EXDEV
    assert h.call("linkat", AT_FDCWD, h.cstr("/proc/self/exe"), AT_FDCWD, h.cstr("/l2"), AT_SYMLINK_FOLLOW) == -errno.EXDEV
    assert h.call("openat", AT_FDCWD, h.cstr("/proc/self/exe/../secret"), O_RDONLY, 0) == -errno.ENOTDIR
    assert not (root / "stolen").exists() and not (root / "l1").exists() and not (root / "l2").exists()
    assert os.path.islink(root / "proc" / "self" / "exe")  # the guest's own file, untouched and unused


def test_cwd_and_dirfds_are_descriptors_not_strings(box) -> None:
    h, root, outside, _program = box
    assert h.call("chdir", h.cstr("/work")) == 0
    dfd = h.call("openat", AT_FDCWD, h.cstr("/work"), O_RDONLY | O_DIRECTORY, 0)
    assert dfd >= 0
    # rename the directory away and plant links to the outside in its place
    assert h.call("renameat2", AT_FDCWD, h.cstr("/work"), AT_FDCWD, h.cstr("/moved"), 0) == 0
    assert h.call("symlinkat", h.cstr(str(outside)), AT_FDCWD, h.cstr("/work")) == 0
    (root / "up").symlink_to("../../outside")
    for dirfd in (AT_FDCWD, dfd):
        assert read_all(h, "note", dirfd) == b"guest note\n"  # still the moved directory
        assert read_all(h, "secret", dirfd) == -errno.ENOENT
        assert read_all(h, "../work/secret", dirfd) == -errno.ENOENT  # the planted link resolves in the root
        assert read_all(h, "../up/secret", dirfd) == -errno.ENOENT
        assert read_all(h, "../../../../outside/secret", dirfd) == -errno.ENOENT
        assert h.call("openat", dirfd, h.cstr("created"), O_WRONLY | O_CREAT, 0o644) >= 0
    assert (root / "moved" / "created").exists()
    buf = h.alloc(256)
    n = h.call("getcwd", buf, 256)
    assert h.mem.read(buf, n) == b"/moved\0"
    assert readlink(h, "/proc/self/cwd") == b"/moved"
    assert read_all(h, "/proc/self/cwd/note") == b"guest note\n"


def test_resolve_then_use_races_never_leave_the_root(box) -> None:
    h, root, outside, _program = box
    (root / "swap").mkdir()
    (root / "swap" / "secret").write_text("guest copy\n")
    (root / "link_abs").symlink_to(outside)
    (root / "link_rel").symlink_to("../outside")
    stop = threading.Event()
    swaps = [0]

    def swapper() -> None:  # the second process, swapping a directory and a link as fast as it can
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
        try:
            while not stop.is_set() and swaps[0] < 200_000:
                for link in ("link_abs", "link_rel"):
                    hostcalls.renameat2_at(root_fd, "swap", root_fd, link, RENAME_EXCHANGE)
                    swaps[0] += 1
        finally:
            os.close(root_fd)

    thread = threading.Thread(target=swapper)
    thread.start()
    seen: set[bytes | int] = set()
    try:
        for i in range(1500):
            seen.add(read_all(h, "/swap/secret"))
            seen.add(read_all(h, "/link_abs/secret"))
            fd = h.call("openat", AT_FDCWD, cached_cstr(h, f"/link_rel/new{i % 3}"), O_WRONLY | O_CREAT, 0o600)
            if fd >= 0:
                h.call("close", fd)
    finally:
        stop.set()
        thread.join()
    assert swaps[0] > 0
    assert SECRET not in seen
    assert seen <= {b"guest copy\n", -errno.ENOENT, -errno.ENOTDIR, -errno.ELOOP}


def test_host_processes_do_not_exist_for_the_guest(box) -> None:
    h = box[0]
    pids = [1, os.getppid(), os.getpid() + 1, -1]
    if os.getpgrp() != os.getppid():  # (under `timeout` the parent leads vm's own group: kill(-pgid) reaches vm)
        pids.append(-os.getppid())
    for pid in pids:
        assert h.call("kill", pid, 0) == -errno.ESRCH
        assert h.call("kill", pid, 9) == -errno.ESRCH
    assert h.call("tgkill", os.getppid(), os.getppid(), 9) == -errno.ESRCH


def test_rlimit_nofile_gives_emfile(box) -> None:
    h = box[0]
    limit = h.alloc(16)
    h.mem.write(limit, (6).to_bytes(8, "little") * 2)
    assert h.call("setrlimit", resource.RLIMIT_NOFILE, limit) == 0
    opened = [h.call("openat", AT_FDCWD, h.cstr("/work/note"), O_RDONLY, 0) for _ in range(4)]
    assert opened == [3, 4, 5, -errno.EMFILE]
    assert h.call("dup", 0) == -errno.EMFILE
    assert h.call("dup3", 0, 6, 0) == -errno.EBADF
    assert h.call("fcntl", 0, 0, 6) == -errno.EINVAL  # F_DUPFD at the limit


def test_vms_own_descriptors_are_unreachable(box) -> None:
    h = box[0]
    own = os.open("/dev/null", os.O_RDONLY)  # a descriptor of vm's own, like its event store's
    try:
        statbuf = h.alloc(144)
        guest = {fd for fd in range(1024) if h.call("fstat", fd, statbuf) == 0}
        assert guest == {0, 1, 2}
        assert h.call("read", own, statbuf, 1) == -errno.EBADF
        assert h.call("close", own) == -errno.EBADF
        assert read_all(h, f"/proc/self/fd/{own}") == -errno.ENOENT
        assert read_all(h, f"/dev/fd/{own}") == -errno.ENOENT
        listing = h.call("openat", AT_FDCWD, h.cstr("/proc/self/fd"), O_RDONLY | O_DIRECTORY, 0)
        buf = h.alloc(4096)
        n = h.call("getdents64", listing, buf, 4096)
        names = []
        raw = h.mem.read(buf, n)
        while raw:
            reclen = int.from_bytes(raw[16:18], "little")
            names.append(raw[19:reclen].split(b"\0", 1)[0].decode())
            raw = raw[reclen:]
        assert sorted(names) == sorted([".", "..", "0", "1", "2", str(listing)])
    finally:
        os.close(own)


def test_dev_and_proc_show_nothing_of_the_host(box) -> None:
    h, root, _outside, _program = box
    assert read_all(h, "/dev/null") == b""
    assert len(read_all(h, "/dev/zero")) == 4096  # type: ignore[arg-type]
    for path in ("/dev/sda", "/dev/mem", "/proc/1/environ", "/proc/sys/kernel/hostname", "/proc/mounts"):
        assert read_all(h, path) == -errno.ENOENT, path
    assert h.call("mknodat", AT_FDCWD, h.cstr("/work/disk"), stat.S_IFCHR | 0o666, os.makedev(8, 0)) == -errno.EPERM
    assert h.call("mknodat", AT_FDCWD, h.cstr("/work/fifo"), stat.S_IFIFO | 0o600, 0) == 0
    assert stat.S_ISFIFO(os.lstat(root / "work" / "fifo").st_mode)
    assert h.call("unlinkat", AT_FDCWD, h.cstr("/proc"), AT_REMOVEDIR) == -errno.EBUSY
    assert h.call("unlinkat", AT_FDCWD, h.cstr("/dev/null"), 0) == -errno.EPERM
    assert h.call("fchmodat", AT_FDCWD, h.cstr("/dev/null"), 0o777) == -errno.EPERM


def test_without_a_root_proc_self_is_the_guest(make_harness, tmp_path: Path) -> None:
    program = tmp_path / "prog"
    program.write_bytes(b"program")
    h = make_harness(exe=str(program))
    own = os.open("/dev/null", os.O_RDONLY)
    try:
        assert read_all(h, "/proc/self/exe") == b"program"
        assert readlink(h, "/proc/self/exe") == os.fsencode(program)
        assert read_all(h, f"/proc/self/fd/{own}") == -errno.ENOENT
        assert read_all(h, f"/dev/fd/{own}") == -errno.ENOENT
        assert read_all(h, f"/proc/{os.getpid()}/fd/{own}") == -errno.ENOENT
        assert read_all(h, "/proc/self/../self/fd/0/../x") == -errno.ENOTDIR
        assert read_all(h, str(program)) == b"program"  # the host's files, as under qemu-user
    finally:
        os.close(own)
