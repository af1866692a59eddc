"""Guest processes: fork/vfork/clone without CLONE_VM, wait4/waitid, process groups and sessions.

A guest fork is a host fork of the whole vm process (copy-on-write), as
qemu-user does: the child returns 0, the parent the child's pid (host pid =
guest pid). ``vfork`` and ``clone(CLONE_VM|CLONE_VFORK)`` are a fork too (the
parent does not wait for the child's exec, as in qemu-user). ``clone`` with
``CLONE_VM`` and no ``CLONE_VFORK`` (a thread) and ``clone3`` answer
``-ENOSYS`` here (glibc then falls back to ``clone``). What each package
re-creates in the child is registered with ``os.register_at_fork`` by that
package (vm-jit: the LLVM compiler thread; vm-gc: the background marker;
vm-cli: the event store connection); see docs/architecture.md, "Processes".

``wait4``/``waitid`` are the host's on the guest's children (every host child
of a vm process is a guest process; status words are Linux's). A blocking
wait is interrupted by a guest signal that has a handler: ``-EINTR``, or the
wait restarts with ``SA_RESTART``. Process groups and sessions are the host's
too; a pid that is not a guest process is ``ESRCH``.
"""

from __future__ import annotations

import errno
import os
import signal
import struct
from collections.abc import Callable, Sequence
from typing import Any

from vm_core.errors import MemoryFault
from vm_core.logging import get_logger

from vm_linux.guest_errno import GuestErrno
from vm_linux.guest_procs import PROCESSES, GuestInterrupted
from vm_linux.signals import SIGCHLD
from vm_linux.state import ProcessState
from vm_linux.syscalls.registry import s32, syscall
from vm_linux.syscalls.structs import RUSAGE_SIZE
from vm_linux.waiting import Interrupted, Restart

log = get_logger("vm_linux.syscalls.proc_calls")

CSIGNAL = 0xFF
CLONE_VM = 0x100
CLONE_VFORK = 0x4000
CLONE_SETTLS = 0x80000
CLONE_PARENT_SETTID = 0x100000
CLONE_CHILD_CLEARTID = 0x200000
CLONE_DETACHED = 0x400000
CLONE_CHILD_SETTID = 0x1000000
CLONE_IO = 0x80000000
#: The ISAs whose clone takes tls before child_tid (the kernel's CONFIG_CLONE_BACKWARDS).
CLONE_BACKWARDS = frozenset({"riscv64"})
#: The flags a fork may carry (qemu-user's CLONE_OPTIONAL_FORK_FLAGS and CLONE_IGNORED_FLAGS).
FORK_FLAGS = CSIGNAL | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID
IGNORED_FLAGS = CLONE_DETACHED | CLONE_IO

WNOHANG, WUNTRACED, WCONTINUED, WEXITED, WNOWAIT = 1, 2, 8, 4, 0x01000000
WNOTHREAD, WALL, WCLONE = 0x20000000, 0x40000000, 0x80000000
WAIT4_OPTIONS = WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE
WAITID_OPTIONS = WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE
P_ALL, P_PID, P_PGID, P_PIDFD = 0, 1, 2, 3

#: Host signals held while a guest fork sets the child up (every one a guest may send or vm handles).
HELD_ACROSS_FORK = frozenset(signal.Signals) - {
    signal.SIGKILL,
    signal.SIGSTOP,
    signal.SIGSEGV,
    signal.SIGBUS,
    signal.SIGILL,
    signal.SIGFPE,
    signal.SIGTRAP,
}


