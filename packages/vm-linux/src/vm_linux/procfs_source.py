"""What the virtual /proc reads from a guest process: :class:`ProcSource` and its adapter over ProcessState.

The renderers of :mod:`vm_linux.procfs_render` take every fact from a
:class:`ProcSource`, never from the VM process directly. The facts fall in
two groups:

* guest state vm keeps itself: pid, the address space (mappings, brk), the
  program as loaded and its initial stack (:class:`~vm_linux.stack.ExecImage`:
  argv/envp areas, auxv, comm), the signal state, the resource limits, the
  highest number of mapped pages, when the process began;
* facts vm passes through to the guest from the VM process, taken here from
  the same host source the corresponding system call uses, so that /proc and
  the system calls agree: the parent pid (``getppid``), user and group ids
  (``getuid`` ...), the umask (``umask`` acts on the VM process), the CPU
  affinity (``sched_getaffinity``), the CPU times, faults and context
  switches (``getrusage``), and the capability sets the guest's system calls
  run with (the VM process's; vm has no ``capget``).

The three path facts are the resolver's: :attr:`StateProcSource.exe_guest_path`,
``cwd_guest_path`` and ``fd_link_text`` are callables it provides.
:func:`fd_link_text_for` is the policy for a descriptor's link text under a
guest root (see there).
"""

from __future__ import annotations

import os
import re
import resource
import stat
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs

from vm_linux.hostcalls import current_umask
from vm_linux.signals import SignalState
from vm_linux.stack import ExecImage

#: Link text for a descriptor whose file has no name the guest can see (see :func:`fd_link_text_for`).
OUTSIDE_ROOT_LINK = "anon_inode:[outside-root]"
_KERNEL_OBJECT = re.compile(r"^[a-z_]+:\[\d+\]$|^anon_inode:")
_TERMINAL = re.compile(r"^/dev/(pts/\d+|tty\w*|console)$")
#: The devices of the guest's own /dev (:mod:`vm_linux.procfs`), by path and (major, minor).
GUEST_DEVICES = {
    "/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7),
    "/dev/random": (1, 8), "/dev/urandom": (1, 9), "/dev/tty": (5, 0),
}


@attrs.frozen
class Credentials:
    """Real, effective, saved and file-system user and group ids, and the supplementary groups."""

    uids: tuple[int, int, int, int]
    gids: tuple[int, int, int, int]
    groups: tuple[int, ...]


@attrs.frozen
class CpuUsage:
    """``getrusage(RUSAGE_SELF)`` as the guest sees it: CPU seconds, faults, context switches."""

    user_seconds: float
    system_seconds: float
    minor_faults: int
    major_faults: int
    voluntary_switches: int
    involuntary_switches: int


@attrs.frozen
class CapabilitySets:
    """The five capability masks of /proc/PID/status (inheritable, permitted, effective, bounding, ambient)."""

    inheritable: int
    permitted: int
    effective: int
    bounding: int
    ambient: int


class ProcSource(Protocol):
    """What /proc's renderers read from one guest process (see the module docstring).

    ``mem`` is the guest's :class:`vm_mem.AddressSpace` (``mappings()``,
    ``pages``, ``brk_start``, ``brk_current``, ``read``); ``exec_image`` is
    None for a process vm did not load itself (a restored snapshot), and then
    the files that need it are empty.
    """

    @property
    def pid(self) -> int: ...
    @property
    def mem(self) -> Any: ...
    @property
    def exec_image(self) -> ExecImage | None: ...
    @property
    def signals(self) -> SignalState: ...
    @property
    def start_boottime_ns(self) -> int: ...
    @property
    def peak_mapped_pages(self) -> int: ...
    @property
    def shared_file_ranges(self) -> Sequence[tuple[int, int]]: ...

    def ppid(self) -> int: ...
    def umask(self) -> int: ...
    def credentials(self) -> Credentials: ...
    def capabilities(self) -> CapabilitySets: ...
    def cpus_allowed(self) -> frozenset[int]: ...
    def cpu_usage(self) -> CpuUsage: ...
    def rlimit(self, resource_id: int) -> tuple[int, int]: ...
    def exe_guest_path(self) -> str: ...
    def exe_identity(self) -> tuple[int, int]: ...
    def cwd_guest_path(self) -> str: ...
    def fd_numbers(self) -> Sequence[int]: ...
    def fd_link_text(self, fd: int) -> str: ...
    def fd_access_mode(self, fd: int) -> int: ...
    def cpu_count(self) -> int: ...
    def memory_kib(self) -> tuple[int, int, int]: ...


