"""Saving and restoring the kernel-side state of a :class:`~vm_linux.process.LinuxProcess`.

A snapshot of a user-mode guest is its CPU, its memory and what the kernel
keeps for it. This module does the last part: :func:`capture_process` turns a
process into a :class:`ProcessImage` (plain values: program, argv/envp, guest
root and cwd, pid, umask, resource limits, signal dispositions/mask/pending
signals/altstack, the file-descriptor table) and :func:`reopen_files` opens
its descriptors again for :func:`vm_linux.restore.restore_process`, which
builds a fresh :class:`LinuxProcess` from one on a caller-provided address
space (memory and registers are the snapshot layer's business, see
``vm_cli.snapshot``). :meth:`ProcessImage.to_json` / :meth:`ProcessImage.from_json`
convert to and from JSON-compatible dicts; malformed input gives
:class:`~vm_core.errors.SnapshotError`.

Descriptors are saved by what they are on the host:

* the VM's standard streams (a guest fd whose host fd is the same open file
  description as one of ``std_streams``) are saved as "stdio N" and bound to
  the restoring process's own stream N, offsets untouched;
* files opened by path are saved by their guest path (the kernel's own name
  for the open file, taken inside the guest root), ``F_GETFL`` flags,
  offset and identity (device, inode, size); they are reopened through the
  guest's path resolver inside the recorded root (never created or
  truncated again, the last component never followed) and refused with one
  line when what is found there is not the same file; the virtual ``/proc``
  and ``/dev`` files are reopened by guest path;
  descriptors that share one open file description (``dup``) share it again
  after the restore (found with ``kcmp(KCMP_FILE)``, or where the host
  refuses that, by a status flag flipped on one and seen through the other);
* anything else (pipes, sockets) and files renamed or deleted since they were
  opened cannot be reopened: :func:`capture_process` refuses them with
  :class:`~vm_core.errors.UnsupportedError`.

Restoring validates the image and reopens every file before it builds the
process; if a file cannot be reopened, the descriptors already opened are
closed and :class:`~vm_core.errors.SnapshotError` is raised.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import stat
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
from vm_core.errors import SnapshotError, UnsupportedError
from vm_core.logging import get_logger

from vm_linux.fdtable import FdTable, OpenFile
from vm_linux.guest_errno import GuestErrno
from vm_linux.hostcalls import current_umask
from vm_linux.signals import SigAction

log = get_logger("vm_linux.persist")

_KCMP_NUMBERS = {"x86_64": 312, "aarch64": 272, "riscv64": 272, "loongarch64": 272}
_KCMP_FILE = 0
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_NOT_REOPENED = os.O_CREAT | os.O_EXCL | os.O_TRUNC

T = TypeVar("T")


@attrs.frozen
class OpenFileImage:
    """One guest descriptor: a standard stream (``stdio``) or a file reopened by ``host_path``.

    ``shares_with`` names an earlier guest fd of the same open file
    description (a ``dup``): it is duplicated from that one on restore.
    """

    guest_fd: int
    cloexec: bool
    stdio: int | None = None
    guest_path: str | None = None
    identity: tuple[int, int, int] | None = None
    flags: int = 0
    offset: int | None = None
    shares_with: int | None = None


@attrs.frozen
class SignalImage:
    """Dispositions, blocked mask, pending signals (with their siginfo) and the alternate stack."""

    actions: tuple[tuple[int, SigAction], ...]
    blocked: int
    pending: tuple[tuple[int, bytes], ...]
    altstack: tuple[int, int, int]


@attrs.frozen
class ProcessImage:
    """The kernel-side state of one guest process (see the module docstring)."""

    isa: str
    program: str
    argv: tuple[str, ...]
    envp: tuple[str, ...]
    root: str | None
    cwd: str
    pid: int
    clear_child_tid: int
    umask: int
    rlimits: tuple[tuple[int, int, int], ...]
    shared_file_ranges: tuple[tuple[int, int], ...]
    sigreturn_trampoline: int
    fd_limit: int
    files: tuple[OpenFileImage, ...]
    signals: SignalImage
    #: False under ``vm run --net none`` (only AF_UNIX sockets); a resumed run keeps it.
    inet_allowed: bool = True

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible dict (bytes as hex) that :meth:`from_json` reads back."""
        return {
            "isa": self.isa,
            "program": self.program,
            "argv": list(self.argv),
            "envp": list(self.envp),
            "root": self.root,
            "cwd": self.cwd,
            "pid": self.pid,
            "clear_child_tid": self.clear_child_tid,
            "umask": self.umask,
            "rlimits": [list(item) for item in self.rlimits],
            "shared_file_ranges": [list(item) for item in self.shared_file_ranges],
            "sigreturn_trampoline": self.sigreturn_trampoline,
            "fd_limit": self.fd_limit,
            "files": [attrs.asdict(entry) for entry in self.files],
            "signals": {
                "actions": [[signo, *attrs.astuple(action)] for signo, action in self.signals.actions],
                "blocked": self.signals.blocked,
                "pending": [[signo, info.hex()] for signo, info in self.signals.pending],
                "altstack": list(self.signals.altstack),
            },
            "inet_allowed": self.inet_allowed,
        }

    @classmethod
    def from_json(cls, data: Any) -> ProcessImage:
        """Read a :meth:`to_json` dict back; anything malformed raises :class:`SnapshotError`."""
        try:
            return _image_from_json(data)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise SnapshotError(f"snapshot: malformed process state ({type(err).__name__}: {err})") from None


