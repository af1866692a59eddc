"""The page geometry, protection bits and address-space constants every part of vm-mem shares.

Guest memory is managed in 4 KiB pages (every ISA vm runs has them);
protections are Linux's ``PROT_*`` bits. :data:`Buffer` is what byte-taking
calls accept, :data:`RegionRecord` a region as snapshots save it.
"""

from __future__ import annotations

PAGE_SIZE = 4096
PAGE_SHIFT = 12
PAGE_MASK = PAGE_SIZE - 1

PROT_NONE = 0
PROT_READ = 1
PROT_WRITE = 2
PROT_EXEC = 4
PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC

#: One past the highest address any guest address space can hold (the Linux layer sets its ISA's lower ceiling).
ADDRESS_LIMIT = 1 << 64
#: Top of the top-down ``mmap`` area: just below vm-linux's stack in a 39-bit user space.
DEFAULT_MMAP_BASE = 0x3F_0000_0000
#: Lowest address ``find_free`` hands out (Linux's default ``vm.mmap_min_addr``).
DEFAULT_MMAP_MIN_ADDR = 0x10000
#: Access sizes of :meth:`AddressSpace.load` and :meth:`AddressSpace.store`.
ACCESS_SIZES = (1, 2, 4, 8, 16)
#: Default byte limit of :meth:`AddressSpace.read_cstring`.
CSTRING_LIMIT = PAGE_SIZE * 32

Buffer = bytes | bytearray | memoryview
#: A region as snapshots save it: ``(first page, end page, prot, commit)``.
RegionRecord = tuple[int, int, int, int]


def page_round_up(value: int) -> int:
    """``value`` rounded up to a multiple of :data:`PAGE_SIZE`."""
    return (value + PAGE_MASK) & ~PAGE_MASK


def page_round_down(value: int) -> int:
    """``value`` rounded down to a multiple of :data:`PAGE_SIZE`."""
    return value & ~PAGE_MASK
