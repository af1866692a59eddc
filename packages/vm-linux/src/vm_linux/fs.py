"""The guest's view of the file system, resolved with file descriptors, never with path strings.

A guest path is resolved the way Linux's ``openat2(RESOLVE_IN_ROOT)`` does
it, relative to host file descriptors that vm holds: the guest root (``--root
DIR``, or the host's ``/`` without one), the guest's working directory and
every guest directory descriptor are host ``O_PATH`` descriptors, never
remembered strings. So a guest that renames its working directory away and
plants a symbolic link in its place changes nothing about where a relative
path starts, and a path can only ever name something below the root.

Two resolvers give the same answers (both are tested, and the walk is checked
against the kernel's ``openat2`` as an oracle):

* **openat2** (:data:`RESOLVE_FAST`): a path without symbolic links is
  resolved by the host kernel in one call, ``openat2(root, path,
  RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`` (or
  ``RESOLVE_BENEATH`` from a directory below the root). Any symbolic link
  on the way makes the kernel refuse (``ELOOP``/``EXDEV``) and the walk
  takes over, because only the walk knows the guest's ``/proc`` and ``/dev``.
* **the walk** (:meth:`GuestFilesystem._walk`): component by component with
  ``openat(dir, name, O_PATH | O_NOFOLLOW)``; ``..`` at the root stays there
  (the root is recognised by device and inode); a symbolic link is read with
  ``readlinkat`` and its target resolved *as a guest path* (absolute targets
  restart at the root), at most :data:`MAX_SYMLINKS` times (``ELOOP``).

Every operation then acts on what resolution produced: an ``O_PATH``
descriptor of the object itself (``fstat``, ``fchownat(AT_EMPTY_PATH)``,
reopening through the host's ``/proc/self/fd/N`` for ``open``), or the
parent directory's descriptor and the last component with the ``*at`` call
and no following (``unlinkat``, ``mkdirat``, ``renameat2``, ``linkat``,
``symlinkat``, ``mknodat``). A symbolic link swapped in between resolution
and use cannot lead anywhere: the final call either acts on the object
already found or refuses to follow (``O_NOFOLLOW``).

``/proc`` and ``/dev`` are the guest's own (:mod:`vm_linux.vfs`): with a root
they are virtual mounts at the guest's ``/proc`` and ``/dev``, whatever the
root holds there; without one the host's are used, except the entries that
describe the process itself (``/proc/self``, ``/proc/thread-self``,
``/proc/<pid>``), which describe the guest as under qemu-user. Their magic
links (``exe``, ``cwd``, ``root``, ``fd/N``) lead to descriptors vm holds for
the guest; what lies outside the root (the program, the standard streams vm
was given) can be read and written through them but never traversed, and
its metadata never changed.
"""

from __future__ import annotations

import enum
import errno
import fcntl
import os
import stat
from typing import Any

import attrs

from vm_linux import hostcalls
from vm_linux.guest_errno import GuestErrno

MAX_SYMLINKS = 40
PATH_MAX = 4096
NAME_MAX = 255
O_LOOKUP = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_FAST_RETRY = frozenset({errno.ELOOP, errno.EXDEV, errno.EAGAIN})
_FAST_RESOLVE = hostcalls.RESOLVE_NO_SYMLINKS | hostcalls.RESOLVE_NO_MAGICLINKS

#: Which resolver serves paths: ``"openat2"`` (the kernel where it can, the walk otherwise) or ``"walk"``.
RESOLVE_FAST = "openat2"
RESOLVE_WALK = "walk"


class LastType(enum.Enum):
    """What the last component of a path is (Linux's ``LAST_NORM``, ``LAST_DOT``, ...)."""

    NORM = "norm"
    DOT = "dot"
    DOTDOT = "dotdot"
    ROOT = "root"


@attrs.define(eq=False)
class Node:
    """One resolved object: a host ``O_PATH`` descriptor this node owns, or a virtual one.

    ``outside`` marks host objects outside the guest root reached through a
    magic link (the program, the standard streams): they may be opened but
    not traversed, and their metadata is never changed. ``program`` marks
    the running program reached through ``/proc/self/exe`` (``ETXTBSY`` for
    writing, as Linux answers).
    """

    fd: int = -1
    mode: int = 0
    virtual: Any = None
    outside: bool = False
    program: bool = False

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    def dup(self) -> Node:
        return Node(os.dup(self.fd) if self.fd >= 0 else -1, self.mode, self.virtual, self.outside, self.program)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@attrs.define(eq=False)
