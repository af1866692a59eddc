"""Interval and POSIX timers: alarm, getitimer, setitimer, timer_create/settime/gettime/getoverrun/delete.

The timers themselves are :mod:`vm_linux.timers`' (deadlines vm checks); these
handlers convert the guest's ``struct itimerval`` / ``struct itimerspec`` /
``struct sigevent`` and validate them as Linux does (``EINVAL`` for a bad
``which``, clock, notification, signal, timer id or time value).
``SIGEV_THREAD_ID`` may only name the guest's one thread; ``SIGEV_THREAD``
is glibc's (a helper thread it creates over ``SIGEV_THREAD_ID``), which the
kernel refuses with ``EINVAL``, as here. Timers on the CPU clocks of other
processes or threads (negative clock ids) are refused with ``EINVAL``.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Sequence
from typing import Any

from vm_linux.guest_errno import GuestErrno
from vm_linux.signals import NSIG, SIGALRM
from vm_linux.state import ProcessState
from vm_linux.syscalls.registry import s32, syscall
from vm_linux.syscalls.structs import TIMESPEC, TIMEVAL
from vm_linux.timers import (
    ITIMER_PROF,
    ITIMER_REAL,
    SIGEV_NONE,
    SIGEV_SIGNAL,
    SIGEV_THREAD_ID,
    TIMER_CLOCKS,
    GuestTimer,
)

NSEC = 1_000_000_000
USEC = 1_000_000
TIMER_ABSTIME = 1
SIGEVENT = struct.Struct("<Qiii")  # sigev_value, sigev_signo, sigev_notify, _sigev_un._tid


def _read_itimerval(st: ProcessState, ptr: int) -> tuple[int, int]:
    """(interval, value) in ns from a guest ``struct itimerval``."""
    raw = st.mem.read(ptr, 2 * TIMEVAL.size)
    out = []
    for offset in (0, TIMEVAL.size):
        sec, usec = TIMEVAL.unpack_from(raw, offset)
        if sec < 0 or not 0 <= usec < USEC:
            raise GuestErrno(errno.EINVAL)
        out.append(sec * NSEC + usec * 1000)
    return out[0], out[1]


def _pack_itimerval(timer: GuestTimer) -> bytes:
    value, interval = timer.remaining()
    if timer.expires_ns:
        value = max(value, 1000)  # an armed timer never reads as 0 (Linux reports at least 1 us)
    return b"".join(TIMEVAL.pack(ns // NSEC, ns % NSEC // 1000) for ns in (interval, value))


def _read_itimerspec(st: ProcessState, ptr: int) -> tuple[int, int]:
    raw = st.mem.read(ptr, 2 * TIMESPEC.size)
    out = []
    for offset in (0, TIMESPEC.size):
        sec, nsec = TIMESPEC.unpack_from(raw, offset)
        if sec < 0 or not 0 <= nsec < NSEC:
            raise GuestErrno(errno.EINVAL)
        out.append(sec * NSEC + nsec)
    return out[0], out[1]


def _pack_itimerspec(timer: GuestTimer) -> bytes:
    value, interval = timer.remaining()
    return b"".join(TIMESPEC.pack(*divmod(ns, NSEC)) for ns in (interval, value))


def _itimer(st: ProcessState, which: int) -> GuestTimer:
    timer = st.timers.itimers.get(which)
    if timer is None:
        raise GuestErrno(errno.EINVAL)
    return timer


@syscall("getitimer")
def sys_getitimer(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    timer = _itimer(st, s32(a[0]))
    st.mem.write(a[1], _pack_itimerval(timer))
    return 0


@syscall("setitimer")
def sys_setitimer(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    which, new_ptr, old_ptr = s32(a[0]), a[1], a[2]
    if not ITIMER_REAL <= which <= ITIMER_PROF:
        raise GuestErrno(errno.EINVAL)
    timer = _itimer(st, which)
    interval, value = _read_itimerval(st, new_ptr) if new_ptr else (0, 0)  # NULL: disarm (Linux >= 5.x)
    old = _pack_itimerval(timer)
    timer.arm(value, interval)
    if old_ptr:
        st.mem.write(old_ptr, old)
    return 0


@syscall("alarm")
def sys_alarm(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    timer = st.timers.itimers[ITIMER_REAL]
    left, _interval = timer.remaining()
    old = 0
    if timer.expires_ns:
        sec, rest = divmod(left, NSEC)
        old = sec + (1 if rest >= NSEC // 2 else 0)
        old = max(old, 1)  # Linux: a pending alarm never reports 0
    timer.arm((a[0] & 0xFFFFFFFF) * NSEC, 0)
    return old


def _posix_timer(st: ProcessState, timer_id: int) -> GuestTimer:
    timer = st.timers.posix.get(timer_id)
    if timer is None:
        raise GuestErrno(errno.EINVAL)
    return timer


@syscall("timer_create")
def sys_timer_create(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    clock, event_ptr, id_ptr = s32(a[0]), a[1], a[2]
    if clock not in TIMER_CLOCKS:
        raise GuestErrno(errno.EINVAL)
    if event_ptr:
        value, signo, notify, tid = SIGEVENT.unpack(st.mem.read(event_ptr, SIGEVENT.size))
        kind = notify & ~SIGEV_THREAD_ID
        if notify not in (SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID) or kind not in (
            SIGEV_SIGNAL,
            SIGEV_NONE,
        ):
            raise GuestErrno(errno.EINVAL)
        if notify == SIGEV_THREAD_ID and tid != st.pid:
            raise GuestErrno(errno.EINVAL)
        if notify != SIGEV_NONE and not 1 <= signo <= NSIG:
            raise GuestErrno(errno.EINVAL)
    else:
        value, signo, notify = None, SIGALRM, SIGEV_SIGNAL
    timer = st.timers.create(clock, signo, notify, 0)
    timer.value = timer.timer_id if value is None else value  # no sigevent: si_value is the timer id
    try:
        st.mem.write(id_ptr, struct.pack("<i", timer.timer_id))
    except Exception:
        del st.timers.posix[timer.timer_id]
        raise
    return 0


@syscall("timer_settime")
def sys_timer_settime(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    timer = _posix_timer(st, s32(a[0]))
    flags, new_ptr, old_ptr = s32(a[1]), a[2], a[3]
    interval, value = _read_itimerspec(st, new_ptr)
    old = _pack_itimerspec(timer)
    timer.arm(value, interval, absolute=bool(flags & TIMER_ABSTIME))
    if old_ptr:
        st.mem.write(old_ptr, old)
    return 0


@syscall("timer_gettime")
def sys_timer_gettime(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    st.mem.write(a[1], _pack_itimerspec(_posix_timer(st, s32(a[0]))))
    return 0


@syscall("timer_getoverrun")
def sys_timer_getoverrun(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return _posix_timer(st, s32(a[0])).last_overrun


@syscall("timer_delete")
def sys_timer_delete(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    _posix_timer(st, s32(a[0]))
    del st.timers.posix[s32(a[0])]
    return 0