def track_peak_mapped_pages(state: Any) -> None:
    """Keep ``state.peak_mapped_pages`` at the most pages ``state.mem`` has had mapped (VmPeak, VmHWM)."""
    mem = state.mem
    state.peak_mapped_pages = max(state.peak_mapped_pages, len(mem.pages))

    def on_change(first: int, last: int) -> None:
        state.peak_mapped_pages = max(state.peak_mapped_pages, len(mem.pages))

    mem.on_mapping_change.append(on_change)


def fd_link_text_for(host_fd: int, guest_path: str | None, root: str | None) -> str:
    """What ``readlink("/proc/self/fd/N")`` shows for a guest descriptor over host fd ``host_fd``.

    The host kernel's own link text is the start. Kernel objects without a
    path (``pipe:[ino]``, ``socket:[ino]``, ``anon_inode:...``) show as they
    are. Without a guest root a guest path is a host path: shown unchanged.
    Under ``root``, a path inside it shows as the guest path (``" (deleted)"``
    kept). A host path outside the root is never shown: a terminal shows as
    its device name (``/dev/pts/N``, ``/dev/ttyN``, ``/dev/console``: the
    guest's stream is that device), and so does one of the devices the
    guest's /dev has (``/dev/null`` ...: same device numbers); any other file shows as the guest path it
    was opened by when vm knows one, else as :data:`OUTSIDE_ROOT_LINK` (an
    ``anon_inode:`` text, the form Linux uses for files with no path, e.g. a
    standard stream the VM inherited from a host file).
    """
    try:
        text = os.readlink(f"/proc/self/fd/{host_fd}")
    except OSError:
        return guest_path if guest_path is not None else OUTSIDE_ROOT_LINK
    if _KERNEL_OBJECT.match(text) or not text.startswith("/") or root is None:
        return text
    body, deleted = (text[: -len(" (deleted)")], " (deleted)") if text.endswith(" (deleted)") else (text, "")
    if body == root:
        return "/" + deleted
    if body.startswith(root.rstrip("/") + "/"):
        return body[len(root.rstrip("/")) :] + deleted
    if _TERMINAL.match(body) and os.isatty(host_fd):
        return body
    if body in GUEST_DEVICES and _is_char_device(host_fd, GUEST_DEVICES[body]):
        return body
    return guest_path if guest_path is not None else OUTSIDE_ROOT_LINK


def _is_char_device(host_fd: int, numbers: tuple[int, int]) -> bool:
    try:
        info = os.fstat(host_fd)
    except OSError:
        return False
    return stat.S_ISCHR(info.st_mode) and (os.major(info.st_rdev), os.minor(info.st_rdev)) == numbers


def _host_capabilities() -> CapabilitySets:
    values: dict[str, int] = {}
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.startswith("Cap"):
                    values[key] = int(value.strip(), 16)
    except OSError:
        pass
    return CapabilitySets(
        inheritable=values.get("CapInh", 0),
        permitted=values.get("CapPrm", 0),
        effective=values.get("CapEff", 0),
        bounding=values.get("CapBnd", 0),
        ambient=values.get("CapAmb", 0),
    )


