"""Process, identity, limits, randomness and time system calls.

The guest is one thread of the VM process, as under qemu-user: its pid and
tid are the host pid, ids and clocks are the host's, ``uname`` reports the
host kernel with the guest's machine name. Resource limits start as the
host's and are then kept per guest (setting one never changes the VM's own).
``futex`` serves a single thread: a wait whose value differs returns
``EAGAIN``; a wait that could only end by another thread's wake ends with a
timeout when one was given, and otherwise stops the VM with an
:class:`~vm_core.errors.UnsupportedError` instead of hanging forever.
"""

from __future__ import annotations

import errno
import os
import resource
import struct
import time
from collections.abc import Sequence
from typing import Any

from vm_core.errors import UnsupportedError

from vm_linux import hostcalls
from vm_linux.guest_errno import GuestErrno
from vm_linux.state import GuestExit, ProcessState
from vm_linux.syscalls.fileio import writable
from vm_linux.syscalls.registry import s32, syscall
from vm_linux.syscalls.structs import (
    RLIMIT64,
    RUSAGE_SIZE,
    TIMESPEC,
    TIMEVAL,
    pack_timespec_ns,
    pack_utsname,
)

RLIM_NLIMITS = 16
GRND_NONBLOCK, GRND_RANDOM, GRND_INSECURE = 1, 2, 4
GETRANDOM_MAX = 33554431
NSEC = 1_000_000_000
FUTEX_WAIT, FUTEX_WAKE, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE = 0, 1, 3, 4
FUTEX_WAKE_OP, FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 5, 9, 10
FUTEX_CMD_MASK = 0x7F
ROBUST_LIST_HEAD_SIZE = 24


