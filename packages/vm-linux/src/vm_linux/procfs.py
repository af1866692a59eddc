"""The virtual /proc and /dev a guest sees: a tree of nodes whose contents come from guest state.

No path resolution happens here: the resolver walks guest paths, and when a
walk reaches the guest's /proc or /dev it asks this module for the node below,
one component at a time (:func:`proc_root`, :func:`dev_root`,
:meth:`Node.child`, or :func:`walk` for a list of components without
symbolic links in between). A :class:`Node` says what the entry is, as Linux
shows it (``kind``, ``mode``, ``rdev``), and produces from a
:class:`~vm_linux.procfs_source.ProcSource`:

* a regular file's bytes (:meth:`Node.read`: the whole content, rendered at
  open time as qemu does; Linux renders on each ``read``);
* a symbolic link's text (:meth:`Node.readlink`);
* a directory's entries (:meth:`Node.entries`).

The tree (modes as Linux 6.x shows them)::

    /proc                     dr-xr-xr-x  self -> PID, thread-self -> PID/task/PID, PID/, cpuinfo, meminfo
    /proc/PID                 dr-xr-xr-x  exe, cwd, root (lrwxrwxrwx), fd/ (dr-x------),
                                          maps cmdline stat statm status (-r--r--r--),
                                          environ auxv (-r--------), comm (-rw-r--r--), task/
    /proc/PID/fd/N            l + rwx of the descriptor's access mode for the owner (lr-x------ ...)
    /proc/PID/task/PID        the same entries as /proc/PID, without task/
    /dev                      drwxr-xr-x  null zero full random urandom tty (crw-rw-rw-),
                                          stdin stdout stderr -> /proc/self/fd/0..2, fd -> /proc/self/fd

``/proc/self`` is a symbolic link, as on Linux (``lstat`` shows
``0o120777``; ``stat`` follows it to the ``0o40555`` directory). Only the
guest's own pid exists under /proc. ``exe``, ``cwd``, ``root``,
``fd/N`` are Linux's "magic" links: their text is a guest path (or
``pipe:[...]`` etc.), and opening them opens what they stand for; a node
carries ``fd`` (the guest descriptor of an ``fd/N`` link) so that the
resolver can reopen the descriptor itself rather than the text.

Writes: :attr:`Node.write_rule` says what ``write`` does (see
:class:`WriteRule`); :func:`device_read` and :func:`device_write` serve the
character devices. Owners: nodes with ``owned_by_process`` belong to the
process's effective uid and gid (everything under /proc/PID), the others to
root. Sizes: Linux reports 0 for all of them.
"""

from __future__ import annotations

import enum
import errno
import os
from collections.abc import Callable, Sequence

import attrs

from vm_linux.guest_errno import GuestErrno
from vm_linux.procfs_render import (
    render_auxv,
    render_cmdline,
    render_cpuinfo,
    render_environ,
    render_maps,
    render_meminfo,
    render_stat,
    render_statm,
    render_status,
    task_comm,
)
from vm_linux.procfs_source import GUEST_DEVICES, ProcSource

S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR = 0o100000, 0o040000, 0o120000, 0o020000
TASK_COMM_LEN = 16


class NodeKind(enum.Enum):
    REGULAR = "regular file"
    DIRECTORY = "directory"
    SYMLINK = "symbolic link"
    CHAR_DEVICE = "character device"


class WriteRule(enum.Enum):
    """What ``write`` on an open node does (opening for writing is the resolver's permission check)."""

    #: no write operation: ``write`` fails with ``EINVAL`` (Linux's ``vfs_write`` without ``.write``)
    NO_WRITE_OP = "EINVAL"
    #: the bytes are accepted and dropped (``/dev/null``, ``/dev/zero``, ``/dev/random``, ``/dev/urandom``)
    DISCARD = "discard"
    #: ``ENOSPC`` (``/dev/full``)
    NO_SPACE = "ENOSPC"
    #: sets the task name (``/proc/PID/comm``): :func:`write_comm`
    SET_COMM = "comm"
    #: the controlling terminal's: the resolver opens the VM's own ``/dev/tty`` (``ENXIO`` without one)
    TERMINAL = "terminal"


class CharDevice(enum.Enum):
    """The character devices of the guest's /dev, with their Linux device numbers."""

    NULL = GUEST_DEVICES["/dev/null"]
    ZERO = GUEST_DEVICES["/dev/zero"]
    FULL = GUEST_DEVICES["/dev/full"]
    RANDOM = GUEST_DEVICES["/dev/random"]
    URANDOM = GUEST_DEVICES["/dev/urandom"]
    TTY = GUEST_DEVICES["/dev/tty"]

    @property
    def rdev(self) -> int:
        major, minor = self.value
        return os.makedev(major, minor)