def pack_rusage(usage: Any) -> bytes:
    """``struct rusage`` (144 bytes: two timevals, fourteen longs) from a host ``resource.struct_rusage``."""
    times = []
    for seconds in (usage.ru_utime, usage.ru_stime):
        usec = round(seconds * 1_000_000)
        times += [usec // 1_000_000, usec % 1_000_000]
    longs = [
        int(getattr(usage, name))
        for name in (
            "ru_maxrss",
            "ru_ixrss",
            "ru_idrss",
            "ru_isrss",
            "ru_minflt",
            "ru_majflt",
            "ru_nswap",
            "ru_inblock",
            "ru_oublock",
            "ru_msgsnd",
            "ru_msgrcv",
            "ru_nsignals",
            "ru_nvcsw",
            "ru_nivcsw",
        )
    ]
    raw = struct.pack("<4q14q", *times, *longs)
    assert len(raw) == RUSAGE_SIZE
    return raw


def guest_fork(st: ProcessState, cpu: Any, flags: int, newsp: int, parent_tid: int, child_tid: int) -> int:
    """Fork the vm process for the guest; the child's pid in the parent, 0 in the child."""
    if not st.forkable:
        log.info("fork_unsupported", reason="this guest runs on a hardware accelerator")
        raise GuestErrno(errno.ENOSYS)
    PROCESSES.before_fork()
    # signals that arrive while the child sets itself up wait until it has its own dispositions
    held = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_ACROSS_FORK)
    pid = os.fork()
    if pid:
        # the child enters itself too: whichever is first, kill() finds it at once
        PROCESSES.forked_child(pid)
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
        if flags & CLONE_PARENT_SETTID:
            st.mem.write(parent_tid, struct.pack("<i", pid))
        return pid
    PROCESSES.after_fork_in_child()
    st.pid = os.getpid()
    st.forked_child()
    st.host_signals.after_fork_in_child()
    signal.pthread_sigmask(signal.SIG_SETMASK, held)
    if flags & CLONE_CHILD_SETTID:
        try:
            st.mem.write(child_tid, struct.pack("<i", st.pid))
        except MemoryFault:  # the kernel ignores a bad pointer here (schedule_tail's put_user)
            pass
    if flags & CLONE_CHILD_CLEARTID:
        st.clear_child_tid = child_tid
    if newsp:
        cpu.regs[st.abi.sp_register] = newsp
    return 0


