"""The guest user address space: sparse and lazy, page-granular, little-endian, with Linux protections.

:class:`AddressSpace` is the one memory object every engine and the Linux
layer share. What is mapped is kept per range (:mod:`vm_mem.regions`, one
:class:`~vm_mem.regions.Region` per mapping, like Linux's VMAs); a page costs
host memory only once it is *touched*: the first access to it through a slow
path (a load, store, fetch, ``read``/``write``, ``read_cstring``) creates it,
zero-filled or holding the region's initial bytes (a file mapping's
contents). A 64 GiB reservation is one region and no pages.

Compiled guest code reads and writes memory on its fast path directly through
three plain dicts keyed by page number (``address >> PAGE_SHIFT``), which only
ever hold *touched* (materialized) pages:

``pages``
    every touched page (``PROT_NONE`` included) -> its 4096-byte ``bytearray``;
``readable``
    the touched pages with ``PROT_READ``;
``writable``
    the touched pages with ``PROT_WRITE`` that are *not* watched as translated code.

A fast-path miss is not a fault: it sends the access to the slow path, which
faults (:class:`vm_core.errors.MemoryFault`, naming the first bad byte) only
where no region, or a region without the needed protection, covers the
address, and otherwise materializes the page and installs it in the dicts.
The same ``bytearray`` object is shared by all dicts of a page, so a write
through one is seen through the others. A faulting store changes nothing
(stores are all-or-nothing across pages). ``prot`` is a read-only mapping
view, page number -> ``PROT_*`` bits, of every *mapped* page (touched or
not), computed from the regions.

Every operation on a range costs O(regions in it + touched pages in it),
never O(pages in it): mapping, unmapping and protecting a 64 GiB range with
three touched pages touches three dict entries.

Memory bound: with ``max_memory`` set (bytes), touching a page beyond it
raises :class:`~vm_mem.errors.GuestMemoryExhausted` (so does a host
``MemoryError`` while creating a page), and mappings that *commit* memory
(regions with :attr:`~vm_mem.regions.Commit.CHARGED`, Linux's ``VM_ACCOUNT``)
may not commit more than ``max_memory`` in all:
:meth:`~AddressSpace.map`, :meth:`~AddressSpace.protect` and
:meth:`~AddressSpace.brk` refuse with :class:`~vm_mem.errors.OutOfMemory`.

Self-modifying code: an engine that translated code from a page calls
:meth:`~AddressSpace.watch_code`, which takes the page out of ``writable`` so
fast-path stores miss and fall into the slow path. A slow-path store that hits
a watched page un-watches it and calls every ``on_code_write`` callback with
the page number (once per page per watch) before the bytes land. Replacing the
page (``map`` over it), unmapping it, or removing its ``PROT_EXEC`` likewise
un-watches it and calls the callbacks, since translations of it are then stale.
Callbacks must not map, unmap or protect memory.

Backed spaces: ``AddressSpace(backing=...)`` keeps its pages in storage a
:class:`~vm_mem.backing.PageBacking` supplies (an accelerator's guest RAM
behind page tables) and is eager: every page of a mapping is created when it
is mapped, and the backing is told of every allocation, release, protection
change and move (see :mod:`vm_mem.backing`).

Mirrors of the page dicts (native code's host page tables): every
``on_mapping_change`` callback is called with ``(first, last)`` after any
change that may have added, removed or replaced pages numbered
``first <= pn < last`` in ``readable`` or ``writable`` (map, unmap,
protect, a page's first touch, watching and un-watching code, restore).
The range may be huge (a whole mapping) while few of its pages are in the
dicts: a mirror must cost O(its touched pages), not O(the range). These
callbacks must not change memory either.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from vm_core.errors import MemoryFault

from vm_mem.backing import PageBacking
from vm_mem.errors import InvalidArgument, NotMapped, OutOfAddressSpace, OutOfMemory
from vm_mem.images import dump_pages, restore_pages
from vm_mem.layout import (
    ADDRESS_LIMIT,
    DEFAULT_MMAP_BASE,
    DEFAULT_MMAP_MIN_ADDR,
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    PROT_ALL,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    Buffer,
    RegionRecord,
    page_round_down,
    page_round_up,
)
from vm_mem.page_store import PageStore
from vm_mem.program_break import ProgramBreak
from vm_mem.regions import Commit, Region

#: Access sizes of :meth:`AddressSpace.load` and :meth:`AddressSpace.store`.
ACCESS_SIZES = (1, 2, 4, 8, 16)
#: Default byte limit of :meth:`AddressSpace.read_cstring`.
CSTRING_LIMIT = PAGE_SIZE * 32

_MASKS = {size: (1 << (8 * size)) - 1 for size in ACCESS_SIZES}


def _require_int(what: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{what} must be an integer, not {type(value).__name__}")
    return value


def _check_prot(prot: Any) -> int:
    _require_int("protection", prot)
    if prot & ~PROT_ALL or prot < 0:
        raise InvalidArgument(f"unknown protection bits in {prot:#x}")
    return int(prot)


class AddressSpace(PageStore, ProgramBreak):
    """A guest user address space; see the module docstring for the layout contract.

    ``mmap_base`` (top of the top-down ``find_free`` area), ``mmap_min_addr``
    (lowest address ``find_free`` returns), ``address_limit`` (one past the
    highest mappable address) and ``max_memory`` (bytes the guest may touch and
    commit; None: unbounded) are plain settable attributes. ``backing`` makes
    the space eager, its pages the backing's storage (see :mod:`vm_mem.backing`).
    """

    def __init__(
        self,
        *,
        mmap_base: int = DEFAULT_MMAP_BASE,
        mmap_min_addr: int = DEFAULT_MMAP_MIN_ADDR,
        address_limit: int = ADDRESS_LIMIT,
        max_memory: int | None = None,
        backing: PageBacking | None = None,
    ) -> None:
        super().__init__(address_limit=address_limit, max_memory=max_memory, backing=backing)
        self.mmap_base = mmap_base
        self.mmap_min_addr = mmap_min_addr
        self._brk_start: int | None = None
        self._brk = 0

    # ------------------------------------------------------------------ layout helpers

    def _page_span(self, what: str, addr: Any, length: Any) -> tuple[int, int]:
        """Validate a page-aligned request and return its page numbers ``[first, last)``."""
        _require_int(f"{what} address", addr)
        _require_int(f"{what} length", length)
        if addr < 0 or addr & PAGE_MASK:
            raise InvalidArgument(f"{what}: address {addr:#x} is not a page-aligned guest address")
        if length < 0:
            raise InvalidArgument(f"{what}: negative length {length}")
        end = page_round_up(addr + length)
        if end > self.address_limit:
            raise InvalidArgument(
                f"{what}: range {addr:#x}+{length:#x} passes the address-space limit {self.address_limit:#x}"
            )
        return addr >> PAGE_SHIFT, end >> PAGE_SHIFT

    def _any_mapped(self, first: int, last: int) -> bool:
        return self._regions.any_in(first, last)

    def _charge(self, added: int, released: int = 0) -> None:
        """Commit ``added`` bytes while ``released`` go back; OutOfMemory past ``max_memory``."""
        limit = self.max_memory
        committed = self._committed - released
        if added and limit is not None and committed + added > limit:
            raise OutOfMemory(added, committed, limit)
        self._committed = committed + added

    # ------------------------------------------------------------------ mapping

    def map(
        self, addr: int, length: int, prot: int, data: Buffer | None = None, *, commit: Commit = Commit.NEVER
    ) -> None:
        """Map ``[addr, addr+length)`` with ``prot``, replacing what was there; no page is created.

        ``addr`` must be page-aligned; ``length`` is rounded up to whole pages
        and must be positive. ``data`` (at most ``length`` bytes) is what the
        start of the range holds (each page gets its part on first touch); the
        rest reads as zeros. ``commit`` says how the mapping counts against
        ``max_memory`` (:class:`~vm_mem.errors.OutOfMemory`, nothing changed, if
        a charged mapping does not fit).
        """
        first, last = self._page_span("map", addr, length)
        prot = _check_prot(prot)
        if length == 0:
            raise InvalidArgument("map: empty range")
        if data is not None and len(data) > length:
            raise InvalidArgument(f"map: {len(data)} bytes of data do not fit in {length:#x} bytes")
        commit = Commit(commit)
        size = (last - first) << PAGE_SHIFT
        committed = self._committed
        self._charge(size if commit is Commit.CHARGED else 0, self._charged_in(first, last))
        storage = None
        if self.backing is not None:
            try:
                storage = self._allocate(first, last, prot)
            except BaseException:
                self._committed = committed
                raise
        initial = bytes(data) if data else None
        for pn in self._watched_in(first, last):
            self._release_watch(pn)
        self._drop_pages(self._materialized_in(first, last), replaced=storage is not None)
        region = Region(first, last, prot, initial, 0, commit)
        self._regions.insert(region)
        if storage is not None:
            self._install_region(region, storage)
        self._mapping_changed(first, last)
        self._log.debug("map", start=hex(addr), end=hex(last << PAGE_SHIFT), prot=prot, commit=commit.name)

    def _charged_in(self, first: int, last: int) -> int:
        return self._regions.pages_with(first, last, Commit.CHARGED) << PAGE_SHIFT

    def unmap(self, addr: int, length: int) -> None:
        """Unmap every page of ``[addr, addr+length)``; unmapped pages in the range are fine."""
        first, last = self._page_span("unmap", addr, length)
        if length == 0:
            raise InvalidArgument("unmap: empty range")
        for pn in self._watched_in(first, last):
            self._release_watch(pn)
        self._drop_pages(self._materialized_in(first, last))
        self._charge(0, self._charged_in(first, last))
        self._regions.remove(first, last)
        self._mapping_changed(first, last)
        self._log.debug("unmap", start=hex(addr), end=hex(last << PAGE_SHIFT))

    def protect(self, addr: int, length: int, prot: int) -> None:
        """Set the protection of every page of ``[addr, addr+length)``.

        Raises :class:`~vm_mem.errors.NotMapped` (changing nothing) if any page
        of the range is unmapped. A zero length is a no-op, as in Linux.
        Making :attr:`~vm_mem.regions.Commit.ON_WRITE` parts writable charges
        them (:class:`~vm_mem.errors.OutOfMemory`, nothing changed, past ``max_memory``).
        """
        first, last = self._page_span("protect", addr, length)
        prot = _check_prot(prot)
        hole = self._regions.first_hole(first, last)
        if hole is not None:
            raise NotMapped(addr, length, hole << PAGE_SHIFT)
        if first == last:
            return
        self._charge(self.chargeable_bytes(addr, length) if prot & PROT_WRITE else 0)
        for piece in self._regions.remove(first, last):
            commit = Commit.CHARGED if prot & PROT_WRITE and piece.commit is Commit.ON_WRITE else piece.commit
            self._regions.insert(Region(piece.start, piece.end, prot, piece.data, piece.data_offset, commit))
        touched = self._materialized_in(first, last)
        for pn in touched:
            self._install(pn, self.pages[pn], prot)
        if self.backing is not None:
            self.backing.protect(touched, prot)
        if not prot & PROT_EXEC:
            for pn in self._watched_in(first, last):
                self._release_watch(pn)
        self._mapping_changed(first, last)
        self._log.debug("protect", start=hex(addr), end=hex(last << PAGE_SHIFT), prot=prot)

    def chargeable_bytes(self, addr: int, length: int) -> int:
        """Bytes of ``[addr, addr+length)`` that becoming writable would charge (``Commit.ON_WRITE`` parts)."""
        first, last = addr >> PAGE_SHIFT, (addr + length + PAGE_MASK) >> PAGE_SHIFT
        return self._regions.pages_with(first, last, Commit.ON_WRITE) << PAGE_SHIFT

    def discard(self, addr: int, length: int) -> None:
        """Forget the touched pages of ``[addr, addr+length)``: they read as first touched again.

        Linux's ``MADV_DONTNEED`` on private memory: anonymous pages come back
        zero-filled, file-mapped ones with the file's bytes.
        """
        first, last = self._page_span("discard", addr, length)
        for pn in self._watched_in(first, last):
            self._release_watch(pn)
        self._drop_pages(self._materialized_in(first, last))
        if self.backing is not None:
            self._refill(first, last)
        self._mapping_changed(first, last)

    def remap(self, old: int, old_length: int, new: int, new_length: int, *, keep_old: bool = False) -> None:
        """Move the mapping ``[old, old+old_length)`` to ``new`` (``mremap``), resized to ``new_length``.

        The old range must be mapped and must not overlap the new one; touched
        pages move with their contents (no copy), growth reads as zeros with
        the last region's protection and commit, and the old range is
        unmapped, or with ``keep_old`` left mapped as fresh zero pages
        (``MREMAP_DONTUNMAP``).
        """
        first, last = self._page_span("remap", old, old_length)
        target, target_end = self._page_span("remap", new, new_length)
        if first == last or target == target_end:
            raise InvalidArgument("remap: empty range")
        if target < last and first < target_end:
            raise InvalidArgument("remap: the old and new ranges overlap")
        hole = self._regions.first_hole(first, last)
        if hole is not None:
            raise NotMapped(old, old_length, hole << PAGE_SHIFT)
        keep = min(last - first, target_end - target)
        pieces = [r.clipped(first, first + keep) for r in self._regions.overlapping(first, first + keep)]
        tail = self._regions.find(last - 1)
        assert tail is not None
        grow = target_end - target - keep
        added = sum(p.pages for p in pieces if p.commit is Commit.CHARGED) << PAGE_SHIFT
        if grow and tail.commit is Commit.CHARGED:
            added += grow << PAGE_SHIFT
        if keep_old:
            added += self._charged_in(first, last)
        released = self._charged_in(target, target_end) + (0 if keep_old else self._charged_in(first, last))
        self._charge(added, released)
        moved = {pn: self.pages[pn] for pn in self._materialized_in(first, first + keep)}
        for pn in self._watched_in(first, last) + self._watched_in(target, target_end):
            self._release_watch(pn)
        dropped = self._materialized_in(first, last) + self._materialized_in(target, target_end)
        for pn in dropped:
            self._drop(pn)
        if self.backing is not None:
            self.backing.release([pn for pn in dropped if pn not in moved])
            self.backing.move([(pn, target + pn - first) for pn in moved])
        self._regions.remove(target, target_end)
        if keep_old:
            for piece in self._regions.remove(first, last):
                self._regions.insert(Region(piece.start, piece.end, piece.prot, None, 0, piece.commit))
        else:
            self._regions.remove(first, last)
        for piece in pieces:
            self._regions.insert(piece.moved(target + piece.start - first))
        grown = Region(target + keep, target_end, tail.prot, None, 0, tail.commit)
        if grow:
            self._regions.insert(grown)
        for pn, page in moved.items():
            self._install(target + pn - first, page, self.prot[target + pn - first])
        if self.backing is not None:
            if grow:
                self._install_region(grown, self._allocate(grown.start, grown.end, grown.prot))
            if keep_old:
                self._refill(first, last)
        self._mapping_changed(first, last)
        self._mapping_changed(target, target_end)
        self._log.debug("remap", old=hex(old), new=hex(new), length=hex(new_length))

    def clear(self) -> None:
        """Unmap everything: every region and page goes (a backing frees its storage); brk is kept."""
        for pn in sorted(self._watched):
            self._release_watch(pn)
        self._drop_pages(list(self.pages))
        self._regions.clear()
        self._committed = 0
        self._mapping_changed(0, self.address_limit >> PAGE_SHIFT)

    def is_mapped(self, addr: int, length: int) -> bool:
        """Whether every page touched by ``[addr, addr+length)`` is mapped (any protection)."""
        if length < 0:
            raise InvalidArgument(f"is_mapped: negative length {length}")
        if length == 0:
            return True
        return self._regions.first_hole(addr >> PAGE_SHIFT, ((addr + length - 1) >> PAGE_SHIFT) + 1) is None

    def any_mapped(self, addr: int, length: int) -> bool:
        """Whether any page touched by ``[addr, addr+length)`` is mapped."""
        if length <= 0:
            return False
        return self._regions.any_in(addr >> PAGE_SHIFT, ((addr + length - 1) >> PAGE_SHIFT) + 1)

    def has_access(self, addr: int, length: int, need: int) -> bool:
        """Whether every page touched by ``[addr, addr+length)`` is mapped with all of ``need``."""
        if length <= 0:
            length = 1
        first, last = addr >> PAGE_SHIFT, ((addr + length - 1) >> PAGE_SHIFT) + 1
        return self._regions.first_without(first, last, need) is None

    def regions(self, addr: int, length: int) -> list[Region]:
        """The regions within ``[addr, addr+length)``, clipped to it, in address order."""
        first, last = addr >> PAGE_SHIFT, (addr + length + PAGE_MASK) >> PAGE_SHIFT
        return [r.clipped(first, last) for r in self._regions.overlapping(first, last)]

    def mappings(self) -> list[tuple[int, int, int]]:
        """The mapped ranges as sorted ``(start, end, prot)``, adjacent equal-prot ranges coalesced."""
        ranges: list[list[int]] = []
        for region in self._regions:
            start, end = region.start << PAGE_SHIFT, region.end << PAGE_SHIFT
            if ranges and ranges[-1][1] == start and ranges[-1][2] == region.prot:
                ranges[-1][1] = end
            else:
                ranges.append([start, end, region.prot])
        return [(start, end, p) for start, end, p in ranges]

    def find_free(self, length: int, hint: int = 0) -> int:
        """A free page-aligned start for ``length`` bytes (``mmap`` without ``MAP_FIXED``).

        ``hint`` (rounded up to a page) is used when its whole range is free,
        at or above ``mmap_min_addr`` and below ``address_limit``; otherwise
        the highest free range ending at or below ``mmap_base`` is chosen, and
        when there is none, the lowest above it (Linux's bottom-up fallback).
        Raises :class:`~vm_mem.errors.OutOfAddressSpace` when there is none.
        """
        _require_int("find_free length", length)
        _require_int("find_free hint", hint)
        if length <= 0:
            raise InvalidArgument(f"find_free: length must be positive, not {length}")
        npages = page_round_up(length) >> PAGE_SHIFT
        low = page_round_up(self.mmap_min_addr) >> PAGE_SHIFT
        limit = self.address_limit >> PAGE_SHIFT
        if hint > 0:
            start = page_round_up(hint) >> PAGE_SHIFT
            if start >= low and start + npages <= limit and not self._regions.any_in(start, start + npages):
                return start << PAGE_SHIFT
        top = min(page_round_down(self.mmap_base) >> PAGE_SHIFT, limit)
        for gap_start, gap_end in self._regions.free_gaps_below(top, low):
            if gap_end - gap_start >= npages:
                return (gap_end - npages) << PAGE_SHIFT
        for gap_start, gap_end in self._regions.free_gaps_above(max(top, low), limit):
            if gap_end - gap_start >= npages:
                return gap_start << PAGE_SHIFT
        raise OutOfAddressSpace(length)

    # ------------------------------------------------------------------ access

    def _check(self, addr: int, n: int, need: int, access: str) -> None:
        """Raise MemoryFault (at the first bad byte) unless every page of ``[addr, addr+n)`` has ``need``."""
        bad = self._regions.first_without(addr >> PAGE_SHIFT, ((addr + n - 1) >> PAGE_SHIFT) + 1, need)
        if bad is not None:
            raise MemoryFault(max(addr, bad << PAGE_SHIFT), access)

    def _gather(self, addr: int, n: int) -> bytes:
        """The bytes of ``[addr, addr+n)`` with no permission check (pages must be mapped)."""
        parts: list[memoryview] = []
        end = addr + n
        while addr < end:
            off = addr & PAGE_MASK
            chunk = min(PAGE_SIZE - off, end - addr)
            parts.append(memoryview(self._page(addr >> PAGE_SHIFT))[off : off + chunk])
            addr += chunk
        return b"".join(parts)

    def _copy_in(self, addr: int, data: memoryview) -> None:
        """Copy ``data`` to ``addr`` with no permission check (pages must be mapped)."""
        pos = 0
        n = len(data)
        while pos < n:
            off = addr & PAGE_MASK
            chunk = min(PAGE_SIZE - off, n - pos)
            self._page(addr >> PAGE_SHIFT)[off : off + chunk] = data[pos : pos + chunk]
            addr += chunk
            pos += chunk

    def load(self, addr: int, size: int) -> int:
        """The unsigned little-endian value of ``size`` bytes at ``addr`` (size in 1, 2, 4, 8, 16)."""
        if size not in _MASKS:
            raise InvalidArgument(f"load: unsupported access size {size}")
        off = addr & PAGE_MASK
        if off <= PAGE_SIZE - size:
            page = self.readable.get(addr >> PAGE_SHIFT)
            if page is not None:
                return int.from_bytes(page[off : off + size], "little")
        return int.from_bytes(self.read(addr, size), "little")

    def store(self, addr: int, size: int, value: int) -> None:
        """Store the low ``size`` bytes of ``value`` little-endian at ``addr`` (all-or-nothing)."""
        mask = _MASKS.get(size)
        if mask is None:
            raise InvalidArgument(f"store: unsupported access size {size}")
        data = (value & mask).to_bytes(size, "little")
        off = addr & PAGE_MASK
        if off <= PAGE_SIZE - size:
            page = self.writable.get(addr >> PAGE_SHIFT)
            if page is not None:
                page[off : off + size] = data
                return
        self.write(addr, data)

    def read(self, addr: int, n: int) -> bytes:
        """``n`` bytes at ``addr``; every touched page needs ``PROT_READ``."""
        if n <= 0:
            if n == 0:
                return b""
            raise InvalidArgument(f"read: negative length {n}")
        off = addr & PAGE_MASK
        if off + n <= PAGE_SIZE:
            page = self.readable.get(addr >> PAGE_SHIFT)
            if page is None:
                page = self._touch(addr, PROT_READ, "read")
            return bytes(page[off : off + n])
        self._check(addr, n, PROT_READ, "read")
        return self._gather(addr, n)

    def write(self, addr: int, data: Buffer) -> None:
        """Write ``data`` at ``addr``; every touched page needs ``PROT_WRITE``; all-or-nothing."""
        view = memoryview(data).cast("B")
        n = len(view)
        if n == 0:
            return
        off = addr & PAGE_MASK
        if off + n <= PAGE_SIZE:
            page = self.writable.get(addr >> PAGE_SHIFT)
            if page is not None:
                page[off : off + n] = view
                return
        self._check(addr, n, PROT_WRITE, "write")
        if self._watched:
            watched = self._watched
            for pn in range(addr >> PAGE_SHIFT, ((addr + n - 1) >> PAGE_SHIFT) + 1):
                if pn in watched:
                    self._release_watch(pn)
        self._copy_in(addr, view)

    def fetch(self, addr: int, n: int) -> bytes:
        """``n`` instruction bytes at ``addr``; every touched page needs ``PROT_EXEC``."""
        if n <= 0:
            if n == 0:
                return b""
            raise InvalidArgument(f"fetch: negative length {n}")
        off = addr & PAGE_MASK
        if off + n <= PAGE_SIZE:
            return bytes(self._touch(addr, PROT_EXEC, "execute")[off : off + n])
        self._check(addr, n, PROT_EXEC, "execute")
        return self._gather(addr, n)

    def peek(self, addr: int, n: int) -> bytes:
        """``n`` bytes at ``addr`` read as the host does: any mapped page, whatever its protection."""
        if n <= 0:
            return b""
        self._check_mapped(addr, n, "read")
        return self._gather(addr, n)

    def poke(self, addr: int, data: Buffer) -> None:
        """Write ``data`` as the host does: any mapped page, whatever its protection; all-or-nothing.

        Translations of the pages written are dropped (the code-write callbacks
        run) as for a guest store.
        """
        view = memoryview(data).cast("B")
        if not len(view):
            return
        self._check_mapped(addr, len(view), "write")
        for pn in self._watched_in(addr >> PAGE_SHIFT, ((addr + len(view) - 1) >> PAGE_SHIFT) + 1):
            self._release_watch(pn)
        self._copy_in(addr, view)

    def _check_mapped(self, addr: int, n: int, access: str) -> None:
        hole = self._regions.first_hole(addr >> PAGE_SHIFT, ((addr + n - 1) >> PAGE_SHIFT) + 1)
        if hole is not None:
            raise MemoryFault(max(addr, hole << PAGE_SHIFT), access)

    def read_cstring(self, addr: int, limit: int = CSTRING_LIMIT) -> bytes:
        """The bytes from ``addr`` up to (not including) the first NUL.

        At most ``limit`` bytes are returned; a result of exactly ``limit``
        bytes means no NUL was found within them. Reaching an unreadable page
        before the NUL raises :class:`~vm_core.errors.MemoryFault`.
        """
        if limit < 0:
            raise InvalidArgument(f"read_cstring: negative limit {limit}")
        readable = self.readable
        parts: list[bytes | bytearray] = []
        taken = 0
        while taken < limit:
            page = readable.get(addr >> PAGE_SHIFT)
            if page is None:
                page = self._touch(addr, PROT_READ, "read")
            off = addr & PAGE_MASK
            stop = min(PAGE_SIZE, off + (limit - taken))
            chunk = bytes(page[off:stop])  # any page storage: a bytearray, or a view of a backing's memory
            nul = chunk.find(0)
            if nul >= 0:
                parts.append(chunk[:nul])
                break
            parts.append(chunk)
            taken += stop - off
            addr += stop - off
        return b"".join(parts)

    # ------------------------------------------------------------------ snapshots

    def dump_regions(self) -> list[RegionRecord]:
        """Every region as ``(first page, end page, prot, commit)`` in address order."""
        return [(r.start, r.end, r.prot, int(r.commit)) for r in self._regions]

    def dump_pages(self) -> Iterator[tuple[int, int, bytes]]:
        """Every page that is not all zeros until touched, as ``(page_number, prot, contents)``, in address order.

        That is every touched page plus the untouched pages that hold a
        region's initial data; :meth:`dump_regions` and these pages rebuild
        the whole address space (:meth:`restore_pages`).
        """
        return dump_pages(self)

    def restore_pages(
        self, items: Iterable[tuple[int, int, Buffer]], regions: Iterable[RegionRecord] | None = None
    ) -> None:
        """Replace all memory with ``regions`` and the touched pages ``items`` (see :meth:`dump_pages`).

        Without ``regions`` (snapshots from before sparse memory) every page of
        ``items`` is its own mapping. Every page must lie in a region with its
        protection. Everything is validated before anything changes. Watched
        pages are released with their callbacks called, since their contents
        are replaced.
        """
        restore_pages(self, items, regions)
