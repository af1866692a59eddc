"""The x86-64 4-level page tables of a user-mode guest, edited page by page from the host.

:class:`UserPageTables` keeps one PML4 and the lower tables in guest RAM
(frames from a :class:`~vm_accel.usermode.frames.FrameAllocator`) and maps,
re-protects and unmaps single 4 KiB pages. Leaf entries are written with the
accessed and dirty bits already set, so the CPU never writes the tables;
intermediate entries allow everything (the leaf decides) and table pages are
never freed. Entries are read and written through a 64-bit view of the RAM
region, which is fast enough to map a whole 8 MiB stack in milliseconds.
"""

from __future__ import annotations

from vm_core.errors import ConfigurationError
from vm_mem import PROT_EXEC, PROT_READ, PROT_WRITE

from vm_accel.kvm.memory import GuestMemoryRegion
from vm_accel.kvm.page_tables import (
    PTE_ACCESSED,
    PTE_DIRTY,
    PTE_NO_EXECUTE,
    PTE_PRESENT,
    PTE_USER,
    PTE_WRITABLE,
)
from vm_accel.usermode.frames import FrameAllocator

ADDRESS_MASK = 0x000F_FFFF_FFFF_F000
USER_LIMIT = 1 << 47
_TABLE_ENTRY = PTE_PRESENT | PTE_WRITABLE | PTE_USER | PTE_ACCESSED


def leaf_flags(prot: int, *, user: bool = True) -> int:
    """PTE flag bits for ``PROT_*`` bits; ``PROT_NONE`` is not present (x86 reads whatever it may write or run)."""
    if not prot & (PROT_READ | PROT_WRITE | PROT_EXEC):
        return 0
    flags = PTE_PRESENT | PTE_ACCESSED | PTE_DIRTY | (PTE_USER if user else 0)
    if prot & PROT_WRITE:
        flags |= PTE_WRITABLE
    if not prot & PROT_EXEC:
        flags |= PTE_NO_EXECUTE
    return flags


class UserPageTables:
    """4-level page tables in ``region`` (see the module docstring); ``root`` goes in CR3."""

    def __init__(self, region: GuestMemoryRegion, frames: FrameAllocator) -> None:
        self.region = region
        self.frames = frames
        self._entries = region.view.cast("Q")
        self._base = region.guest_phys
        self.root = self._new_table()
        self.tables = 1

    def _new_table(self) -> int:
        (frame,) = self.frames.allocate(1)
        return frame

    def _slot(self, table: int, virtual: int, shift: int) -> int:
        return ((table - self._base) >> 3) + ((virtual >> shift) & 0x1FF)

    def _leaf_slot(self, virtual: int, *, create: bool) -> int | None:
        entries = self._entries
        table = self.root
        for shift in (39, 30, 21):
            slot = self._slot(table, virtual, shift)
            entry = entries[slot]
            if not entry & PTE_PRESENT:
                if not create:
                    return None
                child = self._new_table()
                self.tables += 1
                entries[slot] = entry = child | _TABLE_ENTRY
            table = entry & ADDRESS_MASK
        return self._slot(table, virtual, 12)

    def map_page(self, virtual: int, frame: int, flags: int) -> None:
        """Point the 4 KiB page at ``virtual`` to ``frame`` with PTE ``flags`` (0: not present)."""
        if virtual % 4096 or frame % 4096 or not 0 <= virtual < USER_LIMIT:
            raise ConfigurationError(f"cannot map {virtual:#x} -> {frame:#x}: not an aligned lower-half page")
        slot = self._leaf_slot(virtual, create=True)
        assert slot is not None
        self._entries[slot] = frame | flags if flags else 0

    def unmap_page(self, virtual: int) -> None:
        """Clear the entry of the page at ``virtual`` (no-op when there is none)."""
        slot = self._leaf_slot(virtual, create=False)
        if slot is not None:
            self._entries[slot] = 0

    def entry(self, virtual: int) -> int:
        """The leaf entry of ``virtual`` (0 when unmapped)."""
        slot = self._leaf_slot(virtual, create=False)
        return 0 if slot is None else int(self._entries[slot])

    def translate(self, virtual: int) -> int | None:
        """The guest-physical address ``virtual`` maps to, or None (a software page walk)."""
        entry = self.entry(virtual & ~0xFFF)
        if not entry & PTE_PRESENT:
            return None
        return (entry & ADDRESS_MASK) | (virtual & 0xFFF)

    def release(self) -> None:
        """Drop the view of guest RAM (before the region is closed)."""
        self._entries.release()
