"""System calls that name files by path: open, stat, readlink, unlink, mkdir, rename, access, cwd.

Every path goes through the guest file system view
(:class:`vm_linux.fs.GuestFilesystem`): relative paths start at the guest
working directory or at a ``*at`` call's directory descriptor, and under a
guest root they are resolved inside it. Calls that act on a link itself
(``lstat``, ``readlink``, ``unlink``, ``rename``, ``O_NOFOLLOW``,
``O_CREAT|O_EXCL``) resolve without following the last component.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from typing import Any

from vm_linux import hostcalls
from vm_linux.guest_errno import GuestErrno
from vm_linux.state import AT_FDCWD, ProcessState
from vm_linux.syscalls import openflags
from vm_linux.syscalls.registry import s32, syscall

AT_SYMLINK_NOFOLLOW = 0x100
AT_REMOVEDIR = 0x200
AT_EACCESS = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_STATX_SYNC_TYPE = 0x6000
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4


def _follow(flags: int) -> bool:
    return not flags & AT_SYMLINK_NOFOLLOW


@syscall("openat")
def sys_openat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    dirfd, path, flags, mode = s32(a[0]), st.read_path(a[1]), s32(a[2]), a[3] & 0o7777
    exclusive_create = flags & openflags.O_CREAT and flags & openflags.O_EXCL
    follow = not (flags & openflags.O_NOFOLLOW or exclusive_create)
    host = st.host_path_at(dirfd, path, follow=follow)
    host_flags = openflags.to_host(flags & ~openflags.O_CLOEXEC) | os.O_CLOEXEC
    host_fd = os.open(host, host_flags, mode)
    return st.fds.install(host_fd, st.guest_path_for(host), cloexec=bool(flags & openflags.O_CLOEXEC))


def _stat_at(st: ProcessState, dirfd: int, path_ptr: int, flags: int) -> os.stat_result:
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT):
        raise GuestErrno(errno.EINVAL)
    path = st.read_path(path_ptr)
    if path == "" and flags & AT_EMPTY_PATH:
        if dirfd == AT_FDCWD:
            return os.stat(st.fs.resolve("."))
        return os.fstat(st.fds.host(dirfd))
    return os.stat(st.host_path_at(dirfd, path, follow=_follow(flags)), follow_symlinks=_follow(flags))


@syscall("newfstatat")
def sys_newfstatat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    result = _stat_at(st, s32(a[0]), a[1], s32(a[3]))
    st.mem.write(a[2], st.abi.pack_stat(result))
    return 0


@syscall("fstat")
def sys_fstat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    st.mem.write(a[1], st.abi.pack_stat(os.fstat(st.fds.host(s32(a[0])))))
    return 0


@syscall("statx")
def sys_statx(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    dirfd, flags, mask = s32(a[0]), s32(a[2]), a[3] & 0xFFFFFFFF
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE):
        raise GuestErrno(errno.EINVAL)
    path = st.read_path(a[1])
    if path == "" and flags & AT_EMPTY_PATH:
        if dirfd == AT_FDCWD:
            raw = hostcalls.statx(st.fs.resolve("."), flags & ~AT_EMPTY_PATH, mask)
        else:
            raw = hostcalls.statx("", flags, mask, dir_fd=st.fds.host(dirfd))
    else:
        host = st.host_path_at(dirfd, path, follow=_follow(flags))
        raw = hostcalls.statx(host, flags & ~AT_EMPTY_PATH, mask)
    st.mem.write(a[4], raw)
    return 0


@syscall("readlinkat")
def sys_readlinkat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    dirfd, path, buf, size = s32(a[0]), st.read_path(a[1]), a[2], s32(a[3])
    if size <= 0:
        raise GuestErrno(errno.EINVAL)
    base = None if path.startswith("/") else st.dir_base(dirfd)
    if path and st.fs.is_proc_exe(path, base):
        target = os.fsencode(st.fs.exe_link())
    else:
        target = os.fsencode(os.readlink(st.host_path_at(dirfd, path, follow=False)))
    target = target[:size]
    st.mem.write(buf, target)
    return len(target)


@syscall("unlinkat")
def sys_unlinkat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    dirfd, path, flags = s32(a[0]), st.read_path(a[1]), s32(a[2])
    if flags & ~AT_REMOVEDIR:
        raise GuestErrno(errno.EINVAL)
    host = st.host_path_at(dirfd, path, follow=False)
    if flags & AT_REMOVEDIR:
        os.rmdir(host)
    else:
        os.unlink(host)
    return 0


@syscall("mkdirat")
def sys_mkdirat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    os.mkdir(st.host_path_at(s32(a[0]), st.read_path(a[1]), follow=False), a[2] & 0o7777)
    return 0


def _rename(st: ProcessState, a: Sequence[int], flags: int) -> int:
    if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT):
        raise GuestErrno(errno.EINVAL)
    old = st.host_path_at(s32(a[0]), st.read_path(a[1]), follow=False)
    new = st.host_path_at(s32(a[2]), st.read_path(a[3]), follow=False)
    if flags:
        hostcalls.renameat2(old, new, flags)
    else:
        os.rename(old, new)
    return 0


@syscall("renameat")
def sys_renameat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return _rename(st, a, 0)


@syscall("renameat2")
def sys_renameat2(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return _rename(st, a, s32(a[4]))


def _access(st: ProcessState, dirfd: int, path_ptr: int, mode: int, flags: int) -> int:
    if mode & ~7 or flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise GuestErrno(errno.EINVAL)
    path = st.read_path(path_ptr)
    if path == "" and flags & AT_EMPTY_PATH and dirfd != AT_FDCWD:
        host = f"/proc/self/fd/{st.fds.host(dirfd)}"
    else:
        host = st.host_path_at(dirfd, path, follow=_follow(flags))
    os.stat(host, follow_symlinks=_follow(flags))  # ENOENT, ENOTDIR, ELOOP as the kernel
    if not os.access(host, mode, effective_ids=bool(flags & AT_EACCESS), follow_symlinks=_follow(flags)):
        raise GuestErrno(errno.EACCES)
    return 0


@syscall("faccessat")
def sys_faccessat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return _access(st, s32(a[0]), a[1], s32(a[2]), 0)


@syscall("faccessat2")
def sys_faccessat2(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return _access(st, s32(a[0]), a[1], s32(a[2]), s32(a[3]))


@syscall("getcwd")
def sys_getcwd(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    cwd = os.fsencode(st.fs.cwd) + b"\0"
    if len(cwd) > a[1]:
        raise GuestErrno(errno.ERANGE)
    st.mem.write(a[0], cwd)
    return len(cwd)


@syscall("chdir")
def sys_chdir(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    st.fs.chdir(st.read_path(a[0]))
    return 0


@syscall("fchdir")
def sys_fchdir(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    entry = st.fds.get(s32(a[0]))
    if entry.guest_path is None or not stat.S_ISDIR(os.fstat(entry.host_fd).st_mode):
        raise GuestErrno(errno.ENOTDIR)
    st.fs.chdir(entry.guest_path)
    return 0


@syscall("symlinkat")
def sys_symlinkat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    target = st.read_path(a[0])
    os.symlink(target, st.host_path_at(s32(a[1]), st.read_path(a[2]), follow=False))
    return 0


@syscall("linkat")
def sys_linkat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    flags = s32(a[4])
    if flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH):
        raise GuestErrno(errno.EINVAL)
    follow = bool(flags & AT_SYMLINK_FOLLOW)
    old = st.host_path_at(s32(a[0]), st.read_path(a[1]), follow=follow)
    new = st.host_path_at(s32(a[2]), st.read_path(a[3]), follow=False)
    os.link(old, new, follow_symlinks=follow)
    return 0


@syscall("fchmodat")
def sys_fchmodat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    os.chmod(st.host_path_at(s32(a[0]), st.read_path(a[1])), a[2] & 0o7777)
    return 0


@syscall("fchmod")
def sys_fchmod(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    os.fchmod(st.fds.host(s32(a[0])), a[1] & 0o7777)
    return 0


@syscall("umask")
def sys_umask(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return os.umask(a[0] & 0o777)
