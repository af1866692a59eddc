"""vm-mem: the guest user address space (sparse regions, lazy pages, protections, faults, brk, code watching).

See :mod:`vm_mem.space` for the layout contract engines rely on
(:mod:`vm_mem.page_store` holds the page dicts it describes, :mod:`vm_mem.layout`
the page geometry and protection bits),
:mod:`vm_mem.backing` for spaces whose pages live in an accelerator's memory and
:mod:`vm_mem.fastpath` for the fast-path helpers compiled code uses.
"""

from vm_mem.backing import PageBacking
from vm_mem.errors import GuestMemoryExhausted, InvalidArgument, NotMapped, OutOfAddressSpace, OutOfMemory
from vm_mem.layout import (
    ADDRESS_LIMIT,
    DEFAULT_MMAP_BASE,
    DEFAULT_MMAP_MIN_ADDR,
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    page_round_down,
    page_round_up,
)
from vm_mem.regions import Commit, Region
from vm_mem.size import parse_memory_size
from vm_mem.space import ACCESS_SIZES, AddressSpace

__all__ = [
    "ACCESS_SIZES",
    "ADDRESS_LIMIT",
    "DEFAULT_MMAP_BASE",
    "DEFAULT_MMAP_MIN_ADDR",
    "PAGE_MASK",
    "PAGE_SHIFT",
    "PAGE_SIZE",
    "PROT_EXEC",
    "PROT_NONE",
    "PROT_READ",
    "PROT_WRITE",
    "AddressSpace",
    "Commit",
    "GuestMemoryExhausted",
    "InvalidArgument",
    "NotMapped",
    "OutOfAddressSpace",
    "OutOfMemory",
    "PageBacking",
    "Region",
    "page_round_down",
    "page_round_up",
    "parse_memory_size",
]
