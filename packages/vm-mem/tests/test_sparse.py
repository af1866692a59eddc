"""Sparse, lazy memory: what a mapping costs, when pages appear, and the ``max_memory`` bound.

The reference facts are Linux's: a mapping costs nothing until touched; a
touched page keeps its bytes through mprotect and mremap; MADV_DONTNEED
(``discard``) gives private pages back so they read as on first touch (zeros,
or the file's bytes); commit accounting charges private writable memory
(``VM_ACCOUNT``) and private read-only memory when it becomes writable.
"""

from __future__ import annotations

import pytest
from vm_core.errors import MemoryFault
from vm_mem import (
    PAGE_SIZE,
    PROT_READ,
    PROT_WRITE,
    AddressSpace,
    Commit,
    GuestMemoryExhausted,
    InvalidArgument,
    OutOfMemory,
    parse_memory_size,
)
from vm_mem.regions import Region

RW = PROT_READ | PROT_WRITE
GIB = 1 << 30
BASE = 0x10_0000_0000


def test_a_64_gib_mapping_costs_only_the_pages_touched() -> None:
    space = AddressSpace(address_limit=1 << 47)
    space.map(BASE, 64 * GIB, RW)
    assert space.pages == space.readable == space.writable == {} and space.touched == 0
    assert len(space.prot) == 64 * GIB // PAGE_SIZE and space.prot[(BASE + 32 * GIB) >> 12] == RW
    for offset in (0, 32 * GIB + 5, 64 * GIB - 8):
        space.store(BASE + offset, 8, offset)
    assert len(space.pages) == 3 and space.touched == 3 * PAGE_SIZE
    assert space.load(BASE + 32 * GIB + 5, 8) == 32 * GIB + 5
    assert space.read(BASE + 16 * GIB, 4) == bytes(4) and len(space.pages) == 4  # a read touches too
    # whole-range operations cost the touched pages, not the 16M pages of the range
    space.protect(BASE, 64 * GIB, PROT_READ)
    assert set(space.readable) == set(space.pages) and space.writable == {}
    space.unmap(BASE + GIB, 62 * GIB)
    assert len(space.pages) == 2 and space.mappings() == [
        (BASE, BASE + GIB, PROT_READ), (BASE + 63 * GIB, BASE + 64 * GIB, PROT_READ)]  # fmt: skip
    assert not space.is_mapped(BASE, 2 * GIB) and space.any_mapped(BASE, 2 * GIB)
    assert list(space.dump_pages()) == [(pn, PROT_READ, bytes(space.pages[pn])) for pn in sorted(space.pages)]


def test_untouched_pages_hold_their_initial_data_until_touched() -> None:
    space = AddressSpace()
    space.map(0x10000, 3 * PAGE_SIZE, RW, b"a" * PAGE_SIZE + b"b" * 10)
    assert space.pages == {}
    assert space.read(0x11000, 12) == b"b" * 10 + b"\0\0" and list(space.pages) == [0x11]
    dumped = {pn: data[:1] for pn, _prot, data in space.dump_pages()}
    assert dumped == {0x10: b"a", 0x11: b"b"}  # the data page untouched, the touched page; not the zero page
    space.write(0x10000, b"A")
    space.discard(0x10000, 3 * PAGE_SIZE)  # MADV_DONTNEED: back to the file's bytes
    assert space.pages == {} and space.read(0x10000, 2) == b"aa"


def test_remap_moves_touched_pages_and_grows_with_zeros() -> None:
    space = AddressSpace()
    space.map(0x10000, 2 * PAGE_SIZE, RW)
    space.store(0x11000, 4, 0xAABBCCDD)
    page = space.pages[0x11]
    space.remap(0x10000, 2 * PAGE_SIZE, 0x40000, 4 * PAGE_SIZE)
    assert space.pages == {0x41: page} and space.writable[0x41] is page  # moved, not copied
    assert space.load(0x41000, 4) == 0xAABBCCDD and space.load(0x43000, 4) == 0
    assert not space.any_mapped(0x10000, 2 * PAGE_SIZE)
    assert space.mappings() == [(0x40000, 0x44000, RW)]
    space.remap(0x40000, PAGE_SIZE, 0x80000, PAGE_SIZE, keep_old=True)
    assert space.is_mapped(0x40000, PAGE_SIZE) and space.load(0x40000, 4) == 0
    with pytest.raises(InvalidArgument):
        space.remap(0x40000, 2 * PAGE_SIZE, 0x41000, PAGE_SIZE)