# ---------------------------------------------------------------------------------- reading JSON


def _typed(value: Any, kind: type[T], what: str) -> T:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{what} must be {kind.__name__}, not {type(value).__name__}")
    return value


def _optional(value: Any, kind: type[T], what: str) -> T | None:
    return None if value is None else _typed(value, kind, what)


def _ints(values: Any, n: int, what: str) -> tuple[int, ...]:
    items = tuple(_typed(v, int, what) for v in _typed(values, list, what))
    if len(items) != n:
        raise ValueError(f"{what} must have {n} integers")
    return items


def _list_of(values: Any, what: str, convert: Callable[[Any], T]) -> tuple[T, ...]:
    return tuple(convert(item) for item in _typed(values, list, what))


def _triple(item: Any) -> tuple[int, int, int]:
    a, b, c = _ints(item, 3, "rlimit")
    return a, b, c


def _pair(item: Any) -> tuple[int, int]:
    a, b = _ints(item, 2, "range")
    return a, b


def _file_from_json(item: Any) -> OpenFileImage:
    entry: Mapping[str, Any] = _typed(item, dict, "file entry")
    unknown = set(entry) - {field.name for field in attrs.fields(OpenFileImage)}
    if unknown:
        raise ValueError(f"unknown file entry keys {sorted(unknown)}")
    image = OpenFileImage(
        guest_fd=_typed(entry["guest_fd"], int, "guest_fd"),
        cloexec=_typed(entry["cloexec"], bool, "cloexec"),
        stdio=_optional(entry.get("stdio"), int, "stdio"),
        guest_path=_optional(entry.get("guest_path"), str, "guest_path"),
        identity=None if entry.get("identity") is None else _triple(entry["identity"]),
        flags=_typed(entry.get("flags", 0), int, "flags"),
        offset=_optional(entry.get("offset"), int, "offset"),
        shares_with=_optional(entry.get("shares_with"), int, "shares_with"),
    )
    opened = image.guest_path is not None and image.shares_with is None
    sources = [image.stdio is not None, opened, image.shares_with is not None]
    if sum(sources) != 1:
        raise ValueError(f"guest fd {image.guest_fd} must have exactly one of stdio, guest_path, shares_with")
    if image.guest_path is not None and not image.guest_path.startswith("/"):
        raise ValueError(f"guest fd {image.guest_fd}: guest_path must be absolute")
    return image


