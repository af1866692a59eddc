"""The guest's ``/proc`` and ``/dev`` as the path resolver sees them: :mod:`vm_linux.procfs` nodes made openable.

:class:`VirtualFiles` is what :class:`vm_linux.fs.GuestFilesystem` mounts:
with a guest root, the whole of ``/proc`` and ``/dev``; without one, only
the entries of the host's ``/proc`` that describe the process itself
(``self``, ``thread-self``, the guest's pid), as qemu-user does.

:class:`VirtualNode` wraps one :class:`vm_linux.procfs.Node` (the tree and
its contents are that module's) with what resolution and the system calls
need: a ``mode``, a ``guest_path``, a ``parent`` for ``..``, ``child`` and
``names`` for directories, ``follow``/``readlink`` for links, ``stat``,
and ``open``, which gives a host descriptor:

* a regular file: a read-only memory file holding the bytes rendered at
  open (as qemu does; Linux renders on each ``read``);
* a directory: a descriptor of an empty, removed directory (``read`` says
  ``EISDIR``; ``getdents64`` lists the virtual entries, :func:`virtual_dirents`);
* a device (``null``, ``zero``, ``full``, ``random``, ``urandom``, ``tty``):
  the host's device of that name, whose behaviour is the kernel's and
  through which no file is reachable.

Links: ``/proc/self`` -> ``PID`` and ``/dev/stdin`` -> ``/proc/self/fd/0``
are ordinary links whose text the resolver walks on from; ``exe``, ``cwd``,
``root`` and ``fd/N`` are magic links, and following one yields a new
:class:`~vm_linux.fs.Node` for the descriptor vm holds for the guest (the
program, the working directory, the root, the guest's fd N), never a path.
Nothing else of the host shows through: no ``/proc/<other pid>``, no
``/proc/sys``, no ``/dev/sda``.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import tempfile
import time
from typing import Any

import attrs

from vm_linux.guest_errno import GuestErrno
from vm_linux.procfs import Node as ProcNode
from vm_linux.procfs import NodeKind, dev_root, proc_root
from vm_linux.procfs_source import OUTSIDE_ROOT_LINK, StateProcSource

_MAX_SIZE = 1 << 24
_MAGIC_NAMES = frozenset({"exe", "cwd", "root"})


@attrs.frozen
class VirtualStat:
    """The ``stat`` fields of a virtual node (what ``pack_stat`` and ``statx`` read)."""

    st_mode: int
    st_ino: int
    st_dev: int
    st_nlink: int
    st_uid: int
    st_gid: int
    st_size: int
    st_rdev: int
    st_blksize: int
    st_blocks: int
    st_atime_ns: int
    st_mtime_ns: int
    st_ctime_ns: int


class VirtualNode:
    """One entry of the guest's ``/proc`` or ``/dev`` (see the module docstring)."""

    def __init__(self, owner: VirtualFiles, node: ProcNode, parent: VirtualNode | None) -> None:
        self.owner = owner
        self.node = node
        self.parent = parent
        self.mode = node.mode
        #: How far ``getdents64`` has read a directory (shared by duplicated descriptors, like an offset).
        self.position = 0

    @property
    def guest_path(self) -> str:
        if self.parent is None:
            return self.owner.mount_point(self.node.name)
        return f"{self.parent.guest_path}/{self.node.name}"

    @property
    def is_dir(self) -> bool:
        return self.node.kind is NodeKind.DIRECTORY

    def names(self) -> list[str]:
        return [entry.name for entry in self.node.entries(self.owner.source)]

    def child(self, name: str) -> VirtualNode | None:
        found = self.node.child(self.owner.source, name)
        return None if found is None else VirtualNode(self.owner, found, self)

    def stat(self) -> VirtualStat:
        return self.owner.stat_for(self)

    # ------------------------------------------------------------------ links

    @property
    def is_magic(self) -> bool:
        node = self.node
        return node.kind is NodeKind.SYMLINK and (node.fd is not None or (node.owned_by_process and node.name in _MAGIC_NAMES))

    def readlink(self, fs: Any) -> str:
        return self.node.readlink(self.owner.source)

    def follow(self, fs: Any) -> Any:
        """None for what is no link; a link's text; a magic link's target as a new :class:`~vm_linux.fs.Node`."""
        node = self.node
        if node.kind is not NodeKind.SYMLINK:
            return None
        if not self.is_magic:
            return node.readlink(self.owner.source)
        if node.fd is not None:
            return self.owner.fd_target(node.fd)
        target = {"exe": fs.exe_node, "cwd": fs.cwd_node, "root": fs.root_node}[node.name]
        return target.dup()

    # ------------------------------------------------------------------ opening

    def open(self, fs: Any, flags: int) -> int:
        node = self.node
        access = flags & os.O_ACCMODE
        if node.kind is NodeKind.DIRECTORY:
            if access != os.O_RDONLY or flags & os.O_CREAT:
                raise GuestErrno(errno.EISDIR)
            return self.owner.empty_dir_fd()
        if flags & os.O_DIRECTORY:
            raise GuestErrno(errno.ENOTDIR)
        if node.kind is NodeKind.CHAR_DEVICE:
            assert node.device is not None
            keep = flags & ~(os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_TMPFILE)
            return os.open(f"/dev/{node.name}", keep | os.O_CLOEXEC)
        if access != os.O_RDONLY or flags & os.O_TRUNC:
            raise GuestErrno(errno.EACCES)  # vm's /proc files take no writes
        data = node.read(self.owner.source)[:_MAX_SIZE]
        memfd = os.memfd_create(f"vm-proc-{node.name}", os.MFD_CLOEXEC)
        try:
            os.write(memfd, data)
            keep = flags & os.O_NONBLOCK
            return os.open(f"/proc/self/fd/{memfd}", keep | os.O_RDONLY | os.O_CLOEXEC)
        finally:
            os.close(memfd)


