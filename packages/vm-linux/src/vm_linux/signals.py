"""Guest signal state: dispositions, the blocked mask, pending signals and the alternate stack.

Signal numbers and ``sa_flags`` bits are the generic Linux ones (riscv64,
arm64, x86-64 agree). Default actions: the signals in :data:`DEFAULT_IGNORED`
are discarded; the stop signals (:data:`DEFAULT_STOP`: ``SIGSTOP``,
``SIGTSTP``, ``SIGTTIN``, ``SIGTTOU``) stop the VM process itself with
``SIGSTOP``, as qemu-user does, so the shell sees it stopped and ``SIGCONT``
resumes it; every other signal terminates the process with that signal. Standard signals do not
queue: a second one pending while the first is blocked merges with it.

:func:`make_siginfo` builds the 128-byte ``siginfo_t`` the kernel hands to
``SA_SIGINFO`` handlers (``si_addr`` for faults, ``si_pid``/``si_uid`` for
``kill``/``tgkill``).
"""

from __future__ import annotations

import signal as _signal
import struct

import attrs

SIG_DFL = 0
SIG_IGN = 1
NSIG = 64
SIGSET_SIZE = 8

SA_SIGINFO = 0x4
SA_RESTORER = 0x04000000
SA_ONSTACK = 0x08000000
SA_RESTART = 0x10000000
SA_NODEFER = 0x40000000
SA_RESETHAND = 0x80000000

SS_ONSTACK = 1
SS_DISABLE = 2
SS_AUTODISARM = 1 << 31

SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE = 1, 2, 3, 4, 5, 6, 7, 8
SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM = 9, 10, 11, 12, 13, 14, 15
SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGWINCH = 17, 18, 19, 20, 21, 22, 23, 28

DEFAULT_IGNORED = frozenset({SIGCHLD, SIGCONT, SIGURG, SIGWINCH})
DEFAULT_STOP = frozenset({SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU})
UNBLOCKABLE = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1))

SI_USER = 0
SI_TKILL = -6
SEGV_MAPERR = 1
SEGV_ACCERR = 2
ILL_ILLOPC = 1
TRAP_BRKPT = 1

SIGINFO_SIZE = 128


def sigbit(signo: int) -> int:
    """The bit of ``signo`` in a ``sigset_t``."""
    return 1 << (signo - 1)


def signal_name(signo: int) -> str:
    """``SIGSEGV`` etc. (host names; the generic numbers agree)."""
    try:
        return _signal.Signals(signo).name
    except ValueError:
        return f"signal {signo}"


def make_siginfo(signo: int, code: int, *, addr: int | None = None, pid: int = 0, uid: int = 0) -> bytes:
    """A ``siginfo_t``: signo, errno 0, code, then the fault address or the sender's pid/uid."""
    head = struct.pack("<iii", signo, 0, code) + bytes(4)
    if addr is not None:
        body = struct.pack("<Q", addr & (2**64 - 1))
    else:
        body = struct.pack("<iI", pid, uid)
    return (head + body).ljust(SIGINFO_SIZE, b"\0")


@attrs.frozen
class SigAction:
    """A guest ``struct sigaction`` (handler address or SIG_DFL/SIG_IGN, flags, mask, restorer)."""

    handler: int = SIG_DFL
    flags: int = 0
    mask: int = 0
    restorer: int = 0


class SignalState:
    """Dispositions, blocked mask, pending signals and ``sigaltstack`` of one guest process."""

    def __init__(self) -> None:
        self.actions: dict[int, SigAction] = {}
        self.blocked = 0
        self.pending: dict[int, bytes] = {}
        self.altstack: tuple[int, int, int] = (0, SS_DISABLE, 0)  # (ss_sp, ss_flags, ss_size)
        #: the mask to restore after a call that waits with another one (sigsuspend, ppoll; vm_linux.waiting)
        self.saved_mask: int | None = None

    def action(self, signo: int) -> SigAction:
        return self.actions.get(signo, SigAction())

    def set_blocked(self, mask: int) -> None:
        self.blocked = mask & ~UNBLOCKABLE & (2**NSIG - 1)

    def queue(self, signo: int, siginfo: bytes) -> None:
        """Make ``signo`` pending (a standard signal already pending stays as it was)."""
        self.pending.setdefault(signo, siginfo)

    def take_deliverable(self) -> tuple[int, bytes] | None:
        """Remove and return the lowest-numbered pending signal that is not blocked."""
        for signo in sorted(self.pending):
            if not self.blocked & sigbit(signo):
                return signo, self.pending.pop(signo)
        return None

    def deliverable(self) -> bool:
        """Whether a pending signal is not blocked."""
        return any(not self.blocked & sigbit(signo) for signo in self.pending)

    def reset_for_exec(self) -> None:
        """``execve``: handlers go back to the default (ignored signals stay ignored); mask and pending stay."""
        self.actions = {signo: act for signo, act in self.actions.items() if act.handler == SIG_IGN}
        self.altstack = (0, SS_DISABLE, 0)

    def on_altstack(self, sp: int) -> bool:
        ss_sp, ss_flags, ss_size = self.altstack
        return not ss_flags & SS_DISABLE and ss_sp < sp <= ss_sp + ss_size

    def altstack_flags(self, sp: int) -> int:
        """``ss_flags`` as ``sigaltstack`` reports them for the current ``sp``."""
        _ss_sp, ss_flags, ss_size = self.altstack
        if ss_flags & SS_DISABLE or ss_size == 0:
            return SS_DISABLE
        return SS_ONSTACK if self.on_altstack(sp) else 0