def _image_from_json(data: Any) -> ProcessImage:
    doc: Mapping[str, Any] = _typed(data, dict, "process state")
    sig: Mapping[str, Any] = _typed(doc["signals"], dict, "signals")
    actions = _list_of(sig["actions"], "signal actions", lambda item: _ints(item, 5, "signal action"))
    pending = _list_of(
        sig["pending"], "pending signals",
        lambda item: (_typed(item[0], int, "signal"), bytes.fromhex(_typed(item[1], str, "siginfo"))),
    )
    altstack = _ints(sig["altstack"], 3, "altstack")
    files = _list_of(doc["files"], "files", _file_from_json)
    fds = [entry.guest_fd for entry in files]
    if len(set(fds)) != len(fds) or any(fd < 0 for fd in fds):
        raise ValueError("guest fds must be distinct and non-negative")
    for entry in files:
        if entry.shares_with is not None and entry.shares_with not in fds[: fds.index(entry.guest_fd)]:
            raise ValueError(f"guest fd {entry.guest_fd} shares with an fd that does not precede it")
    return ProcessImage(
        isa=_typed(doc["isa"], str, "isa"),
        program=_typed(doc["program"], str, "program"),
        argv=_list_of(doc["argv"], "argv", lambda v: _typed(v, str, "argv item")),
        envp=_list_of(doc["envp"], "envp", lambda v: _typed(v, str, "envp item")),
        root=_optional(doc["root"], str, "root"),
        cwd=_typed(doc["cwd"], str, "cwd"),
        pid=_typed(doc["pid"], int, "pid"),
        clear_child_tid=_typed(doc["clear_child_tid"], int, "clear_child_tid"),
        umask=_typed(doc["umask"], int, "umask") & 0o777,
        rlimits=_list_of(doc["rlimits"], "rlimits", _triple),
        shared_file_ranges=_list_of(doc["shared_file_ranges"], "shared file ranges", _pair),
        sigreturn_trampoline=_typed(doc["sigreturn_trampoline"], int, "sigreturn_trampoline"),
        fd_limit=_typed(doc["fd_limit"], int, "fd_limit"),
        files=files,
        signals=SignalImage(
            actions=tuple((a[0], SigAction(a[1], a[2], a[3], a[4])) for a in actions),
            blocked=_typed(sig["blocked"], int, "blocked"),
            pending=pending,
            altstack=(altstack[0], altstack[1], altstack[2]),
        ),
        inet_allowed=_typed(doc.get("inet_allowed", True), bool, "inet_allowed"),
    )


# ---------------------------------------------------------------------------------- capturing


def kcmp_same_file(fd_a: int, fd_b: int) -> bool | None:
    """``kcmp(KCMP_FILE)``: are two host fds one open file description? None where the host refuses it."""
    number = _KCMP_NUMBERS.get(platform.machine())
    if number is None:
        return None
    pid = os.getpid()
    answer = _libc.syscall(number, pid, pid, _KCMP_FILE, fd_a, fd_b)
    if answer < 0:
        return None
    return answer == 0


def flag_probe_same_file(fd_a: int, fd_b: int) -> bool:
    """The same question without ``kcmp``: file status flags belong to the open file description.

    ``O_NONBLOCK`` is flipped on ``fd_a`` and looked at through ``fd_b``,
    then put back; the VM is paused meanwhile, so the guest never sees it.
    """
    flags = fcntl.fcntl(fd_a, fcntl.F_GETFL)
    fcntl.fcntl(fd_a, fcntl.F_SETFL, flags ^ os.O_NONBLOCK)
    try:
        return bool((fcntl.fcntl(fd_b, fcntl.F_GETFL) ^ flags) & os.O_NONBLOCK)
    finally:
        fcntl.fcntl(fd_a, fcntl.F_SETFL, flags)


def same_open_file(fd_a: int, fd_b: int) -> bool:
    """Whether two host fds are one open file description (a ``dup``), as the host kernel says."""
    answer = kcmp_same_file(fd_a, fd_b)
    return flag_probe_same_file(fd_a, fd_b) if answer is None else answer


def _identity(info: os.stat_result) -> tuple[int, int, int]:
    return info.st_dev, info.st_ino, stat.S_IFMT(info.st_mode)


def _stdio_index(fd: int, host_fd: int, info: tuple[int, int, int],
                 std_ids: Sequence[tuple[int, tuple[int, int, int]]]) -> int | None:
    """Which standard stream ``host_fd`` is a dup of (guest fd N prefers stream N), or None."""
    order = sorted(range(len(std_ids)), key=lambda index: index != fd)
    for index in order:
        std_fd, std_info = std_ids[index]
        if std_info == info and same_open_file(host_fd, std_fd):
            return index
    return None


