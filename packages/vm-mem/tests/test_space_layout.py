"""Mapping management: map/unmap/protect, mappings(), find_free and page dumps.

find_free is checked against brute-force searches over the page set, and
with hypothesis for "never overlaps": repeatedly finding and mapping ranges
must produce pairwise disjoint ranges inside the allowed window.
"""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from vm_mem import (
    DEFAULT_MMAP_BASE,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    AddressSpace,
    InvalidArgument,
    NotMapped,
    OutOfAddressSpace,
)

RW = PROT_READ | PROT_WRITE
RX = PROT_READ | PROT_EXEC


def test_map_is_like_map_fixed_replacing_contents_and_protection() -> None:
    space = AddressSpace()
    space.map(0x10000, 3 * PAGE_SIZE, RW, b"\xaa" * (3 * PAGE_SIZE))
    space.map(0x11000, 100, RX, b"new")  # length rounds up to one page
    assert space.mappings() == [(0x10000, 0x11000, RW), (0x11000, 0x12000, RX), (0x12000, 0x13000, RW)]
    assert space.read(0x11000, PAGE_SIZE) == b"new" + bytes(PAGE_SIZE - 3)
    assert space.read(0x10FFF, 1) == b"\xaa" and space.read(0x12000, 1) == b"\xaa"


def test_unmap_splits_ranges_and_tolerates_holes() -> None:
    space = AddressSpace()
    space.map(0x10000, 4 * PAGE_SIZE, RW)
    space.unmap(0x11000, PAGE_SIZE)
    space.unmap(0x11000, 100 * PAGE_SIZE)  # mostly unmapped range: fine, like munmap
    assert space.mappings() == [(0x10000, 0x11000, RW)]
    assert not space.is_mapped(0x10000, PAGE_SIZE + 1)
    assert space.is_mapped(0x10FFF, 1) and space.is_mapped(0x10000, 0)
    space.unmap(0, 1 << 60)  # huge sparse range is cheap
    assert space.mappings() == [] and space.pages == {} and space.readable == {}


def test_protect_is_all_or_nothing_over_holes() -> None:
    space = AddressSpace()
    space.map(0x10000, PAGE_SIZE, RW)
    space.map(0x12000, PAGE_SIZE, RW)
    with pytest.raises(NotMapped) as info:
        space.protect(0x10000, 3 * PAGE_SIZE, PROT_READ)
    assert info.value.first_unmapped == 0x11000
    assert space.mappings() == [(0x10000, 0x11000, RW), (0x12000, 0x13000, RW)]
    space.protect(0x10000, 0, PROT_NONE)  # zero length: no-op
    space.protect(0x12000, 1, PROT_READ)
    assert space.mappings() == [(0x10000, 0x11000, RW), (0x12000, 0x13000, PROT_READ)]
    assert 0x12 not in space.readable and space.read(0x12000, 1) == b"\0"
    assert 0x12 in space.readable and 0x12 not in space.writable
    space.protect(0x12000, PAGE_SIZE, PROT_NONE)
    assert 0x12 in space.pages and 0x12 not in space.readable and space.prot[0x12] == PROT_NONE


def test_all_dicts_share_one_bytearray_per_page() -> None:
    space = AddressSpace()
    space.map(0x10000, PAGE_SIZE, RW)
    assert space.pages == space.readable == space.writable == {}  # nothing touched yet
    space.load(0x10000, 1)
    page = space.pages[0x10]
    assert space.readable[0x10] is page and space.writable[0x10] is page
    space.writable[0x10][5] = 7
    assert space.load(0x10005, 1) == 7


def test_find_free_prefers_a_free_hint_else_goes_top_down_below_mmap_base() -> None:
    space = AddressSpace()
    assert space.mmap_base == DEFAULT_MMAP_BASE == 0x3F_0000_0000
    top = space.find_free(3 * PAGE_SIZE)
    assert top == DEFAULT_MMAP_BASE - 3 * PAGE_SIZE
    space.map(top, 3 * PAGE_SIZE, RW)
    assert space.find_free(PAGE_SIZE) == top - PAGE_SIZE
    assert space.find_free(PAGE_SIZE, hint=0x5000_0123) == 0x5000_1000  # hint rounded up, free
    assert space.find_free(PAGE_SIZE, hint=top + 5) == top - PAGE_SIZE  # hint taken: fall back
    assert space.find_free(PAGE_SIZE, hint=0x1000) == top - PAGE_SIZE  # below mmap_min_addr
    assert space.find_free(PAGE_SIZE, hint=space.mmap_min_addr) == space.mmap_min_addr == 0x10000
    space.unmap(top + PAGE_SIZE, PAGE_SIZE)  # a one-page hole is too small for two pages
    assert space.find_free(2 * PAGE_SIZE) == top - 2 * PAGE_SIZE
    assert space.find_free(PAGE_SIZE) == top + PAGE_SIZE


