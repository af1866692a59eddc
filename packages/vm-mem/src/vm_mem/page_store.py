"""The page store under :class:`~vm_mem.space.AddressSpace`: its page dicts, regions and code watching.

:class:`PageStore` holds the state the fast path reads (``pages``,
``readable``, ``writable``, see :mod:`vm_mem.space` for the contract), the
region table, the optional :class:`~vm_mem.backing.PageBacking`, the set of
pages watched as translated code and the callbacks, and the primitives every
operation on them goes through: install and drop a page, create a page on
its first touch (within ``max_memory``), give a backed range its storage,
release a watched page. :class:`~vm_mem.space.AddressSpace` builds mapping,
access and brk on it; :mod:`vm_mem.images` saves and rebuilds it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from vm_core.errors import MemoryFault
from vm_core.logging import get_logger

from vm_mem.backing import PageBacking
from vm_mem.errors import GuestMemoryExhausted, NotMapped
from vm_mem.layout import PAGE_SHIFT, PAGE_SIZE, PROT_READ, PROT_WRITE
from vm_mem.regions import PageProtections, Region, RegionTable

CodeWriteCallback = Callable[[int], None]
MappingChangeCallback = Callable[[int, int], None]


class PageStore:
    """Touched pages, regions, code watching and the callbacks of one address space.

    ``address_limit`` (one past the highest mappable address) and
    ``max_memory`` (bytes the guest may touch and commit; None: unbounded)
    are plain settable attributes. ``backing`` makes the store eager, its
    pages the backing's storage (see :mod:`vm_mem.backing`).
    """

    def __init__(self, *, address_limit: int, max_memory: int | None, backing: PageBacking | None) -> None:
        self.backing = backing
        self.pages: dict[int, bytearray] = {}
        self.readable: dict[int, bytearray] = {}
        self.writable: dict[int, bytearray] = {}
        self._regions = RegionTable()
        self.prot = PageProtections(self._regions)
        self.on_code_write: list[CodeWriteCallback] = []
        self.on_mapping_change: list[MappingChangeCallback] = []
        self.address_limit = address_limit
        self.max_memory = max_memory
        self._committed = 0
        self._watched: set[int] = set()
        self._log = get_logger("vm_mem.space")

    def _materialized_in(self, first: int, last: int) -> list[int]:
        """The touched pages in ``[first, last)`` (cost bounded by the smaller of the two)."""
        pages = self.pages
        if last - first <= len(pages):
            return [pn for pn in range(first, last) if pn in pages]
        return [pn for pn in pages if first <= pn < last]

    def _watched_in(self, first: int, last: int) -> list[int]:
        return sorted(pn for pn in self._watched if first <= pn < last)

    def _mapping_changed(self, first: int, last: int) -> None:
        for callback in list(self.on_mapping_change):
            callback(first, last)

    def _release_watch(self, pn: int) -> None:
        """Un-watch page ``pn`` (restoring ``writable``) and call the code-write callbacks."""
        self._watched.discard(pn)
        page = self.pages.get(pn)
        region = self._regions.find(pn)
        if page is not None and region is not None and region.prot & PROT_WRITE:
            self.writable[pn] = page
            self._mapping_changed(pn, pn + 1)
        for callback in list(self.on_code_write):
            callback(pn)

    def _drop(self, pn: int) -> None:
        del self.pages[pn]
        self.readable.pop(pn, None)
        self.writable.pop(pn, None)

    def _drop_pages(self, numbers: list[int], *, replaced: bool = False) -> None:
        """Drop touched pages ``numbers``; the backing frees their storage (unless new storage ``replaced`` it)."""
        for pn in numbers:
            self._drop(pn)
        if numbers and self.backing is not None and not replaced:
            self.backing.release(numbers)

    def _install(self, pn: int, page: bytearray, prot: int) -> None:
        self.pages[pn] = page
        if prot & PROT_READ:
            self.readable[pn] = page
        else:
            self.readable.pop(pn, None)
        if prot & PROT_WRITE and pn not in self._watched:
            self.writable[pn] = page
        else:
            self.writable.pop(pn, None)

    def _materialize(self, pn: int, region: Region) -> bytearray:
        """Create page ``pn`` of ``region`` on its first touch and install it in the dicts."""
        limit = self.max_memory
        if limit is not None and (len(self.pages) + 1) * PAGE_SIZE > limit:
            raise GuestMemoryExhausted(pn << PAGE_SHIFT, len(self.pages) * PAGE_SIZE, limit)
        try:
            if self.backing is not None:
                self._install_region(region.clipped(pn, pn + 1), self.backing.allocate([pn], region.prot))
                self._mapping_changed(pn, pn + 1)
                return self.pages[pn]
            page = region.fresh_page(pn)
        except MemoryError:
            raise GuestMemoryExhausted(pn << PAGE_SHIFT, len(self.pages) * PAGE_SIZE, None) from None
        self._install(pn, page, region.prot)
        self._mapping_changed(pn, pn + 1)
        return page

    def _touch(self, addr: int, need: int, access: str) -> bytearray:
        """The page holding ``addr`` (created on first touch); MemoryFault unless mapped with ``need``."""
        pn = addr >> PAGE_SHIFT
        region = self._regions.find(pn)
        if region is None or not region.prot & need:
            raise MemoryFault(addr, access)
        page = self.pages.get(pn)
        return page if page is not None else self._materialize(pn, region)

    def _page(self, pn: int) -> bytearray:
        """Page ``pn``, created on first touch (no permission check; it must be mapped)."""
        page = self.pages.get(pn)
        if page is not None:
            return page
        region = self._regions.find(pn)
        if region is None:
            raise NotMapped(pn << PAGE_SHIFT, PAGE_SIZE, pn << PAGE_SHIFT)
        return self._materialize(pn, region)

    def _allocate(self, first: int, last: int, prot: int) -> list[bytearray]:
        """Storage for pages ``[first, last)`` from the backing (nothing changes if it fails)."""
        assert self.backing is not None
        return self.backing.allocate(range(first, last), prot)

    def _install_region(self, region: Region, storage: Sequence[bytearray]) -> None:
        """Install ``storage`` as the pages of ``region`` (mapped already), holding the region's initial bytes."""
        for pn, page in zip(range(region.start, region.end), storage, strict=True):
            initial = region.initial_bytes(pn)
            if initial:
                page[: len(initial)] = initial
            self._install(pn, page, region.prot)

    def _refill(self, first: int, last: int) -> None:
        """Give every mapped page of ``[first, last)`` fresh backing storage with its region's initial bytes."""
        for region in self._regions.overlapping(first, last):
            piece = region.clipped(first, last)
            self._install_region(piece, self._allocate(piece.start, piece.end, piece.prot))

    @property
    def committed(self) -> int:
        """Bytes of charged regions (see :class:`~vm_mem.regions.Commit`)."""
        return self._committed

    @property
    def touched(self) -> int:
        """Bytes of touched (materialized) pages: what the guest's memory costs the host."""
        return len(self.pages) * PAGE_SIZE

    # ------------------------------------------------------------------ code watching

    def watch_code(self, page_number: int) -> None:
        """Watch mapped page ``page_number`` as translated code (take it out of ``writable``)."""
        if self._regions.find(page_number) is None:
            address = page_number << PAGE_SHIFT
            raise NotMapped(address, PAGE_SIZE, address)
        self._watched.add(page_number)
        if self.writable.pop(page_number, None) is not None:
            self._mapping_changed(page_number, page_number + 1)

    def unwatch_code(self, page_number: int) -> None:
        """Stop watching ``page_number`` without calling the callbacks (no-op if not watched)."""
        if page_number in self._watched:
            self._watched.discard(page_number)
            page = self.pages.get(page_number)
            region = self._regions.find(page_number)
            if page is not None and region is not None and region.prot & PROT_WRITE:
                self.writable[page_number] = page
                self._mapping_changed(page_number, page_number + 1)

    def is_code_watched(self, page_number: int) -> bool:
        """Whether ``page_number`` is currently watched as code."""
        return page_number in self._watched

    @property
    def watched_pages(self) -> frozenset[int]:
        """The page numbers currently watched as code."""
        return frozenset(self._watched)