class VirtualFiles:
    """The guest's ``/proc`` and ``/dev`` over one process (see the module docstring).

    ``process`` provides ``state`` (the :class:`~vm_linux.state.ProcessState`);
    ``memory_limit_bytes`` caps what ``/proc/meminfo`` shows as ``MemTotal``.
    """

    def __init__(self, process: Any, *, memory_limit_bytes: int | None = None) -> None:
        self.process = process
        state = process.state
        self.source = StateProcSource(
            state,
            exe_guest_path=lambda: str(state.fs.exe_guest_path),
            cwd_guest_path=self._cwd_text,
            fd_link_text_of=self.fd_text,
            memory_limit_bytes=memory_limit_bytes,
        )
        self.started_ns = time.time_ns()
        self._empty_dir: int | None = None
        self._inodes: dict[str, int] = {}
        self.root_mounts: dict[str, VirtualNode] = {
            "proc": VirtualNode(self, proc_root(), None),
            "dev": VirtualNode(self, dev_root(), None),
        }

    @property
    def pid(self) -> int:
        return int(self.process.state.pid)

    def close(self) -> None:
        if self._empty_dir is not None:
            os.close(self._empty_dir)
            self._empty_dir = None

    # ------------------------------------------------------------------ what GuestFilesystem asks

    def mount_point(self, name: str) -> str:
        return f"/{name}"

    def is_self_name(self, name: str) -> bool:
        return name in ("self", "thread-self", str(self.pid))

    def self_dir(self, name: str) -> VirtualNode:
        """``/proc/<name>`` for a name :meth:`is_self_name` accepts (mounted into the host's /proc)."""
        found = self.root_mounts["proc"].child(name)
        if found is None:
            raise GuestErrno(errno.ENOENT)
        return found

    def empty_dir_fd(self) -> int:
        """A host descriptor of an empty, removed directory: what a virtual directory's fd reads as."""
        if self._empty_dir is None:
            path = tempfile.mkdtemp(prefix="vm-vdir-")
            self._empty_dir = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            os.rmdir(path)
        return os.dup(self._empty_dir)

    def stat_for(self, vnode: VirtualNode) -> VirtualStat:
        node = vnode.node
        ino = self._inodes.setdefault(vnode.guest_path, 0x1000 + len(self._inodes))
        nlink = 2 if node.kind is NodeKind.DIRECTORY else 1
        uid, gid = (os.geteuid(), os.getegid()) if node.owned_by_process else (0, 0)
        t = self.started_ns
        return VirtualStat(node.mode, ino, 0, nlink, uid, gid, 0, node.rdev, 1024, 0, t, t, t)

    # ------------------------------------------------------------------ the guest's descriptors

    def _cwd_text(self) -> str:
        try:
            return str(self.process.state.fs.cwd_path())
        except GuestErrno:
            return "/ (deleted)"

    def fd_target(self, fd: int) -> Any:
        """What following ``/proc/self/fd/N`` reaches: a new node for the guest's descriptor ``fd``."""
        from vm_linux.fs import Node, host_node

        entry = self.process.state.fds.files.get(fd)
        if entry is None:
            raise GuestErrno(errno.ENOENT)
        if entry.virtual is not None:
            return Node(mode=entry.virtual.mode, virtual=entry.virtual)
        return host_node(os.dup(entry.host_fd), outside=self.process.state.outside_root(entry))

    def fd_text(self, fd: int) -> str:
        """What ``readlink("/proc/self/fd/N")`` shows: a guest path, or the kernel's ``pipe:[...]``.

        A host file outside the root (a stream vm was given) never shows its
        host path: terminals show their device name, anything else
        :data:`~vm_linux.procfs_source.OUTSIDE_ROOT_LINK`.
        """
        entry = self.process.state.fds.files.get(fd)
        if entry is None:
            raise GuestErrno(errno.ENOENT)
        if entry.virtual is not None:
            return str(entry.virtual.guest_path)
        link_text = getattr(entry.special, "link_text", None)  # a signalfd over a host eventfd
        if link_text is not None:
            return str(link_text)
        fs = self.process.state.fs
        if entry.inside_root:
            path = fs.guest_path_of_fd(entry.host_fd)
            if path is not None:
                return str(path)
        try:
            text = os.readlink(f"/proc/self/fd/{entry.host_fd}")
        except OSError:
            raise GuestErrno(errno.ENOENT) from None
        if not text.startswith("/") or not fs.confined:
            return text
        if text.startswith(("/dev/pts/", "/memfd:")) or text in ("/dev/null", "/dev/tty", "/dev/zero", "/dev/urandom"):
            return text  # the same for every process (a memfd: the guest's own name): no host secret
        return OUTSIDE_ROOT_LINK


