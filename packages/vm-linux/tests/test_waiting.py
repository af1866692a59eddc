"""Blocking calls and guest timers (vm_linux.waiting, vm_linux.timers): interruption, restart, deadlines.

The whole-program behaviour is checked against qemu-riscv64 by the guest programs timers_signals and
waiting_fds (vm-cli's guest suite); these tests pin the pieces: the errno and time left of an
interrupted sleep, Linux's restart rules (signal(7)) on the registers, the mask a waiting call swaps
in, timer arithmetic, and the wake-up pipe.
"""

from __future__ import annotations

import errno
import os
import select
import struct
import threading
import time

import pytest
from vm_core.logging import get_logger
from vm_linux.process import LinuxProcess
from vm_linux.signals import SA_RESTART, SIGALRM, SIGUSR1, SigAction, make_siginfo, sigbit
from vm_linux.timers import SI_TIMER, GuestTimer, GuestTimers
from vm_linux.waiting import POLLIN, Interrupted, Restart, monotonic_ns, wait

HANDLER = 0x10001000
NSEC = 1_000_000_000


def _handle(h, signo: int, flags: int = 0) -> None:
    h.state.signals.actions[signo] = SigAction(handler=HANDLER, flags=flags)


def _arm_real(h, microseconds: int) -> None:
    value = h.alloc(struct.pack("<qqqq", 0, 0, 0, microseconds))
    assert h.call("setitimer", 0, value, 0) == 0


def _process(h) -> LinuxProcess:
    """The process's signal delivery over the harness's state (no program loaded)."""
    process = object.__new__(LinuxProcess)
    process.abi, process.state, process.mem = h.abi, h.state, h.mem
    process.log = get_logger("test")
    h.state.sigreturn_trampoline = 0x10002000
    return process


def test_nanosleep_interrupted_by_itimer_reports_time_left(sys_harness) -> None:
    h = sys_harness
    _handle(h, SIGALRM)
    _arm_real(h, 20_000)
    request, left = h.alloc(struct.pack("<qq", 5, 0)), h.alloc(16)
    start = time.monotonic()
    assert h.call("nanosleep", request, left) == -errno.EINTR
    assert time.monotonic() - start < 2
    sec, nsec = struct.unpack("<qq", h.mem.read(left, 16))
    assert 4 * NSEC < sec * NSEC + nsec < 5 * NSEC
    assert SIGALRM in h.state.signals.pending
    assert h.state.interrupted == (Restart.BLOCK, h.abi.syscall_number("nanosleep"), request)


def test_sleep_without_a_handler_goes_on_for_the_time_left(sys_harness) -> None:
    """A stop signal (no handler) interrupts nanosleep: it is restarted as restart_syscall, which sleeps
    only what was left (Linux's restart block), not the whole request again."""
    h = sys_harness
    _handle(h, SIGALRM)
    _arm_real(h, 200_000)
    request = h.alloc(struct.pack("<qq", 0, 300_000_000))
    start = time.monotonic()
    h.cpu.pc = 0x3004
    assert h.call("nanosleep", request, 0) == -errno.EINTR
    h.state.signals.pending.clear()  # as if the signal had stopped and continued the process
    _process(h).restart_syscall(h.cpu)
    assert h.cpu.pc == 0x3000
    assert h.cpu.regs[h.abi.nr_register] == h.abi.syscall_number("restart_syscall")
    h.dispatcher.dispatch(h.state, h.cpu)
    assert h.cpu.regs[h.abi.result_register] == 0
    assert 0.3 <= time.monotonic() - start < 0.45  # 0.3 s in all, not 0.2 + 0.3
    assert h.call("restart_syscall") == -errno.EINTR  # nothing left to restart


def test_sleep_ends_at_its_deadline_without_signals(sys_harness) -> None:
    h = sys_harness
    start = time.monotonic()
    assert h.call("nanosleep", h.alloc(struct.pack("<qq", 0, 30_000_000)), 0) == 0
    assert 0.03 <= time.monotonic() - start < 1
    assert h.call("nanosleep", h.alloc(struct.pack("<qq", 0, NSEC)), 0) == -errno.EINVAL


