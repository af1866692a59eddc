"""The mapped ranges of a guest address space (Linux's VMAs), kept apart from the pages themselves.

A :class:`Region` says that pages ``start <= pn < end`` are mapped with
``prot``, what a page holds before anyone touches it (zeros, or the bytes of
``data`` from ``data_offset`` on: a file mapping's contents) and how the
mapping counts against a commit limit (:class:`Commit`). A
:class:`RegionTable` holds non-overlapping regions sorted by start, so every
question about a range of pages (is it all mapped, which protections does it
have, where is a free gap) costs O(log R + regions in the range), never
O(pages in the range): a 64 GiB reservation is one region.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

PAGE_SIZE = 4096
PAGE_SHIFT = 12


class Commit(enum.IntEnum):
    """How a region counts against the commit limit (Linux's ``VM_ACCOUNT``)."""

    #: never charged (``MAP_NORESERVE``, file-backed shared memory, the initial stack, program segments)
    NEVER = 0
    #: not charged now, charged when it becomes writable (a private read-only mapping)
    ON_WRITE = 1
    #: charged: its whole size counts as committed memory
    CHARGED = 2


@attrs.frozen
class Region:
    """Pages ``start <= pn < end`` mapped with ``prot`` (see the module docstring)."""

    start: int
    end: int
    prot: int
    data: bytes | None = None
    data_offset: int = 0
    commit: Commit = Commit.NEVER

    @property
    def pages(self) -> int:
        return self.end - self.start

    def clipped(self, first: int, last: int) -> Region:
        """The part of this region within pages ``[first, last)`` (which must overlap it)."""
        start, end = max(self.start, first), min(self.end, last)
        offset = self.data_offset + ((start - self.start) << PAGE_SHIFT)
        return attrs.evolve(self, start=start, end=end, data_offset=offset)

    def moved(self, new_start: int) -> Region:
        """This region with the same contents and size starting at page ``new_start``."""
        return attrs.evolve(self, start=new_start, end=new_start + self.pages)

    def initial_bytes(self, pn: int) -> bytes:
        """What page ``pn`` holds before its first touch: up to a page of ``data`` (the rest is zeros)."""
        if self.data is None:
            return b""
        offset = self.data_offset + ((pn - self.start) << PAGE_SHIFT)
        return self.data[offset : offset + PAGE_SIZE]

    def fresh_page(self, pn: int) -> bytearray:
        """A new page for ``pn`` holding its initial contents."""
        page = bytearray(PAGE_SIZE)
        initial = self.initial_bytes(pn)
        if initial:
            page[: len(initial)] = initial
        return page

    def data_pages(self) -> range:
        """The page numbers whose initial contents come from ``data`` (not all zeros by construction)."""
        if self.data is None:
            return range(0)
        remaining = len(self.data) - self.data_offset
        if remaining <= 0:
            return range(0)
        return range(self.start, min(self.end, self.start + ((remaining + PAGE_SIZE - 1) >> PAGE_SHIFT)))

    def joins(self, other: Region) -> bool:
        """Whether ``other`` starts where this ends and the two can be one region."""
        return (
            self.end == other.start
            and self.prot == other.prot
            and self.commit == other.commit
            and self.data is None
            and other.data is None
        )


class RegionTable:
    """Non-overlapping :class:`Region` objects sorted by start page."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._regions: list[Region] = []

    def __len__(self) -> int:
        return len(self._regions)

    def __iter__(self) -> Iterator[Region]:
        return iter(list(self._regions))

    def clear(self) -> None:
        self._starts.clear()
        self._regions.clear()

    def find(self, pn: int) -> Region | None:
        """The region holding page ``pn``, or None."""
        index = bisect_right(self._starts, pn) - 1
        if index >= 0:
            region = self._regions[index]
            if pn < region.end:
                return region
        return None

    def _first_index(self, first: int) -> int:
        """The index of the first region that ends after page ``first``."""
        index = bisect_right(self._starts, first) - 1
        if index < 0 or self._regions[index].end <= first:
            index += 1
        return index

    def overlapping(self, first: int, last: int) -> list[Region]:
        """The regions that overlap pages ``[first, last)``, unclipped, in address order."""
        found: list[Region] = []
        regions = self._regions
        index = self._first_index(first)
        while index < len(regions) and regions[index].start < last:
            found.append(regions[index])
            index += 1
        return found

    def first_hole(self, first: int, last: int) -> int | None:
        """The lowest unmapped page in ``[first, last)``, or None when all are mapped."""
        pn = first
        for region in self.overlapping(first, last):
            if region.start > pn:
                return pn
            pn = region.end
        return pn if pn < last else None

    def first_without(self, first: int, last: int, need: int) -> int | None:
        """The lowest page in ``[first, last)`` unmapped or lacking a bit of ``need``, or None."""
        pn = first
        for region in self.overlapping(first, last):
            if region.start > pn or region.prot & need != need:
                return pn
            pn = region.end
        return pn if pn < last else None

    def pages_with(self, first: int, last: int, commit: Commit) -> int:
        """How many pages of ``[first, last)`` lie in regions with ``commit``."""
        return sum(
            min(r.end, last) - max(r.start, first) for r in self.overlapping(first, last) if r.commit is commit
        )

    def any_in(self, first: int, last: int) -> bool:
        """Whether any page of ``[first, last)`` is mapped."""
        index = self._first_index(first)
        return index < len(self._regions) and self._regions[index].start < last

    def mapped_pages(self) -> int:
        """How many pages are mapped in all."""
        return sum(region.pages for region in self._regions)

    def remove(self, first: int, last: int) -> list[Region]:
        """Unmap pages ``[first, last)``: regions are cut at the edges; the removed parts are returned."""
        overlapping = self.overlapping(first, last)
        if not overlapping:
            return []
        index = self._first_index(first)
        keep: list[Region] = []
        removed: list[Region] = []
        for region in overlapping:
            if region.start < first:
                keep.append(region.clipped(region.start, first))
            if region.end > last:
                keep.append(region.clipped(last, region.end))
            removed.append(region.clipped(first, last))
        self._regions[index : index + len(overlapping)] = keep
        self._starts[index : index + len(overlapping)] = [region.start for region in keep]
        return removed

    def insert(self, region: Region) -> list[Region]:
        """Map ``region`` over whatever was there; the replaced parts are returned (as :meth:`remove`)."""
        removed = self.remove(region.start, region.end)
        index = bisect_right(self._starts, region.start)
        self._regions.insert(index, region)
        self._starts.insert(index, region.start)
        self._join_around(index)
        return removed

    def _join_around(self, index: int) -> None:
        """Merge the region at ``index`` with joinable neighbours (keeps brk growth one region)."""
        regions, starts = self._regions, self._starts
        if index + 1 < len(regions) and regions[index].joins(regions[index + 1]):
            regions[index] = attrs.evolve(regions[index], end=regions[index + 1].end)
            del regions[index + 1], starts[index + 1]
        if index > 0 and regions[index - 1].joins(regions[index]):
            regions[index - 1] = attrs.evolve(regions[index - 1], end=regions[index].end)
            del regions[index], starts[index]

    def free_gaps_below(self, end: int, low: int) -> Iterator[tuple[int, int]]:
        """Unmapped gaps ``(start, stop)`` within ``[low, end)``, highest first."""
        regions = self._regions
        index = bisect_right(self._starts, end - 1) - 1
        top = end
        while top > low:
            if index >= 0 and regions[index].end > low:
                region = regions[index]
                if region.end < top:
                    yield max(region.end, low), top
                top = min(top, region.start)
                index -= 1
            else:
                yield low, top
                return

    def free_gaps_above(self, start: int, limit: int) -> Iterator[tuple[int, int]]:
        """Unmapped gaps ``(start, stop)`` within ``[start, limit)``, lowest first."""
        regions = self._regions
        index = self._first_index(start)
        bottom = start
        while bottom < limit:
            if index < len(regions) and regions[index].start < limit:
                region = regions[index]
                if region.start > bottom:
                    yield bottom, region.start
                bottom = max(bottom, region.end)
                index += 1
            else:
                yield bottom, limit
                return


class PageProtections(Mapping[int, int]):
    """Read-only view: page number -> ``PROT_*`` bits of every mapped page (touched or not).

    Look-ups cost O(log regions); ``len`` O(regions); iterating visits every
    mapped page, so use :meth:`AddressSpace.mappings` for whole ranges.
    """

    def __init__(self, regions: RegionTable) -> None:
        self._regions = regions

    def __getitem__(self, pn: int) -> int:
        region = self._regions.find(pn)
        if region is None:
            raise KeyError(pn)
        return region.prot

    def get(self, pn: int, default: Any = None) -> Any:
        region = self._regions.find(pn)
        return default if region is None else region.prot

    def __contains__(self, pn: object) -> bool:
        return isinstance(pn, int) and self._regions.find(pn) is not None

    def __iter__(self) -> Iterator[int]:
        for region in self._regions:
            yield from range(region.start, region.end)

    def __len__(self) -> int:
        return self._regions.mapped_pages()
