"""The guest's own ``/proc`` and ``/dev``: virtual directories, files and links built from guest state.

:class:`VirtualFiles` is what :class:`vm_linux.fs.GuestFilesystem` mounts:
with a guest root, the whole of ``/proc`` and ``/dev``; without one, the
entries of the host's ``/proc`` that describe the process itself
(``self``, ``thread-self``, the guest's pid), as qemu-user does.

Every node has a ``mode`` and a ``guest_path``; directories answer
``child(name)`` and ``names()``; links answer ``follow(fs)`` with their text
(an ordinary symbolic link: ``/proc/self`` -> ``1234``, ``/dev/stdin`` ->
``/proc/self/fd/0``) or, for magic links (``exe``, ``cwd``, ``root``,
``fd/N``), with a new :class:`~vm_linux.fs.Node` for a descriptor vm holds
for the guest; files answer ``open(fs, flags)`` with a host descriptor of a
read-only snapshot of their bytes (taken at open, as Linux's seq files are).
``/dev/null``, ``zero``, ``full``, ``random``, ``urandom`` and ``tty`` open
the host's devices of those names: their behaviour is the kernel's, and no
host file is reachable through them. Nothing else of the host shows
through: there is no ``/proc/<other pid>``, no ``/proc/sys``, no ``/dev/sda``.
What the files contain is :mod:`vm_linux.procfs`' business.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import tempfile
import time
from collections.abc import Callable
from typing import Any

import attrs

from vm_linux.guest_errno import GuestErrno

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DIR_MODE = stat.S_IFDIR | 0o555
LINK_MODE = stat.S_IFLNK | 0o777
FILE_MODE = stat.S_IFREG | 0o444
_MAX_SIZE = 1 << 24


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
    """Base of every virtual node: where it is and what ``stat`` says of it."""

    mode = FILE_MODE

    def __init__(self, owner: VirtualFiles, parent: VirtualDir | None, name: str) -> None:
        self.owner = owner
        self.parent = parent
        self.name = name

    @property
    def guest_path(self) -> str:
        if self.parent is None:
            return self.owner.mount_point(self.name)
        return f"{self.parent.guest_path}/{self.name}"

    def child(self, name: str) -> VirtualNode | None:
        raise GuestErrno(errno.ENOTDIR)

    def stat(self) -> VirtualStat:
        return self.owner.stat_for(self, size=0)

    def open(self, fs: Any, flags: int) -> int:
        raise GuestErrno(errno.EACCES)


class VirtualDir(VirtualNode):
    """A directory whose entries are computed from guest state each time they are asked for."""

    mode = DIR_MODE

    def __init__(self, owner: VirtualFiles, parent: VirtualDir | None, name: str,
                 entries: Callable[[VirtualDir], dict[str, Callable[[VirtualDir, str], VirtualNode]]]) -> None:
        super().__init__(owner, parent, name)
        self._entries = entries

    #: How far ``getdents64`` has read (shared by duplicated descriptors, as a file offset is).
    position = 0

    def names(self) -> list[str]:
        return list(self._entries(self))

    def child(self, name: str) -> VirtualNode | None:
        make = self._entries(self).get(name)
        return None if make is None else make(self, name)

    def open(self, fs: Any, flags: int) -> int:
        if flags & os.O_ACCMODE != os.O_RDONLY or flags & os.O_CREAT:
            raise GuestErrno(errno.EISDIR)
        return self.owner.empty_dir_fd(flags)


class VirtualFile(VirtualNode):
    """A read-only file whose bytes are rendered from guest state when it is opened."""

    def __init__(self, owner: VirtualFiles, parent: VirtualDir | None, name: str,
                 render: Callable[[], bytes], mode: int = FILE_MODE) -> None:
        super().__init__(owner, parent, name)
        self.render = render
        self.mode = mode

    def open(self, fs: Any, flags: int) -> int:
        if flags & os.O_DIRECTORY:
            raise GuestErrno(errno.ENOTDIR)
        if flags & os.O_ACCMODE != os.O_RDONLY or flags & os.O_TRUNC:
            raise GuestErrno(errno.EACCES)
        data = self.render()[:_MAX_SIZE]
        memfd = os.memfd_create(f"vm-proc-{self.name}", os.MFD_CLOEXEC)
        try:
            os.write(memfd, data)
            return os.open(f"/proc/self/fd/{memfd}", (flags & (os.O_NONBLOCK | os.O_CLOEXEC)) | os.O_RDONLY | os.O_CLOEXEC)
        finally:
            os.close(memfd)


class VirtualLink(VirtualNode):
    """A symbolic link with a fixed text (``/proc/self`` -> ``1234``, ``/dev/stdin`` -> ``/proc/self/fd/0``)."""

    mode = LINK_MODE

    def __init__(self, owner: VirtualFiles, parent: VirtualDir | None, name: str, text: Callable[[], str]) -> None:
        super().__init__(owner, parent, name)
        self.text = text

    def readlink(self, fs: Any) -> str:
        return self.text()

    def follow(self, fs: Any) -> str:
        return self.text()


class MagicLink(VirtualNode):
    """``exe``, ``cwd``, ``root``, ``fd/N``: following one yields a descriptor vm holds for the guest."""

    mode = LINK_MODE

    def __init__(self, owner: VirtualFiles, parent: VirtualDir | None, name: str,
                 target: Callable[[Any], Any], text: Callable[[Any], str]) -> None:
        super().__init__(owner, parent, name)
        self.target = target
        self.text = text

    def readlink(self, fs: Any) -> str:
        return self.text(fs)

    def follow(self, fs: Any) -> Any:
        return self.target(fs)


class DeviceNode(VirtualNode):
    """A character device of the host's that is safe to hand out (``/dev/null``, ``/dev/urandom``...)."""

    def __init__(self, owner: VirtualFiles, parent: VirtualDir | None, name: str) -> None:
        super().__init__(owner, parent, name)
        try:
            self.mode = os.stat(f"/dev/{name}").st_mode
        except OSError:
            self.mode = stat.S_IFCHR | 0o666

    def stat(self) -> VirtualStat:
        try:
            info = os.stat(f"/dev/{self.name}")
        except OSError:
            raise GuestErrno(errno.ENOENT) from None
        return attrs.evolve(self.owner.stat_for(self, size=0), st_mode=info.st_mode, st_rdev=info.st_rdev)

    def open(self, fs: Any, flags: int) -> int:
        if flags & os.O_DIRECTORY:
            raise GuestErrno(errno.ENOTDIR)
        keep = flags & ~(os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_TMPFILE)
        return os.open(f"/dev/{self.name}", keep | os.O_CLOEXEC)


