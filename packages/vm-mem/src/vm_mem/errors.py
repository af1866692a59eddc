"""Errors raised by the guest address space for bad *requests* (not guest faults).

A guest touching memory it may not touch is a :class:`vm_core.errors.MemoryFault`;
the classes here are what the Linux layer turns into errno values when a
memory-management call cannot be honoured:

* :class:`OutOfAddressSpace` -> ``ENOMEM`` from ``mmap`` (no free range);
* :class:`NotMapped` -> ``ENOMEM`` from ``mprotect`` (part of the range is unmapped);
* :class:`InvalidArgument` -> ``EINVAL`` (unaligned address, empty or overflowing
  range, unknown protection bits, unsupported access size);
* :class:`OutOfMemory` -> ``ENOMEM`` from ``mmap`` / ``mprotect`` / ``mremap``
  (and an unmoved break from ``brk``): the request would commit more memory
  than the address space's ``max_memory`` allows.

:class:`GuestMemoryExhausted` is different: it is raised by a *touch* (the
first access to a page, which is when a page costs host memory) that would
pass ``max_memory``, or that the host could not back (``MemoryError``). No
errno can report that; the Linux layer ends the guest as the kernel's OOM
killer would (``SIGKILL``).
"""

from __future__ import annotations

from vm_core.errors import VmError


class OutOfAddressSpace(VmError):
    """No free page-aligned range of the requested length exists."""

    def __init__(self, length: int) -> None:
        super().__init__(
            f"no free guest address range of {length:#x} bytes",
            hint="unmap memory or lower the mmap base",
        )
        self.length = length


class NotMapped(VmError):
    """A range that must be fully mapped contains an unmapped page."""

    def __init__(self, address: int, length: int, first_unmapped: int) -> None:
        super().__init__(
            f"guest range {address:#x}+{length:#x} is not fully mapped (page {first_unmapped:#x} is not)"
        )
        self.address = address
        self.length = length
        self.first_unmapped = first_unmapped


class InvalidArgument(VmError):
    """An address-space call got an argument it cannot accept (Linux answers EINVAL)."""


class OutOfMemory(VmError):
    """Committing ``requested`` more bytes would pass the commit limit (Linux answers ENOMEM)."""

    def __init__(self, requested: int, committed: int, limit: int) -> None:
        super().__init__(
            f"committing {requested:#x} more bytes of guest memory would pass the limit of {limit:#x} "
            f"({committed:#x} committed)",
            hint="raise --max-memory",
        )
        self.requested = requested
        self.committed = committed
        self.limit = limit


class GuestMemoryExhausted(VmError):
    """A first touch of a page needs host memory the guest may not have (see the module docstring)."""

    def __init__(self, address: int, touched: int, limit: int | None) -> None:
        if limit is None:
            reason = "the host is out of memory"
        else:
            reason = f"the guest may touch at most {limit} bytes (--max-memory) and has touched {touched}"
        super().__init__(f"out of memory touching guest address {address:#x}: {reason}")
        self.address = address
        self.touched = touched
        self.limit = limit
