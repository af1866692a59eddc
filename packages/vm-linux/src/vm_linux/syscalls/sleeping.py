"""Calls that sleep or wait for a signal: nanosleep, clock_nanosleep, pause, rt_sigsuspend, rt_sigtimedwait.

They block through :func:`vm_linux.waiting.wait`, so a guest signal (a
timer's, one the guest sends itself) interrupts them as in Linux: ``nanosleep``
and a relative ``clock_nanosleep`` write the time left to ``rem`` and return
``EINTR`` when a handler runs (otherwise, after a stop signal, they go on for
the time left through ``restart_syscall``, as Linux's restart block); ``pause`` and
``rt_sigsuspend`` return ``EINTR`` after the handler; ``rt_sigtimedwait``
takes a signal of its set off the pending ones (``EAGAIN`` at the timeout,
``EINTR`` when another signal's handler runs).
"""

from __future__ import annotations

import errno
import struct
import time
from collections.abc import Sequence
from typing import Any

from vm_linux.guest_errno import GuestErrno
from vm_linux.signals import SIGSET_SIZE, UNBLOCKABLE, sigbit
from vm_linux.state import ProcessState
from vm_linux.syscalls.registry import s32, syscall
from vm_linux.syscalls.structs import TIMESPEC, pack_timespec_ns
from vm_linux.waiting import Interrupted, Restart, deadline_after, monotonic_ns, sleep_until, swap_mask, wait

NSEC = 1_000_000_000
TIMER_ABSTIME = 1
CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI = 0, 1, 7, 11
SLEEP_CLOCKS = frozenset({CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI})
CPU_CLOCKS = frozenset({2, 3})


def read_timespec(st: ProcessState, ptr: int) -> int:
    """A guest ``struct timespec`` in nanoseconds (``EINVAL`` for a negative or unnormalized one)."""
    sec, nsec = TIMESPEC.unpack(st.mem.read(ptr, TIMESPEC.size))
    if sec < 0 or not 0 <= nsec < NSEC:
        raise GuestErrno(errno.EINVAL)
    return sec * NSEC + nsec


def _sleep_until_deadline(st: ProcessState, deadline: int, rem_ptr: int) -> int:
    """A relative sleep's wait; interrupted, it writes the time left and can go on (``restart_syscall``)."""
    try:
        sleep_until(st, deadline, Restart.BLOCK)
    except Interrupted:
        if rem_ptr:
            st.mem.write(rem_ptr, pack_timespec_ns(max(deadline - monotonic_ns(), 0)))
        st.restart_block = lambda: _sleep_until_deadline(st, deadline, rem_ptr)
        raise
    return 0


def _sleep_relative(st: ProcessState, ns: int, rem_ptr: int) -> int:
    return _sleep_until_deadline(st, monotonic_ns() + ns, rem_ptr)


@syscall("restart_syscall")
def sys_restart_syscall(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    """Continue the call a signal without a handler interrupted (Linux: ``-EINTR`` when there is none)."""
    resume, st.restart_block = st.restart_block, None
    if resume is None:
        raise GuestErrno(errno.EINTR)
    return resume()


@syscall("nanosleep")
def sys_nanosleep(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return _sleep_relative(st, read_timespec(st, a[0]), a[1])


@syscall("clock_nanosleep")
def sys_clock_nanosleep(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    clock, flags, request, rem = s32(a[0]), s32(a[1]), a[2], a[3]
    if clock in CPU_CLOCKS:  # sleeping on the guest's own CPU clock (it does not advance while asleep)
        raise GuestErrno(errno.EINVAL)
    if clock not in SLEEP_CLOCKS:
        raise GuestErrno(errno.EINVAL)
    ns = read_timespec(st, request)
    if not flags & TIMER_ABSTIME:
        return _sleep_relative(st, ns, rem)
    # an absolute time on ``clock``: as far from now on the monotonic clock (no rem, as Linux)
    sleep_until(st, monotonic_ns() + max(ns - time.clock_gettime_ns(clock), 0), Restart.NOHAND)
    return 0


@syscall("pause")
def sys_pause(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    sleep_until(st, None, Restart.NOHAND)
    return 0  # not reached: only a signal ends pause


def _read_sigset(st: ProcessState, ptr: int, size: int) -> int:
    if size != SIGSET_SIZE:
        raise GuestErrno(errno.EINVAL)
    (mask,) = struct.unpack("<Q", st.mem.read(ptr, SIGSET_SIZE))
    return int(mask)


@syscall("rt_sigsuspend")
def sys_rt_sigsuspend(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    mask = _read_sigset(st, a[0], a[1])
    swap_mask(st, mask & ~UNBLOCKABLE)
    sleep_until(st, None, Restart.NOHAND)
    return 0  # not reached


@syscall("rt_sigtimedwait")
def sys_rt_sigtimedwait(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    wanted = _read_sigset(st, a[0], a[3]) & ~UNBLOCKABLE
    info_ptr, timeout_ptr = a[1], a[2]
    timeout = read_timespec(st, timeout_ptr) if timeout_ptr else None
    signals = st.signals

    def first_wanted() -> int | None:
        return min((signo for signo in signals.pending if wanted & sigbit(signo)), default=None)

    wait(
        st,
        deadline_ns=deadline_after(timeout),
        restart=Restart.NEVER,
        until=lambda: first_wanted() is not None,
    )
    signo = first_wanted()
    if signo is None:
        raise GuestErrno(errno.EAGAIN)
    info = signals.pending.pop(signo)
    if info_ptr:
        st.mem.write(info_ptr, info)
    return signo
