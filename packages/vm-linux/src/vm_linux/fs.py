"""The guest's view of the file system: host paths directly, or a guest root it cannot leave.

Without a root (the qemu-user default) a guest path is a host path; relative
paths are taken from the guest's own working directory, which vm tracks
itself instead of changing the VM process's.

With ``root=DIR`` (like ``chroot`` or ``openat2(RESOLVE_IN_ROOT)``) every
guest path is resolved here component by component inside ``DIR``: ``..`` at
the guest root stays there, and symbolic links inside the root are read and
followed *as guest paths* (absolute targets restart at the guest root,
relative ones continue from the link's directory), at most
:data:`MAX_SYMLINKS` times (``ELOOP``). The result has no symbolic link in
any directory component, so the host call that uses it cannot leave ``DIR``;
with ``follow=False`` the last component is left as it is (``lstat``,
``readlink``, ``unlink``, ``O_NOFOLLOW``).

``/proc/self/exe`` (and ``/proc/<pid>/exe``) names the guest program in both
modes: :meth:`GuestFilesystem.resolve` answers the program's host path and
:meth:`GuestFilesystem.exe_link` what ``readlink`` shows.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat

from vm_linux.guest_errno import GuestErrno

MAX_SYMLINKS = 40
PATH_MAX = 4096


class GuestFilesystem:
    """Path resolution for one guest process (see the module docstring)."""

    def __init__(self, root: str | None, exe_host_path: str, *, cwd: str | None = None) -> None:
        self.root = os.path.realpath(root) if root is not None else None
        if self.root is not None and not os.path.isdir(self.root):
            raise GuestErrno(errno.ENOTDIR)
        self.exe_host_path = os.path.abspath(exe_host_path)
        if cwd is not None:
            self.cwd = cwd
        else:
            self.cwd = "/" if self.root is not None else os.getcwd()

    # ------------------------------------------------------------------ helpers

    def _host(self, guest_abs: str) -> str:
        assert self.root is not None
        return self.root if guest_abs == "/" else self.root + guest_abs

    def guest_path_of_host(self, host_path: str) -> str:
        """The guest path naming host ``host_path`` (itself without a root, or outside the root)."""
        absolute = os.path.abspath(host_path)
        if self.root is None:
            return absolute
        if absolute == self.root:
            return "/"
        if absolute.startswith(self.root + "/"):
            return absolute[len(self.root) :]
        return absolute

    def exe_link(self) -> str:
        """What ``readlink("/proc/self/exe")`` answers: the guest path of the program."""
        return self.guest_path_of_host(self.exe_host_path)

    def is_proc_exe(self, path: str, base: str | None = None) -> bool:
        """Whether ``path`` (relative to guest dir ``base``) names ``/proc/self/exe`` lexically."""
        joined = posixpath.normpath(posixpath.join(base or self.cwd, path))
        return joined in ("/proc/self/exe", f"/proc/{os.getpid()}/exe", "/proc/thread-self/exe")

    # ------------------------------------------------------------------ resolution

    def resolve(self, path: str, base: str | None = None, *, follow: bool = True) -> str:
        """The host path for guest ``path`` relative to guest directory ``base`` (default: cwd)."""
        if path == "":
            raise GuestErrno(errno.ENOENT)
        if len(path) >= PATH_MAX:
            raise GuestErrno(errno.ENAMETOOLONG)
        if self.is_proc_exe(path, base):
            return self.exe_host_path
        if self.root is None:
            if path.startswith("/"):
                return path
            return posixpath.join(base or self.cwd, path)
        return self._host(self.resolve_guest(path, base, follow=follow))

    def resolve_guest(self, path: str, base: str | None = None, *, follow: bool = True) -> str:
        """Resolve ``path`` inside the root and return the resulting absolute *guest* path."""
        trailing_slash = path.endswith("/")
        pending = [c for c in path.split("/") if c not in ("", ".")]
        pending.reverse()  # a stack: the next component is last
        current: list[str] = [] if path.startswith("/") else [c for c in (base or self.cwd).split("/") if c]
        links = 0
        while pending:
            name = pending.pop()
            if name == "..":
                if current:
                    current.pop()
                continue
            candidate = [*current, name]
            host = self._host("/" + "/".join(candidate))
            is_last = not pending
            try:
                info = os.lstat(host)
            except FileNotFoundError:
                if not is_last:
                    raise GuestErrno(errno.ENOENT) from None
                current = candidate
                continue
            except NotADirectoryError:
                raise GuestErrno(errno.ENOTDIR) from None
            if stat.S_ISLNK(info.st_mode) and (follow or not is_last or trailing_slash):
                links += 1
                if links > MAX_SYMLINKS:
                    raise GuestErrno(errno.ELOOP)
                target = os.readlink(host)
                if target.startswith("/"):
                    current = []
                pending.extend(reversed([c for c in target.split("/") if c not in ("", ".")]))
                continue
            if not is_last and not stat.S_ISDIR(info.st_mode):
                raise GuestErrno(errno.ENOTDIR)
            current = candidate
        guest = "/" + "/".join(current)
        if trailing_slash and current:
            guest += "/"
        return guest

    # ------------------------------------------------------------------ working directory

    def chdir(self, path: str, base: str | None = None) -> None:
        """Change the guest working directory (``ENOENT``/``ENOTDIR``/``EACCES`` as Linux)."""
        host = self.resolve(path, base)
        info = os.stat(host)
        if not stat.S_ISDIR(info.st_mode):
            raise GuestErrno(errno.ENOTDIR)
        if not os.access(host, os.X_OK):
            raise GuestErrno(errno.EACCES)
        if self.root is None:
            self.cwd = os.path.realpath(host)
        else:
            self.cwd = self.resolve_guest(path, base).rstrip("/") or "/"
