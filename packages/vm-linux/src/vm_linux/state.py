"""The kernel-side state of one guest process, as the system-call handlers see it.

:class:`ProcessState` bundles the address space, the file-descriptor table,
the guest file system view, the signal state, the ABI and the few per-process
values Linux keeps (pid, ``set_tid_address`` pointer, ``umask``, resource
limits). Handlers raise :class:`GuestExit` to end the process.
"""

from __future__ import annotations

import errno
import os
import resource
import time
from typing import Any

from vm_core.logging import get_logger

from vm_linux.abi import LinuxAbi
from vm_linux.fdtable import FdTable
from vm_linux.fs import GuestFilesystem
from vm_linux.guest_errno import GuestErrno
from vm_linux.signals import SignalState
from vm_linux.stack import ExecImage

AT_FDCWD = -100
RLIM_INFINITY = 2**64 - 1


class GuestExit(Exception):
    """The guest process ended: by ``exit``/``exit_group`` (``status``) or by a signal (``signal``)."""

    def __init__(self, *, status: int | None = None, signal: int | None = None) -> None:
        super().__init__(f"guest exited (status={status}, signal={signal})")
        self.status = status
        self.signal = signal


def host_rlimit(resource_id: int) -> tuple[int, int]:
    """The host's limit for ``resource_id`` as 64-bit values (``RLIM_INFINITY`` = 2**64-1)."""
    soft, hard = resource.getrlimit(resource_id)
    return (
        RLIM_INFINITY if soft == resource.RLIM_INFINITY else soft,
        RLIM_INFINITY if hard == resource.RLIM_INFINITY else hard,
    )


class ProcessState:
    """Everything a system-call handler may read or change (see the module docstring)."""

    def __init__(self, abi: LinuxAbi, mem: Any, fs: GuestFilesystem, fds: FdTable) -> None:
        self.abi = abi
        self.mem = mem
        self.fs = fs
        self.fds = fds
        self.signals = SignalState()
        self.pid = os.getpid()
        self.clear_child_tid = 0
        self.rlimits: dict[int, tuple[int, int]] = {}
        self.shared_file_ranges: list[tuple[int, int]] = []
        self.warned_syscalls: set[int] = set()
        self.sigreturn_trampoline = 0
        # read by vm_linux.procfs: set by LinuxProcess.load; CLOCK_BOOTTIME when the process began
        self.exec_image: ExecImage | None = None
        self.start_boottime_ns = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        self.peak_mapped_pages = 0
        self.log = get_logger("vm_linux.syscalls", isa=abi.isa)

    # ------------------------------------------------------------------ guest arguments

    def read_path(self, ptr: int) -> str:
        """A NUL-terminated guest path (``EFAULT`` via MemoryFault, ``ENAMETOOLONG``)."""
        raw = self.mem.read_cstring(ptr, 4096)
        if len(raw) >= 4096:
            raise GuestErrno(errno.ENAMETOOLONG)
        return os.fsdecode(raw)

    def dir_base(self, dirfd: int) -> str | None:
        """The guest directory a ``*at`` call's relative path starts from (None: the cwd)."""
        if dirfd == AT_FDCWD:
            return None
        entry = self.fds.get(dirfd)
        if entry.guest_path is None:
            raise GuestErrno(errno.ENOTDIR)
        return entry.guest_path

    def host_path_at(self, dirfd: int, path: str, *, follow: bool = True) -> str:
        """The host path a ``*at`` call with ``dirfd`` and guest ``path`` refers to."""
        base = None if path.startswith("/") else self.dir_base(dirfd)
        return self.fs.resolve(path, base, follow=follow)

    def guest_path_for(self, host_path: str) -> str:
        """The absolute guest path to remember for a descriptor opened at host ``host_path``."""
        if self.fs.root is None:
            return os.path.abspath(host_path)
        return self.fs.guest_path_of_host(host_path)

    def rlimit(self, resource_id: int) -> tuple[int, int]:
        if resource_id not in self.rlimits:
            try:
                self.rlimits[resource_id] = host_rlimit(resource_id)
            except (ValueError, OSError):
                raise GuestErrno(errno.EINVAL) from None
        return self.rlimits[resource_id]
