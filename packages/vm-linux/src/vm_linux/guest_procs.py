"""Which host processes are guest processes, and how host signals reach the guest.

Every guest process is a host fork of the first vm process (guest pid = host
pid, as under qemu-user). :class:`GuestProcessTable` is a small table shared
by all of them: an anonymous ``memfd`` mapped ``MAP_SHARED`` before the first
fork, one slot per live guest process holding its pid and its start time
(``/proc/PID/stat`` field 22), guarded by a POSIX record lock on the memfd.
``kill``, ``tgkill``, ``setpgid``, ``getpgid`` and ``getsid`` ask it whether a
pid is a guest one; anything else does not exist for the guest (``ESRCH``),
so a guest never probes nor signals a host process that is not its own. The
start time guards against pid reuse: a slot whose process is gone (killed by
a host signal before it could leave the table) no longer matches.

:class:`HostSignals` mirrors the guest's dispositions onto the vm process, so
that a signal another guest process sends with the host ``kill`` acts as it
would on Linux: a guest handler becomes a host handler that makes the signal
pending in the guest; ``SIG_IGN`` is the host's ``SIG_IGN``; ``SIG_DFL`` is
the host's default (a terminating signal kills the vm process with that
signal, a stop signal stops it), except for the signals vm itself handles
(``SIGINT``, ``SIGTERM``, ``SIGHUP`` under ``vm run``: their handler is put
back). Synchronous fault signals, ``SIGKILL``, ``SIGSTOP`` and ``SIGPIPE``
(which vm raises itself on ``EPIPE``) are never mirrored. ``SIGCHLD`` is the
kernel's: the guest ``SIG_IGN`` is the host ``SIG_IGN`` (children are reaped
by the kernel, ``wait`` gets ``ECHILD``); otherwise a host handler makes a
guest ``SIGCHLD`` pending with the ``siginfo`` of a child that changed state
(``CLD_EXITED``/``KILLED``/``DUMPED``/``STOPPED``/``CONTINUED``), unless
``SA_NOCLDSTOP`` says not to for stops and continues.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import signal as host_signal
import struct
from collections.abc import Callable
from typing import Any

from vm_core.logging import get_logger

from vm_linux.signals import (
    SA_RESTART,
    SIG_DFL,
    SIG_IGN,
    SIGBUS,
    SIGCHLD,
    SIGFPE,
    SIGILL,
    SIGINFO_SIZE,
    SIGKILL,
    SIGPIPE,
    SIGSEGV,
    SIGSTOP,
    SIGTRAP,
    SigAction,
    SignalState,
    make_siginfo,
)

log = get_logger("vm_linux.guest_procs")

SLOTS = 4096
#: pid, the last guest process that signalled it, start time (clock ticks since boot)
SLOT = struct.Struct("<iiQ")
SA_NOCLDSTOP = 1
SA_NOCLDWAIT = 2
SI_USER = 0
CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_TRAPPED, CLD_STOPPED, CLD_CONTINUED = 1, 2, 3, 4, 5, 6
SIGSYS = 31
NEVER_MIRRORED = frozenset({SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS, SIGPIPE})


def start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/PID/stat`` (when the process started), None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text[text.rfind(b")") + 2 :].split()
    return int(fields[19])


class GuestProcessTable:
    """The pids of the live guest processes, shared by all of them (see the module docstring)."""

    def __init__(self) -> None:
        self.fd = os.memfd_create("vm-guest-processes", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, SLOTS * SLOT.size)
        self.map = mmap.mmap(self.fd, SLOTS * SLOT.size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)

    def _locked(self, action: Callable[[], Any]) -> Any:
        fcntl.lockf(self.fd, fcntl.LOCK_EX)
        try:
            return action()
        finally:
            fcntl.lockf(self.fd, fcntl.LOCK_UN)

    def _slots(self) -> list[tuple[int, int, int]]:
        return [(i, *SLOT.unpack_from(self.map, i * SLOT.size)[::2]) for i in range(SLOTS)]

    def add(self, pid: int) -> None:
        """Enter ``pid`` (a live guest process); slots of processes that are gone are reused."""
        started = start_time(pid)
        if started is None:
            return

        def enter() -> None:
            free: int | None = None
            for index, slot_pid, slot_start in self._slots():
                if slot_pid == pid and slot_start == started:
                    return
                if free is None and (slot_pid == 0 or start_time(slot_pid) != slot_start):
                    free = index
            if free is None:
                log.warning("guest_process_table_full", pid=pid)
                return
            SLOT.pack_into(self.map, free * SLOT.size, pid, 0, started)

        self._locked(enter)

    def remove(self, pid: int) -> None:
        def leave() -> None:
            for index, slot_pid, _start in self._slots():
                if slot_pid == pid:
                    SLOT.pack_into(self.map, index * SLOT.size, 0, 0, 0)

        self._locked(leave)

    def note_sender(self, target: int, sender: int) -> None:
        """``sender`` is about to signal ``target``: the receiver's ``si_pid``."""
        for index, slot_pid, _start in self._slots():
            if slot_pid == target:
                struct.pack_into("<i", self.map, index * SLOT.size + 4, sender)

    def sender_of(self, pid: int) -> int:
        """The guest process that last signalled ``pid`` (0: none, or a process that is not a guest); read once."""
        for index, slot_pid, _start in self._slots():
            if slot_pid == pid:
                sender = int(struct.unpack_from("<i", self.map, index * SLOT.size + 4)[0])
                struct.pack_into("<i", self.map, index * SLOT.size + 4, 0)
                return sender
        return 0

    def pids(self) -> list[int]:
        """The live guest processes (each checked against its start time)."""
        entries = self._locked(self._slots)
        return [pid for _index, pid, started in entries if pid and start_time(pid) == started]

    def __contains__(self, pid: object) -> bool:
        return isinstance(pid, int) and pid > 0 and pid in self.pids()


