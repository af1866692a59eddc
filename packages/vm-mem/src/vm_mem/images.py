"""Saving and rebuilding an address space for snapshots: its regions and only the pages worth keeping.

:func:`dump_pages` yields the touched pages and the untouched ones that hold a
region's initial data (a file mapping's bytes): every other mapped page reads
as zeros, so a region record (``AddressSpace.dump_regions``) is all it needs.
Both work on the :class:`~vm_mem.page_store.PageStore` under the address space.
:func:`restore_pages` rebuilds a space from the two, validating everything
before it changes anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from vm_mem.errors import GuestMemoryExhausted, InvalidArgument
from vm_mem.layout import PAGE_SHIFT, PAGE_SIZE, PROT_ALL, Buffer, RegionRecord
from vm_mem.page_store import PageStore
from vm_mem.regions import Commit, Region, RegionTable


def _int(what: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{what} must be an integer, not {type(value).__name__}")
    return value


def _prot(value: object) -> int:
    prot = _int("protection", value)
    if prot & ~PROT_ALL or prot < 0:
        raise InvalidArgument(f"unknown protection bits in {prot:#x}")
    return prot


def dump_pages(space: PageStore) -> Iterator[tuple[int, int, bytes]]:
    """``(page number, prot, contents)`` of every touched page and every untouched page holding data."""
    numbers = set(space.pages)
    for region in space._regions:
        if region.data is not None:
            numbers.update(region.data_pages())
    for pn in sorted(numbers):
        page = space.pages.get(pn)
        holder = space._regions.find(pn)
        assert holder is not None
        if page is None:
            contents = holder.initial_bytes(pn)
            yield pn, holder.prot, contents + bytes(PAGE_SIZE - len(contents))
        else:
            yield pn, holder.prot, bytes(page)


def restore_pages(
    space: PageStore, items: Iterable[tuple[int, int, Buffer]], regions: Iterable[RegionRecord] | None
) -> None:
    """Replace all of ``space``'s memory (see ``AddressSpace.restore_pages``)."""
    limit = space.address_limit >> PAGE_SHIFT
    staged: list[tuple[int, int, bytearray]] = []
    for pn, prot, data in items:
        _int("page number", pn)
        if not 0 <= pn < limit:
            raise InvalidArgument(f"restore_pages: page number {pn:#x} is outside the address space")
        page = bytearray(data)
        if len(page) != PAGE_SIZE:
            raise InvalidArgument(f"restore_pages: page {pn:#x} has {len(page)} bytes, not {PAGE_SIZE}")
        staged.append((pn, _prot(prot), page))
    table = RegionTable()
    records = [(pn, pn + 1, prot, 0) for pn, prot, _ in staged] if regions is None else list(regions)
    committed = 0
    for first, last, prot, commit in records:
        for value in (first, last, commit):
            _int("region field", value)
        if not 0 <= first < last <= limit or table.any_in(first, last):
            raise InvalidArgument(f"restore_pages: region {first:#x}-{last:#x} is invalid or overlaps another")
        if commit not in {int(kind) for kind in Commit}:
            raise InvalidArgument(f"restore_pages: unknown commit kind {commit}")
        table.insert(Region(first, last, _prot(prot), None, 0, Commit(commit)))
        committed += (last - first) << PAGE_SHIFT if commit == Commit.CHARGED else 0
    for pn, prot, _ in staged:
        holder = table.find(pn)
        if holder is None or holder.prot != prot:
            raise InvalidArgument(f"restore_pages: page {pn:#x} is not in a region with protection {prot}")
    if space.max_memory is not None and len(staged) * PAGE_SIZE > space.max_memory:
        raise GuestMemoryExhausted(staged[-1][0] << PAGE_SHIFT, len(staged) * PAGE_SIZE, space.max_memory)
    for pn in sorted(space._watched):
        space._release_watch(pn)
    if space.backing is not None and space.pages:
        space.backing.release(list(space.pages))
    space.pages.clear()
    space.readable.clear()
    space.writable.clear()
    space._regions.clear()
    for region in table:
        space._regions.insert(region)
    space._committed = committed
    if space.backing is not None:  # eager: every page of every region gets the backing's storage, then its bytes
        for region in table:
            space._install_region(region, space._allocate(region.start, region.end, region.prot))
        for pn, _, page in staged:
            space.pages[pn][:] = page
    else:
        for pn, prot, page in staged:
            space._install(pn, page, prot)
    space._mapping_changed(0, space.address_limit >> PAGE_SHIFT)
    space._log.debug("restore_pages", pages=len(staged), regions=len(space._regions))
