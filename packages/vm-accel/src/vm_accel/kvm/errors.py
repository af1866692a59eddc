"""Errors of the KVM backend, all :class:`vm_core.errors.VmError` subclasses.

:class:`KvmIoctlError` is a KVM ioctl the kernel refused (with the errno);
:class:`KvmExitError` a vCPU exit the backend cannot continue from (failed
VM entry, KVM internal error, an exit reason nobody handles), carrying the
register state at the exit so the message says where the guest was.
"""

from __future__ import annotations

import errno as _errno
import os

from vm_core.errors import VmError


class KvmIoctlError(VmError):
    """A KVM ioctl failed; ``request`` names it, ``errno`` says why."""

    def __init__(self, request: str, error: OSError, *, hint: str | None = None) -> None:
        code = error.errno if error.errno is not None else 0
        name = _errno.errorcode.get(code, str(code))
        super().__init__(f"KVM ioctl {request} failed: {name} ({os.strerror(code)})", hint=hint)
        self.request = request
        self.errno = code


class KvmExitError(VmError):
    """The vCPU stopped in a way the run loop cannot continue from.

    ``exit_reason`` is the kvm_run exit reason name; ``state`` a multi-line
    description of the registers at the exit (also in ``str(err)``).
    """

    def __init__(self, exit_reason: str, detail: str, state: str) -> None:
        super().__init__(f"KVM exit {exit_reason}: {detail}\n{state}")
        self.exit_reason = exit_reason
        self.detail = detail
        self.state = state