def test_max_memory_bounds_what_the_guest_may_touch() -> None:
    space = AddressSpace(max_memory=2 * PAGE_SIZE)
    space.map(0x10000, 4 * PAGE_SIZE, RW)  # never charged: mapping is free
    space.store(0x10000, 1, 1)
    space.store(0x11000, 1, 1)
    with pytest.raises(GuestMemoryExhausted) as info:
        space.store(0x12000, 1, 1)
    assert info.value.address == 0x12000 and info.value.limit == 2 * PAGE_SIZE
    assert len(space.pages) == 2
    space.unmap(0x10000, PAGE_SIZE)  # giving a page back makes room
    space.store(0x12000, 1, 1)


def test_max_memory_bounds_committed_memory() -> None:
    space = AddressSpace(max_memory=4 * PAGE_SIZE)
    space.map(0x10000, 3 * PAGE_SIZE, RW, commit=Commit.CHARGED)
    assert space.committed == 3 * PAGE_SIZE
    with pytest.raises(OutOfMemory):
        space.map(0x20000, 2 * PAGE_SIZE, RW, commit=Commit.CHARGED)
    assert not space.any_mapped(0x20000, 2 * PAGE_SIZE)  # refused: nothing changed
    space.map(0x10000, PAGE_SIZE, RW, commit=Commit.CHARGED)  # replacing charged memory is not more
    space.map(0x30000, 2 * PAGE_SIZE, PROT_READ, commit=Commit.ON_WRITE)
    assert space.chargeable_bytes(0x30000, 2 * PAGE_SIZE) == 2 * PAGE_SIZE
    with pytest.raises(OutOfMemory):
        space.protect(0x30000, 2 * PAGE_SIZE, RW)  # becoming writable charges it
    space.protect(0x30000, PAGE_SIZE, RW)
    assert space.committed == 4 * PAGE_SIZE and space.chargeable_bytes(0x30000, 2 * PAGE_SIZE) == PAGE_SIZE
    space.unmap(0x10000, 3 * PAGE_SIZE)
    assert space.committed == PAGE_SIZE


def test_brk_growth_past_the_commit_limit_leaves_the_break() -> None:
    space = AddressSpace(max_memory=4 * PAGE_SIZE)
    space.set_brk_base(0x10000)
    assert space.brk(0x13000) == 0x13000
    assert space.brk(0x15000) == 0x13000  # five pages would pass four: refused, as Linux when it cannot commit
    assert space.committed == 3 * PAGE_SIZE


def test_a_host_memory_error_on_first_touch_is_guest_memory_exhausted(monkeypatch: pytest.MonkeyPatch) -> None:
    space = AddressSpace()
    space.map(0x10000, PAGE_SIZE, RW)

    def no_memory(self: Region, pn: int) -> bytearray:
        raise MemoryError

    monkeypatch.setattr(Region, "fresh_page", no_memory)
    with pytest.raises(GuestMemoryExhausted) as info:
        space.load(0x10000, 1)
    assert info.value.limit is None and "host is out of memory" in str(info.value)


def test_faults_still_name_the_first_bad_byte_across_untouched_pages() -> None:
    space = AddressSpace()
    space.map(0x10000, 2 * PAGE_SIZE, RW)
    space.map(0x12000, PAGE_SIZE, PROT_READ)
    with pytest.raises(MemoryFault) as info:
        space.write(0x11FFE, b"abcd")
    assert info.value.address == 0x12000 and space.pages == {}  # nothing touched by a faulting store
    with pytest.raises(MemoryFault) as info:
        space.read(0x12FFF, 2)
    assert info.value.address == 0x13000


def test_peek_and_poke_ignore_protections_but_not_holes() -> None:
    space = AddressSpace()
    space.map(0x10000, PAGE_SIZE, PROT_READ)
    space.poke(0x10FFE, b"xy")
    assert space.peek(0x10FFE, 2) == b"xy" == space.read(0x10FFE, 2)
    with pytest.raises(MemoryFault) as info:
        space.poke(0x10FFF, b"ab")
    assert info.value.address == 0x11000 and space.peek(0x10FFF, 1) == b"y"


@pytest.mark.parametrize(
    ("text", "size"),
    [("4096", 4096), ("64K", 64 << 10), ("512M", 512 << 20), ("2G", 2 << 30), ("2GiB", 2 << 30), ("1t", 1 << 40)],
)
def test_parse_memory_size(text: str, size: int) -> None:
    assert parse_memory_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "-1M", "1.5G", "4095", "12Q"])
def test_parse_memory_size_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_memory_size(text)
