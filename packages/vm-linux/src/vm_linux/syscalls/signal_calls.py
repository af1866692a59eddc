"""Signal system calls: rt_sigaction, rt_sigprocmask, sigaltstack, rt_sigreturn, kill, tkill, tgkill.

Signals sent to the process itself become pending and are delivered by
:class:`vm_linux.process.LinuxProcess` when the system call returns (unless
blocked). Signals to other guest processes (forks of this vm process, see
:mod:`vm_linux.guest_procs`) are the host ``kill``; any pid or process group
with no guest process in it is ``ESRCH``: a guest never probes nor signals a
host process that is not its own.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Sequence
from typing import Any

from vm_core.errors import MemoryFault

from vm_linux.guest_errno import GuestErrno
from vm_linux.guest_procs import PROCESSES
from vm_linux.signals import (
    DEFAULT_IGNORED,
    NSIG,
    SI_TKILL,
    SI_USER,
    SIG_DFL,
    SIG_IGN,
    SIGKILL,
    SIGSEGV,
    SIGSET_SIZE,
    SIGSTOP,
    SS_AUTODISARM,
    SS_DISABLE,
    SS_ONSTACK,
    UNBLOCKABLE,
    SigAction,
    make_siginfo,
)
from vm_linux.state import GuestExit, ProcessState
from vm_linux.syscalls.registry import s32, syscall
from vm_linux.syscalls.structs import STACK_T

SIG_BLOCK, SIG_UNBLOCK, SIG_SETMASK = 0, 1, 2
MASK64 = 2**64 - 1


def _valid_signal(signo: int) -> None:
    if not 1 <= signo <= NSIG:
        raise GuestErrno(errno.EINVAL)


def _read_sigaction(st: ProcessState, ptr: int) -> SigAction:
    if st.abi.sigaction_has_restorer:
        handler, flags, restorer, mask = struct.unpack("<QQQQ", st.mem.read(ptr, 32))
    else:
        handler, flags, mask = struct.unpack("<QQQ", st.mem.read(ptr, 24))
        restorer = 0
    return SigAction(handler=handler, flags=flags, mask=mask & ~UNBLOCKABLE, restorer=restorer)


def _pack_sigaction(st: ProcessState, act: SigAction) -> bytes:
    if st.abi.sigaction_has_restorer:
        return struct.pack("<QQQQ", act.handler, act.flags, act.restorer, act.mask)
    return struct.pack("<QQQ", act.handler, act.flags, act.mask)


@syscall("rt_sigaction")
def sys_rt_sigaction(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    signo, act_ptr, old_ptr, setsize = s32(a[0]), a[1], a[2], a[3]
    if setsize != SIGSET_SIZE:
        raise GuestErrno(errno.EINVAL)
    _valid_signal(signo)
    if act_ptr and signo in (SIGKILL, SIGSTOP):
        raise GuestErrno(errno.EINVAL)
    old = st.signals.action(signo)
    new = _read_sigaction(st, act_ptr) if act_ptr else None
    if old_ptr:
        st.mem.write(old_ptr, _pack_sigaction(st, old))
    if new is not None:
        st.signals.actions[signo] = new
        st.host_signals.mirror(signo, new)
        if new.handler == SIG_IGN or (new.handler == SIG_DFL and signo in DEFAULT_IGNORED):
            st.signals.pending.pop(signo, None)
    return 0


@syscall("rt_sigprocmask")
def sys_rt_sigprocmask(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    how, set_ptr, old_ptr, setsize = s32(a[0]), a[1], a[2], a[3]
    if setsize != SIGSET_SIZE:
        raise GuestErrno(errno.EINVAL)
    signals = st.signals
    old = signals.blocked
    new = None
    if set_ptr:
        (mask,) = struct.unpack("<Q", st.mem.read(set_ptr, 8))
        if how == SIG_BLOCK:
            new = old | mask
        elif how == SIG_UNBLOCK:
            new = old & ~mask
        elif how == SIG_SETMASK:
            new = mask
        else:
            raise GuestErrno(errno.EINVAL)
    if old_ptr:
        st.mem.write(old_ptr, struct.pack("<Q", old))
    if new is not None:
        signals.set_blocked(new)
    return 0


@syscall("rt_sigpending")
def sys_rt_sigpending(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    if a[1] > SIGSET_SIZE:
        raise GuestErrno(errno.EINVAL)
    pending = 0
    for signo in st.signals.pending:
        pending |= 1 << (signo - 1)
    st.mem.write(a[0], struct.pack("<Q", pending & st.signals.blocked)[: a[1]])
    return 0


@syscall("sigaltstack")
def sys_sigaltstack(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    new_ptr, old_ptr = a[0], a[1]
    signals = st.signals
    sp = cpu.regs[st.abi.sp_register]
    ss_sp, _flags, ss_size = signals.altstack
    old = STACK_T.pack(ss_sp, signals.altstack_flags(sp), 0, ss_size)
    if new_ptr:
        new_sp, new_flags, _pad, new_size = STACK_T.unpack(st.mem.read(new_ptr, STACK_T.size))
        if signals.on_altstack(sp):
            raise GuestErrno(errno.EPERM)
        mode = new_flags & ~SS_AUTODISARM
        if mode not in (0, SS_ONSTACK, SS_DISABLE):
            raise GuestErrno(errno.EINVAL)
        if mode == SS_DISABLE:
            signals.altstack = (0, SS_DISABLE, 0)
        else:
            if new_size < st.abi.minsigstksz:
                raise GuestErrno(errno.ENOMEM)
            signals.altstack = (new_sp, new_flags & SS_AUTODISARM, new_size)
    if old_ptr:
        st.mem.write(old_ptr, old)
    return 0


@syscall("rt_sigreturn")
def sys_rt_sigreturn(st: ProcessState, cpu: Any, a: Sequence[int]) -> None:
    try:
        mask, _altstack = st.abi.signal_frames.pop_frame(cpu)
    except MemoryFault:  # the frame is gone: Linux forces SIGSEGV
        raise GuestExit(signal=SIGSEGV) from None
    st.signals.set_blocked(mask)
    return None


def _send_to_self(st: ProcessState, signo: int, code: int) -> int:
    if signo == 0:
        return 0
    st.signals.queue(signo, make_siginfo(signo, code, pid=st.pid, uid=os.getuid()))
    return 0


def _send(st: ProcessState, pid: int, signo: int) -> None:
    """Signal guest process ``pid`` (the caller: pending at once; another: the host ``kill``)."""
    if pid == st.pid:
        _send_to_self(st, signo, SI_USER)
    else:
        PROCESSES.signal(pid, signo)


def _send_to_many(st: ProcessState, pids: list[int], signo: int) -> int:
    """Signal every pid in ``pids`` (``ESRCH`` if none; ``EPERM`` only if every one refused)."""
    if not pids:
        raise GuestErrno(errno.ESRCH)
    refused = 0
    for pid in pids:
        try:
            _send(st, pid, signo)
        except ProcessLookupError:
            continue
        except PermissionError:
            refused += 1
    if refused == len(pids):
        raise GuestErrno(errno.EPERM)
    return 0


def _in_group(pid: int, pgid: int) -> bool:
    try:
        return os.getpgid(pid) == pgid
    except OSError:
        return False


@syscall("kill")
def sys_kill(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    """Guest processes only: a pid (or group) with no guest process in it does not exist for the guest."""
    pid, signo = s32(a[0]), s32(a[1])
    if not 0 <= signo <= NSIG:
        raise GuestErrno(errno.EINVAL)
    if pid == st.pid:
        return _send_to_self(st, signo, SI_USER)
    if pid > 0:
        if not PROCESSES.is_guest(pid):
            raise GuestErrno(errno.ESRCH)
        _send(st, pid, signo)
        return 0
    if pid == -1:  # every guest process but the caller
        return _send_to_many(st, [p for p in PROCESSES.all_pids() if p != st.pid], signo)
    if pid == -(2**31):
        raise GuestErrno(errno.ESRCH)
    pgid = os.getpgrp() if pid == 0 else -pid
    return _send_to_many(st, [p for p in PROCESSES.all_pids() if _in_group(p, pgid)], signo)


@syscall("tkill")
def sys_tkill(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    tid, signo = s32(a[0]), s32(a[1])
    if tid <= 0 or not 0 <= signo <= NSIG:
        raise GuestErrno(errno.EINVAL)
    if tid != st.pid:
        return _kill_other_thread_group(st, tid, tid, signo)
    return _send_to_self(st, signo, SI_TKILL)


def _kill_other_thread_group(st: ProcessState, tgid: int, tid: int, signo: int) -> int:
    """A guest process is one thread: its tid is its pid; another guest process gets the host ``kill``."""
    if tgid != tid or not PROCESSES.is_guest(tid):
        raise GuestErrno(errno.ESRCH)
    if signo:
        PROCESSES.signal(tid, signo)
    return 0


@syscall("tgkill")
def sys_tgkill(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    tgid, tid, signo = s32(a[0]), s32(a[1]), s32(a[2])
    if tgid <= 0 or tid <= 0 or not 0 <= signo <= NSIG:
        raise GuestErrno(errno.EINVAL)
    if tgid != st.pid or tid != st.pid:
        return _kill_other_thread_group(st, tgid, tid, signo)
    return _send_to_self(st, signo, SI_TKILL)
