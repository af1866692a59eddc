"""System calls that look paths up: open, the stat family, readlink, access, statfs, the working directory.

Every path is resolved by :class:`vm_linux.fs.GuestFilesystem` with file
descriptors (see that module): relative paths start at the guest's working
directory or at a ``*at`` call's directory descriptor, never at a remembered
string, and under a guest root nothing outside it can be named. Each call
then acts on the ``O_PATH`` descriptor resolution produced (``fstat``,
``statx(AT_EMPTY_PATH)``, ``fstatfs``, reopening it for ``open``), so a
symbolic link swapped in afterwards changes nothing. Calls that change the
file system are in :mod:`vm_linux.syscalls.pathmods`.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Sequence
from typing import Any

from vm_linux import hostcalls
from vm_linux.fs import Node
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
STATX_BASIC_STATS = 0x7FF
_STATX_HEAD = struct.Struct("<IIQIIIHxxQQQQ")
_STATX_TIME = struct.Struct("<qIi")
_STATX_DEVS = struct.Struct("<IIII")
_S_IFMT = 0o170000


def follow_flag(flags: int) -> bool:
    return not flags & AT_SYMLINK_NOFOLLOW


def node_stat(node: Node) -> Any:
    """What ``stat`` says of ``node``: the host's ``fstat`` of its descriptor, or the virtual node's own."""
    if node.virtual is not None:
        return node.virtual.stat()
    return os.fstat(node.fd)


def fd_stat(st: ProcessState, fd: int) -> Any:
    """``fstat`` of guest ``fd`` (a virtual file's own stat for ``/proc`` and ``/dev`` entries)."""
    entry = st.fds.get(fd)
    if entry.virtual is not None:
        return entry.virtual.stat()
    return os.fstat(entry.host_fd)


def pack_virtual_statx(info: Any, mask: int) -> bytes:
    """A ``struct statx`` (256 bytes) for a virtual node's stat."""
    head = _STATX_HEAD.pack(
        STATX_BASIC_STATS & mask or STATX_BASIC_STATS, info.st_blksize, 0, info.st_nlink, info.st_uid,
        info.st_gid, info.st_mode, info.st_ino, info.st_size, info.st_blocks, 0,
    )
    times = b"".join(
        _STATX_TIME.pack(ns // 1_000_000_000, ns % 1_000_000_000, 0)
        for ns in (info.st_atime_ns, 0, info.st_ctime_ns, info.st_mtime_ns)
    )
    devs = _STATX_DEVS.pack(os.major(info.st_rdev), os.minor(info.st_rdev), os.major(info.st_dev), os.minor(info.st_dev))
    raw = head + times + devs
    return raw + bytes(hostcalls.STATX_SIZE - len(raw))


# ---------------------------------------------------------------------------------- open


def open_at(st: ProcessState, dirfd: int, path: str, flags: int, mode: int) -> int:
    """``openat`` with guest ``flags``: the new guest descriptor."""
    host_flags = openflags.to_host(flags & ~openflags.O_CLOEXEC)
    if flags & openflags.O_TMPFILE_BIT and not flags & openflags.O_ACCMODE:
        raise GuestErrno(errno.EINVAL)
    host_fd, virtual, outside = st.fs.open(st.base(dirfd, path), path, host_flags, mode)
    return st.fds.install(
        host_fd, cloexec=bool(flags & openflags.O_CLOEXEC), inside_root=virtual is None and not outside, virtual=virtual
    )


@syscall("openat")
def sys_openat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return open_at(st, s32(a[0]), st.read_path(a[1]), s32(a[2]), a[3] & 0o7777)


@syscall("openat2")
def sys_openat2(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    """``openat2`` without ``RESOLVE_*`` flags is ``openat``; the guest's own resolve flags are refused."""
    size = a[3]
    if size < 24 or size > 4096:
        raise GuestErrno(errno.EINVAL)
    raw = st.mem.read(a[2], size)
    flags, mode, resolve = struct.unpack_from("<QQQ", raw)
    if any(raw[24:]) or flags >> 32 or mode & ~0o7777:
        raise GuestErrno(errno.E2BIG if any(raw[24:]) else errno.EINVAL)
    if mode and not flags & (openflags.O_CREAT | openflags.O_TMPFILE_BIT):
        raise GuestErrno(errno.EINVAL)
    if resolve:
        st.log.info("openat2_resolve_flags_unsupported", resolve=hex(resolve))
        raise GuestErrno(errno.EINVAL if resolve & ~0x1F else errno.ENOSYS)
    return open_at(st, s32(a[0]), st.read_path(a[1]), s32(flags), mode)


# ---------------------------------------------------------------------------------- stat family


def _stat_at(st: ProcessState, dirfd: int, path_ptr: int, flags: int) -> Any:
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT):
        raise GuestErrno(errno.EINVAL)
    path = st.read_path(path_ptr)
    with st.lookup(dirfd, path, follow=follow_flag(flags), empty_path=bool(flags & AT_EMPTY_PATH)) as node:
        return node_stat(node)


@syscall("newfstatat")
def sys_newfstatat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    result = _stat_at(st, s32(a[0]), a[1], s32(a[3]))
    st.mem.write(a[2], st.abi.pack_stat(result))
    return 0


@syscall("fstat")
def sys_fstat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    st.mem.write(a[1], st.abi.pack_stat(fd_stat(st, s32(a[0]))))
    return 0


@syscall("statx")
def sys_statx(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    dirfd, flags, mask = s32(a[0]), s32(a[2]), a[3] & 0xFFFFFFFF
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH | AT_NO_AUTOMOUNT | AT_STATX_SYNC_TYPE):
        raise GuestErrno(errno.EINVAL)
    if flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE or mask & 0x80000000:
        raise GuestErrno(errno.EINVAL)
    path = st.read_path(a[1])
    with st.lookup(dirfd, path, follow=follow_flag(flags), empty_path=bool(flags & AT_EMPTY_PATH)) as node:
        if node.virtual is not None:
            raw = pack_virtual_statx(node.virtual.stat(), mask)
        else:
            raw = hostcalls.statx("", (flags & AT_STATX_SYNC_TYPE) | AT_EMPTY_PATH, mask, dir_fd=node.fd)
    st.mem.write(a[4], raw)
    return 0


@syscall("readlinkat")
def sys_readlinkat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    dirfd, path, buf, size = s32(a[0]), st.read_path(a[1]), a[2], s32(a[3])
    if size <= 0:
        raise GuestErrno(errno.EINVAL)
    with st.lookup(dirfd, path, follow=False, empty_path=True) as node:
        if node.virtual is not None:
            readlink = getattr(node.virtual, "readlink", None)
            if readlink is None:
                raise GuestErrno(errno.EINVAL)
            target = os.fsencode(readlink(st.fs))
        elif node.is_symlink:
            target = os.fsencode(os.readlink("", dir_fd=node.fd))
        else:
            raise GuestErrno(errno.EINVAL if path else errno.ENOENT)
    target = target[:size]
    st.mem.write(buf, target)
    return len(target)


# ---------------------------------------------------------------------------------- access, statfs


def _virtual_access(info: Any, mode: int) -> bool:
    if os.geteuid() == 0:
        return not mode & os.X_OK or bool(info.st_mode & 0o111)
    bits = (info.st_mode >> 6) & 7 if info.st_uid == os.geteuid() else info.st_mode & 7
    return mode & bits == mode


def _access(st: ProcessState, dirfd: int, path_ptr: int, mode: int, flags: int) -> int:
    if mode & ~7 or flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise GuestErrno(errno.EINVAL)
    path = st.read_path(path_ptr)
    with st.lookup(dirfd, path, follow=follow_flag(flags), empty_path=bool(flags & AT_EMPTY_PATH)) as node:
        if node.virtual is not None:
            allowed = _virtual_access(node.virtual.stat(), mode)
        elif node.is_symlink:
            allowed = True  # a link's own permissions are always rwxrwxrwx
        else:
            allowed = os.access(f"/proc/self/fd/{node.fd}", mode, effective_ids=bool(flags & AT_EACCESS))
    if not allowed:
        raise GuestErrno(errno.EACCES)
    return 0


@syscall("faccessat")
def sys_faccessat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return _access(st, s32(a[0]), a[1], s32(a[2]), 0)


@syscall("faccessat2")
def sys_faccessat2(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return _access(st, s32(a[0]), a[1], s32(a[2]), s32(a[3]))


def _statfs_of(node: Node) -> bytes:
    if node.virtual is not None:
        host_dir = "/dev" if node.virtual.guest_path.startswith("/dev") else "/proc"
        fd = os.open(host_dir, os.O_PATH | os.O_CLOEXEC)
        try:
            return hostcalls.fstatfs(fd)
        finally:
            os.close(fd)
    return hostcalls.fstatfs(node.fd)


@syscall("statfs")
def sys_statfs(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    with st.lookup(AT_FDCWD, st.read_path(a[0])) as node:
        raw = _statfs_of(node)
    st.mem.write(a[1], raw)
    return 0


@syscall("fstatfs")
def sys_fstatfs(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    with st.fd_node(s32(a[0])) as node:
        raw = _statfs_of(node)
    st.mem.write(a[1], raw)
    return 0


# ---------------------------------------------------------------------------------- working directory


@syscall("getcwd")
def sys_getcwd(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    cwd = os.fsencode(st.fs.cwd_path()) + b"\0"
    if len(cwd) > a[1]:
        raise GuestErrno(errno.ERANGE)
    st.mem.write(a[0], cwd)
    return len(cwd)


@syscall("chdir")
def sys_chdir(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    path = st.read_path(a[0])
    st.fs.set_cwd(st.lookup(AT_FDCWD, path))
    return 0


@syscall("fchdir")
def sys_fchdir(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    st.fs.set_cwd(st.fd_node(s32(a[0])))
    return 0


@syscall("umask")
def sys_umask(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return os.umask(a[0] & 0o777)