class VirtualFiles:
    """The guest's ``/proc`` and ``/dev`` (see the module docstring).

    ``process`` provides what the files show: ``state`` (pid, fds, fs, mem),
    ``argv``, ``envp`` and ``stack`` (the initial stack's auxv).
    ``renderers`` maps a ``/proc`` file name (``maps``, ``status``,
    ``cpuinfo``...) to a function of the process that renders its bytes.
    """

    def __init__(self, process: Any, renderers: dict[str, Callable[[Any], bytes]]) -> None:
        self.process = process
        self.renderers = renderers
        self.started_ns = time.time_ns()
        self._empty_dir: int | None = None
        self._inodes: dict[str, int] = {}
        proc = VirtualDir(self, None, "proc", self._proc_entries)
        dev = VirtualDir(self, None, "dev", self._dev_entries)
        self.root_mounts: dict[str, VirtualDir] = {"proc": proc, "dev": dev}

    @property
    def pid(self) -> int:
        return int(self.process.state.pid)

    # ------------------------------------------------------------------ what GuestFilesystem asks

    def mount_point(self, name: str) -> str:
        return f"/{name}"

    def is_self_name(self, name: str) -> bool:
        return name in ("self", "thread-self", str(self.pid))

    def self_dir(self, name: str) -> VirtualNode:
        proc = self.root_mounts["proc"]
        node = proc.child(name)
        assert node is not None
        return node

    def empty_dir_fd(self, flags: int) -> int:
        """A host descriptor of an empty, removed directory: what a virtual directory's fd reads as."""
        if self._empty_dir is None:
            path = tempfile.mkdtemp(prefix="vm-vdir-")
            self._empty_dir = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            os.rmdir(path)
        return os.dup(self._empty_dir)

    def close(self) -> None:
        if self._empty_dir is not None:
            os.close(self._empty_dir)
            self._empty_dir = None

    def stat_for(self, node: VirtualNode, *, size: int) -> VirtualStat:
        ino = self._inodes.setdefault(node.guest_path, 0x1000 + len(self._inodes))
        nlink = 2 if stat.S_ISDIR(node.mode) else 1
        uid, gid = os.geteuid(), os.getegid()
        t = self.started_ns
        return VirtualStat(node.mode, ino, 0, nlink, uid, gid, size, 0, 1024, 0, t, t, t)

    # ------------------------------------------------------------------ /proc

    def _proc_entries(self, directory: VirtualDir) -> dict[str, Callable[[VirtualDir, str], VirtualNode]]:
        pid = str(self.pid)
        entries: dict[str, Callable[[VirtualDir, str], VirtualNode]] = {
            "self": lambda parent, name: VirtualLink(self, parent, name, lambda: pid),
            "thread-self": lambda parent, name: VirtualLink(self, parent, name, lambda: f"{pid}/task/{pid}"),
            pid: lambda parent, name: VirtualDir(self, parent, name, self._pid_entries),
        }
        for name in ("cpuinfo", "meminfo"):
            if name in self.renderers:
                entries[name] = self._file_maker(name)
        return entries

    def _file_maker(self, name: str) -> Callable[[VirtualDir, str], VirtualNode]:
        render = self.renderers[name]
        return lambda parent, entry: VirtualFile(self, parent, entry, lambda: render(self.process))

    def _pid_entries(self, directory: VirtualDir) -> dict[str, Callable[[VirtualDir, str], VirtualNode]]:
        entries: dict[str, Callable[[VirtualDir, str], VirtualNode]] = {
            "exe": lambda parent, name: MagicLink(self, parent, name, self._exe_target, self._exe_text),
            "cwd": lambda parent, name: MagicLink(self, parent, name, self._cwd_target, self._cwd_text),
            "root": lambda parent, name: MagicLink(self, parent, name, self._root_target, lambda fs: "/"),
            "fd": lambda parent, name: VirtualDir(self, parent, name, self._fd_entries),
        }
        if directory.name != "task" and directory.parent is not None and directory.parent.name == "proc":
            entries["task"] = lambda parent, name: VirtualDir(self, parent, name, self._task_entries)
        for name in ("maps", "cmdline", "environ", "auxv", "status", "stat", "statm", "comm"):
            if name in self.renderers:
                entries[name] = self._file_maker(name)
        return entries

    def _task_entries(self, directory: VirtualDir) -> dict[str, Callable[[VirtualDir, str], VirtualNode]]:
        return {str(self.pid): lambda parent, name: VirtualDir(self, parent, name, self._pid_entries)}

    def _fd_entries(self, directory: VirtualDir) -> dict[str, Callable[[VirtualDir, str], VirtualNode]]:
        return {str(fd): self._fd_link for fd in sorted(self.process.state.fds.files)}

    def _fd_link(self, parent: VirtualDir, name: str) -> VirtualNode:
        number = int(name)
        return MagicLink(self, parent, name, lambda fs: self._fd_target(fs, number), lambda fs: self.fd_text(number))

    def _exe_target(self, fs: Any) -> Any:
        return fs.exe_node.dup()

    def _exe_text(self, fs: Any) -> str:
        return str(fs.exe_guest_path)

    def _cwd_target(self, fs: Any) -> Any:
        return fs.cwd_node.dup()

    def _cwd_text(self, fs: Any) -> str:
        try:
            return str(fs.cwd_path())
        except GuestErrno:
            return "/ (deleted)"

    def _root_target(self, fs: Any) -> Any:
        return fs.root_node.dup()

    def _fd_target(self, fs: Any, fd: int) -> Any:
        from vm_linux.fs import Node, host_node

        entry = self.process.state.fds.files.get(fd)
        if entry is None:
            raise GuestErrno(errno.ENOENT)
        if entry.virtual is not None:
            return Node(mode=entry.virtual.mode, virtual=entry.virtual)
        return host_node(os.dup(entry.host_fd), outside=not entry.inside_root)

    def fd_text(self, fd: int) -> str:
        """What ``readlink("/proc/self/fd/N")`` shows: the guest path, or the kernel's ``pipe:[...]``."""
        entry = self.process.state.fds.files.get(fd)
        if entry is None:
            raise GuestErrno(errno.ENOENT)
        if entry.virtual is not None:
            return str(entry.virtual.guest_path)
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
        if text.startswith("/dev/pts/") or text in ("/dev/null", "/dev/tty"):
            return text  # a terminal or the null device: the same for every process, no host secret
        return f"host:[{os.fstat(entry.host_fd).st_ino}]"

    # ------------------------------------------------------------------ /dev

    def _dev_entries(self, directory: VirtualDir) -> dict[str, Callable[[VirtualDir, str], VirtualNode]]:
        entries: dict[str, Callable[[VirtualDir, str], VirtualNode]] = {
            name: lambda parent, entry: DeviceNode(self, parent, entry) for name in DEVICES
        }
        for index, name in enumerate(("stdin", "stdout", "stderr")):
            entries[name] = self._fixed_link(f"/proc/self/fd/{index}")
        entries["fd"] = self._fixed_link("/proc/self/fd")
        return entries

    def _fixed_link(self, text: str) -> Callable[[VirtualDir, str], VirtualNode]:
        return lambda parent, entry: VirtualLink(self, parent, entry, lambda: text)


_DIRENT_HEAD = struct.Struct("<QqHB")
DT_TYPES = {stat.S_IFDIR: 4, stat.S_IFREG: 8, stat.S_IFLNK: 10, stat.S_IFCHR: 2}


def virtual_dirents(directory: Any, count: int) -> bytes:
    """``struct linux_dirent64`` records of a virtual directory from its ``position``, at most ``count`` bytes.

    Entry 0 is ``.``, entry 1 ``..``, then the directory's names; ``d_off``
    is the index of the next entry (what ``lseek`` takes back).
    """
    if not hasattr(directory, "names"):
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
            ino = directory.owner.stat_for(child, size=0).st_ino if child is not None else 0
        record = _DIRENT_HEAD.pack(ino, index + 1, reclen, kind) + raw_name
        out += record + bytes(reclen - len(record))
        index += 1
    directory.position = index
    return out
