"""Dispatching a guest system call: number and arguments from the registers, result back.

Errors become negative errno values, as the kernel returns them: a handler's
:class:`~vm_linux.guest_errno.GuestErrno`, a host :class:`OSError` (same
errno), a bad guest pointer (:class:`~vm_core.errors.MemoryFault` ->
``EFAULT``), memory that cannot be committed (vm-mem's ``OutOfMemory``, or a
host ``MemoryError``: ``ENOMEM``) and out-of-range integers (``EINVAL``); a blocking call a signal
interrupted (:class:`~vm_linux.waiting.Interrupted`) returns ``-EINTR`` and leaves in
``state.interrupted`` how the process restarts it instead. A number without a
handler returns ``-ENOSYS`` and is logged once per number, like qemu's
"Unsupported syscall".

The handlers come from the ABI's table (numbers -> names -> the shared
handlers of :data:`~vm_linux.syscalls.registry.HANDLERS`), with the
``overrides`` a plugin registered (``vm_register_syscalls``) put over them:
a name replaces the handler of every number the table gives that name, a
number replaces (or adds) that number.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from typing import Any

from vm_core.errors import MemoryFault
from vm_mem import OutOfMemory

from vm_linux.abi import LinuxAbi
from vm_linux.guest_errno import GuestErrno
from vm_linux.state import ProcessState
from vm_linux.syscalls.registry import HANDLERS, MASK64, Handler
from vm_linux.waiting import Interrupted


class SyscallDispatcher:
    """Runs the handler for the system call a stopped guest CPU asked for."""

    def __init__(self, abi: LinuxAbi, overrides: Mapping[str | int, Handler] | None = None) -> None:
        self.abi = abi
        self.handlers: dict[int, tuple[str, Handler]] = {
            number: (name, HANDLERS[name]) for number, name in abi.syscall_names.items() if name in HANDLERS
        }
        for key, handler in (overrides or {}).items():
            if isinstance(key, int):
                self.handlers[key] = (abi.syscall_names.get(key, f"syscall_{key}"), handler)
                continue
            for number, name in abi.syscall_names.items():
                if name == key:
                    self.handlers[number] = (name, handler)

    def call(self, state: ProcessState, cpu: Any, number: int, args: list[int]) -> int | None:
        """Run system call ``number`` and return its raw result (None: registers already set)."""
        entry = self.handlers.get(number)
        if entry is None:
            if number not in state.warned_syscalls:
                state.warned_syscalls.add(number)
                # info, not warning: like qemu-user (which logs these only with -d unimp) the
                # guest's stderr stays its own; `vm -v run` shows them.
                state.log.info(
                    "unsupported_syscall", number=number, name=self.abi.syscall_names.get(number, "unknown")
                )
            return -errno.ENOSYS
        name, handler = entry
        try:
            result = handler(state, cpu, args)
        except GuestErrno as exc:
            result = -exc.code
        except Interrupted as stop:  # EINTR unless the signal's delivery restarts it (vm_linux.waiting)
            state.interrupted = (stop.restart, number, args[0])
            result = -errno.EINTR
        except MemoryFault:
            result = -errno.EFAULT
        except (OutOfMemory, MemoryError):  # guest memory the limit or the host cannot give: ENOMEM, never a traceback
            result = -errno.ENOMEM
        except OSError as exc:
            result = -(exc.errno or errno.EIO)
        except (OverflowError, ValueError):
            result = -errno.EINVAL
        if state.signals.saved_mask is not None and state.interrupted is None:
            # a call that swapped the mask (ppoll, pselect6, epoll_pwait) and was not interrupted: back now,
            # before any signal is delivered (a signal only the temporary mask let through stays pending)
            state.signals.set_blocked(state.signals.saved_mask)
            state.signals.saved_mask = None
        state.log.debug("syscall", name=name, args=[hex(a) for a in args], result=result)
        return result

    def dispatch(self, state: ProcessState, cpu: Any) -> None:
        """Handle the system call ``cpu`` stopped at and write the result register."""
        regs = cpu.regs
        number = regs[self.abi.nr_register]
        args = [regs[r] for r in self.abi.arg_registers]
        result = self.call(state, cpu, number, args)
        if result is not None:
            regs[self.abi.result_register] = result & MASK64
