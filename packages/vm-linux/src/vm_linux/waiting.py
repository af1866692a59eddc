"""Blocking system calls: waiting on host descriptors and deadlines while guest signals can interrupt.

A guest call that blocks (``read`` from an empty pipe, ``poll``, ``nanosleep``,
``sigsuspend``, ...) calls :func:`wait`. It waits in the host's ``poll(2)`` on
the host descriptors it is given plus the process's wake-up pipe
(:class:`Waker`), with a timeout no later than the call's own deadline and the
next expiry of a guest timer on a wall clock (:mod:`vm_linux.timers`: guest
timers are deadlines that vm checks, here and between engine slices; no host
timer or host signal handler is involved). Each time it wakes it fires the
guest timers that are due; then:

* a host descriptor is ready: the ready ``(host fd, revents)`` pairs are returned;
* ``until()`` (the caller's own condition, e.g. "a signal of the set is pending") holds: ``[]``;
* the deadline passed: ``[]``;
* a guest signal is pending, unblocked and not ignored: :class:`Interrupted` is raised.

:class:`Interrupted` carries how Linux restarts the call (:class:`Restart`,
the kernel's ``-ERESTART*`` codes, signal(7) "Interruption of system calls and
library functions by signal handlers"). The dispatcher turns it into
``-EINTR`` and records the restart kind; when the process then delivers the
signal (:meth:`vm_linux.process.LinuxProcess.deliver_pending`) it restarts
the call instead (the pc back on the system-call instruction, the first
argument register restored) when the handler has ``SA_RESTART`` and the call
is restartable (:attr:`Restart.SYS`), always for :attr:`Restart.NOINTR`, and
whenever no handler runs (a stop signal): nanosleep, poll, select, epoll_wait
use :attr:`Restart.NOHAND` / :attr:`Restart.BLOCK` (never restarted after a
handler), pause and sigsuspend :attr:`Restart.NOHAND`, ``rt_sigtimedwait``
:attr:`Restart.NEVER`.

Calls that change the blocked mask while they wait (``rt_sigsuspend``,
``ppoll``, ``pselect6``, ``epoll_pwait``) set it with :func:`swap_mask`: the
mask to restore goes to ``SignalState.saved_mask``; the handler frame of the
signal that interrupts them records that mask (so ``rt_sigreturn`` restores
it), and a call that returns normally puts it back itself
(:func:`restore_mask`).

:class:`Waker` is vm's own pipe (never a guest descriptor): writing to it
(:meth:`Waker.wake`, safe from any thread or a host signal handler) ends a
wait early so that its conditions are checked again; another thread queuing
a guest signal, a futex wake or a child's exit can use it.
"""

from __future__ import annotations

import enum
import fcntl
import os
import select
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from vm_linux.signals import DEFAULT_IGNORED, SIG_DFL, SIG_IGN, SignalState, sigbit
from vm_linux.timers import GuestTimers

POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
NSEC = 1_000_000_000
#: Longest single host wait (ms): a guest deadline years away still waits in pieces.
_MAX_POLL_MS = 1 << 30


class Restart(enum.IntEnum):
    """How an interrupted call is restarted (the values are the kernel's internal errnos)."""

    SYS = 512  # ERESTARTSYS: restarted if the handler has SA_RESTART, else EINTR
    NOINTR = 513  # ERESTARTNOINTR: always restarted
    NOHAND = 514  # ERESTARTNOHAND: EINTR if a handler runs, restarted otherwise
    BLOCK = 516  # ERESTART_RESTARTBLOCK: as NOHAND, restarted as ``restart_syscall`` (state.restart_block)
    NEVER = 4  # EINTR itself: never restarted (rt_sigtimedwait)


class Interrupted(Exception):
    """A blocking call was interrupted by a guest signal (see the module docstring)."""

    def __init__(self, restart: Restart) -> None:
        super().__init__(f"interrupted ({restart.name})")
        self.restart = restart


