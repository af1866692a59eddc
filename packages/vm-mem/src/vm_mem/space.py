"""The guest user address space: page-granular, little-endian, with Linux protections.

:class:`AddressSpace` is the one memory object every engine and the Linux layer
share. Its layout is part of its contract, because compiled guest code reads
and writes memory on its fast path directly through four plain dicts keyed by
page number (``address >> PAGE_SHIFT``):

``pages``
    every mapped page (``PROT_NONE`` included) -> its 4096-byte ``bytearray``;
``readable``
    the pages with ``PROT_READ``;
``writable``
    the pages with ``PROT_WRITE`` that are *not* watched as translated code;
``prot``
    every mapped page -> its ``PROT_*`` bits.

The same ``bytearray`` object is shared by all dicts of a page, so a write
through one is seen through the others. Every method keeps the dicts
consistent. The slow paths (:meth:`AddressSpace.load`, :meth:`~AddressSpace.store`,
:meth:`~AddressSpace.read`, :meth:`~AddressSpace.write`,
:meth:`~AddressSpace.fetch`) check every page an access touches and raise
:class:`vm_core.errors.MemoryFault` naming the first bad byte; a faulting
store changes nothing (stores are all-or-nothing across pages).

Self-modifying code: an engine that translated code from a page calls
:meth:`~AddressSpace.watch_code`, which takes the page out of ``writable`` so
fast-path stores miss and fall into the slow path. A slow-path store that hits
a watched page un-watches it and calls every ``on_code_write`` callback with
the page number (once per page per watch) before the bytes land. Replacing the
page (``map`` over it), unmapping it, or removing its ``PROT_EXEC`` likewise
un-watches it and calls the callbacks, since translations of it are then stale.
Callbacks must not map, unmap or protect memory.

Mirrors of the page dicts (native code's host page tables): every
``on_mapping_change`` callback is called with ``(first, last)`` after any
change that may have added, removed or replaced pages numbered
``first <= pn < last`` in ``readable`` or ``writable`` (map, unmap,
protect, watching and un-watching code, restore). These callbacks must not
change memory either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from vm_core.errors import MemoryFault
from vm_core.logging import get_logger

from vm_mem.errors import InvalidArgument, NotMapped, OutOfAddressSpace

PAGE_SIZE = 4096
PAGE_SHIFT = 12
PAGE_MASK = PAGE_SIZE - 1

PROT_NONE = 0
PROT_READ = 1
PROT_WRITE = 2
PROT_EXEC = 4
PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC

#: One past the highest address any guest address space can hold.
ADDRESS_LIMIT = 1 << 64
#: Top of the top-down ``mmap`` area: just below vm-linux's stack in a 39-bit user space.
DEFAULT_MMAP_BASE = 0x3F_0000_0000
#: Lowest address ``find_free`` hands out (Linux's default ``vm.mmap_min_addr``).
DEFAULT_MMAP_MIN_ADDR = 0x10000
#: Access sizes of :meth:`AddressSpace.load` and :meth:`AddressSpace.store`.
ACCESS_SIZES = (1, 2, 4, 8, 16)
#: Default byte limit of :meth:`AddressSpace.read_cstring`.
CSTRING_LIMIT = PAGE_SIZE * 32

_MASKS = {size: (1 << (8 * size)) - 1 for size in ACCESS_SIZES}

CodeWriteCallback = Callable[[int], None]
MappingChangeCallback = Callable[[int, int], None]
Buffer = bytes | bytearray | memoryview


def page_round_up(value: int) -> int:
    """``value`` rounded up to a multiple of :data:`PAGE_SIZE`."""
    return (value + PAGE_MASK) & ~PAGE_MASK


def page_round_down(value: int) -> int:
    """``value`` rounded down to a multiple of :data:`PAGE_SIZE`."""
    return value & ~PAGE_MASK


def _require_int(what: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{what} must be an integer, not {type(value).__name__}")
    return value


def _check_prot(prot: Any) -> int:
    _require_int("protection", prot)
    if prot & ~PROT_ALL or prot < 0:
        raise InvalidArgument(f"unknown protection bits in {prot:#x}")
    return int(prot)


class AddressSpace:
    """A guest user address space; see the module docstring for the layout contract.

    ``mmap_base`` (top of the top-down ``find_free`` area), ``mmap_min_addr``
    (lowest address ``find_free`` returns) and ``address_limit`` (one past the
    highest mappable address) are plain settable attributes.
    """

    def __init__(
        self,
        *,
        mmap_base: int = DEFAULT_MMAP_BASE,
        mmap_min_addr: int = DEFAULT_MMAP_MIN_ADDR,
        address_limit: int = ADDRESS_LIMIT,
    ) -> None:
        self.pages: dict[int, bytearray] = {}
        self.readable: dict[int, bytearray] = {}
        self.writable: dict[int, bytearray] = {}
        self.prot: dict[int, int] = {}
        self.on_code_write: list[CodeWriteCallback] = []
        self.on_mapping_change: list[MappingChangeCallback] = []
        self.mmap_base = mmap_base
        self.mmap_min_addr = mmap_min_addr
        self.address_limit = address_limit
        self._watched: set[int] = set()
        self._brk_start: int | None = None
        self._brk = 0
        self._log = get_logger("vm_mem.space")

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

    def _first_unmapped(self, first: int, last: int) -> int | None:
        """The lowest unmapped page in ``[first, last)``, or None (bounded by ``len(pages)``)."""
        pages = self.pages
        pn = first
        while pn < last and pn in pages:
            pn += 1
        return pn if pn < last else None

    def _any_mapped(self, first: int, last: int) -> bool:
        pages = self.pages
        if last - first <= len(pages):
            return any(pn in pages for pn in range(first, last))
        return any(first <= pn < last for pn in pages)

    def _mapped_in(self, first: int, last: int) -> list[int]:
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
        if page is not None and self.prot[pn] & PROT_WRITE:
            self.writable[pn] = page
            self._mapping_changed(pn, pn + 1)
        for callback in list(self.on_code_write):
            callback(pn)

    def _drop(self, pn: int) -> None:
        del self.pages[pn]
        del self.prot[pn]
        self.readable.pop(pn, None)
        self.writable.pop(pn, None)

    def _install(self, pn: int, page: bytearray, prot: int) -> None:
        self.pages[pn] = page
        self.prot[pn] = prot
        if prot & PROT_READ:
            self.readable[pn] = page
        else:
            self.readable.pop(pn, None)
        if prot & PROT_WRITE and pn not in self._watched:
            self.writable[pn] = page
        else:
            self.writable.pop(pn, None)

    # ------------------------------------------------------------------ mapping

    def map(self, addr: int, length: int, prot: int, data: Buffer | None = None) -> None:
        """Map ``[addr, addr+length)`` zero-filled with ``prot``, replacing what was there.

        ``addr`` must be page-aligned; ``length`` is rounded up to whole pages
        and must be positive. ``data`` (at most ``length`` bytes) is copied to
        the start of the range.
        """
        first, last = self._page_span("map", addr, length)
        prot = _check_prot(prot)
        if length == 0:
            raise InvalidArgument("map: empty range")
        if data is not None and len(data) > length:
            raise InvalidArgument(f"map: {len(data)} bytes of data do not fit in {length:#x} bytes")
        for pn in self._watched_in(first, last):
            self._release_watch(pn)
        numbers = range(first, last)
        fresh = {pn: bytearray(PAGE_SIZE) for pn in numbers}
        self.pages.update(fresh)
        self.prot.update(dict.fromkeys(numbers, prot))
        for table, bit in ((self.readable, PROT_READ), (self.writable, PROT_WRITE)):
            if prot & bit:
                table.update(fresh)
            else:
                for pn in numbers:
                    table.pop(pn, None)
        if data:
            self._copy_in(addr, memoryview(data).cast("B"))
        self._mapping_changed(first, last)
        self._log.debug("map", start=hex(addr), end=hex(last << PAGE_SHIFT), prot=prot)

    def unmap(self, addr: int, length: int) -> None:
        """Unmap every page of ``[addr, addr+length)``; unmapped pages in the range are fine."""
        first, last = self._page_span("unmap", addr, length)
        if length == 0:
            raise InvalidArgument("unmap: empty range")
        for pn in self._watched_in(first, last):
            self._release_watch(pn)
        for pn in self._mapped_in(first, last):
            self._drop(pn)
        self._mapping_changed(first, last)
        self._log.debug("unmap", start=hex(addr), end=hex(last << PAGE_SHIFT))

    def protect(self, addr: int, length: int, prot: int) -> None:
        """Set the protection of every page of ``[addr, addr+length)``.

        Raises :class:`~vm_mem.errors.NotMapped` (changing nothing) if any page
        of the range is unmapped. A zero length is a no-op, as in Linux.
        """
        first, last = self._page_span("protect", addr, length)
        prot = _check_prot(prot)
        hole = self._first_unmapped(first, last)
        if hole is not None:
            raise NotMapped(addr, length, hole << PAGE_SHIFT)
        watched = self._watched
        for pn in range(first, last):
            self._install(pn, self.pages[pn], prot)
            if pn in watched and not prot & PROT_EXEC:
                self._release_watch(pn)
        self._mapping_changed(first, last)
        self._log.debug("protect", start=hex(addr), end=hex(last << PAGE_SHIFT), prot=prot)

    def is_mapped(self, addr: int, length: int) -> bool:
        """Whether every page touched by ``[addr, addr+length)`` is mapped (any protection)."""
        if length < 0:
            raise InvalidArgument(f"is_mapped: negative length {length}")
        if length == 0:
            return True
        return self._first_unmapped(addr >> PAGE_SHIFT, ((addr + length - 1) >> PAGE_SHIFT) + 1) is None

    def mappings(self) -> list[tuple[int, int, int]]:
        """The mapped ranges as sorted ``(start, end, prot)``, adjacent equal-prot pages coalesced."""
        ranges: list[list[int]] = []
        prot = self.prot
        for pn in sorted(self.pages):
            p = prot[pn]
            start = pn << PAGE_SHIFT
            if ranges and ranges[-1][1] == start and ranges[-1][2] == p:
                ranges[-1][1] = start + PAGE_SIZE
            else:
                ranges.append([start, start + PAGE_SIZE, p])
        return [(start, end, p) for start, end, p in ranges]

    def find_free(self, length: int, hint: int = 0) -> int:
        """A free page-aligned start for ``length`` bytes (``mmap`` without ``MAP_FIXED``).

        ``hint`` (rounded up to a page) is used when its whole range is free and
        at or above ``mmap_min_addr``; otherwise the highest free range ending at
        or below ``mmap_base`` is chosen. Raises
        :class:`~vm_mem.errors.OutOfAddressSpace` when there is none.
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
            if start >= low and start + npages <= limit and not self._any_mapped(start, start + npages):
                return start << PAGE_SHIFT
        end = min(page_round_down(self.mmap_base), page_round_down(self.address_limit)) >> PAGE_SHIFT
        for pn in sorted((pn for pn in self.pages if pn < end), reverse=True):
            candidate = end - npages
            if candidate < low:
                break
            if candidate > pn:
                return candidate << PAGE_SHIFT
            end = pn
        else:
            if end - npages >= low:
                return (end - npages) << PAGE_SHIFT
        raise OutOfAddressSpace(length)

    # ------------------------------------------------------------------ access

    def _check(self, addr: int, n: int, need: int, access: str) -> None:
        """Raise MemoryFault unless every page touched by ``[addr, addr+n)`` has ``need``."""
        prot = self.prot
        for pn in range(addr >> PAGE_SHIFT, ((addr + n - 1) >> PAGE_SHIFT) + 1):
            p = prot.get(pn)
            if p is None or not p & need:
                raise MemoryFault(max(addr, pn << PAGE_SHIFT), access)

    def _gather(self, addr: int, n: int) -> bytes:
        """The bytes of ``[addr, addr+n)`` with no permission check (pages must be mapped)."""
        pages = self.pages
        parts: list[memoryview] = []
        end = addr + n
        while addr < end:
            off = addr & PAGE_MASK
            chunk = min(PAGE_SIZE - off, end - addr)
            parts.append(memoryview(pages[addr >> PAGE_SHIFT])[off : off + chunk])
            addr += chunk
        return b"".join(parts)

    def _copy_in(self, addr: int, data: memoryview) -> None:
        """Copy ``data`` to ``addr`` with no permission check (pages must be mapped)."""
        pages = self.pages
        pos = 0
        n = len(data)
        while pos < n:
            off = addr & PAGE_MASK
            chunk = min(PAGE_SIZE - off, n - pos)
            pages[addr >> PAGE_SHIFT][off : off + chunk] = data[pos : pos + chunk]
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
                raise MemoryFault(addr, "read")
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
            pn = addr >> PAGE_SHIFT
            p = self.prot.get(pn)
            if p is None or not p & PROT_EXEC:
                raise MemoryFault(addr, "execute")
            return bytes(self.pages[pn][off : off + n])
        self._check(addr, n, PROT_EXEC, "execute")
        return self._gather(addr, n)

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
                raise MemoryFault(addr, "read")
            off = addr & PAGE_MASK
            stop = min(PAGE_SIZE, off + (limit - taken))
            nul = page.find(0, off, stop)
            if nul >= 0:
                parts.append(page[off:nul])
                break
            parts.append(page[off:stop])
            taken += stop - off
            addr += stop - off
        return b"".join(parts)

    # ------------------------------------------------------------------ code watching

    def watch_code(self, page_number: int) -> None:
        """Watch mapped page ``page_number`` as translated code (take it out of ``writable``)."""
        if page_number not in self.pages:
            address = page_number << PAGE_SHIFT
            raise NotMapped(address, PAGE_SIZE, address)
        self._watched.add(page_number)
        if self.writable.pop(page_number, None) is not None:
            self._mapping_changed(page_number, page_number + 1)

    def unwatch_code(self, page_number: int) -> None:
        """Stop watching ``page_number`` without calling the callbacks (no-op if not watched)."""
        if page_number in self._watched:
            self._watched.discard(page_number)
            if self.prot[page_number] & PROT_WRITE:
                self.writable[page_number] = self.pages[page_number]
                self._mapping_changed(page_number, page_number + 1)

    def is_code_watched(self, page_number: int) -> bool:
        """Whether ``page_number`` is currently watched as code."""
        return page_number in self._watched

    @property
    def watched_pages(self) -> frozenset[int]:
        """The page numbers currently watched as code."""
        return frozenset(self._watched)

    # ------------------------------------------------------------------ brk

    @property
    def brk_start(self) -> int | None:
        """The initial program break (page-aligned), or None before :meth:`set_brk_base`."""
        return self._brk_start

    @property
    def brk_current(self) -> int:
        """The current program break (0 before :meth:`set_brk_base`)."""
        return self._brk

    def set_brk_base(self, addr: int) -> None:
        """Set the initial break from the end of the loaded program's data.

        Like Linux's ELF loader, the break starts at that end rounded up to a
        page; the page holding the unaligned end belongs to the program's own
        mapping, so the heap begins on the next page boundary.
        """
        _require_int("brk base", addr)
        if addr < 0 or page_round_up(addr) > self.address_limit:
            raise InvalidArgument(f"brk base {addr:#x} is outside the address space")
        self._brk_start = self._brk = page_round_up(addr)
        self._log.debug("brk_base", brk=hex(self._brk))

    def restore_brk(self, start: int, current: int) -> None:
        """Restore the break state saved from :attr:`brk_start` / :attr:`brk_current` (snapshots)."""
        _require_int("brk start", start)
        _require_int("brk current", current)
        if start & PAGE_MASK or not 0 <= start <= current <= self.address_limit:
            raise InvalidArgument(f"invalid brk state start={start:#x} current={current:#x}")
        self._brk_start = start
        self._brk = current

    def brk(self, new: int) -> int:
        """The ``brk`` system call: move the break to ``new`` and return the resulting break.

        Linux semantics (mm/mmap.c): a value below the initial break (``0``
        included) or outside the address space changes nothing and returns
        the current break. Pages are mapped up to the page-rounded break:
        growing maps fresh zero pages ``PROT_READ|PROT_WRITE``; shrinking
        unmaps the pages wholly above the new break. Growth is refused (the
        old break is returned) when any page of the new heap, or the guard
        page just above it, is already mapped; shrinking is refused when no
        page between the new and the old page-rounded break is mapped.
        """
        start = self._brk_start
        old = self._brk
        if start is None or not isinstance(new, int) or new < start or new > self.address_limit:
            return old
        new_top = page_round_up(new)
        old_top = page_round_up(old)
        if new_top == old_top:
            self._brk = new
            return new
        if new <= old:
            if not self._any_mapped(new_top >> PAGE_SHIFT, old_top >> PAGE_SHIFT):
                return old  # Linux moves the break down only over memory it can give back
            self.unmap(new_top, old_top - new_top)
            self._brk = new
            return new
        guard_end = min((new_top >> PAGE_SHIFT) + 1, self.address_limit >> PAGE_SHIFT)
        if self._any_mapped(old_top >> PAGE_SHIFT, guard_end):
            self._log.debug("brk_refused", old=hex(old), new=hex(new))
            return old
        self.map(old_top, new_top - old_top, PROT_READ | PROT_WRITE)
        self._brk = new
        return new

    # ------------------------------------------------------------------ snapshots

    def dump_pages(self) -> Iterator[tuple[int, int, bytes]]:
        """Every mapped page as ``(page_number, prot, contents)`` in address order."""
        pages = self.pages
        prot = self.prot
        for pn in sorted(pages):
            yield pn, prot[pn], bytes(pages[pn])

    def restore_pages(self, items: Iterable[tuple[int, int, Buffer]]) -> None:
        """Replace all memory with the pages of ``items`` (as produced by :meth:`dump_pages`).

        Everything is validated before anything changes. Watched pages are
        released with their callbacks called, since their contents are replaced.
        """
        staged: list[tuple[int, int, bytearray]] = []
        limit = self.address_limit >> PAGE_SHIFT
        for pn, prot, data in items:
            _require_int("page number", pn)
            if not 0 <= pn < limit:
                raise InvalidArgument(f"restore_pages: page number {pn:#x} is outside the address space")
            page = bytearray(data)
            if len(page) != PAGE_SIZE:
                raise InvalidArgument(f"restore_pages: page {pn:#x} has {len(page)} bytes, not {PAGE_SIZE}")
            staged.append((pn, _check_prot(prot), page))
        for pn in sorted(self._watched):
            self._release_watch(pn)
        self.pages.clear()
        self.readable.clear()
        self.writable.clear()
        self.prot.clear()
        for pn, prot, page in staged:
            self._install(pn, page, prot)
        self._mapping_changed(0, self.address_limit >> PAGE_SHIFT)
        self._log.debug("restore_pages", pages=len(staged))