def _file_identity(info: os.stat_result) -> tuple[int, int, int]:
    """What must not change between a snapshot and its restore: device, inode and size."""
    return info.st_dev, info.st_ino, info.st_size


def _capture_file(process: Any, fd: int, entry: OpenFile, std_ids: Sequence[tuple[int, tuple[int, int, int]]],
                  earlier: Sequence[tuple[int, OpenFile, tuple[int, int, int]]]) -> OpenFileImage:
    host_info = os.fstat(entry.host_fd)
    info = _identity(host_info)
    flags = fcntl.fcntl(entry.host_fd, fcntl.F_GETFL)
    if entry.virtual is not None:
        return OpenFileImage(guest_fd=fd, cloexec=entry.cloexec, guest_path=entry.virtual.guest_path, flags=flags)
    if not entry.inside_root or process.state.fs.guest_path_of_fd(entry.host_fd) is None:
        index = _stdio_index(fd, entry.host_fd, info, std_ids)
        if index is not None:
            return OpenFileImage(guest_fd=fd, cloexec=entry.cloexec, stdio=index)
        kind = "a pipe" if stat.S_ISFIFO(info[2]) else "a socket" if stat.S_ISSOCK(info[2]) else (
            "a file that was removed or lies outside the guest root"
        )
        raise UnsupportedError(
            f"cannot snapshot guest fd {fd}: it is {kind}, which cannot be reopened in another process",
            hint="snapshots support files opened by path and the standard streams",
        )
    for other_fd, other, other_info in earlier:
        if other.virtual is None and other_info == info and same_open_file(entry.host_fd, other.host_fd):
            return OpenFileImage(guest_fd=fd, cloexec=entry.cloexec, shares_with=other_fd)
    guest_path = process.state.fs.guest_path_of_fd(entry.host_fd)
    assert guest_path is not None
    fs = process.state.fs
    try:
        with fs.lookup(fs.root_node, guest_path, follow=False) as found:
            on_disk = _identity(os.fstat(found.fd)) if found.fd >= 0 else None
    except (OSError, GuestErrno):
        on_disk = None
    if on_disk != info:
        raise UnsupportedError(f"cannot snapshot guest fd {fd}: {guest_path} was renamed or removed since it was opened")
    try:
        offset: int | None = os.lseek(entry.host_fd, 0, os.SEEK_CUR)
    except OSError:
        offset = None
    return OpenFileImage(
        guest_fd=fd, cloexec=entry.cloexec, guest_path=guest_path, identity=_file_identity(host_info),
        flags=flags, offset=offset,
    )


def _capture_cwd(fs: Any) -> str:
    try:
        return str(fs.cwd_path())
    except (OSError, GuestErrno):
        raise UnsupportedError("cannot snapshot the guest: its working directory was removed") from None


def capture_process(process: Any, *, std_streams: Sequence[int] = (0, 1, 2)) -> ProcessImage:
    """The :class:`ProcessImage` of ``process`` (a loaded :class:`~vm_linux.process.LinuxProcess`).

    ``std_streams`` are the host fds the process was given as its standard
    streams. Raises :class:`UnsupportedError` for descriptors that cannot be
    reopened elsewhere (pipes, sockets, event descriptors, renamed or removed
    files), for guest timers, and for a guest that has forked (its other
    processes would not be in the snapshot).
    """
    from vm_linux.guest_procs import PROCESSES

    if PROCESSES.table is not None or PROCESSES.forked:
        raise UnsupportedError("cannot snapshot a guest that has forked: its other processes are not captured")
    state = process.state
    if state.timers.armed or state.timers.posix:
        raise UnsupportedError(
            "cannot snapshot the guest: it has timers (setitimer, alarm or timer_create), which snapshots do not keep",
            hint="take the snapshot before the program arms a timer or after it deletes them",
        )
    std_ids: list[tuple[int, tuple[int, int, int]]] = []
    for std_fd in std_streams:
        try:
            std_ids.append((std_fd, _identity(os.fstat(std_fd))))
        except OSError:
            std_ids.append((std_fd, (-1, -1, -1)))
    files: list[OpenFileImage] = []
    earlier: list[tuple[int, OpenFile, tuple[int, int, int]]] = []
    for fd in sorted(state.fds.files):
        entry = state.fds.files[fd]
        files.append(_capture_file(process, fd, entry, std_ids, earlier))
        earlier.append((fd, entry, _identity(os.fstat(entry.host_fd))))
    signals = state.signals
    return ProcessImage(
        isa=state.abi.isa,
        program=state.fs.exe_host_path,
        argv=tuple(os.fsdecode(arg) for arg in process.argv),
        envp=tuple(os.fsdecode(var) for var in process.envp),
        root=state.fs.root_path,
        cwd=_capture_cwd(state.fs),
        pid=state.pid,
        clear_child_tid=state.clear_child_tid,
        umask=current_umask(),
        rlimits=tuple((res, soft, hard) for res, (soft, hard) in sorted(state.rlimits.items())),
        shared_file_ranges=tuple((start, end) for start, end in state.shared_file_ranges),
        sigreturn_trampoline=state.sigreturn_trampoline,
        fd_limit=state.fds.limit,
        files=tuple(files),
        signals=SignalImage(
            actions=tuple(sorted(signals.actions.items())),
            blocked=signals.blocked,
            pending=tuple(sorted(signals.pending.items())),
            altstack=signals.altstack,
        ),
        inet_allowed=state.inet_allowed,
    )


