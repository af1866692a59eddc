"""``ioctl`` on KVM file descriptors (the device, a VM, a vCPU), failures as :class:`KvmIoctlError`."""

from __future__ import annotations

import ctypes
import fcntl
import os
from typing import Any

from vm_accel.kvm.errors import KvmIoctlError

_libc = ctypes.CDLL(None, use_errno=True)
_libc_ioctl = _libc.ioctl
_libc_ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong)
_libc_ioctl.restype = ctypes.c_int


def kvm_ioctl(fd: int, request: int, argument: Any = 0, *, name: str) -> int:
    """``ioctl(fd, request, argument)``; a ctypes structure argument is read and written in place.

    An integer argument is passed as an unsigned long (``fcntl.ioctl`` only
    takes a C ``int``, too small for addresses such as the TSS address).
    """
    try:
        if isinstance(argument, int):
            if 0 <= argument <= 0x7FFF_FFFF:
                return int(fcntl.ioctl(fd, request, argument))
            result = int(_libc_ioctl(fd, request, argument & 0xFFFF_FFFF_FFFF_FFFF))
            if result < 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code))
            return result
        return int(fcntl.ioctl(fd, request, argument, True))
    except OSError as exc:
        raise KvmIoctlError(name, exc) from exc
