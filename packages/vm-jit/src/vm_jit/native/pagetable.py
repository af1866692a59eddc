"""Host page tables through which native code reaches guest memory.

Native code cannot look up Python dicts, so each
:class:`~vm_mem.space.AddressSpace` gets two two-level tables of host
addresses, one mirroring ``readable`` and one ``writable``: the guest page
number ``pn`` (below :data:`PAGE_NUMBER_LIMIT`, a 39-bit user space) selects
top-level entry ``pn >> 14``, the address of a second-level array of 2^14
entries, whose entry ``pn & 0x3fff`` is the host address of the page's
``bytearray`` buffer, or 0. Top-level entries never hold 0: ranges with no
pages point at one shared all-zero second level, and so does one extra
top-level entry (index 2^13, where native code clamps higher addresses), so
native code needs a single test: a 0 page address means "not accessible on
the fast path", and native code returns to Python, which takes the checked
slow path (faults, page-crossing accesses, stores into pages watched as
code, pages above the table's range).

A page's host address is that of its ``bytearray`` buffer, which stays put
because vm-mem never resizes a page (every page is exactly 4096 bytes; a
replaced page is a new object); the table holds a reference to each page
until it leaves the mirror, so no buffer is freed while native code may
still reach it. The mirror is kept exact by vm-mem's
``on_mapping_change`` callbacks, which name every page range whose
membership may have changed.
"""

from __future__ import annotations

import ctypes
from typing import Any

PAGE_SIZE = 4096
LEVEL2_BITS = 14
LEVEL2_SIZE = 1 << LEVEL2_BITS
LEVEL1_SIZE = 1 << 13
#: Page numbers at or above this are never in the tables (addresses from 2^39 up).
PAGE_NUMBER_LIMIT = LEVEL1_SIZE * LEVEL2_SIZE

_Level1 = ctypes.c_uint64 * (LEVEL1_SIZE + 1)
_Level2 = ctypes.c_uint64 * LEVEL2_SIZE
#: The second level of every range without pages (never written).
_EMPTY = _Level2()
_buffer_address = ctypes.pythonapi.PyByteArray_AsString
_buffer_address.restype = ctypes.c_void_p
_buffer_address.argtypes = [ctypes.py_object]


class HostPageTable:
    """One two-level table (see the module docstring) for one page dict."""

    def __init__(self) -> None:
        self.top = _Level1(*([ctypes.addressof(_EMPTY)] * (LEVEL1_SIZE + 1)))
        self.address = ctypes.addressof(self.top)
        self._level2: dict[int, Any] = {}
        self._pinned: dict[int, bytearray] = {}

    def set(self, pn: int, page: bytearray | None) -> None:
        """Make page ``pn`` point at ``page`` (None: absent)."""
        if not 0 <= pn < PAGE_NUMBER_LIMIT:
            return
        if page is None:
            if self._pinned.pop(pn, None) is not None:
                self._level2[pn >> LEVEL2_BITS][pn & (LEVEL2_SIZE - 1)] = 0
            return
        if self._pinned.get(pn) is page:
            return
        if len(page) != PAGE_SIZE:
            raise ValueError(f"guest page {pn:#x} is {len(page)} bytes, not {PAGE_SIZE}")
        level2 = self._level2.get(pn >> LEVEL2_BITS)
        if level2 is None:
            level2 = self._level2[pn >> LEVEL2_BITS] = _Level2()
            self.top[pn >> LEVEL2_BITS] = ctypes.addressof(level2)
        self._pinned[pn] = page
        level2[pn & (LEVEL2_SIZE - 1)] = _buffer_address(page)

    def sync(self, source: dict[int, bytearray], first: int, last: int) -> None:
        """Make pages ``first <= pn < last`` equal ``source``'s (cost bounded by the smaller side)."""
        last = min(last, PAGE_NUMBER_LIMIT)
        if first >= last:
            return
        span = last - first
        stale = (
            [pn for pn in range(first, last) if pn in self._pinned]
            if span <= len(self._pinned)
            else [pn for pn in self._pinned if first <= pn < last]
        )
        for pn in stale:
            if pn not in source:
                self.set(pn, None)
        present = (
            [(pn, source[pn]) for pn in range(first, last) if pn in source]
            if span <= len(source)
            else [(pn, page) for pn, page in source.items() if first <= pn < last]
        )
        for pn, page in present:
            self.set(pn, page)

    def lookup(self, pn: int) -> int:
        """The host address the table holds for page ``pn`` (0 if none)."""
        if not 0 <= pn < PAGE_NUMBER_LIMIT:
            return 0
        level2 = self._level2.get(pn >> LEVEL2_BITS)
        return 0 if level2 is None else int(level2[pn & (LEVEL2_SIZE - 1)])

    def __len__(self) -> int:
        return len(self._pinned)

    def clear(self) -> None:
        for pn in list(self._pinned):
            self.set(pn, None)


class GuestPageTables:
    """The readable and writable tables of one address space, kept in sync through its callbacks."""

    def __init__(self, mem: Any) -> None:
        self.mem = mem
        self.readable = HostPageTable()
        self.writable = HostPageTable()
        self.sync(0, PAGE_NUMBER_LIMIT)
        callbacks = getattr(mem, "on_mapping_change", None)
        #: Without the callbacks (a memory object other than vm-mem's) the tables must be re-synced by hand.
        self.tracked = callbacks is not None
        if callbacks is not None:
            callbacks.append(self.sync)

    def sync(self, first: int, last: int) -> None:
        self.readable.sync(self.mem.readable, first, last)
        self.writable.sync(self.mem.writable, first, last)

    def detach(self) -> None:
        """Stop following the address space and release every pinned page."""
        callbacks = getattr(self.mem, "on_mapping_change", None)
        if callbacks is not None and self.sync in callbacks:
            callbacks.remove(self.sync)
        self.readable.clear()
        self.writable.clear()