# ---------------------------------------------------------------------------------- restoring


def errno_of(err: OSError | GuestErrno) -> int:
    """The errno a failed reopen reports (a guest path error's own code, else the host's)."""
    return err.code if isinstance(err, GuestErrno) else err.errno or errno.EIO


def _reopen(fs: Any, entry: OpenFileImage) -> tuple[int, Any, bool]:
    """Reopen ``entry`` by guest path through ``fs`` (inside the recorded root); the same file or nothing."""
    assert entry.guest_path is not None
    where = f"guest fd {entry.guest_fd} ({entry.guest_path})"
    flags = (entry.flags & ~_NOT_REOPENED) | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        host_fd, virtual, outside = fs.open(fs.root_node, entry.guest_path, flags, 0)
    except (OSError, GuestErrno) as err:
        raise SnapshotError(
            f"snapshot: cannot reopen {where}: {os.strerror(errno_of(err))}",
            hint="the files a snapshotted guest had open must still exist when it is restored",
        ) from None
    if entry.identity is not None and (virtual is not None or _file_identity(os.fstat(host_fd)) != entry.identity):
        os.close(host_fd)
        raise SnapshotError(
            f"snapshot: refusing to reopen {where}: it is not the file the snapshot had open "
            "(device, inode or size changed since)"
        )
    if entry.offset is not None:
        try:
            os.lseek(host_fd, entry.offset, os.SEEK_SET)
        except OSError as err:
            os.close(host_fd)
            raise SnapshotError(f"snapshot: cannot seek {where} to {entry.offset}: {err.strerror}") from None
    return host_fd, virtual, outside


def reopen_files(image: ProcessImage, fs: Any, std_streams: Sequence[int] = (0, 1, 2)) -> FdTable:
    """A new :class:`FdTable` with every descriptor of ``image`` reopened through ``fs`` (all or nothing)."""
    table = FdTable(image.fd_limit)
    try:
        for entry in image.files:
            inside, virtual = False, None
            if entry.shares_with is not None:
                shared = table.files.get(entry.shares_with)
                if shared is None:
                    raise SnapshotError(f"snapshot: guest fd {entry.guest_fd} shares a file that was not restored")
                host_fd, inside, virtual = os.dup(shared.host_fd), shared.inside_root, shared.virtual
            elif entry.stdio is not None:
                if not 0 <= entry.stdio < len(std_streams):
                    raise SnapshotError(f"snapshot: guest fd {entry.guest_fd} names unknown stream {entry.stdio}")
                try:
                    host_fd = os.dup(std_streams[entry.stdio])
                except OSError as err:
                    if err.errno != errno.EBADF:
                        raise
                    continue  # the restoring process has that stream closed, as with_std_streams does
            else:
                host_fd, virtual, outside = _reopen(fs, entry)
                inside = virtual is None and not outside
            table.files[entry.guest_fd] = OpenFile(host_fd, entry.cloexec, inside, virtual)
    except BaseException:
        table.close_all()
        raise
    return table
