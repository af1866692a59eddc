"""Errors raised by the guest address space for bad *requests* (not guest faults).

A guest touching memory it may not touch is a :class:`vm_core.errors.MemoryFault`;
the classes here are what the Linux layer turns into errno values when a
memory-management call cannot be honoured:

* :class:`OutOfAddressSpace` -> ``ENOMEM`` from ``mmap`` (no free range);
* :class:`NotMapped` -> ``ENOMEM`` from ``mprotect`` (part of the range is unmapped);
* :class:`InvalidArgument` -> ``EINVAL`` (unaligned address, empty or overflowing
  range, unknown protection bits, unsupported access size).
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
