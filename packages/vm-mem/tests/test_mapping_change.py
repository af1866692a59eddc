"""``on_mapping_change``: a mirror of ``readable``/``writable`` kept exact through the callbacks alone.

A model mirror (page number -> the ``bytearray`` object of each dict) is
updated only for the page ranges the callbacks name. After every operation
of a random sequence (map, unmap, protect, watch/unwatch code, first touches
by loads and stores, slow stores into watched pages, brk, restore) the mirror must equal the address space's
own dicts, object identity included: a stale entry would let native code
write into a page that was replaced, unmapped or made read-only.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from vm_core.errors import MemoryFault, VmError
from vm_mem import PROT_EXEC, PROT_READ, PROT_WRITE, AddressSpace

BASE = 0x40000
NPAGES = 8


class Mirror:
    """Two dicts kept in sync with an address space through ``on_mapping_change`` only."""

    def __init__(self, space: AddressSpace) -> None:
        self.space = space
        self.readable: dict[int, bytearray] = dict(space.readable)
        self.writable: dict[int, bytearray] = dict(space.writable)
        self.calls: list[tuple[int, int]] = []
        space.on_mapping_change.append(self.changed)

    def changed(self, first: int, last: int) -> None:
        self.calls.append((first, last))
        for mine, theirs in ((self.readable, self.space.readable), (self.writable, self.space.writable)):
            for pn in [pn for pn in mine if first <= pn < last]:
                del mine[pn]
            for pn, page in theirs.items():
                if first <= pn < last:
                    mine[pn] = page

    def check(self) -> None:
        for mine, theirs in ((self.readable, self.space.readable), (self.writable, self.space.writable)):
            assert mine.keys() == theirs.keys()
            for pn, page in theirs.items():
                assert mine[pn] is page, f"page {pn:#x} is a stale object in the mirror"


PAGE_NUMBERS = st.integers(0, NPAGES - 1)
PROTS = st.sampled_from([0, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE | PROT_EXEC])
OPS = st.one_of(
    st.tuples(st.just("map"), PAGE_NUMBERS, st.integers(1, 3), PROTS),
    st.tuples(st.just("unmap"), PAGE_NUMBERS, st.integers(1, 3)),
    st.tuples(st.just("protect"), PAGE_NUMBERS, st.integers(1, 3), PROTS),
    st.tuples(st.just("watch"), PAGE_NUMBERS),
    st.tuples(st.just("unwatch"), PAGE_NUMBERS),
    st.tuples(st.just("store"), PAGE_NUMBERS, st.integers(0, 4095)),
    st.tuples(st.just("load"), PAGE_NUMBERS),
    st.tuples(st.just("restore")),
)


def apply(space: AddressSpace, op: tuple[Any, ...]) -> None:
    kind = op[0]
    try:
        if kind == "map":
            space.map(BASE + op[1] * 4096, op[2] * 4096, op[3])
        elif kind == "unmap":
            space.unmap(BASE + op[1] * 4096, op[2] * 4096)
        elif kind == "protect":
            space.protect(BASE + op[1] * 4096, op[2] * 4096, op[3])
        elif kind == "watch":
            space.watch_code((BASE >> 12) + op[1])
        elif kind == "unwatch":
            space.unwatch_code((BASE >> 12) + op[1])
        elif kind == "load":
            space.load(BASE + op[1] * 4096, 4)
        elif kind == "store":
            space.store(BASE + op[1] * 4096 + op[2], 8, 0x1122334455667788)
        else:
            space.restore_pages(list(space.dump_pages()), space.dump_regions())
    except (MemoryFault, VmError):
        pass


@settings(max_examples=150, deadline=None)
@given(st.lists(OPS, max_size=25))
def test_mirror_stays_exact(ops: list[tuple[Any, ...]]) -> None:
    space = AddressSpace()
    space.map(BASE, 2 * 4096, PROT_READ | PROT_WRITE)
    mirror = Mirror(space)
    for op in ops:
        apply(space, op)
        mirror.check()


def test_watching_a_writable_page_reports_it_and_a_code_store_reports_it_back() -> None:
    space = AddressSpace()
    space.map(BASE, 4096, PROT_READ | PROT_WRITE | PROT_EXEC)
    mirror = Mirror(space)
    space.fetch(BASE, 4)  # the first touch creates the page: reported
    assert mirror.calls == [(BASE >> 12, (BASE >> 12) + 1)] and mirror.writable[BASE >> 12] is space.pages[BASE >> 12]
    mirror.calls.clear()
    space.watch_code(BASE >> 12)
    assert mirror.calls == [(BASE >> 12, (BASE >> 12) + 1)]
    assert (BASE >> 12) not in mirror.writable
    space.store(BASE + 8, 4, 7)  # slow path: un-watches the page, which is writable again
    assert mirror.calls[-1] == (BASE >> 12, (BASE >> 12) + 1)
    assert mirror.writable[BASE >> 12] is space.pages[BASE >> 12]


def test_map_over_a_page_replaces_the_object_in_the_mirror() -> None:
    space = AddressSpace()
    space.map(BASE, 4096, PROT_READ | PROT_WRITE)
    mirror = Mirror(space)
    space.store(BASE, 1, 1)
    old = space.pages[BASE >> 12]
    space.map(BASE, 4096, PROT_READ | PROT_WRITE)
    assert (BASE >> 12) not in mirror.readable  # replaced by an untouched page
    mirror.check()
    assert space.load(BASE, 1) == 0
    assert mirror.readable[BASE >> 12] is not old
    mirror.check()


def test_brk_growth_and_shrink_are_reported() -> None:
    space = AddressSpace()
    space.set_brk_base(BASE)
    mirror = Mirror(space)
    space.brk(BASE + 3 * 4096)
    mirror.check()
    assert len(mirror.writable) == 0  # mapped, not touched
    for offset in range(0, 3 * 4096, 4096):
        space.store(BASE + offset, 8, 1)
    mirror.check()
    assert len(mirror.writable) == 3
    space.brk(BASE + 4096)
    mirror.check()
    assert len(mirror.writable) == 1


def test_no_callback_for_changes_that_keep_the_dicts() -> None:
    space = AddressSpace()
    space.map(BASE, 4096, PROT_READ | PROT_EXEC)
    mirror = Mirror(space)
    space.watch_code(BASE >> 12)  # not writable: nothing to take out of `writable`
    space.unwatch_code(BASE >> 12)
    assert mirror.calls == []
