"""Guest-physical page frames for a user-mode guest: allocation, release and shadow-mapping zaps.

:class:`FrameAllocator` hands out 4 KiB frames of one KVM RAM region (the
pages a user process's memory and page tables live in). Fresh frames are
zero because the region is anonymous host memory. Freed frames are given back
to the host with ``madvise(MADV_DONTNEED)``, which does two things at once:
the frame reads as zeros when it is handed out again, and the host kernel's
MMU notifier makes KVM drop every mapping it built of that frame (the
hardware page-walk caches under EPT/NPT, the shadow page tables under shadow
paging), so a page the guest unmapped can no longer be reached through a
stale translation.

:meth:`FrameAllocator.revoke_access` does the same for frames whose
protection shrank, keeping their contents: a host ``mprotect`` round trip on
them fires the same notifier.
"""

from __future__ import annotations

import ctypes
import mmap
import os
from collections.abc import Callable, Iterable

from vm_core.errors import ConfigurationError, VmError

from vm_accel.kvm.memory import GuestMemoryRegion

FRAME_SIZE = 4096

_libc = ctypes.CDLL(None, use_errno=True)
_libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)


class OutOfGuestMemory(VmError):
    """The guest's RAM region has no free frame left."""


def _runs(frames: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted frame addresses coalesced into (start, length) runs."""
    runs: list[list[int]] = []
    for frame in sorted(frames):
        if runs and runs[-1][0] + runs[-1][1] == frame:
            runs[-1][1] += FRAME_SIZE
        else:
            runs.append([frame, FRAME_SIZE])
    return [(start, length) for start, length in runs]


class FrameAllocator:
    """The free frames of ``[first, region.end)`` of ``region`` (guest-physical addresses)."""

    def __init__(self, region: GuestMemoryRegion, first: int) -> None:
        if first % FRAME_SIZE or not region.guest_phys <= first < region.end:
            raise ConfigurationError(f"first frame {first:#x} is not a page inside the RAM region")
        self.region = region
        self._next = first
        self._free: list[int] = []
        self.in_use = 0

    @property
    def frames_left(self) -> int:
        return len(self._free) + (self.region.end - self._next) // FRAME_SIZE

    def allocate(self, count: int = 1) -> list[int]:
        """``count`` zeroed frames (raises :class:`OutOfGuestMemory`, allocating nothing, when short)."""
        if count > self.frames_left:
            raise OutOfGuestMemory(
                f"guest RAM exhausted: {count} frames wanted, {self.frames_left} left",
                hint="give the guest more RAM",
            )
        taken = self._free[len(self._free) - min(count, len(self._free)) :]
        del self._free[len(self._free) - len(taken) :]
        fresh = count - len(taken)
        taken.extend(range(self._next, self._next + fresh * FRAME_SIZE, FRAME_SIZE))
        self._next += fresh * FRAME_SIZE
        self.in_use += count
        return taken

    def release(self, frames: Iterable[int]) -> None:
        """Give ``frames`` back: zero them and drop every KVM mapping of them (see the module docstring)."""
        chosen = list(frames)
        for start, length in _runs(chosen):
            self._call(_libc.madvise, start, length, mmap.MADV_DONTNEED, "madvise")
        self._free.extend(chosen)
        self.in_use -= len(chosen)

    def revoke_access(self, frames: Iterable[int]) -> None:
        """Make KVM forget its mappings of ``frames`` (their contents stay) after a protection cut."""
        both = mmap.PROT_READ | mmap.PROT_WRITE
        for start, length in _runs(frames):
            self._call(_libc.mprotect, start, length, mmap.PROT_READ, "mprotect")
            self._call(_libc.mprotect, start, length, both, "mprotect")

    def _call(self, function: Callable[[int, int, int], int], start: int, length: int, argument: int, name: str) -> None:
        host = self.region.host_address + (start - self.region.guest_phys)
        if function(host, length, argument) != 0:
            code = ctypes.get_errno()
            raise VmError(f"{name} of guest frames {start:#x}+{length:#x} failed: {os.strerror(code)}")
