"""Guest timers: ``setitimer``'s three interval timers and the POSIX timers of ``timer_create``.

Guest timers are deadlines that vm checks itself, not host timers: each
:class:`GuestTimer` holds its expiry as an absolute time on its clock.
:meth:`GuestTimers.fire_due` queues the signal of every timer that expired
(rearming periodic ones and counting missed periods as overruns); the process
calls it between engine slices and after each system call, and
:func:`vm_linux.waiting.wait` calls it whenever a blocking call wakes up, with
its host wait bounded by :meth:`GuestTimers.next_wall_deadline`. A signal
therefore arrives at the first slice boundary after the expiry (a slice is at
most ``DEFAULT_SLICE`` guest instructions), or at the expiry itself when the
guest is blocked.

Clocks: ``ITIMER_REAL`` counts ``CLOCK_MONOTONIC``; ``ITIMER_VIRTUAL`` the user
CPU time of the VM process (``getrusage``), ``ITIMER_PROF`` its user and
system time (``CLOCK_PROCESS_CPUTIME_ID``), as under qemu-user, where the
guest's CPU time is the emulator's. POSIX timers run on the clock they were
created with. CPU-time clocks do not advance while the guest is blocked, so
they never bound a wait.
"""

from __future__ import annotations

import resource
import struct
import time

import attrs

from vm_linux.signals import SIGALRM, SIGINFO_SIZE, SignalState

NSEC = 1_000_000_000
ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF = 0, 1, 2
SIGVTALRM, SIGPROF = 26, 27
SI_KERNEL = 0x80
SI_TIMER = -2
SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID = 0, 1, 2, 4
#: A private clock id for ``ITIMER_VIRTUAL`` (user CPU time only); never a guest-visible id.
USER_CPU_CLOCK = -1000
CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID = 0, 1, 2, 3
CLOCK_BOOTTIME, CLOCK_TAI = 7, 11
WALL_CLOCKS = frozenset({CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI})
TIMER_CLOCKS = WALL_CLOCKS | {CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID}
DELAYTIMER_MAX = 0x7FFFFFFF


def clock_now(clock: int) -> int:
    """Now on ``clock`` in nanoseconds (:data:`USER_CPU_CLOCK`: the process's user CPU time)."""
    if clock == USER_CPU_CLOCK:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_utime * NSEC)
    if clock == CLOCK_THREAD_CPUTIME_ID:  # the guest's one thread is the whole process's work
        clock = CLOCK_PROCESS_CPUTIME_ID
    return time.clock_gettime_ns(clock)


def timer_siginfo(signo: int, code: int, *, timer_id: int = 0, overrun: int = 0, value: int = 0) -> bytes:
    """``siginfo_t`` of a timer signal: ``_timer`` = (si_tid, si_overrun, si_value) for ``SI_TIMER``."""
    head = struct.pack("<iii", signo, 0, code) + bytes(4)
    body = struct.pack("<iiQ", timer_id, overrun, value) if code == SI_TIMER else b""
    return (head + body).ljust(SIGINFO_SIZE, b"\0")


@attrs.define
class GuestTimer:
    """One timer: its clock, what it sends, and its expiry (0: disarmed) and period (0: one-shot)."""

    clock: int
    signo: int
    notify: int = SIGEV_SIGNAL
    value: int = 0
    timer_id: int = 0
    posix: bool = False
    expires_ns: int = 0
    interval_ns: int = 0
    overrun: int = 0
    last_overrun: int = 0

    def arm(self, value_ns: int, interval_ns: int, *, absolute: bool = False) -> None:
        """Start (``value_ns`` > 0) or stop (0) the timer; ``absolute``: ``value_ns`` is a time on its clock."""
        self.interval_ns = interval_ns
        self.overrun = 0
        if value_ns == 0:
            self.expires_ns = 0
            return
        self.expires_ns = value_ns if absolute else clock_now(self.clock) + value_ns
        if self.expires_ns <= 0:
            self.expires_ns = 1  # an absolute time in the past: expires at once

    def remaining(self) -> tuple[int, int]:
        """(time left, period) in nanoseconds, as ``getitimer``/``timer_gettime`` report them."""
        if not self.expires_ns:
            return 0, self.interval_ns
        return max(self.expires_ns - clock_now(self.clock), 1), self.interval_ns

    def expire(self, now: int) -> int:
        """Account for the expiries up to ``now``: how many periods passed (0 when not due)."""
        if not self.expires_ns or now < self.expires_ns:
            return 0
        if not self.interval_ns:
            self.expires_ns = 0
            return 1
        periods = (now - self.expires_ns) // self.interval_ns + 1
        self.expires_ns += periods * self.interval_ns
        return periods


class GuestTimers:
    """The interval timers and POSIX timers of one guest process (see the module docstring)."""

    def __init__(self) -> None:
        self.itimers: dict[int, GuestTimer] = {
            ITIMER_REAL: GuestTimer(CLOCK_MONOTONIC, SIGALRM),
            ITIMER_VIRTUAL: GuestTimer(USER_CPU_CLOCK, SIGVTALRM),
            ITIMER_PROF: GuestTimer(CLOCK_PROCESS_CPUTIME_ID, SIGPROF),
        }
        self.posix: dict[int, GuestTimer] = {}
        self.next_id = 0

    def all(self) -> list[GuestTimer]:
        return [*self.itimers.values(), *self.posix.values()]

    @property
    def armed(self) -> bool:
        return any(timer.expires_ns for timer in self.all())

    def create(self, clock: int, signo: int, notify: int, value: int) -> GuestTimer:
        """A new disarmed POSIX timer with the lowest unused id."""
        while self.next_id in self.posix:
            self.next_id = (self.next_id + 1) & 0x7FFFFFFF
        timer = GuestTimer(clock, signo, notify, value, timer_id=self.next_id, posix=True)
        self.posix[timer.timer_id] = timer
        self.next_id = (self.next_id + 1) & 0x7FFFFFFF
        return timer

    def fire_due(self, signals: SignalState) -> None:
        """Queue the signal of every expired timer on ``signals`` (module docstring)."""
        for timer in self.all():
            if not timer.expires_ns:
                continue
            periods = timer.expire(clock_now(timer.clock))
            if not periods or timer.notify == SIGEV_NONE:
                continue
            if timer.posix:
                if timer.signo in signals.pending:  # still pending: this expiry is an overrun
                    timer.overrun = min(timer.overrun + periods, DELAYTIMER_MAX)
                    continue
                timer.last_overrun = min(timer.overrun + periods - 1, DELAYTIMER_MAX)
                timer.overrun = 0
                info = timer_siginfo(
                    timer.signo,
                    SI_TIMER,
                    timer_id=timer.timer_id,
                    overrun=timer.last_overrun,
                    value=timer.value,
                )
            else:
                info = timer_siginfo(timer.signo, SI_KERNEL)
            signals.queue(timer.signo, info)

    def next_wall_deadline(self) -> int | None:
        """The earliest expiry among timers on wall clocks, as a ``CLOCK_MONOTONIC`` time (None: none)."""
        best: int | None = None
        for timer in self.all():
            if not timer.expires_ns or timer.clock not in WALL_CLOCKS:
                continue
            if timer.notify == SIGEV_NONE:
                continue
            when = timer.expires_ns
            if timer.clock != CLOCK_MONOTONIC:
                when = when - clock_now(timer.clock) + clock_now(CLOCK_MONOTONIC)
            best = when if best is None else min(best, when)
        return best