@syscall("clone")
def sys_clone(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    flags, newsp, parent_tid = a[0], a[1], a[2]
    # clone(flags, newsp, parent_tid, child_tid, tls); CONFIG_CLONE_BACKWARDS ISAs swap the last two
    child_tid = a[4] if st.abi.isa in CLONE_BACKWARDS else a[3]
    if flags & CLONE_VFORK:  # vfork is a fork, as in qemu-user
        flags &= ~(CLONE_VFORK | CLONE_VM)
    if flags & CLONE_VM:
        # a thread: another part of vm-linux (threads) serves CLONE_VM; not here
        log.info("clone_thread_unsupported", flags=hex(flags))
        raise GuestErrno(errno.ENOSYS)
    if flags & ~(FORK_FLAGS | IGNORED_FLAGS):
        raise GuestErrno(errno.EINVAL)
    if flags & CLONE_SETTLS:  # a new thread pointer: served with threads (the ABI names no TLS register yet)
        log.info("clone_settls_unsupported", flags=hex(flags))
        raise GuestErrno(errno.ENOSYS)
    return guest_fork(st, cpu, flags, newsp, parent_tid, child_tid)


@syscall("fork", "vfork")
def sys_fork(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return guest_fork(st, cpu, SIGCHLD, 0, 0, 0)


@syscall("clone3")
def sys_clone3(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    """Not provided (as in qemu-user 7.2): glibc falls back to ``clone``."""
    return -errno.ENOSYS


def interruptible(st: ProcessState, wait: Callable[[], Any]) -> Any:
    """Run a blocking host call (``wait4``, ``waitid``) that a guest signal with a handler interrupts.

    The host call is left by the mirrored host signal's handler (:class:`GuestInterrupted`); the call then
    ends as :mod:`vm_linux.waiting` says for ``-ERESTARTSYS``: ``EINTR`` after the handler, or restarted
    when the handler has ``SA_RESTART``.
    """
    signals = st.host_signals
    try:
        signals.waiting = True
        try:
            if st.signals.deliverable():
                raise GuestInterrupted(False)
            return wait()
        finally:
            signals.waiting = False
    except GuestInterrupted:
        raise Interrupted(Restart.SYS) from None


@syscall("wait4")
def sys_wait4(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    pid, status_ptr, options, rusage_ptr = s32(a[0]), a[1], s32(a[2]) & 0xFFFFFFFF, a[3]
    if options & ~WAIT4_OPTIONS:
        raise GuestErrno(errno.EINVAL)
    host_options = options & (WNOHANG | WUNTRACED | WCONTINUED)
    if pid == -(2**31):
        raise GuestErrno(errno.ESRCH)
    try:
        if host_options & WNOHANG:
            got, status, usage = os.wait4(pid, host_options)
        else:
            got, status, usage = interruptible(st, lambda: os.wait4(pid, host_options))
    except ChildProcessError:
        raise GuestErrno(errno.ECHILD) from None
    if got == 0:
        return 0
    if os.WIFEXITED(status) or os.WIFSIGNALED(status):
        PROCESSES.reaped(got)
    if status_ptr:
        st.mem.write(status_ptr, struct.pack("<i", status))
    if rusage_ptr:
        st.mem.write(rusage_ptr, pack_rusage(usage))
    return got


@syscall("waitid")
def sys_waitid(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    idtype, ident, info_ptr, options, rusage_ptr = s32(a[0]), s32(a[1]), a[2], s32(a[3]) & 0xFFFFFFFF, a[4]
    if options & ~WAITID_OPTIONS or not options & (WEXITED | WUNTRACED | WCONTINUED):
        raise GuestErrno(errno.EINVAL)
    if idtype == P_PIDFD:
        raise GuestErrno(errno.EBADF)  # vm gives out no pidfds
    if idtype not in (P_ALL, P_PID, P_PGID) or (idtype != P_ALL and ident < 0):
        raise GuestErrno(errno.EINVAL)
    if idtype == P_PGID and ident == 0:
        ident = os.getpgid(0)
    host_options = options & (WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT)
    before = _children_usage() if rusage_ptr else None
    try:
        if host_options & WNOHANG:
            result = os.waitid(idtype, ident, host_options)
        else:
            result = interruptible(st, lambda: os.waitid(idtype, ident, host_options))
    except ChildProcessError:
        raise GuestErrno(errno.ECHILD) from None
    if info_ptr:
        if result is None:  # WNOHANG and no child changed state: the kernel clears these fields
            st.mem.write(info_ptr, bytes(28))
        else:
            head = struct.pack("<iii", SIGCHLD, 0, result.si_code) + bytes(4)
            st.mem.write(info_ptr, head + struct.pack("<iIi", result.si_pid, result.si_uid, result.si_status))
    if result is not None and result.si_code in (1, 2, 3) and not options & WNOWAIT:
        PROCESSES.reaped(result.si_pid)
    if rusage_ptr:
        assert before is not None
        st.mem.write(rusage_ptr, pack_rusage(_usage_delta(before, _children_usage())))
    return 0


def _children_usage() -> Any:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN)


class _Usage:
    """A rusage made of the difference of two ``RUSAGE_CHILDREN`` readings (maxrss: the later one)."""

    def __init__(self, before: Any, after: Any) -> None:
        for name in dir(after):
            if name.startswith("ru_"):
                value = getattr(after, name)
                setattr(self, name, value if name == "ru_maxrss" else value - getattr(before, name))


def _usage_delta(before: Any, after: Any) -> Any:
    return _Usage(before, after)


def _guest_pid(pid: int) -> int:
    """``pid`` (0: the caller) if it is a guest process; ``ESRCH`` otherwise."""
    if pid < 0:
        raise GuestErrno(errno.EINVAL)
    if pid == 0:
        return 0
    if not PROCESSES.is_guest(pid):
        raise GuestErrno(errno.ESRCH)
    return pid


@syscall("setpgid")
def sys_setpgid(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    pid, pgid = s32(a[0]), s32(a[1])
    if pgid < 0:
        raise GuestErrno(errno.EINVAL)
    os.setpgid(_guest_pid(pid), pgid)
    return 0


@syscall("getpgid")
def sys_getpgid(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return os.getpgid(_guest_pid(s32(a[0])))


@syscall("getpgrp")
def sys_getpgrp(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return os.getpgrp()


@syscall("getsid")
def sys_getsid(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return os.getsid(_guest_pid(s32(a[0])))


@syscall("setsid")
def sys_setsid(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    os.setsid()
    return os.getsid(0)
