"""x86-64 4-level page tables built in guest-physical memory.

:class:`PageTableBuilder` allocates table pages from a reserved
guest-physical pool and maps virtual ranges with 4 KiB, 2 MiB or 1 GiB
pages; :func:`identity_map` is the common case (virtual == physical, all
accessible from CPL 3). The root's physical address is what goes in CR3.
"""

from __future__ import annotations

from vm_core.errors import ConfigurationError

from vm_accel.kvm.memory import GuestPhysicalMemory

PAGE_4K = 1 << 12
PAGE_2M = 1 << 21
PAGE_1G = 1 << 30

PTE_PRESENT = 1 << 0
PTE_WRITABLE = 1 << 1
PTE_USER = 1 << 2
PTE_ACCESSED = 1 << 5
PTE_DIRTY = 1 << 6
PTE_LARGE = 1 << 7  # PS: a 2 MiB (PDE) or 1 GiB (PDPTE) page
PTE_NO_EXECUTE = 1 << 63
_ADDRESS_MASK = 0x000F_FFFF_FFFF_F000
_LEVEL_SHIFTS = (39, 30, 21, 12)  # PML4, PDPT, PD, PT
_CANONICAL_LIMIT = 1 << 47


class PageTableBuilder:
    """Page tables whose pages come from ``[pool_base, pool_base + pool_size)`` of guest memory."""

    def __init__(self, memory: GuestPhysicalMemory, pool_base: int, pool_size: int) -> None:
        if pool_base % PAGE_4K or pool_size < PAGE_4K:
            raise ConfigurationError("the page-table pool must be page aligned and at least one page")
        self.memory = memory
        self._next = pool_base
        self._end = pool_base + pool_size
        self.root = self._allocate()

    def _allocate(self) -> int:
        if self._next + PAGE_4K > self._end:
            raise ConfigurationError(
                f"page-table pool exhausted at {self._next:#x}", hint="reserve a larger page-table pool"
            )
        page = self._next
        self._next += PAGE_4K
        self.memory.fill(page, PAGE_4K, 0)
        return page

    @property
    def used_until(self) -> int:
        """First guest-physical address of the pool not yet used for tables."""
        return self._next

    def map(
        self,
        virtual: int,
        physical: int,
        size: int,
        *,
        writable: bool = True,
        user: bool = True,
        executable: bool = True,
        page_size: int = PAGE_4K,
    ) -> None:
        """Map ``size`` bytes at ``virtual`` to ``physical`` with pages of ``page_size``."""
        if page_size not in (PAGE_4K, PAGE_2M, PAGE_1G):
            raise ConfigurationError(f"page size {page_size:#x} is not 4 KiB, 2 MiB or 1 GiB")
        if virtual % page_size or physical % page_size or size % page_size or size <= 0:
            raise ConfigurationError(
                f"mapping {virtual:#x} -> {physical:#x} ({size:#x} bytes) is not aligned to {page_size:#x}"
            )
        if virtual + size > _CANONICAL_LIMIT:
            raise ConfigurationError(f"mapping at {virtual:#x} leaves the lower canonical half")
        flags = PTE_PRESENT | PTE_ACCESSED | PTE_DIRTY
        flags |= PTE_WRITABLE if writable else 0
        flags |= PTE_USER if user else 0
        flags |= 0 if executable else PTE_NO_EXECUTE
        leaf_level = {PAGE_1G: 1, PAGE_2M: 2, PAGE_4K: 3}[page_size]
        for offset in range(0, size, page_size):
            self._map_one(virtual + offset, physical + offset, flags, leaf_level)

    def _map_one(self, virtual: int, physical: int, flags: int, leaf_level: int) -> None:
        table = self.root
        for level in range(leaf_level):
            slot = table + 8 * ((virtual >> _LEVEL_SHIFTS[level]) & 0x1FF)
            entry = self.memory.read_u64(slot)
            if not entry & PTE_PRESENT:
                child = self._allocate()
                # Intermediate entries grant everything; the leaf decides.
                entry = child | PTE_PRESENT | PTE_WRITABLE | PTE_USER | PTE_ACCESSED
                self.memory.write_u64(slot, entry)
            elif entry & PTE_LARGE:
                raise ConfigurationError(f"{virtual:#x} is already mapped by a larger page")
            table = entry & _ADDRESS_MASK
        slot = table + 8 * ((virtual >> _LEVEL_SHIFTS[leaf_level]) & 0x1FF)
        large = PTE_LARGE if leaf_level < 3 else 0
        self.memory.write_u64(slot, physical | flags | large)

    def translate(self, virtual: int) -> int | None:
        """The physical address ``virtual`` maps to, or ``None`` when unmapped (a page walk)."""
        table = self.root
        for level, shift in enumerate(_LEVEL_SHIFTS):
            entry = self.memory.read_u64(table + 8 * ((virtual >> shift) & 0x1FF))
            if not entry & PTE_PRESENT:
                return None
            if level in (1, 2) and entry & PTE_LARGE:
                span = 1 << shift
                return (entry & _ADDRESS_MASK & ~(span - 1)) | (virtual & (span - 1))
            table = entry & _ADDRESS_MASK
        return table | (virtual & (PAGE_4K - 1))


def identity_map(memory: GuestPhysicalMemory, pool_base: int, pool_size: int, size: int) -> PageTableBuilder:
    """Identity-map ``[0, size)`` (rounded up to 2 MiB) with 2 MiB pages, user-accessible and writable."""
    tables = PageTableBuilder(memory, pool_base, pool_size)
    rounded = (size + PAGE_2M - 1) // PAGE_2M * PAGE_2M
    tables.map(0, 0, rounded, page_size=PAGE_2M)
    return tables
