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
import stat
import time
from collections.abc import Callable
from typing import Any

from vm_core.logging import get_logger

from vm_linux.abi import LinuxAbi
from vm_linux.fdtable import NR_OPEN, FdTable, OpenFile
from vm_linux.fs import GuestFilesystem, Node, Parent, host_node
from vm_linux.guest_errno import GuestErrno
from vm_linux.guest_procs import HostSignals
from vm_linux.signals import SignalState
from vm_linux.sockaddr import UnixNames
from vm_linux.stack import ExecImage
from vm_linux.timers import GuestTimers
from vm_linux.waiting import Restart, Waker

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
        self.timers = GuestTimers()
        self.host_signals = HostSignals(self.signals, wake=self.wake_waiter)
        self._waker: Waker | None = None
        #: set by the dispatcher when a blocking call was interrupted: (how to restart it, number, first argument)
        self.interrupted: tuple[Restart, int, int] | None = None
        #: how ``restart_syscall`` continues a call interrupted with Restart.BLOCK (Linux's restart_block)
        self.restart_block: Callable[[], int] | None = None
        self.pid = os.getpid()
        #: Whether ``fork`` may copy this process (not on a hardware accelerator: its VM is not the host's to copy).
        self.forkable = True
        self.clear_child_tid = 0
        self.personality = 0  # PER_LINUX; personality(2)
        self.rlimits: dict[int, tuple[int, int]] = {}
        soft, _hard = self.rlimit(resource.RLIMIT_NOFILE)
        fds.limit = min(soft, NR_OPEN)
        self.shared_file_ranges: list[tuple[int, int]] = []
        self.warned_syscalls: set[int] = set()
        self.sigreturn_trampoline = 0
        # read by vm_linux.procfs: set by LinuxProcess.load; CLOCK_BOOTTIME when the process began
        self.exec_image: ExecImage | None = None
        self.start_boottime_ns = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        self.peak_mapped_pages = 0
        # vm_linux.syscalls.sockets: False under `vm run --net none` (only AF_UNIX sockets); the AF_UNIX names bound
        self.inet_allowed = True
        self.unix_names = UnixNames()
        self.log = get_logger("vm_linux.syscalls", isa=abi.isa)

    # ------------------------------------------------------------------ waiting (vm_linux.waiting)

    @property
    def waker(self) -> Waker:
        """vm's wake-up pipe for blocking calls (made on first use; never a guest descriptor)."""
        if self._waker is None:
            self._waker = Waker()
        return self._waker

    def wake_waiter(self) -> None:
        """End a blocking call's wait early so that it looks at the pending signals again (signal-handler safe)."""
        if self._waker is not None:
            self._waker.wake()

    def refresh_waitables(self) -> None:
        """Bring the host objects behind guest signalfds up to date with the pending signals."""
        for entry in self.fds.files.values():
            if entry.special is not None:
                entry.special.refresh(self, entry.host_fd)

    def close_waker(self) -> None:
        if self._waker is not None:
            self._waker.close()
            self._waker = None

    def forked_child(self) -> None:
        """This is the child of a guest fork: what Linux gives a new process anew (start time, pending signals, timers)."""
        self.start_boottime_ns = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        self.signals.pending.clear()
        self.timers = GuestTimers()  # neither interval timers, alarm() nor POSIX timers are inherited by fork
        self.close_waker()  # the parent's wake-up pipe stays the parent's
        self.log = get_logger("vm_linux.syscalls", isa=self.abi.isa, pid=self.pid)

    # ------------------------------------------------------------------ guest arguments

    def read_path(self, ptr: int) -> str:
        """A NUL-terminated guest path (``EFAULT`` via MemoryFault, ``ENAMETOOLONG``)."""
        raw = self.mem.read_cstring(ptr, 4096)
        if len(raw) >= 4096:
            raise GuestErrno(errno.ENAMETOOLONG)
        return os.fsdecode(raw)

    def base(self, dirfd: int, path: str = "") -> Node:
        """The directory a ``*at`` call's ``path`` starts from (borrowed: the caller must not close it).

        ``AT_FDCWD`` is the working directory; a guest descriptor must be a
        directory inside the guest root (``ENOTDIR``, ``EBADF`` as Linux;
        ``EACCES`` for a directory vm was given from outside the root).
        Absolute paths ignore ``dirfd``, as in Linux.
        """
        if path.startswith("/"):
            return self.fs.root_node
        if dirfd == AT_FDCWD:
            return self.fs.cwd_node
        entry = self.fds.get(dirfd)
        if entry.virtual is not None:
            return Node(mode=entry.virtual.mode, virtual=entry.virtual)
        info = os.fstat(entry.host_fd)
        if path and not stat.S_ISDIR(info.st_mode):
            raise GuestErrno(errno.ENOTDIR)
        return Node(entry.host_fd, info.st_mode, outside=self.outside_root(entry))

    def outside_root(self, entry: OpenFile) -> bool:
        """Whether a guest descriptor's file lies outside the guest root (never, without a root)."""
        return self.fs.confined and not entry.inside_root

    def fd_node(self, dirfd: int) -> Node:
        """What guest ``dirfd`` itself names (``AT_EMPTY_PATH``): a new node the caller closes."""
        if dirfd == AT_FDCWD:
            return self.fs.cwd_node.dup()
        entry = self.fds.get(dirfd)
        if entry.virtual is not None:
            return Node(mode=entry.virtual.mode, virtual=entry.virtual)
        return host_node(os.dup(entry.host_fd), outside=self.outside_root(entry))

    def lookup(self, dirfd: int, path: str, *, follow: bool = True, empty_path: bool = False) -> Node:
        """The object a ``*at`` call names (``AT_EMPTY_PATH`` with an empty path: ``dirfd`` itself)."""
        if path == "" and empty_path:
            return self.fd_node(dirfd)
        return self.fs.lookup(self.base(dirfd, path), path, follow=follow)

    def parent(self, dirfd: int, path: str) -> Parent:
        """The directory holding a ``*at`` call's last component, and that component."""
        return self.fs.parent(self.base(dirfd, path), path)

    def rlimit(self, resource_id: int) -> tuple[int, int]:
        if resource_id not in self.rlimits:
            try:
                self.rlimits[resource_id] = host_rlimit(resource_id)
            except (ValueError, OSError):
                raise GuestErrno(errno.EINVAL) from None
        return self.rlimits[resource_id]

    def set_rlimit(self, resource_id: int, soft: int, hard: int) -> None:
        """Set a guest resource limit; ``RLIMIT_NOFILE`` bounds the descriptor table (``EPERM`` past
        ``NR_OPEN``, as Linux's ``fs.nr_open``)."""
        if resource_id == resource.RLIMIT_NOFILE:
            if hard > NR_OPEN:
                raise GuestErrno(errno.EPERM)
            self.fds.limit = min(soft, NR_OPEN)
        self.rlimits[resource_id] = (soft, hard)
