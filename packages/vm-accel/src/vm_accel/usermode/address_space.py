"""A vm-mem :class:`~vm_mem.AddressSpace` whose pages are KVM guest RAM behind real page tables.

:class:`KvmPageBacking` is a :class:`vm_mem.PageBacking`: vm-mem's own
address space, given it (:func:`kvm_address_space`), keeps its whole contract
(the ``pages`` / ``readable`` / ``writable`` dicts, the regions and ``prot``
view, ``find_free``, ``brk``, all-or-nothing ``write``...), so vm-linux's
loader, stack builder and system-call handlers use it unchanged, but every
page is a 4 KiB view of a guest-physical frame and every allocation,
release, protection change and move of a page also edits the x86-64 page
tables the guest runs on. Such a space is eager: the guest runs natively,
so every mapped page gets its frame when it is mapped. The guest's own
stores and the host's handlers thus see the same bytes with no copying.

Released or replaced pages give their frames back (which also drops KVM's
cached translations of them, see :mod:`~vm_accel.usermode.frames`); pages
whose protection shrinks are revoked the same way, so ``munmap`` and
``mprotect`` take effect for the running guest at once. The first
:data:`RESERVED_TOP` bytes of the address space hold the CPL 0 system area
and cannot be mapped by the guest (Linux's ``mmap_min_addr`` keeps it empty
too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from vm_core.logging import get_logger
from vm_mem import PAGE_SHIFT, PAGE_SIZE, AddressSpace
from vm_mem.errors import InvalidArgument

from vm_accel.kvm.memory import GuestMemoryRegion
from vm_accel.usermode.frames import FrameAllocator
from vm_accel.usermode.page_tables import USER_LIMIT, UserPageTables, leaf_flags

RESERVED_TOP = 0x10000
_NO_EXECUTE = 1 << 63
_WRITABLE = 0b10

log = get_logger("vm_accel.usermode.address_space")


class KvmPageBacking:
    """Guest frames and page-table entries for the pages of a vm-mem address space (see the module docstring).

    ``frame_of`` maps each page number to the guest-physical address of its frame.
    """

    def __init__(self, region: GuestMemoryRegion, frames: FrameAllocator, tables: UserPageTables) -> None:
        self.region = region
        self.frames = frames
        self.tables = tables
        self.frame_of: dict[int, int] = {}
        self._ram = region.view

    def _page_view(self, frame: int) -> bytearray:
        start = frame - self.region.guest_phys
        # A memoryview slice of guest RAM behaves as the page bytearray vm-mem's dicts expect.
        return cast(bytearray, self._ram[start : start + PAGE_SIZE])

    def allocate(self, numbers: Sequence[int], prot: int) -> list[bytearray]:
        """Fresh zeroed frames mapped at pages ``numbers`` with ``prot``; frames they had go back."""
        numbers = list(numbers)
        if numbers and numbers[0] < RESERVED_TOP >> PAGE_SHIFT:
            raise InvalidArgument(
                f"map: {numbers[0] << PAGE_SHIFT:#x} is inside the reserved system area below {RESERVED_TOP:#x}"
            )
        fresh = self.frames.allocate(len(numbers))  # OutOfGuestMemory here changes nothing
        self.release([pn for pn in numbers if pn in self.frame_of])
        flags = leaf_flags(prot)
        views = []
        for pn, frame in zip(numbers, fresh, strict=True):
            self.tables.map_page(pn << PAGE_SHIFT, frame, flags)
            self.frame_of[pn] = frame
            views.append(self._page_view(frame))
        return views

    def release(self, numbers: Sequence[int]) -> None:
        """Unmap pages ``numbers`` and give their frames back."""
        freed = []
        for pn in numbers:
            self.tables.unmap_page(pn << PAGE_SHIFT)
            freed.append(self.frame_of.pop(pn))
        if freed:
            self.frames.release(freed)

    def protect(self, numbers: Sequence[int], prot: int) -> None:
        """Rewrite the leaf entries of pages ``numbers``; rights taken away are revoked at once."""
        flags = leaf_flags(prot)
        revoked = []
        for pn in numbers:
            virtual = pn << PAGE_SHIFT
            old = self.tables.entry(virtual)
            frame = self.frame_of[pn]
            self.tables.map_page(virtual, frame, flags)
            if old and (old & ~flags & _WRITABLE or flags & ~old & _NO_EXECUTE or not flags):
                revoked.append(frame)
        if revoked:
            self.frames.revoke_access(revoked)

    def move(self, moves: Sequence[tuple[int, int]]) -> None:
        """Each page ``old``'s frame now backs page ``new`` (``mremap``), with the same rights."""
        for old, new in moves:
            entry = self.tables.entry(old << PAGE_SHIFT)
            frame = self.frame_of.pop(old)
            self.tables.unmap_page(old << PAGE_SHIFT)
            self.tables.map_page(new << PAGE_SHIFT, frame, entry & ~0x000F_FFFF_FFFF_F000)
            self.frame_of[new] = frame
        if moves:
            self.frames.revoke_access(self.frame_of[new] for _, new in moves)

    def close(self) -> None:
        """Drop the view of guest RAM (after the space's pages are gone, before the KVM region is unmapped)."""
        self.frame_of.clear()
        self._ram = memoryview(b"")


def kvm_address_space(backing: KvmPageBacking) -> AddressSpace:
    """The process address space over ``backing``: vm-mem's, eager, the CPL 0 system area kept out.

    Its ``mmap_base`` is vm-mem's default: vm-linux's process sets the ISA's
    (``ArchInfo.mmap_base``) when it takes the space over.
    """
    return AddressSpace(mmap_min_addr=RESERVED_TOP, address_limit=USER_LIMIT, backing=backing)