@attrs.define
class StateProcSource:
    """A :class:`ProcSource` over a :class:`~vm_linux.state.ProcessState` and the resolver's path callables.

    ``exe_guest_path``/``cwd_guest_path`` answer the guest paths of the
    program and the working directory; ``fd_link_text`` the link text of a
    guest fd (by default :func:`fd_link_text_for` over the fd table and the
    guest root); ``memory_limit_bytes`` caps ``MemTotal`` (a ``--max-memory``).
    """

    state: Any
    exe_guest_path: Callable[[], str]
    cwd_guest_path: Callable[[], str]
    fd_link_text_of: Callable[[int], str] | None = None
    memory_limit_bytes: int | None = None

    @property
    def pid(self) -> int:
        return int(self.state.pid)

    @property
    def mem(self) -> Any:
        return self.state.mem

    @property
    def exec_image(self) -> ExecImage | None:
        image: ExecImage | None = self.state.exec_image
        return image

    @property
    def signals(self) -> SignalState:
        signals: SignalState = self.state.signals
        return signals

    @property
    def start_boottime_ns(self) -> int:
        return int(self.state.start_boottime_ns)

    @property
    def peak_mapped_pages(self) -> int:
        return max(int(self.state.peak_mapped_pages), len(self.state.mem.pages))

    @property
    def shared_file_ranges(self) -> Sequence[tuple[int, int]]:
        ranges: Sequence[tuple[int, int]] = self.state.shared_file_ranges
        return ranges

    def ppid(self) -> int:
        return os.getppid()  # what vm's getppid answers

    def umask(self) -> int:
        return current_umask()

    def credentials(self) -> Credentials:
        ruid, euid, suid = os.getresuid()
        rgid, egid, sgid = os.getresgid()
        return Credentials(uids=(ruid, euid, suid, euid), gids=(rgid, egid, sgid, egid), groups=tuple(os.getgroups()))

    def capabilities(self) -> CapabilitySets:
        return _host_capabilities()

    def cpus_allowed(self) -> frozenset[int]:
        return frozenset(os.sched_getaffinity(0))  # what vm's sched_getaffinity answers

    def cpu_usage(self) -> CpuUsage:
        usage = resource.getrusage(resource.RUSAGE_SELF)  # what vm's getrusage answers
        return CpuUsage(
            user_seconds=usage.ru_utime,
            system_seconds=usage.ru_stime,
            minor_faults=usage.ru_minflt,
            major_faults=usage.ru_majflt,
            voluntary_switches=usage.ru_nvcsw,
            involuntary_switches=usage.ru_nivcsw,
        )

    def rlimit(self, resource_id: int) -> tuple[int, int]:
        limits: tuple[int, int] = self.state.rlimit(resource_id)
        return limits

    def exe_identity(self) -> tuple[int, int]:
        """``(st_dev, st_ino)`` of the program file: what the guest's ``stat`` of its exe shows."""
        try:
            info = os.stat(self.state.fs.exe_host_path)
        except OSError:
            return (0, 0)
        return (info.st_dev, info.st_ino)

    def fd_numbers(self) -> Sequence[int]:
        return sorted(self.state.fds.files)

    def fd_link_text(self, fd: int) -> str:
        if self.fd_link_text_of is not None:
            return self.fd_link_text_of(fd)
        entry = self.state.fds.get(fd)
        return fd_link_text_for(entry.host_fd, entry.guest_path, self.state.fs.root)

    def fd_access_mode(self, fd: int) -> int:
        """``O_RDONLY``/``O_WRONLY``/``O_RDWR`` of guest ``fd`` (the host descriptor's access mode)."""
        import fcntl

        host_fd = self.state.fds.get(fd).host_fd
        try:
            return fcntl.fcntl(host_fd, fcntl.F_GETFL) & os.O_ACCMODE
        except OSError:
            return os.O_RDONLY

    def cpu_count(self) -> int:
        """The CPUs the system has online (those the guest's affinity mask is drawn from)."""
        return os.cpu_count() or 1

    def memory_kib(self) -> tuple[int, int, int]:
        """``(MemTotal, MemFree, MemAvailable)``: the host's, ``MemTotal`` capped at the memory limit."""
        total, free, available = host_memory_kib()
        if self.memory_limit_bytes is not None:
            total = min(total, self.memory_limit_bytes // 1024) if total else self.memory_limit_bytes // 1024
        return total, min(free, total), min(available, total)


def host_memory_kib() -> tuple[int, int, int]:
    """``(MemTotal, MemFree, MemAvailable)`` of the host in KiB, from its /proc/meminfo (0 when absent)."""
    found = {"MemTotal": 0, "MemFree": 0, "MemAvailable": 0}
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in found:
                    found[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return found["MemTotal"], found["MemFree"], found["MemAvailable"]