class Parent:
    """A path's last component and the directory that holds it (``dir`` is owned)."""

    dir: Node
    name: str
    last: LastType
    trailing_slash: bool

    def close(self) -> None:
        self.dir.close()

    def __enter__(self) -> Parent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def host_node(fd: int, *, outside: bool = False) -> Node:
    """A :class:`Node` owning host descriptor ``fd`` (its mode read with ``fstat``)."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise
    return Node(fd, mode, outside=outside)


def reopen(fd: int, flags: int, mode: int = 0) -> int:
    """Open the very file host descriptor ``fd`` names, with ``flags`` (no path is looked up again)."""
    return os.open(f"/proc/self/fd/{fd}", flags | os.O_CLOEXEC, mode)


def _components(path: str) -> list[str]:
    """The components of ``path`` as a stack (next one last): empty ones and inner ``.`` dropped."""
    parts = [part for part in path.split("/") if part]
    kept = [part for part in parts[:-1] if part != "."]
    if parts:
        kept.append(parts[-1])
    kept.reverse()
    return kept


def _last_type(name: str) -> LastType:
    return LastType.DOT if name == "." else LastType.DOTDOT if name == ".." else LastType.NORM


def check_path(path: str) -> None:
    """``ENOENT`` for an empty path, ``ENAMETOOLONG`` for an overlong path or component."""
    if path == "":
        raise GuestErrno(errno.ENOENT)
    if len(os.fsencode(path)) >= PATH_MAX:
        raise GuestErrno(errno.ENAMETOOLONG)


class GuestFilesystem:
    """Path resolution for one guest process (see the module docstring).

    ``root`` is the guest root directory (None: the host's ``/``, as under
    qemu-user), ``exe_host_path`` the program, ``cwd`` an optional guest path
    to start in (resolved inside the root), ``resolver`` :data:`RESOLVE_FAST`
    or :data:`RESOLVE_WALK` (default: openat2 where the host kernel has it).
    """

    def __init__(
        self, root: str | None, exe_host_path: str, *, cwd: str | None = None, resolver: str | None = None
    ) -> None:
        if not os.path.isdir("/proc/self/fd"):
            raise GuestErrno(errno.ENOSYS)  # the host's /proc is how vm reopens what it resolved
        self.root_path = os.path.realpath(root) if root is not None else None
        self.confined = root is not None
        try:
            root_fd = os.open(self.root_path or "/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            raise GuestErrno(errno.ENOTDIR) from None
        self.root_node = host_node(root_fd)
        info = os.fstat(root_fd)
        self.root_id = (info.st_dev, info.st_ino)
        self.proc_dev = os.stat("/proc").st_dev
        self.exe_host_path = os.path.abspath(exe_host_path)
        self.exe_guest_path = self._program_guest_path(self.exe_host_path)
        try:
            exe_fd = os.open(self.exe_host_path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            exe_fd = os.open("/dev/null", os.O_PATH | os.O_CLOEXEC)
        self.exe_node = host_node(exe_fd, outside=self.confined and self.exe_guest_path is None)
        self.exe_node.program = True
        if self.exe_guest_path is None:
            self.exe_guest_path = "/" + os.path.basename(self.exe_host_path)
        if resolver is None:
            resolver = os.environ.get("VM_PATH_RESOLVER") or (
                RESOLVE_FAST if hostcalls.have_openat2() else RESOLVE_WALK
            )
        if resolver not in (RESOLVE_FAST, RESOLVE_WALK):
            raise ValueError(f"unknown path resolver {resolver!r} (openat2 or walk)")
        self.resolver = resolver
        #: The guest's /proc and /dev (a :class:`vm_linux.vfs.VirtualFiles`); set by the process.
        self.vfs: Any = None
        if self.confined:
            self.cwd_node = self.root_node.dup()
        else:
            self.cwd_node = host_node(os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        if cwd is not None:
            self.chdir(self.cwd_node, cwd)

    def set_program(self, host_path: str, guest_path: str) -> None:
        """``execve``: ``/proc/self/exe`` is the new program (``host_path``, which the exec resolved inside the root)."""
        try:
            exe_fd = os.open(host_path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            exe_fd = os.open("/dev/null", os.O_PATH | os.O_CLOEXEC)
        self.exe_node.close()
        self.exe_host_path = host_path
        self.exe_guest_path = guest_path
        self.exe_node = host_node(exe_fd, outside=False)
        self.exe_node.program = True

    def close(self) -> None:
        """Release the descriptors this view holds (root, working directory, program)."""
        for node in (self.root_node, self.cwd_node, self.exe_node):
            node.close()

    # ------------------------------------------------------------------ guest paths of host objects

    def _program_guest_path(self, host_path: str) -> str | None:
        """The guest path of the program file (None: outside the root, see ``exe_guest_path``)."""
        real = os.path.realpath(host_path)
        if self.root_path is None:
            return real
        if real.startswith(self.root_path.rstrip("/") + "/"):
            return real[len(self.root_path.rstrip("/")) :]
        return None

    def guest_path_of_fd(self, host_fd: int) -> str | None:
        """The guest path of what host ``host_fd`` names, from the kernel's own answer (``d_path``).

        None when it is not a file below the root (a pipe, a socket, a host
        file vm was given, a file deleted since). For showing and saving only:
        nothing is ever opened by this string.
        """
        try:
            text = os.readlink(f"/proc/self/fd/{host_fd}")
        except OSError:
            return None
        if not text.startswith("/") or text.endswith(" (deleted)"):
            return None
        if self.root_path is None:
            return text
        if text == self.root_path:
            return "/"
        prefix = self.root_path.rstrip("/") + "/"
        return text[len(prefix) - 1 :] if text.startswith(prefix) else None

    def cwd_path(self) -> str:
        """The guest path of the working directory (``ENOENT`` once it was removed, like ``getcwd``)."""
        node = self.cwd_node
        if node.virtual is not None:
            path: str = node.virtual.guest_path
            return path
        if os.fstat(node.fd).st_nlink == 0:
            raise GuestErrno(errno.ENOENT)
        path_or_none = self.guest_path_of_fd(node.fd)
        if path_or_none is None:
            raise GuestErrno(errno.ENOENT)
        return path_or_none

    # ------------------------------------------------------------------ the walk

    def is_root(self, node: Node) -> bool:
        """Whether ``node`` is the guest root directory (by device and inode)."""
        if node.virtual is not None or node.fd < 0 or not node.is_dir:
            return False
        info = os.fstat(node.fd)
        return (info.st_dev, info.st_ino) == self.root_id

    def _mount(self, parent: Node, name: str) -> Node | None:
        """The virtual node mounted at ``name`` in host directory ``parent`` (``/proc``, ``/dev``), if any."""
        vfs = self.vfs
        if vfs is None:
            return None
        if self.confined:
            if name in vfs.root_mounts and self.is_root(parent):
                mounted = vfs.root_mounts[name]
                return Node(mode=mounted.mode, virtual=mounted)
            return None
        if vfs.is_self_name(name) and parent.fd >= 0 and os.fstat(parent.fd).st_dev == self.proc_dev:
            if os.path.samestat(os.fstat(parent.fd), os.stat("/proc")):
                found = vfs.self_dir(name)
                return Node(mode=found.mode, virtual=found)
        return None

    def child(self, parent: Node, name: str) -> Node:
        """Look ``name`` up in directory ``parent`` without following it (a new node)."""
        if parent.virtual is not None:
            found = parent.virtual.child(name)
            if found is None:
                raise GuestErrno(errno.ENOENT)
            return Node(mode=found.mode, virtual=found)
        if parent.outside:
            raise GuestErrno(errno.EACCES)
        if len(os.fsencode(name)) > NAME_MAX:
            raise GuestErrno(errno.ENAMETOOLONG)
        mounted = self._mount(parent, name)
        if mounted is not None:
            return mounted
        return host_node(os.open(name, O_LOOKUP, dir_fd=parent.fd))

    def dotdot(self, node: Node) -> Node:
        """The parent of directory ``node``; the root is its own parent."""
        if node.virtual is not None:
            up = node.virtual.parent
            if up is not None and (self.confined or up.parent is not None):
                return Node(mode=up.mode, virtual=up)
            if self.confined:
                return self.root_node.dup()
            return host_node(os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        if node.outside:
            raise GuestErrno(errno.EACCES)
        if self.is_root(node):
            return self.root_node.dup()
        return host_node(os.open("..", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=node.fd))

    def _link(self, node: Node) -> str | Node | None:
        """What following ``node`` means: a link text, a magic link's target (a new node), or None."""
        if node.virtual is not None:
            follow = getattr(node.virtual, "follow", None)
            return follow(self) if follow is not None else None
        if node.is_symlink:
            return os.readlink("", dir_fd=node.fd)
        return None

    def _walk(self, start: Node, path: str, *, follow: bool, parent_only: bool, links: list[int]) -> Node | Parent:
        check_path(path)
        cur = (self.root_node if path.startswith("/") else start).dup()
        stack = _components(path)
        trailing = path.endswith("/")
        try:
            if not stack:
                if parent_only:
                    return Parent(cur, "", LastType.ROOT, trailing)
                return cur
            while True:
                name = stack.pop()
                last = not stack
                if last and parent_only:
                    found = Parent(cur, name, _last_type(name), trailing)
                    cur = Node()
                    return found
                if not cur.is_dir:
                    raise GuestErrno(errno.ENOTDIR)
                if name == ".":
                    nxt = cur.dup()
                elif name == "..":
                    nxt = self.dotdot(cur)
                else:
                    nxt = self.child(cur, name)
                if not last or follow or trailing:
                    target = self._link(nxt)
                    if target is not None:
                        links[0] += 1
                        if links[0] > MAX_SYMLINKS:
                            nxt.close()
                            if isinstance(target, Node):
                                target.close()
                            raise GuestErrno(errno.ELOOP)
                        nxt.close()
                        if isinstance(target, Node):
                            nxt = target
                        else:
                            if target == "":
                                raise GuestErrno(errno.ENOENT)
                            if target.startswith("/"):
                                cur.close()
                                cur = self.root_node.dup()
                            if last and target.endswith("/"):
                                trailing = True
                            stack.extend(_components(target))
                            if not stack:  # the link points at "/" (or the directory it is in, "." dropped)
                                stack.append(".")
                            continue
                cur.close()
                cur = nxt
                if last:
                    if trailing and not cur.is_dir:
                        raise GuestErrno(errno.ENOTDIR)
                    return cur
        except BaseException:
            cur.close()
            raise

    # ------------------------------------------------------------------ the operations' entry points

    def lookup(self, start: Node, path: str, *, follow: bool = True) -> Node:
        """The object ``path`` names, relative to directory ``start`` (a new node the caller closes)."""
        fast = self._fast(start, path, os.O_PATH | (0 if follow else os.O_NOFOLLOW), 0)
        if fast is not None:
            return host_node(fast)
        found = self._walk(start, path, follow=follow, parent_only=False, links=[0])
        assert isinstance(found, Node)
        return found

    def parent(self, start: Node, path: str) -> Parent:
        """The directory holding ``path``'s last component, and that component (not followed)."""
        found = self._walk(start, path, follow=False, parent_only=True, links=[0])
        assert isinstance(found, Parent)
        if found.dir.outside or (found.dir.virtual is None and not found.dir.is_dir):
            found.close()
            raise GuestErrno(errno.EACCES if found.dir.outside else errno.ENOTDIR)
        return found

    def mounted(self, where: Parent) -> bool:
        """Whether ``where`` names a virtual mount point (``/proc``, ``/dev`` under a root)."""
        if where.last is not LastType.NORM or where.dir.virtual is not None:
            return False
        node = self._mount(where.dir, where.name)
        return node is not None

    def open(self, start: Node, path: str, flags: int, mode: int) -> tuple[int, Any, bool]:
        """Open ``path`` with host ``flags``: (host fd, the virtual node behind it or None, whether the
        file lies outside the root: the program or a standard stream reached through ``/proc``)."""
        fast = self._fast(start, path, flags, mode)
        if fast is not None:
            return fast, None, False
        create = bool(flags & os.O_CREAT)
        exclusive = create and bool(flags & os.O_EXCL)
        follow = not (flags & os.O_NOFOLLOW or exclusive)
        links = [0]
        where = self.parent(start, path)
        try:
            while True:
                if where.last is not LastType.NORM:
                    if create:
                        raise GuestErrno(errno.EEXIST if exclusive else errno.EISDIR)
                    node = self._walk(where.dir, where.name or ".", follow=True, parent_only=False, links=links)
                    assert isinstance(node, Node)
                    with node:
                        return self.open_node(node, flags)
                if not where.dir.is_dir:
                    raise GuestErrno(errno.ENOTDIR)
                if create and where.trailing_slash:
                    raise GuestErrno(errno.EISDIR)
                try:
                    node = self.child(where.dir, where.name)
                except GuestErrno as err:
                    if err.code != errno.ENOENT or not create or where.dir.virtual is not None:
                        raise
                    if where.trailing_slash:
                        raise GuestErrno(errno.EISDIR) from None
                    return self._create(where, flags, mode), None, False
                except FileNotFoundError:
                    if not create:
                        raise
                    if where.trailing_slash:
                        raise GuestErrno(errno.EISDIR) from None
                    return self._create(where, flags, mode), None, False
                with node:
                    if exclusive:
                        raise GuestErrno(errno.EEXIST)
                    target = self._link(node) if (follow or where.trailing_slash) else None
                    if target is None:
                        if where.trailing_slash and not node.is_dir:
                            raise GuestErrno(errno.ENOTDIR)
                        return self.open_node(node, flags)
                links[0] += 1
                if links[0] > MAX_SYMLINKS:
                    if isinstance(target, Node):
                        target.close()
                    raise GuestErrno(errno.ELOOP)
                if isinstance(target, Node):
                    with target:
                        return self.open_node(target, flags)
                if target == "":
                    raise GuestErrno(errno.ENOENT)
                base = self.root_node if target.startswith("/") else where.dir
                slash = where.trailing_slash or target.endswith("/")
                found = self._walk(base, target, follow=False, parent_only=True, links=links)
                assert isinstance(found, Parent)
                where.close()
                where = found
                where.trailing_slash = slash
        finally:
            where.close()

    def _create(self, where: Parent, flags: int, mode: int) -> int:
        if where.dir.outside:
            raise GuestErrno(errno.EACCES)
        return os.open(where.name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=where.dir.fd)

    def open_node(self, node: Node, flags: int) -> tuple[int, Any, bool]:
        """Open the object ``node`` names with host ``flags`` (no path is looked up); see :meth:`open`."""
        if node.virtual is not None:
            return node.virtual.open(self, flags), node.virtual, False
        if flags & os.O_PATH:
            return os.dup(node.fd), None, node.outside
        if node.is_symlink:
            raise GuestErrno(errno.ELOOP)
        if flags & os.O_DIRECTORY and not node.is_dir:
            raise GuestErrno(errno.ENOTDIR)
        tmpfile = flags & os.O_TMPFILE == os.O_TMPFILE
        if node.is_dir and flags & os.O_ACCMODE != os.O_RDONLY and not tmpfile:
            raise GuestErrno(errno.EISDIR)
        writing = flags & os.O_ACCMODE != os.O_RDONLY or flags & os.O_TRUNC
        if writing and node.program:
            raise GuestErrno(errno.ETXTBSY)  # the running program, as Linux answers for /proc/self/exe
        if node.outside:
            if tmpfile:
                raise GuestErrno(errno.EACCES)
            held = fcntl.fcntl(node.fd, fcntl.F_GETFL) & os.O_ACCMODE
            wanted = flags & os.O_ACCMODE
            if (writing and held == os.O_RDONLY) or (wanted != os.O_WRONLY and held == os.O_WRONLY):
                raise GuestErrno(errno.EACCES)  # a stream vm was given: no more access than it came with
        return reopen(node.fd, flags & ~(os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW)), None, node.outside

    def _fast(self, start: Node, path: str, flags: int, mode: int) -> int | None:
        """``openat2`` for a path without symbolic links (None: the walk must resolve it)."""
        if self.resolver != RESOLVE_FAST or start.virtual is not None or start.outside or path == "":
            return None
        check_path(path)
        if path.startswith("/") or self.is_root(start):
            if self._names_virtual(path):
                return None
            dir_fd, resolve = self.root_node.fd, hostcalls.RESOLVE_IN_ROOT | _FAST_RESOLVE
        else:
            if not self.confined and os.fstat(start.fd).st_dev == self.proc_dev:
                return None
            dir_fd, resolve = start.fd, hostcalls.RESOLVE_BENEATH | _FAST_RESOLVE
        if not flags & os.O_CREAT and flags & os.O_TMPFILE != os.O_TMPFILE:
            mode = 0
        try:
            return hostcalls.openat2(dir_fd, path, flags | os.O_CLOEXEC, mode, resolve)
        except OSError as err:
            if err.errno in _FAST_RETRY:
                return None
            raise

    def _names_virtual(self, path: str) -> bool:
        """Whether ``path`` taken lexically from the root enters a virtual mount (``/proc``, ``/dev``)."""
        if self.vfs is None:
            return False
        depth: list[str] = []
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if depth:
                    depth.pop()
                continue
            depth.append(part)
            if len(depth) == 1:
                mounts = self.vfs.root_mounts if self.confined else {"proc": None}
                if part in mounts:
                    return True
        return False

    # ------------------------------------------------------------------ working directory

    def chdir(self, start: Node, path: str) -> None:
        """Make ``path`` the guest working directory (``ENOENT``/``ENOTDIR``/``EACCES`` as Linux)."""
        node = self.lookup(start, path)
        self.set_cwd(node)

    def set_cwd(self, node: Node) -> None:
        """Make directory ``node`` (taken over) the working directory."""
        try:
            if not node.is_dir:
                raise GuestErrno(errno.ENOTDIR)
            if node.outside:
                raise GuestErrno(errno.EACCES)
            if node.virtual is None and not os.access(f"/proc/self/fd/{node.fd}", os.X_OK):
                raise GuestErrno(errno.EACCES)
        except BaseException:
            node.close()
            raise
        self.cwd_node.close()
        self.cwd_node = node
