"""A vm-mem :class:`~vm_mem.AddressSpace` whose pages are KVM guest RAM behind real page tables.

:class:`KvmAddressSpace` keeps vm-mem's whole contract (the ``pages`` /
``readable`` / ``writable`` dicts, the regions and ``prot`` view, ``find_free``,
``brk``, all-or-nothing ``write``...) so vm-linux's loader, stack builder and system-call
handlers use it unchanged, but every page is a 4 KiB view of a guest-physical
frame and every ``map`` / ``unmap`` / ``protect`` also edits the x86-64 page
tables the guest runs on. Unlike vm-mem's own space it is eager: the guest
runs natively, so every mapped page gets its frame when it is mapped. The guest's own stores and the host's handlers thus
see the same bytes with no copying.

Unmapped or replaced pages give their frames back (which also drops KVM's
cached translations of them, see :mod:`~vm_accel.usermode.frames`); pages
whose protection shrinks are revoked the same way, so ``munmap`` and
``mprotect`` take effect for the running guest at once. The first
:data:`RESERVED_TOP` bytes of the address space hold the CPL 0 system area
and cannot be mapped by the guest (Linux's ``mmap_min_addr`` keeps it empty
too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from vm_core.logging import get_logger
from vm_mem import PAGE_SHIFT, PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, AddressSpace, Commit
from vm_mem.errors import InvalidArgument
from vm_mem.space import RegionRecord

from vm_accel.kvm.memory import GuestMemoryRegion
from vm_accel.usermode.frames import FrameAllocator
from vm_accel.usermode.page_tables import USER_LIMIT, UserPageTables, leaf_flags

RESERVED_TOP = 0x10000
_ALL_PROT = PROT_READ | PROT_WRITE | PROT_EXEC
Buffer = bytes | bytearray | memoryview

log = get_logger("vm_accel.usermode.address_space")


class KvmAddressSpace(AddressSpace):
    """A guest user address space backed by ``region`` through ``tables`` (see the module docstring)."""

    def __init__(self, region: GuestMemoryRegion, frames: FrameAllocator, tables: UserPageTables) -> None:
        # mmap_base: vm-linux's process sets the ISA's (ArchInfo.mmap_base) when it takes this space over
        super().__init__(mmap_min_addr=RESERVED_TOP, address_limit=USER_LIMIT)
        self.region = region
        self.frames = frames
        self.tables = tables
        self.frame_of: dict[int, int] = {}
        self._ram = region.view

    def _page_view(self, frame: int) -> bytearray:
        start = frame - self.region.guest_phys
        # A memoryview slice of guest RAM behaves as the page bytearray vm-mem's dicts expect.
        return cast(bytearray, self._ram[start : start + PAGE_SIZE])

    def _span(self, what: str, addr: int, length: int, prot: int | None) -> tuple[int, int]:
        first, last = self._page_span(what, addr, length)
        if prot is not None and (not isinstance(prot, int) or prot < 0 or prot & ~_ALL_PROT):
            raise InvalidArgument(f"{what}: unknown protection bits in {prot!r}")
        if length and first < RESERVED_TOP >> PAGE_SHIFT:
            raise InvalidArgument(f"{what}: {addr:#x} is inside the reserved system area below {RESERVED_TOP:#x}")
        return first, last

    # ------------------------------------------------------------------ mapping

    def map(
        self, addr: int, length: int, prot: int, data: Buffer | None = None, *, commit: Commit = Commit.NEVER
    ) -> None:
        """vm-mem's ``map``, but eager: fresh zero frames for every page of ``[addr, addr+length)``."""
        first, last = self._span("map", addr, length, prot)
        if length == 0:
            raise InvalidArgument("map: empty range")
        if data is not None and len(data) > length:
            raise InvalidArgument(f"map: {len(data)} bytes of data do not fit in {length:#x} bytes")
        numbers = range(first, last)
        fresh = self.frames.allocate(len(numbers))
        self._forget(self._materialized_in(first, last))
        super().map(addr, length, prot, commit=commit)  # the region; releases watched pages
        flags = leaf_flags(prot)
        tables = self.tables
        for pn, frame in zip(numbers, fresh, strict=True):
            tables.map_page(pn << PAGE_SHIFT, frame, flags)
            self.frame_of[pn] = frame
            self._install(pn, self._page_view(frame), prot)
        if data:
            self._copy_in(addr, memoryview(data).cast("B"))
        self._mapping_changed(first, last)
        log.debug("map", start=hex(addr), end=hex(last << PAGE_SHIFT), prot=prot)

    def _forget(self, numbers: Iterable[int]) -> None:
        """Unmap pages ``numbers`` (all mapped) and give their frames back."""
        freed = []
        for pn in numbers:
            self.tables.unmap_page(pn << PAGE_SHIFT)
            freed.append(self.frame_of.pop(pn))
            self._drop(pn)
        if freed:
            self.frames.release(freed)

    def unmap(self, addr: int, length: int) -> None:
        """vm-mem's ``unmap``; the frames go back and the guest loses every translation of them."""
        first, last = self._span("unmap", addr, length, None)
        if length == 0:
            raise InvalidArgument("unmap: empty range")
        self._forget(self._materialized_in(first, last))
        super().unmap(addr, length)  # the regions; releases watched pages
        log.debug("unmap", start=hex(addr), end=hex(last << PAGE_SHIFT))

    def remap(self, old: int, old_length: int, new: int, new_length: int, *, keep_old: bool = False) -> None:
        """vm-mem's ``remap`` (``mremap`` that moves), applied to the page tables.

        The frames of the kept pages move to the new addresses (their old translations are revoked), pages
        beyond the old size get fresh zero frames, pages of the old range past the new size give theirs
        back, and with ``keep_old`` the old range gets fresh zero frames.
        """
        first, last = self._span("remap", old, old_length, None)
        target, target_end = self._span("remap", new, new_length, None)
        replaced = self._materialized_in(target, target_end)
        super().remap(old, old_length, new, new_length, keep_old=keep_old)  # validates first; moves the dicts
        tables = self.tables
        freed = []
        for pn in replaced:
            tables.unmap_page(pn << PAGE_SHIFT)
            freed.append(self.frame_of.pop(pn))
        keep = min(last - first, target_end - target)
        moved = []
        for pn in range(first, last):
            tables.unmap_page(pn << PAGE_SHIFT)
            frame = self.frame_of.pop(pn)
            if pn < first + keep:
                to = target + pn - first
                tables.map_page(to << PAGE_SHIFT, frame, leaf_flags(self.prot[to]))
                self.frame_of[to] = frame
                moved.append(frame)
            else:
                freed.append(frame)
        if moved:
            self.frames.revoke_access(moved)
        if freed:
            self.frames.release(freed)
        fresh = list(range(target + keep, target_end)) + (list(range(first, last)) if keep_old else [])
        for pn, frame in zip(fresh, self.frames.allocate(len(fresh)), strict=True):
            prot = self.prot[pn]
            tables.map_page(pn << PAGE_SHIFT, frame, leaf_flags(prot))
            self.frame_of[pn] = frame
            self._install(pn, self._page_view(frame), prot)

    def protect(self, addr: int, length: int, prot: int) -> None:
        """vm-mem's ``protect``, applied to the page tables; rights taken away are revoked at once."""
        first, last = self._span("protect", addr, length, prot)
        if length == 0:
            return
        super().protect(addr, length, prot)  # validates that every page is mapped, updates the dicts
        flags = leaf_flags(prot)
        revoked = []
        for pn in range(first, last):
            virtual = pn << PAGE_SHIFT
            old = self.tables.entry(virtual)
            frame = self.frame_of[pn]
            self.tables.map_page(virtual, frame, flags)
            if old and (old & ~flags & 0b10 or flags & ~old & (1 << 63) or not flags):
                revoked.append(frame)
        if revoked:
            self.frames.revoke_access(revoked)

    def read_cstring(self, addr: int, limit: int = 32 * PAGE_SIZE) -> bytes:
        """vm-mem's ``read_cstring`` over guest RAM pages."""
        if limit < 0:
            raise InvalidArgument(f"read_cstring: negative limit {limit}")
        parts: list[bytes] = []
        taken = 0
        while taken < limit:
            page = self.readable.get(addr >> PAGE_SHIFT)
            if page is None:
                from vm_core.errors import MemoryFault

                raise MemoryFault(addr, "read")
            off = addr & (PAGE_SIZE - 1)
            stop = min(PAGE_SIZE, off + (limit - taken))
            chunk = bytes(page[off:stop])
            nul = chunk.find(0)
            if nul >= 0:
                parts.append(chunk[:nul])
                break
            parts.append(chunk)
            taken += stop - off
            addr += stop - off
        return b"".join(parts)

    def restore_pages(
        self, items: Iterable[tuple[int, int, Buffer]], regions: Iterable[RegionRecord] | None = None
    ) -> None:
        """vm-mem's ``restore_pages``, eager: every page of every region gets a frame."""
        staged = [(pn, prot, bytes(data)) for pn, prot, data in items]
        for pn, _prot, data in staged:
            if len(data) != PAGE_SIZE:
                raise InvalidArgument(f"restore_pages: page {pn:#x} has {len(data)} bytes, not {PAGE_SIZE}")
            self._span("restore_pages", pn << PAGE_SHIFT, PAGE_SIZE, _prot)
        records = [(pn, pn + 1, prot, 0) for pn, prot, _ in staged] if regions is None else list(regions)
        for first, last, prot, _commit in records:
            self._span("restore_pages", first << PAGE_SHIFT, (last - first) << PAGE_SHIFT, prot)
        for pn in sorted(self._watched):
            self._release_watch(pn)
        self._forget(list(self.pages))
        self._regions.clear()
        self._committed = 0
        for first, last, prot, commit in records:
            self.map(first << PAGE_SHIFT, (last - first) << PAGE_SHIFT, prot, commit=Commit(commit))
        for pn, _prot, data in staged:
            self._copy_in(pn << PAGE_SHIFT, memoryview(data))

    def close(self) -> None:
        """Drop every view of guest RAM (before the KVM region is unmapped)."""
        for table in (self.pages, self.readable, self.writable):
            table.clear()
        self._regions.clear()
        self.frame_of.clear()
        self._ram = memoryview(b"")
