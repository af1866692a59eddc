"""System calls that change the file system by path: create, remove, rename, link, and change metadata.

Names are created and removed with the ``*at`` call on the parent
directory's ``O_PATH`` descriptor and the last component, which the kernel
never follows (``mkdirat``, ``mknodat``, ``unlinkat``, ``renameat2``,
``linkat``, ``symlinkat``). Metadata changes act on the ``O_PATH``
descriptor of the object resolution found (``fchownat(AT_EMPTY_PATH)``,
``utimensat(AT_EMPTY_PATH)``, ``chmod`` and ``truncate`` through the host's
``/proc/self/fd/N`` of that descriptor). So a name swapped for a symbolic
link after resolution is never followed out of the guest root.

What the guest may not change, it gets Linux's errno for: the virtual
``/proc`` and ``/dev`` (``EPERM``, ``ENOENT``, ``EXDEV`` as procfs answers;
``EBUSY`` for their mount points), and files outside the root that it
reaches through ``/proc/self/exe`` or ``/proc/self/fd`` (``EPERM``;
``ETXTBSY`` for truncating the running program). Device nodes are never
created (``mknod`` of a character or block device: ``EPERM``), since one
would open a host device.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from typing import Any

from vm_linux import hostcalls
from vm_linux.fs import LastType, Node, Parent, reopen
from vm_linux.guest_errno import GuestErrno
from vm_linux.state import AT_FDCWD, ProcessState
from vm_linux.syscalls.paths import (
    AT_EMPTY_PATH,
    AT_REMOVEDIR,
    AT_SYMLINK_FOLLOW,
    AT_SYMLINK_NOFOLLOW,
    follow_flag,
)
from vm_linux.syscalls.registry import s32, s64, syscall, u32

RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
TIMESPEC_PAIR = 32


def _changeable(node: Node) -> int:
    """The host descriptor of an object whose metadata the guest may change (``EPERM`` otherwise)."""
    if node.virtual is not None or node.outside:
        raise GuestErrno(errno.EPERM)
    return node.fd


def _creatable(st: ProcessState, where: Parent) -> int:
    """The parent directory descriptor in which the last component of ``where`` may be created."""
    if where.dir.virtual is not None:
        raise GuestErrno(errno.ENOENT)  # procfs has no such entry and creates none
    if where.last is not LastType.NORM or st.fs.mounted(where):
        raise GuestErrno(errno.EEXIST)
    return where.dir.fd


# ---------------------------------------------------------------------------------- create


@syscall("mkdirat")
def sys_mkdirat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    with st.parent(s32(a[0]), st.read_path(a[1])) as where:
        os.mkdir(where.name, a[2] & 0o7777, dir_fd=_creatable(st, where))
    return 0


@syscall("mknodat")
def sys_mknodat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    mode = u32(a[2])
    kind = stat.S_IFMT(mode) or stat.S_IFREG
    if kind in (stat.S_IFCHR, stat.S_IFBLK):
        raise GuestErrno(errno.EPERM)  # a device node inside the root would open the host's device
    if kind == stat.S_IFDIR:
        raise GuestErrno(errno.EPERM)
    if kind not in (stat.S_IFREG, stat.S_IFIFO, stat.S_IFSOCK):
        raise GuestErrno(errno.EINVAL)
    with st.parent(s32(a[0]), st.read_path(a[1])) as where:
        os.mknod(where.name, kind | (mode & 0o7777), 0, dir_fd=_creatable(st, where))
    return 0


@syscall("symlinkat")
def sys_symlinkat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    target = st.read_path(a[0])
    if target == "":
        raise GuestErrno(errno.ENOENT)
    with st.parent(s32(a[1]), st.read_path(a[2])) as where:
        os.symlink(target, where.name, dir_fd=_creatable(st, where))
    return 0


@syscall("linkat")
def sys_linkat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    olddirfd, old_path, newdirfd, new_path, flags = s32(a[0]), st.read_path(a[1]), s32(a[2]), st.read_path(a[3]), s32(a[4])
    if flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH):
        raise GuestErrno(errno.EINVAL)
    with st.parent(newdirfd, new_path) as new:
        if new.dir.virtual is not None:
            raise GuestErrno(errno.EXDEV)
        new_dir = _creatable(st, new)
        if (old_path == "" and flags & AT_EMPTY_PATH) or flags & AT_SYMLINK_FOLLOW:
            with st.lookup(olddirfd, old_path, follow=True, empty_path=bool(flags & AT_EMPTY_PATH)) as node:
                if node.virtual is not None:
                    raise GuestErrno(errno.EXDEV)
                if node.outside:
                    raise GuestErrno(errno.ENOENT if old_path == "" else errno.EXDEV)
                if node.is_dir:
                    raise GuestErrno(errno.EPERM)
                hostcalls.linkat_empty(node.fd, new_dir, new.name)
            return 0
        with st.parent(olddirfd, old_path) as old:
            if old.dir.virtual is not None:
                raise GuestErrno(errno.EXDEV)
            if old.last is not LastType.NORM or st.fs.mounted(old):
                raise GuestErrno(errno.EPERM)
            os.link(old.name, new.name, src_dir_fd=old.dir.fd, dst_dir_fd=new_dir, follow_symlinks=False)
    return 0


# ---------------------------------------------------------------------------------- remove, rename


@syscall("unlinkat")
def sys_unlinkat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    dirfd, path, flags = s32(a[0]), st.read_path(a[1]), s32(a[2])
    if flags & ~AT_REMOVEDIR:
        raise GuestErrno(errno.EINVAL)
    with st.parent(dirfd, path) as where:
        if flags & AT_REMOVEDIR:
            if where.last is not LastType.NORM:
                raise GuestErrno({LastType.DOT: errno.EINVAL, LastType.DOTDOT: errno.ENOTEMPTY}.get(where.last, errno.EBUSY))
            if where.dir.virtual is not None:
                raise GuestErrno(errno.EPERM)
            if st.fs.mounted(where):
                raise GuestErrno(errno.EBUSY)
            os.rmdir(where.name, dir_fd=where.dir.fd)
            return 0
        if where.last is not LastType.NORM or st.fs.mounted(where):
            raise GuestErrno(errno.EISDIR)
        if where.dir.virtual is not None:
            raise GuestErrno(errno.EPERM)
        if where.trailing_slash:
            info = os.stat(where.name, dir_fd=where.dir.fd, follow_symlinks=False)
            raise GuestErrno(errno.EISDIR if stat.S_ISDIR(info.st_mode) else errno.ENOTDIR)
        os.unlink(where.name, dir_fd=where.dir.fd)
    return 0


def _rename(st: ProcessState, a: Sequence[int], flags: int) -> int:
    if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT):
        raise GuestErrno(errno.EINVAL)
    if flags & RENAME_EXCHANGE and flags & (RENAME_NOREPLACE | RENAME_WHITEOUT):
        raise GuestErrno(errno.EINVAL)
    with st.parent(s32(a[0]), st.read_path(a[1])) as old, st.parent(s32(a[2]), st.read_path(a[3])) as new:
        if old.dir.virtual is not None or new.dir.virtual is not None:
            raise GuestErrno(errno.ENOENT if old.dir.virtual is not None and new.dir.virtual is not None else errno.EXDEV)
        if old.last is not LastType.NORM or new.last is not LastType.NORM:
            raise GuestErrno(errno.EBUSY)
        if st.fs.mounted(old) or st.fs.mounted(new):
            raise GuestErrno(errno.EBUSY)
        if old.trailing_slash or new.trailing_slash:
            info = os.stat(old.name, dir_fd=old.dir.fd, follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode) and (old.trailing_slash or not flags & RENAME_EXCHANGE):
                raise GuestErrno(errno.ENOTDIR)
        hostcalls.renameat2_at(old.dir.fd, old.name, new.dir.fd, new.name, flags)
    return 0


@syscall("renameat")
def sys_renameat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return _rename(st, a, 0)


@syscall("renameat2")
def sys_renameat2(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return _rename(st, a, s32(a[4]))


# ---------------------------------------------------------------------------------- metadata


def _chmod_node(node: Node, mode: int) -> None:
    os.chmod(f"/proc/self/fd/{_changeable(node)}", mode)


@syscall("fchmodat")
def sys_fchmodat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    with st.lookup(s32(a[0]), st.read_path(a[1])) as node:
        _chmod_node(node, a[2] & 0o7777)
    return 0


@syscall("fchmod")
def sys_fchmod(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    with st.fd_node(s32(a[0])) as node:
        _chmod_node(node, a[1] & 0o7777)
    return 0


@syscall("fchownat")
def sys_fchownat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    flags = s32(a[4])
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise GuestErrno(errno.EINVAL)
    path = st.read_path(a[1])
    with st.lookup(s32(a[0]), path, follow=follow_flag(flags), empty_path=bool(flags & AT_EMPTY_PATH)) as node:
        hostcalls.fchownat_empty(_changeable(node), u32(a[2]), u32(a[3]))
    return 0


@syscall("fchown")
def sys_fchown(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    with st.fd_node(s32(a[0])) as node:
        hostcalls.fchownat_empty(_changeable(node), u32(a[1]), u32(a[2]))
    return 0


@syscall("utimensat")
def sys_utimensat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    dirfd, path_ptr, times_ptr, flags = s32(a[0]), a[1], a[2], s32(a[3])
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise GuestErrno(errno.EINVAL)
    times = st.mem.read(times_ptr, TIMESPEC_PAIR) if times_ptr else None
    if path_ptr == 0:
        if dirfd == AT_FDCWD:
            raise GuestErrno(errno.EFAULT)
        node = st.fd_node(dirfd)
    else:
        path = st.read_path(path_ptr)
        node = st.lookup(dirfd, path, follow=follow_flag(flags), empty_path=bool(flags & AT_EMPTY_PATH))
    with node:
        hostcalls.utimensat_empty(_changeable(node), times, flags & AT_SYMLINK_NOFOLLOW)
    return 0


@syscall("truncate")
def sys_truncate(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    length = s64(a[1])
    if length < 0:
        raise GuestErrno(errno.EINVAL)
    with st.lookup(AT_FDCWD, st.read_path(a[0])) as node:
        if node.program:
            raise GuestErrno(errno.ETXTBSY)
        if node.is_dir:
            raise GuestErrno(errno.EISDIR)
        if node.virtual is not None:
            raise GuestErrno(errno.EACCES if stat.S_ISREG(node.mode) else errno.EINVAL)
        if not stat.S_ISREG(node.mode):
            raise GuestErrno(errno.EINVAL)
        fd = reopen(_changeable(node), os.O_WRONLY)
        try:
            os.ftruncate(fd, length)
        finally:
            os.close(fd)
    return 0