class GuestProcesses:
    """This process's view: the shared table (made at the first fork) and whether this is a forked child."""

    def __init__(self) -> None:
        self.table: GuestProcessTable | None = None
        self.first_pid = os.getpid()

    def before_fork(self) -> None:
        if self.table is None:
            self.table = GuestProcessTable()
            self.table.add(os.getpid())

    def after_fork_in_child(self) -> None:
        assert self.table is not None
        self.table.add(os.getpid())

    def forked_child(self, pid: int) -> None:
        """In the parent, right after a guest fork: ``pid`` is a guest process."""
        assert self.table is not None
        self.table.add(pid)

    def reaped(self, pid: int) -> None:
        """A child was reaped: its slot goes (it may have died by a host signal before leaving the table)."""
        if self.table is not None:
            self.table.remove(pid)

    def is_guest(self, pid: int) -> bool:
        """Whether host ``pid`` is a guest process (this one, or one in the shared table)."""
        if pid == os.getpid():
            return True
        return self.table is not None and pid in self.table

    def signal(self, pid: int, signo: int) -> None:
        """Send host signal ``signo`` to guest process ``pid``, telling it who sent it (its ``si_pid``)."""
        if self.table is not None and signo:
            self.table.note_sender(pid, os.getpid())
        os.kill(pid, signo)

    def sender(self) -> int:
        return self.table.sender_of(os.getpid()) if self.table is not None else 0

    def all_pids(self) -> list[int]:
        return self.table.pids() if self.table is not None else [os.getpid()]

    @property
    def forked(self) -> bool:
        """Whether this vm process is a guest fork (not the one ``vm run`` started)."""
        return os.getpid() != self.first_pid


#: One per vm process (a guest process is one vm process).
PROCESSES = GuestProcesses()


def sigchld_info(result: Any) -> bytes:
    """The ``siginfo_t`` of a ``SIGCHLD`` from an ``os.waitid`` result."""
    head = struct.pack("<iii", SIGCHLD, 0, result.si_code) + bytes(4)
    body = struct.pack("<iIi", result.si_pid, result.si_uid, result.si_status)
    return (head + body).ljust(SIGINFO_SIZE, b"\0")


class GuestInterrupted(Exception):
    """A guest signal with a handler arrived while a system call waited (raised by the host handler)."""

    def __init__(self, restart: bool) -> None:
        super().__init__("interrupted by a guest signal")
        self.restart = restart


class HostSignals:
    """Mirrors a guest's signal dispositions onto the vm process (see the module docstring)."""

    def __init__(self, signals: SignalState, wake: Callable[[], None] | None = None) -> None:
        self.signals = signals
        #: Ends a wait in :mod:`vm_linux.waiting` early (the process's wake-up pipe) once a signal is queued.
        self.wake = wake
        self.saved: dict[int, Any] = {}
        #: Set while a system call blocks interruptibly: a signal with a guest handler then raises GuestInterrupted.
        self.waiting = False

    def _forward(self, signo: int, frame: Any) -> None:
        self.signals.queue(signo, make_siginfo(signo, SI_USER, pid=PROCESSES.sender(), uid=os.getuid()))
        self._interrupt(signo)

    def _interrupt(self, signo: int) -> None:
        if self.wake is not None:
            self.wake()
        if self.waiting and not self.signals.blocked & (1 << (signo - 1)):
            self.waiting = False
            raise GuestInterrupted(bool(self.signals.action(signo).flags & SA_RESTART))

    def _child(self, signo: int, frame: Any) -> None:
        act = self.signals.action(SIGCHLD)
        if act.handler in (SIG_DFL, SIG_IGN):
            return
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        if not act.flags & SA_NOCLDSTOP:
            flags |= os.WSTOPPED | os.WCONTINUED
        try:
            result = os.waitid(os.P_ALL, 0, flags)
        except ChildProcessError:
            return
        if result is None:
            return
        self.signals.queue(SIGCHLD, sigchld_info(result))
        self._interrupt(SIGCHLD)

    def mirror(self, signo: int, act: SigAction) -> None:
        """Make the host disposition of ``signo`` follow the guest's ``act``."""
        if signo in NEVER_MIRRORED or not 1 <= signo < host_signal.NSIG:
            return
        if signo not in self.saved:
            self.saved[signo] = host_signal.getsignal(signo)
        if signo == SIGCHLD:
            handler: Any = host_signal.SIG_IGN if act.handler == SIG_IGN else self._child
        elif act.handler == SIG_IGN:
            handler = host_signal.SIG_IGN
        elif act.handler == SIG_DFL:
            handler = self.saved[signo]
            if handler is None:
                handler = host_signal.SIG_DFL
        else:
            handler = self._forward
        try:
            host_signal.signal(signo, handler)
        except (OSError, ValueError) as err:  # not the main thread, or a signal the host refuses
            log.debug("signal_not_mirrored", signal=signo, reason=str(err))

    def after_fork_in_child(self) -> None:
        """A forked guest is not ``vm run``'s first process: SIGINT, SIGTERM and SIGHUP at the guest's default
        act as the kernel's default there (the child dies by the signal, as under qemu-user), not as vm's
        "interrupted" handling of its own run."""
        for signo in (host_signal.SIGINT, host_signal.SIGTERM, host_signal.SIGHUP):
            self.saved[signo] = host_signal.SIG_DFL
            self.mirror(signo, self.signals.action(signo))

    def reset_after_exec(self) -> None:
        """After ``execve`` handlers are default again: mirror every signal mirrored so far anew."""
        for signo in list(self.saved):
            self.mirror(signo, self.signals.action(signo))