def test_ignored_or_blocked_signals_do_not_interrupt(sys_harness) -> None:
    h = sys_harness
    h.state.signals.queue(SIGUSR1, make_siginfo(SIGUSR1, 0))  # default action: would end the process
    h.state.signals.set_blocked(sigbit(SIGUSR1))
    h.state.signals.queue(28, make_siginfo(28, 0))  # SIGWINCH: ignored by default
    assert h.call("nanosleep", h.alloc(struct.pack("<qq", 0, 10_000_000)), 0) == 0


@pytest.mark.parametrize(("flags", "restarted"), [(0, False), (SA_RESTART, True)])
def test_pipe_read_restart_follows_sa_restart(sys_harness, flags: int, restarted: bool) -> None:
    h = sys_harness
    pair = h.alloc(8)
    assert h.call("pipe2", pair, 0) == 0
    read_end, _write_end = struct.unpack("<ii", h.mem.read(pair, 8))
    _handle(h, SIGALRM, flags)
    _arm_real(h, 10_000)
    buf = h.alloc(4)
    h.cpu.pc = 0x1004  # as the engines leave it: after the ecall
    assert h.call("read", read_end, buf, 1) == -errno.EINTR
    _process(h).deliver_pending(h.cpu)
    assert h.cpu.pc == HANDLER and h.cpu.regs[h.abi.arg_registers[0]] == SIGALRM
    h.abi.signal_frames.pop_frame(h.cpu)  # rt_sigreturn: back to where the frame says
    a0 = h.cpu.regs[h.abi.result_register]
    if restarted:  # on the ecall itself, with a0 = the fd again
        assert h.cpu.pc == 0x1000 and a0 == read_end
    else:
        assert h.cpu.pc == 0x1004 and a0 == (-errno.EINTR) & (2**64 - 1)


def test_sigsuspend_frame_keeps_the_old_mask(sys_harness) -> None:
    h = sys_harness
    _handle(h, SIGUSR1)
    h.state.signals.set_blocked(sigbit(SIGUSR1))
    h.state.signals.queue(SIGUSR1, make_siginfo(SIGUSR1, 0))
    h.cpu.pc = 0x2004
    assert h.call("rt_sigsuspend", h.alloc(struct.pack("<Q", 0)), 8) == -errno.EINTR
    assert h.state.signals.blocked == 0  # the temporary mask, until delivery
    _process(h).deliver_pending(h.cpu)
    assert h.cpu.pc == HANDLER
    mask, _altstack = h.abi.signal_frames.pop_frame(h.cpu)
    assert mask == sigbit(SIGUSR1) and h.cpu.pc == 0x2004  # EINTR: not restarted


def test_ppoll_returning_normally_restores_its_mask(sys_harness) -> None:
    h = sys_harness
    h.state.signals.set_blocked(sigbit(SIGUSR1))
    h.state.signals.queue(SIGUSR1, make_siginfo(SIGUSR1, 0))
    _handle(h, SIGUSR1)
    timeout = h.alloc(struct.pack("<qq", 0, 0))
    # fd -1 is skipped; the zero timeout wins over the signal the mask lets in (Linux's do_poll)
    fds = h.alloc(struct.pack("<ihh", -1, POLLIN, 0))
    assert h.call("ppoll", fds, 1, timeout, h.alloc(struct.pack("<Q", 0)), 8) == 0
    assert h.state.signals.blocked == sigbit(SIGUSR1) and h.state.signals.saved_mask is None