@attrs.frozen(eq=False)
class Node:
    """One entry of the virtual /proc or /dev (see the module docstring)."""

    name: str
    kind: NodeKind
    mode: int
    content: Callable[[ProcSource], bytes] | None = None
    link: Callable[[ProcSource], str] | None = None
    children: Callable[[ProcSource], Sequence[Node]] | None = None
    device: CharDevice | None = None
    fd: int | None = None
    write_rule: WriteRule = WriteRule.NO_WRITE_OP
    owned_by_process: bool = False

    @property
    def rdev(self) -> int:
        return self.device.rdev if self.device is not None else 0

    def read(self, source: ProcSource) -> bytes:
        """A regular file's bytes (``EINVAL`` for other kinds; devices: :func:`device_read`)."""
        if self.content is None:
            raise GuestErrno(errno.EINVAL)
        return self.content(source)

    def readlink(self, source: ProcSource) -> str:
        """A symbolic link's text (``EINVAL`` for other kinds, as ``readlink`` answers)."""
        if self.link is None:
            raise GuestErrno(errno.EINVAL)
        return self.link(source)

    def entries(self, source: ProcSource) -> Sequence[Node]:
        """A directory's entries in listing order (``ENOTDIR`` for other kinds)."""
        if self.children is None:
            raise GuestErrno(errno.ENOTDIR)
        return self.children(source)

    def child(self, source: ProcSource, name: str) -> Node | None:
        """The entry ``name`` of this directory, or None (``ENOTDIR`` when this is no directory)."""
        for node in self.entries(source):
            if node.name == name:
                return node
        return None


def _regular(
    name: str, mode: int, content: Callable[[ProcSource], bytes], *,
    write_rule: WriteRule = WriteRule.NO_WRITE_OP, owned_by_process: bool = False,
) -> Node:
    return Node(name, NodeKind.REGULAR, S_IFREG | mode, content=content, write_rule=write_rule,
                owned_by_process=owned_by_process)


def _symlink(
    name: str, link: Callable[[ProcSource], str], mode: int = 0o777, *,
    fd: int | None = None, owned_by_process: bool = False,
) -> Node:
    return Node(name, NodeKind.SYMLINK, S_IFLNK | mode, link=link, fd=fd, owned_by_process=owned_by_process)


def _directory(
    name: str, mode: int, children: Callable[[ProcSource], Sequence[Node]], *, owned_by_process: bool = False
) -> Node:
    return Node(name, NodeKind.DIRECTORY, S_IFDIR | mode, children=children, owned_by_process=owned_by_process)


# ---------------------------------------------------------------------- /proc/PID


def _fd_mode(access: int) -> int:
    """Linux's ``tid_fd_update_inode``: r-x for a readable, -wx for a writable descriptor (owner only)."""
    mode = 0
    if access in (os.O_RDONLY, os.O_RDWR):
        mode |= 0o500
    if access in (os.O_WRONLY, os.O_RDWR):
        mode |= 0o300
    return mode


def _fd_link(fd: int) -> Callable[[ProcSource], str]:
    return lambda source: source.fd_link_text(fd)


def _fd_entries(source: ProcSource) -> Sequence[Node]:
    return [
        _symlink(str(fd), _fd_link(fd), _fd_mode(source.fd_access_mode(fd)), fd=fd, owned_by_process=True)
        for fd in source.fd_numbers()
    ]


def _process_entries(source: ProcSource, *, with_task: bool) -> list[Node]:
    own = True
    nodes = [
        _regular("auxv", 0o400, render_auxv, owned_by_process=own),
        _regular("cmdline", 0o444, render_cmdline, owned_by_process=own),
        _regular("comm", 0o644, lambda s: (task_comm(s) + "\n").encode(), write_rule=WriteRule.SET_COMM, owned_by_process=own),
        _symlink("cwd", lambda s: s.cwd_guest_path(), owned_by_process=own),
        _regular("environ", 0o400, render_environ, owned_by_process=own),
        _symlink("exe", lambda s: s.exe_guest_path(), owned_by_process=own),
        _directory("fd", 0o500, _fd_entries, owned_by_process=own),
        _regular("maps", 0o444, render_maps, owned_by_process=own),
        _symlink("root", lambda s: "/", owned_by_process=own),
        _regular("stat", 0o444, render_stat, owned_by_process=own),
        _regular("statm", 0o444, render_statm, owned_by_process=own),
        _regular("status", 0o444, lambda s: render_status(s, possible_cpus=s.cpu_count()), owned_by_process=own),
    ]
    if with_task:
        nodes.append(_directory("task", 0o555, _task_entries, owned_by_process=own))
    return nodes