def test_find_free_raises_when_nothing_below_the_ceiling_is_free() -> None:
    space = AddressSpace(mmap_base=0x14000, mmap_min_addr=0x10000, address_limit=0x14000)
    space.map(0x10000, 2 * PAGE_SIZE, RW)
    space.map(0x13000, PAGE_SIZE, RW)
    assert space.find_free(PAGE_SIZE) == 0x12000
    with pytest.raises(OutOfAddressSpace):
        space.find_free(2 * PAGE_SIZE)
    space.map(0x12000, PAGE_SIZE, RW)
    with pytest.raises(OutOfAddressSpace) as info:
        space.find_free(1)
    assert info.value.length == 1
    space.address_limit = 0x20000  # above mmap_base, bottom-up, up to the ceiling
    assert space.find_free(0xC000) == 0x14000
    with pytest.raises(OutOfAddressSpace):
        space.find_free(0xC001)


@settings(max_examples=80, deadline=None)
@given(
    existing=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 4)), max_size=8),
    requests=st.lists(
        st.tuples(st.integers(1, 6 * PAGE_SIZE), st.just(0) | st.integers(0, 0x40000)), min_size=1, max_size=12
    ),
)
def test_find_free_never_overlaps(existing: list[tuple[int, int]], requests: list[tuple[int, int]]) -> None:
    low, base = 0x10000, 0x10000 + 40 * PAGE_SIZE
    space = AddressSpace(mmap_base=base, mmap_min_addr=low)
    for first, count in existing:
        space.map(low + first * PAGE_SIZE, count * PAGE_SIZE, PROT_READ)
    for length, hint in requests:
        npages = -(-length // PAGE_SIZE)
        free_starts = [
            start
            for start in range(low, base - npages * PAGE_SIZE + 1, PAGE_SIZE)
            if not any((start >> 12) + i in space.prot for i in range(npages))
        ]
        start = space.find_free(length, hint)
        assert start % PAGE_SIZE == 0 and start >= low
        assert not any((start >> 12) + i in space.prot for i in range(npages))
        rounded_hint = -(-hint // PAGE_SIZE) * PAGE_SIZE
        if start != rounded_hint:
            if free_starts:
                assert start == max(free_starts)  # top-down: the highest free range below mmap_base
            else:  # Linux's bottom-up fallback: the lowest free range above mmap_base
                assert start >= base
                assert all(space.any_mapped(s, npages * PAGE_SIZE) for s in range(base, start, PAGE_SIZE))
        space.map(start, length, RW)


def test_dump_and_restore_pages_round_trip_everything() -> None:
    space = AddressSpace()
    space.map(0x10000, 2 * PAGE_SIZE, RW, b"data" * 1500)
    space.map(0x20000, PAGE_SIZE, PROT_NONE)
    space.map(0x30000, PAGE_SIZE, RX, b"code")
    dumped = list(space.dump_pages())
    # the untouched PROT_NONE page holds nothing: only its region is saved
    assert [(pn, prot) for pn, prot, _ in dumped] == [(0x10, RW), (0x11, RW), (0x30, RX)]
    assert space.dump_regions() == [(0x10, 0x12, RW, 0), (0x20, 0x21, PROT_NONE, 0), (0x30, 0x31, RX, 0)]
    copy = AddressSpace()
    copy.map(0x50000, PAGE_SIZE, RW)  # replaced wholesale
    copy.restore_pages(dumped, space.dump_regions())
    assert copy.mappings() == space.mappings()
    assert list(copy.dump_pages()) == dumped
    assert set(copy.readable) == {0x10, 0x11, 0x30} and set(copy.writable) == {0x10, 0x11}
    assert copy.readable[0x10] is copy.pages[0x10]
    copy.store(0x10000, 4, 0)  # the copy is independent of the original
    assert space.read(0x10000, 4) == b"data"


def test_restore_pages_validates_before_changing_anything() -> None:
    space = AddressSpace()
    space.map(0x10000, PAGE_SIZE, RW, b"keep")
    for bad in ([(0x20, RW, b"short")], [(0x20, 9, bytes(PAGE_SIZE))], [(-1, RW, bytes(PAGE_SIZE))]):
        with pytest.raises(InvalidArgument):
            space.restore_pages([(0x40, RW, bytes(PAGE_SIZE)), *bad])
        assert space.mappings() == [(0x10000, 0x11000, RW)] and space.read(0x10000, 4) == b"keep"
