"""The guest's file-descriptor table: guest fd numbers mapped to host file descriptors.

Each guest descriptor owns its own host descriptor (``dup`` makes a new host
one sharing the open file description, exactly as in Linux), so a guest
closing fd 1 closes only its own copy of the VM's stdout. The guest names
descriptors only through this table: vm's own descriptors (its event store,
its logs, the root it resolves paths in) have no guest number and cannot be
reached. The table also keeps what the host cannot: the guest ``FD_CLOEXEC``
flag, whether the file lies inside the guest root (``inside_root``: opened
by a path the guest resolved, so usable as a ``*at`` directory; the
standard streams vm was given are not), and the virtual ``/proc`` or
``/dev`` node behind a descriptor (:mod:`vm_linux.vfs`).

``limit`` is the guest's ``RLIMIT_NOFILE`` soft limit: no new descriptor is
numbered at or above it (``EMFILE``), as in Linux.
"""

from __future__ import annotations

import errno
import os
from typing import Any

import attrs

from vm_linux.guest_errno import GuestErrno

DEFAULT_FD_LIMIT = 1024


#: The most descriptors a guest may ever have (Linux's default ``fs.nr_open``).
NR_OPEN = 1 << 20


@attrs.define
class OpenFile:
    """One guest descriptor: its host fd, ``FD_CLOEXEC``, whether it lies inside the root, its virtual node."""

    host_fd: int
    cloexec: bool = False
    inside_root: bool = False
    virtual: Any = None
    #: a signalfd's state (vm_linux.syscalls.signalfd): reads come from it, the host fd only signals readiness
    special: Any = None


class FdTable:
    """Guest fd -> :class:`OpenFile`, allocating the lowest free number like Linux."""

    def __init__(self, limit: int = DEFAULT_FD_LIMIT) -> None:
        self.files: dict[int, OpenFile] = {}
        self.limit = limit

    @classmethod
    def with_std_streams(cls, stdin: int = 0, stdout: int = 1, stderr: int = 2) -> FdTable:
        """A table whose fds 0, 1, 2 are duplicates of the given host fds (skipped when closed)."""
        table = cls()
        for guest_fd, host_fd in enumerate((stdin, stdout, stderr)):
            try:
                table.files[guest_fd] = OpenFile(os.dup(host_fd))
            except OSError:
                continue
        return table

    def _lowest_free(self, lowest: int) -> int:
        fd = max(lowest, 0)
        while fd in self.files:
            fd += 1
        if fd >= self.limit:
            raise GuestErrno(errno.EMFILE if lowest < self.limit else errno.EINVAL)
        return fd

    def install(
        self,
        host_fd: int,
        *,
        cloexec: bool = False,
        lowest: int = 0,
        inside_root: bool = False,
        virtual: Any = None,
        special: Any = None,
    ) -> int:
        """Give host fd ``host_fd`` the lowest free guest number >= ``lowest``; the table owns it."""
        try:
            fd = self._lowest_free(lowest)
        except GuestErrno:
            os.close(host_fd)
            raise
        self.files[fd] = OpenFile(host_fd, cloexec, inside_root, virtual, special)
        return fd

    def get(self, fd: int) -> OpenFile:
        """The open file for guest ``fd``; ``EBADF`` if there is none."""
        entry = self.files.get(fd)
        if entry is None:
            raise GuestErrno(errno.EBADF)
        return entry

    def host(self, fd: int) -> int:
        """The host fd behind guest ``fd``."""
        return self.get(fd).host_fd

    def close(self, fd: int) -> None:
        entry = self.files.pop(fd, None)
        if entry is None:
            raise GuestErrno(errno.EBADF)
        os.close(entry.host_fd)

    def dup(self, fd: int, *, lowest: int = 0, cloexec: bool = False) -> int:
        entry = self.get(fd)
        new = self._lowest_free(lowest)
        self.files[new] = OpenFile(os.dup(entry.host_fd), cloexec, entry.inside_root, entry.virtual, entry.special)
        return new

    def dup_to(self, fd: int, new: int, *, cloexec: bool = False) -> int:
        """``dup3``: make guest ``new`` a copy of ``fd``, closing what ``new`` was."""
        entry = self.get(fd)
        if not 0 <= new < self.limit:
            raise GuestErrno(errno.EBADF)
        host_copy = os.dup(entry.host_fd)
        old = self.files.get(new)
        self.files[new] = OpenFile(host_copy, cloexec, entry.inside_root, entry.virtual, entry.special)
        if old is not None:
            os.close(old.host_fd)
        return new

    def close_all(self) -> None:
        for fd in list(self.files):
            self.close(fd)