def _task_entries(source: ProcSource) -> Sequence[Node]:
    return [_directory(str(source.pid), 0o555, lambda s: _process_entries(s, with_task=False), owned_by_process=True)]


def _proc_entries(source: ProcSource) -> Sequence[Node]:
    pid = str(source.pid)
    return [  # Linux lists its fixed entries first, then the processes
        _regular("cpuinfo", 0o444, lambda s: render_cpuinfo(s.cpu_count())),
        _regular("meminfo", 0o444, lambda s: render_meminfo(*s.memory_kib())),
        _symlink("self", lambda s: str(s.pid)),
        _symlink("thread-self", lambda s: f"{s.pid}/task/{s.pid}"),
        _directory(pid, 0o555, lambda s: _process_entries(s, with_task=True), owned_by_process=True),
    ]


# ---------------------------------------------------------------------- /dev


def _device(name: str, device: CharDevice, rule: WriteRule) -> Node:
    return Node(name, NodeKind.CHAR_DEVICE, S_IFCHR | 0o666, device=device, write_rule=rule)


_DEV_ENTRIES: tuple[Node, ...] = (
    _symlink("fd", lambda s: "/proc/self/fd"),
    _device("full", CharDevice.FULL, WriteRule.NO_SPACE),
    _device("null", CharDevice.NULL, WriteRule.DISCARD),
    _device("random", CharDevice.RANDOM, WriteRule.DISCARD),
    _symlink("stderr", lambda s: "/proc/self/fd/2"),
    _symlink("stdin", lambda s: "/proc/self/fd/0"),
    _symlink("stdout", lambda s: "/proc/self/fd/1"),
    _device("tty", CharDevice.TTY, WriteRule.TERMINAL),
    _device("urandom", CharDevice.URANDOM, WriteRule.DISCARD),
    _device("zero", CharDevice.ZERO, WriteRule.DISCARD),
)

PROC_ROOT = _directory("proc", 0o555, _proc_entries)
DEV_ROOT = _directory("dev", 0o755, lambda s: _DEV_ENTRIES)


def proc_root() -> Node:
    """The node of the guest's ``/proc``."""
    return PROC_ROOT


def dev_root() -> Node:
    """The node of the guest's ``/dev``."""
    return DEV_ROOT


def walk(source: ProcSource, top: Node, components: Sequence[str]) -> Node | None:
    """The node ``components`` below ``top`` without following symbolic links, or None when absent.

    Raises ``ENOTDIR`` when a component before the last is not a directory
    (a symbolic link in the middle, ``/proc/self/...``, is the resolver's to
    follow: it reads the link and walks on from its text).
    """
    node = top
    for name in components:
        if name in ("", "."):
            continue
        if node.kind is not NodeKind.DIRECTORY:
            raise GuestErrno(errno.ENOTDIR)
        found = node.child(source, name)
        if found is None:
            return None
        node = found
    return node


# ---------------------------------------------------------------------- devices and writes


def device_read(device: CharDevice, size: int) -> bytes | None:
    """What ``read(size)`` returns from ``device``; None for the terminal (the resolver opens it)."""
    if device is CharDevice.NULL:
        return b""
    if device in (CharDevice.ZERO, CharDevice.FULL):
        return bytes(size)
    if device in (CharDevice.RANDOM, CharDevice.URANDOM):
        return os.urandom(size)  # the entropy vm's getrandom hands out too
    return None


def device_write(device: CharDevice, data: bytes) -> int | None:
    """What ``write(data)`` returns on ``device`` (``ENOSPC`` for full); None for the terminal."""
    if device is CharDevice.FULL:
        raise GuestErrno(errno.ENOSPC)
    if device is CharDevice.TTY:
        return None
    return len(data)


def write_to(node: Node, data: bytes) -> int:
    """``write`` on a /proc regular file: ``EINVAL`` unless it has a write operation (comm: :func:`write_comm`)."""
    if node.write_rule is WriteRule.DISCARD:
        return len(data)
    if node.write_rule is WriteRule.NO_SPACE:
        raise GuestErrno(errno.ENOSPC)
    raise GuestErrno(errno.EINVAL)


def write_comm(state: object, data: bytes) -> int:
    """``write`` on /proc/PID/comm: the task name becomes ``data`` (to its first NUL, at most 15 bytes).

    ``state`` is the process state holding ``exec_image``; Linux's
    ``comm_write`` copies ``min(len, TASK_COMM_LEN - 1)`` bytes without
    stripping a newline, and answers the whole length.
    """
    image = getattr(state, "exec_image", None)
    name = data[: TASK_COMM_LEN - 1].split(b"\0", 1)[0]
    if image is not None:
        state.exec_image = attrs.evolve(image, comm=os.fsdecode(name))  # type: ignore[attr-defined]
    return len(data)