def test_rt_sigtimedwait_takes_a_pending_signal_or_times_out(sys_harness) -> None:
    h = sys_harness
    wanted = h.alloc(struct.pack("<Q", sigbit(SIGUSR1)))
    info = h.alloc(128)
    timeout = h.alloc(struct.pack("<qq", 0, 5_000_000))
    h.state.signals.set_blocked(sigbit(SIGUSR1))
    assert h.call("rt_sigtimedwait", wanted, info, timeout, 8) == -errno.EAGAIN
    h.state.signals.queue(SIGUSR1, make_siginfo(SIGUSR1, 0, pid=7))
    assert h.call("rt_sigtimedwait", wanted, info, timeout, 8) == SIGUSR1
    assert struct.unpack_from("<iiiiiI", h.mem.read(info, 24)) == (SIGUSR1, 0, 0, 0, 7, 0)
    assert SIGUSR1 not in h.state.signals.pending


def test_periodic_timer_counts_missed_periods() -> None:
    timer = GuestTimer(clock=1, signo=SIGALRM)
    timer.arm(1000, 100, absolute=True)
    assert timer.expire(999) == 0
    assert timer.expire(1000) == 1 and timer.expires_ns == 1100
    assert timer.expire(1350) == 3 and timer.expires_ns == 1400
    one_shot = GuestTimer(clock=1, signo=SIGALRM)
    one_shot.arm(10, 0, absolute=True)
    assert one_shot.expire(20) == 1 and one_shot.expires_ns == 0 and one_shot.expire(30) == 0


def test_posix_timer_signal_carries_id_value_and_overrun(sys_harness) -> None:
    h = sys_harness
    timers: GuestTimers = h.state.timers
    timer = timers.create(1, SIGUSR1, 0, 0xABC)
    timer.arm(monotonic_ns() - 1, 0, absolute=True)
    timers.fire_due(h.state.signals)
    info = h.state.signals.pending[SIGUSR1]
    assert struct.unpack_from("<iiiiiiQ", info) == (SIGUSR1, 0, SI_TIMER, 0, timer.timer_id, 0, 0xABC)
    timer.arm(monotonic_ns() - 1, 0, absolute=True)
    timers.fire_due(h.state.signals)  # still pending: an overrun, not a second signal
    assert timer.overrun == 1


def test_waker_ends_a_wait_and_readiness_is_returned(sys_harness) -> None:
    h = sys_harness
    flag = threading.Event()
    threading.Timer(0.05, lambda: (flag.set(), h.state.waker.wake())).start()
    start = time.monotonic()
    assert wait(h.state, until=flag.is_set) == []
    assert time.monotonic() - start < 5
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"x")
        assert wait(h.state, fds=[(read_end, POLLIN)]) == [(read_end, POLLIN)]
        os.read(read_end, 1)
        start = time.monotonic()
        assert wait(h.state, fds=[(read_end, POLLIN)], deadline_ns=monotonic_ns() + 20_000_000) == []
        assert time.monotonic() - start >= 0.02
        h.state.signals.queue(SIGUSR1, make_siginfo(SIGUSR1, 0))
        with pytest.raises(Interrupted):
            wait(h.state, fds=[(read_end, POLLIN)], restart=Restart.NOHAND)
    finally:
        os.close(read_end)
        os.close(write_end)
        h.state.close_waker()


def readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def test_signalfd_readiness_follows_pending_signals(sys_harness) -> None:

    h = sys_harness
    mask = h.alloc(struct.pack("<Q", sigbit(SIGUSR1)))
    fd = h.call("signalfd4", 2**64 - 1, mask, 8, 0o4000)
    assert fd >= 0
    host = h.state.fds.host(fd)
    h.state.refresh_waitables()
    assert not readable(host)
    h.state.signals.queue(SIGUSR1, make_siginfo(SIGUSR1, 0, pid=3))
    h.state.refresh_waitables()
    assert readable(host)
    buf = h.alloc(256)
    assert h.call("read", fd, buf, 256) == 128
    assert struct.unpack_from("<IiiI", h.mem.read(buf, 16)) == (SIGUSR1, 0, 0, 3)
    assert not readable(host)
    assert h.call("read", fd, buf, 256) == -errno.EAGAIN
