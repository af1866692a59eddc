"""``execve`` and ``execveat``: the new program's file, ``#!`` scripts, argv/envp; then a new image.

Everything that can fail with an errno is checked here, while the old image
still runs: the path is resolved inside the guest root (through
:mod:`vm_linux.fs`), the file must be a regular file the caller may execute
(``EACCES``), a ``#!`` script names its interpreter the way the kernel's
``binfmt_script`` reads it (the interpreter, then one optional argument: the
rest of the line, trimmed; ``ENOEXEC`` for an empty or overlong line; the
interpreter resolved inside the root, at most five levels deep: ``ELOOP``).
The handler then raises :class:`ExecRequested`; :class:`~vm_linux.process.LinuxProcess`
asks its exec hook (the composition root) for the loader that accepts the
file (``ENOEXEC`` if none does) and builds the new image on a new address
space before tearing down the old one, so a failed ``execve`` returns to the
caller intact.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from collections.abc import Sequence
from typing import Any

import attrs

from vm_linux.fdtable import OpenFile
from vm_linux.guest_errno import GuestErrno
from vm_linux.state import AT_FDCWD, ProcessState
from vm_linux.syscalls.registry import s32, syscall

BINPRM_BUF_SIZE = 256
MAX_INTERPRETER_DEPTH = 5
MAX_ARG_STRLEN = 32 * 4096
MAX_ARG_STRINGS = 0x7FFFFFFF
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000


@attrs.frozen
class ExecPlan:
    """What ``execve`` will run: the file's bytes, its host path, argv, envp and ``AT_EXECFN``."""

    data: bytes
    host_path: str
    guest_path: str
    argv: tuple[bytes, ...]
    envp: tuple[bytes, ...]
    execfn: bytes


class ExecRequested(Exception):
    """Raised by ``execve``: the run loop replaces the image (see the module docstring)."""

    def __init__(self, plan: ExecPlan) -> None:
        super().__init__(f"execve {plan.guest_path}")
        self.plan = plan


def read_strings(st: ProcessState, ptr: int) -> list[bytes]:
    """A NULL-terminated array of guest string pointers (``EFAULT`` via MemoryFault; ``E2BIG``)."""
    out: list[bytes] = []
    if not ptr:
        return out
    while True:
        (item,) = struct.unpack("<Q", st.mem.read(ptr + 8 * len(out), 8))
        if not item:
            return out
        text = st.mem.read_cstring(item, MAX_ARG_STRLEN)
        if len(text) >= MAX_ARG_STRLEN:
            raise GuestErrno(errno.E2BIG)
        out.append(bytes(text))
        if len(out) >= MAX_ARG_STRINGS:
            raise GuestErrno(errno.E2BIG)


def _open_executable(st: ProcessState, dirfd: int, path: str, *, nofollow: bool = False) -> int:
    """A host fd (read-only) of the regular, executable file ``path`` names inside the root."""
    if path == "":
        raise GuestErrno(errno.ENOENT)
    flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_NOFOLLOW if nofollow else 0)
    fd, virtual, _outside = st.fs.open(st.base(dirfd, path), path, flags, 0)
    if virtual is not None:
        os.close(fd)
        raise GuestErrno(errno.EACCES)
    return _checked_executable(fd)


