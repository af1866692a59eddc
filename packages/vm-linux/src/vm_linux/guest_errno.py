"""The error a system-call handler raises to make the call return ``-errno`` to the guest."""

from __future__ import annotations

import errno
import os

from vm_core.errors import VmError


class GuestErrno(VmError):
    """Return ``-code`` from the current system call (never leaves the dispatcher)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"guest system call failed: {errno.errorcode.get(code, code)} ({os.strerror(code)})")
        self.code = code