class Waker:
    """vm's wake-up pipe for one process: a write ends the current :func:`wait` early."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def wake(self) -> None:
        try:
            os.write(self.write_fd, b"\0")
        except BlockingIOError:  # already full: a wake is pending anyway
            pass

    def drain(self) -> None:
        try:
            while os.read(self.read_fd, 4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self.write_fd)


class ProcessState(Protocol):
    """What waiting needs of :class:`vm_linux.state.ProcessState` (which imports this module)."""

    signals: SignalState
    timers: GuestTimers

    @property
    def waker(self) -> Waker: ...

    def refresh_waitables(self) -> None: ...


def monotonic_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def interrupting_signal(st: ProcessState) -> int | None:
    """The lowest pending guest signal that is unblocked and not ignored (delivery would act on it)."""
    signals = st.signals
    for signo in sorted(signals.pending):
        if signals.blocked & sigbit(signo):
            continue
        handler = signals.action(signo).handler
        if handler == SIG_IGN or (handler == SIG_DFL and signo in DEFAULT_IGNORED):
            continue
        return signo
    return None


def _timeout_ms(st: ProcessState, deadline_ns: int | None) -> int:
    """Milliseconds until the earlier of ``deadline_ns`` and the next wall-clock timer expiry (-1: none)."""
    candidates = [d for d in (deadline_ns, st.timers.next_wall_deadline()) if d is not None]
    if not candidates:
        return -1
    left = min(candidates) - monotonic_ns()
    if left <= 0:
        return 0
    return min(-(-left // 1_000_000), _MAX_POLL_MS)


def wait(
    st: ProcessState,
    *,
    fds: Iterable[tuple[int, int]] = (),
    deadline_ns: int | None = None,
    restart: Restart = Restart.SYS,
    until: Callable[[], bool] | None = None,
) -> list[tuple[int, int]]:
    """Wait as the module docstring says; ``deadline_ns`` is on ``CLOCK_MONOTONIC`` (None: no limit)."""
    poller = select.poll()
    registered = False
    for host_fd, mask in fds:
        poller.register(host_fd, mask)
        registered = True
    waker = st.waker
    poller.register(waker.read_fd, POLLIN)
    while True:
        st.timers.fire_due(st.signals)
        st.refresh_waitables()
        satisfied = until is not None and until()
        interrupted = interrupting_signal(st) is not None
        if satisfied or interrupted:
            timeout = 0
        else:
            timeout = _timeout_ms(st, deadline_ns)
        events: list[tuple[int, int]] = []
        if registered or timeout != 0:
            try:
                events = poller.poll(timeout)
            except InterruptedError:  # a host signal whose handler returned: look again
                pass
        ready = [(fd, ev) for fd, ev in events if fd != waker.read_fd]
        if len(ready) < len(events):
            waker.drain()
        if ready:
            return ready
        if satisfied:
            return []
        if deadline_ns is not None and monotonic_ns() >= deadline_ns:
            return []  # a timeout that ran out wins over a pending signal (Linux's do_poll)
        if interrupted:
            raise Interrupted(restart)


def sleep_until(st: ProcessState, deadline_ns: int | None, restart: Restart) -> None:
    """Block until ``deadline_ns`` (``CLOCK_MONOTONIC``; None: forever), or :class:`Interrupted`."""
    wait(st, deadline_ns=deadline_ns, restart=restart)


def blocking(host_fd: int) -> bool:
    """Whether ``host_fd`` is in blocking mode (no ``O_NONBLOCK``)."""
    try:
        return not fcntl.fcntl(host_fd, fcntl.F_GETFL) & os.O_NONBLOCK
    except OSError:
        return False


def wait_ready(st: ProcessState, host_fd: int, events: int) -> None:
    """Before a blocking ``read``/``write`` on a pipe, tty, socket or event object: wait until it would
    not block (``SA_RESTART`` restarts it). A ready or non-blocking descriptor returns at once (no
    signal check: Linux interrupts only a call that sleeps)."""
    poller = select.poll()
    poller.register(host_fd, events)
    if poller.poll(0) or not blocking(host_fd):
        return
    wait(st, fds=[(host_fd, events)], restart=Restart.SYS)


def swap_mask(st: ProcessState, mask: int) -> None:
    """Block ``mask`` for the duration of a call; the old mask is kept to be restored (module docstring)."""
    signals = st.signals
    signals.saved_mask = signals.blocked
    signals.set_blocked(mask)


def restore_mask(st: ProcessState) -> None:
    """Put back the mask :func:`swap_mask` saved (a call that returns without being interrupted)."""
    signals = st.signals
    if signals.saved_mask is not None:
        signals.set_blocked(signals.saved_mask)
        signals.saved_mask = None


def deadline_after(timeout_ns: int | None) -> int | None:
    """The ``CLOCK_MONOTONIC`` deadline ``timeout_ns`` from now (None stays None)."""
    return None if timeout_ns is None else monotonic_ns() + timeout_ns