def _checked_executable(fd: int) -> int:
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or not os.access(f"/proc/self/fd/{fd}", os.X_OK):
            raise GuestErrno(errno.EACCES)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def parse_shebang(head: bytes) -> tuple[bytes, bytes | None]:
    """(interpreter, optional argument) of a ``#!`` line as ``binfmt_script`` reads it; ``ENOEXEC`` if bad.

    The kernel looks at the first 256 bytes (NUL-padded, the last one a NUL). Without a newline there,
    the interpreter must end (space, tab or NUL) inside them, else it may be truncated: ``ENOEXEC``; the
    argument may be cut short.
    """
    buf = head[:BINPRM_BUF_SIZE].ljust(BINPRM_BUF_SIZE, b"\0")
    end = buf.find(b"\n")
    if end < 0:
        body = buf[2 : BINPRM_BUF_SIZE - 1]
        start = len(body) - len(body.lstrip(b" \t"))
        if start == len(body) or not any(byte in b" \t\0" for byte in body[start:]):
            raise GuestErrno(errno.ENOEXEC)
        line = body
    else:
        line = buf[2:end]
    line = line.split(b"\0", 1)[0].strip(b" \t")
    if not line:
        raise GuestErrno(errno.ENOEXEC)
    cut = min((i for i in (line.find(b" "), line.find(b"\t")) if i >= 0), default=len(line))
    interpreter, rest = line[:cut], line[cut:].strip(b" \t")
    return interpreter, (rest or None)


def plan_exec(
    st: ProcessState, dirfd: int, path: str, argv: list[bytes], envp: list[bytes], flags: int
) -> ExecPlan:
    """Resolve the program (and its ``#!`` interpreters) and read it: the :class:`ExecPlan` (or an errno)."""
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise GuestErrno(errno.EINVAL)
    entry: OpenFile | None = None
    if path == "" and flags & AT_EMPTY_PATH:
        entry = st.fds.get(dirfd)
        if entry.virtual is not None:
            raise GuestErrno(errno.EACCES)
        fd = _checked_executable(os.open(f"/proc/self/fd/{entry.host_fd}", os.O_RDONLY | os.O_CLOEXEC))
        filename = f"/dev/fd/{dirfd}".encode()
    else:
        fd = _open_executable(st, dirfd, path, nofollow=bool(flags & AT_SYMLINK_NOFOLLOW))
        if dirfd == AT_FDCWD or path.startswith("/"):
            filename = os.fsencode(path)
        else:
            entry = st.fds.get(dirfd)
            filename = f"/dev/fd/{dirfd}/{path}".encode()
    if not argv:
        argv = [b""]  # Linux (5.18+) gives a program run with an empty argv one empty argument
    execfn = filename
    size = sum(len(s) + 1 + 8 for s in (*argv, *envp)) + 8
    soft, _hard = st.rlimit(3)  # RLIMIT_STACK
    if size > max(soft // 4, 32 * 4096):
        os.close(fd)
        raise GuestErrno(errno.E2BIG)
    depth = 0
    try:
        while True:
            data = _read_all(fd)
            if not data.startswith(b"#!"):
                break
            depth += 1
            if depth > MAX_INTERPRETER_DEPTH:
                raise GuestErrno(errno.ELOOP)
            if entry is not None and entry.cloexec and filename.startswith(b"/dev/fd/"):
                raise GuestErrno(errno.ENOENT)  # the script would be unreachable once its fd closes at exec
            interpreter, argument = parse_shebang(data[:BINPRM_BUF_SIZE])
            argv = [interpreter, *([argument] if argument is not None else []), filename, *argv[1:]]
            os.close(fd)
            fd = -1
            fd = _open_executable(st, AT_FDCWD, os.fsdecode(interpreter))
            filename = interpreter
            entry = None
        host_path = os.readlink(f"/proc/self/fd/{fd}")
        guest_path = st.fs.guest_path_of_fd(fd) or os.fsdecode(filename)
    finally:
        if fd >= 0:
            os.close(fd)
    return ExecPlan(data, host_path, guest_path, tuple(argv), tuple(envp), execfn)


@syscall("execve")
def sys_execve(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    path = st.read_path(a[0])
    plan = plan_exec(st, AT_FDCWD, path, read_strings(st, a[1]), read_strings(st, a[2]), 0)
    raise ExecRequested(plan)


@syscall("execveat")
def sys_execveat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    dirfd, path = s32(a[0]), st.read_path(a[1])
    plan = plan_exec(st, dirfd, path, read_strings(st, a[2]), read_strings(st, a[3]), s32(a[4]))
    raise ExecRequested(plan)