_DIRENT_HEAD = struct.Struct("<QqHB")
DT_TYPES = {stat.S_IFDIR: 4, stat.S_IFREG: 8, stat.S_IFLNK: 10, stat.S_IFCHR: 2}


def virtual_dirents(directory: Any, count: int) -> bytes:
    """``struct linux_dirent64`` records of a virtual directory from its ``position``, at most ``count`` bytes.

    Entry 0 is ``.``, entry 1 ``..``, then the directory's names; ``d_off``
    is the index of the next entry (what ``lseek`` takes back).
    """
    if not getattr(directory, "is_dir", False):
        raise GuestErrno(errno.ENOTDIR)
    names = [".", "..", *directory.names()]
    out = b""
    index = directory.position
    while index < len(names):
        name = names[index]
        raw_name = os.fsencode(name) + b"\0"
        reclen = (_DIRENT_HEAD.size + len(raw_name) + 7) & ~7
        if len(out) + reclen > count:
            if not out:
                raise GuestErrno(errno.EINVAL)
            break
        if name in (".", ".."):
            kind, ino = 4, 1 + index
        else:
            child = directory.child(name)
            kind = DT_TYPES.get(stat.S_IFMT(child.mode), 0) if child is not None else 0
            ino = child.stat().st_ino if child is not None else 0
        record = _DIRENT_HEAD.pack(ino, index + 1, reclen, kind) + raw_name
        out += record + bytes(reclen - len(record))
        index += 1
    directory.position = index
    return out