@syscall("exit", "exit_group")
def sys_exit(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    raise GuestExit(status=a[0] & 0xFF)


@syscall("set_tid_address")
def sys_set_tid_address(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    st.clear_child_tid = a[0]
    return st.pid


@syscall("set_robust_list")
def sys_set_robust_list(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    if a[1] != ROBUST_LIST_HEAD_SIZE:
        raise GuestErrno(errno.EINVAL)
    return 0


@syscall("rseq")
def sys_rseq(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    """Restartable sequences are not provided (as in qemu-user); glibc then does without."""
    return -errno.ENOSYS


@syscall("getpid", "gettid")
def sys_getpid(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return st.pid


@syscall("getppid")
def sys_getppid(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return os.getppid()


@syscall("getuid")
def sys_getuid(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return os.getuid()


@syscall("geteuid")
def sys_geteuid(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return os.geteuid()


@syscall("getgid")
def sys_getgid(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return os.getgid()


@syscall("getegid")
def sys_getegid(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return os.getegid()


@syscall("sched_yield")
def sys_sched_yield(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    return 0


@syscall("sched_getaffinity")
def sys_sched_getaffinity(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    pid, size, mask = s32(a[0]), a[1], a[2]
    if pid not in (0, st.pid):
        raise GuestErrno(errno.ESRCH)
    if size > 1 << 20:
        size = 1 << 20
    answer = hostcalls.sched_getaffinity(0, size)
    st.mem.write(mask, answer)
    return len(answer)


def _domainname() -> str:
    try:
        with open("/proc/sys/kernel/domainname") as handle:
            return handle.read().strip()
    except OSError:
        return "(none)"


@syscall("uname")
def sys_uname(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    host = os.uname()
    fields = ["Linux", host.nodename, host.release, host.version, st.abi.uname_machine, _domainname()]
    st.mem.write(a[0], pack_utsname(fields))
    return 0


def _check_resource(resource_id: int) -> None:
    if not 0 <= resource_id < RLIM_NLIMITS:
        raise GuestErrno(errno.EINVAL)


def _set_rlimit(st: ProcessState, resource_id: int, ptr: int) -> None:
    soft, hard = RLIMIT64.unpack(st.mem.read(ptr, RLIMIT64.size))
    if soft > hard:
        raise GuestErrno(errno.EINVAL)
    _old_soft, old_hard = st.rlimit(resource_id)
    if hard > old_hard and os.geteuid() != 0:
        raise GuestErrno(errno.EPERM)
    st.set_rlimit(resource_id, soft, hard)


@syscall("prlimit64")
def sys_prlimit64(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    pid, resource_id, new, old = s32(a[0]), s32(a[1]), a[2], a[3]
    if pid not in (0, st.pid):
        raise GuestErrno(errno.EPERM)
    _check_resource(resource_id)
    current = st.rlimit(resource_id)
    if new:
        _set_rlimit(st, resource_id, new)
    if old:
        st.mem.write(old, RLIMIT64.pack(*current))
    return 0


@syscall("getrlimit")
def sys_getrlimit(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    _check_resource(s32(a[0]))
    st.mem.write(a[1], RLIMIT64.pack(*st.rlimit(s32(a[0]))))
    return 0


@syscall("setrlimit")
def sys_setrlimit(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    _check_resource(s32(a[0]))
    _set_rlimit(st, s32(a[0]), a[1])
    return 0


@syscall("getrusage")
def sys_getrusage(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    who = {0: resource.RUSAGE_SELF, -1: resource.RUSAGE_CHILDREN, 1: resource.RUSAGE_THREAD}.get(s32(a[0]))
    if who is None:
        raise GuestErrno(errno.EINVAL)
    usage = resource.getrusage(who)
    longs = [int(getattr(usage, name)) for name in (
        "ru_maxrss", "ru_ixrss", "ru_idrss", "ru_isrss", "ru_minflt", "ru_majflt", "ru_nswap", "ru_inblock",
        "ru_oublock", "ru_msgsnd", "ru_msgrcv", "ru_nsignals", "ru_nvcsw", "ru_nivcsw",
    )]
    times = []
    for seconds in (usage.ru_utime, usage.ru_stime):
        usec = round(seconds * 1_000_000)
        times += [usec // 1_000_000, usec % 1_000_000]
    raw = struct.pack("<4q14q", *times, *longs)
    assert len(raw) == RUSAGE_SIZE
    st.mem.write(a[1], raw)
    return 0


@syscall("getrandom")
def sys_getrandom(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    buf, count, flags = a[0], min(a[1], GETRANDOM_MAX), s32(a[2])
    if flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE) or (
        flags & GRND_RANDOM and flags & GRND_INSECURE
    ):
        raise GuestErrno(errno.EINVAL)
    if not writable(st.mem, buf, count):
        raise GuestErrno(errno.EFAULT)
    done = 0
    while done < count:
        piece = os.urandom(min(count - done, 1 << 20))
        st.mem.write(buf + done, piece)
        done += len(piece)
    return count


@syscall("clock_gettime")
def sys_clock_gettime(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    now = time.clock_gettime_ns(s32(a[0]))
    st.mem.write(a[1], pack_timespec_ns(now))
    return 0


@syscall("clock_getres")
def sys_clock_getres(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    resolution = time.clock_getres(s32(a[0]))
    if a[1]:
        st.mem.write(a[1], pack_timespec_ns(round(resolution * NSEC)))
    return 0


@syscall("gettimeofday")
def sys_gettimeofday(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    if a[0]:
        usec = time.clock_gettime_ns(time.CLOCK_REALTIME) // 1000
        st.mem.write(a[0], TIMEVAL.pack(usec // 1_000_000, usec % 1_000_000))
    if a[1]:
        st.mem.write(a[1], bytes(8))  # struct timezone: the kernel's sys_tz, zero unless set
    return 0


def _read_timespec(st: ProcessState, ptr: int) -> int:
    sec, nsec = TIMESPEC.unpack(st.mem.read(ptr, TIMESPEC.size))
    if sec < 0 or not 0 <= nsec < NSEC:
        raise GuestErrno(errno.EINVAL)
    return sec * NSEC + nsec


def _sleep_ns(ns: int) -> None:
    if ns > 0:
        time.sleep(ns / NSEC)


@syscall("futex")
def sys_futex(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    uaddr, op, val, timeout, _uaddr2, val3 = a[0], s32(a[1]), a[2] & 0xFFFFFFFF, a[3], a[4], a[5]
    cmd = op & FUTEX_CMD_MASK
    if cmd in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
        if uaddr & 3:
            raise GuestErrno(errno.EINVAL)
        if st.mem.load(uaddr, 4) != val:
            raise GuestErrno(errno.EAGAIN)
        if timeout:
            wait_ns = _read_timespec(st, timeout)
            if cmd == FUTEX_WAIT_BITSET:  # absolute time on the chosen clock
                clock = time.CLOCK_REALTIME if op & 256 else time.CLOCK_MONOTONIC
                wait_ns -= time.clock_gettime_ns(clock)
            _sleep_ns(wait_ns)
            raise GuestErrno(errno.ETIMEDOUT)
        raise UnsupportedError(
            f"the guest waits on futex {uaddr:#x} with no timeout and no other thread to wake it",
            hint="the program deadlocked (it would hang forever under Linux)",
        )
    if cmd in (FUTEX_WAKE, FUTEX_WAKE_BITSET, FUTEX_REQUEUE, FUTEX_WAKE_OP):
        return 0
    if cmd == FUTEX_CMP_REQUEUE:
        if st.mem.load(uaddr, 4) != val3 & 0xFFFFFFFF:
            raise GuestErrno(errno.EAGAIN)
        return 0
    raise GuestErrno(errno.ENOSYS)

