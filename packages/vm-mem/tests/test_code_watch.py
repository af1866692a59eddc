"""Self-modifying-code watching: which stores notify, how often, and what the fast-path dicts look like."""

from __future__ import annotations

import pytest
from vm_core.errors import MemoryFault
from vm_mem import PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, AddressSpace, NotMapped, fastpath

RWX = PROT_READ | PROT_WRITE | PROT_EXEC
RX = PROT_READ | PROT_EXEC
CODE = 0x10000
PN = CODE >> 12


def watched_space(prot: int = RWX, pages: int = 2) -> tuple[AddressSpace, list[int]]:
    space = AddressSpace()
    space.map(CODE, pages * PAGE_SIZE, prot, b"\x13\x00\x00\x00" * 8)
    calls: list[int] = []
    space.on_code_write.append(calls.append)
    for pn in range(PN, PN + pages):
        space.fetch(pn << 12, 4)  # as an engine does: it translated code from the page, so touched it
        space.watch_code(pn)
    return space, calls


def test_watch_takes_the_page_out_of_writable_only() -> None:
    space, _ = watched_space()
    assert PN not in space.writable and PN in space.readable and PN in space.pages
    assert space.is_code_watched(PN) and space.watched_pages == {PN, PN + 1}


def test_store_to_watched_page_notifies_once_then_takes_the_fast_path() -> None:
    space, calls = watched_space()
    fastpath.store(space, CODE + 4, 4, 0x00500093)  # fast path misses, slow path notifies
    assert calls == [PN]
    assert space.writable[PN] is space.pages[PN] and not space.is_code_watched(PN)
    assert space.fetch(CODE + 4, 4) == (0x00500093).to_bytes(4, "little")
    fastpath.store(space, CODE + 8, 4, 1)
    space.store(CODE + 12, 8, 2)
    space.write(CODE + 16, b"xyz")
    assert calls == [PN]  # exactly once per watch
    space.watch_code(PN)
    space.write(CODE, b"\0")
    assert calls == [PN, PN]


def test_a_write_spanning_watched_pages_notifies_each_page_once() -> None:
    space, calls = watched_space(pages=3)
    space.write(CODE + PAGE_SIZE - 2, b"\xff" * (PAGE_SIZE + 4))
    assert sorted(calls) == [PN, PN + 1, PN + 2]
    assert space.watched_pages == set()
    assert space.read(CODE + 2 * PAGE_SIZE, 2) == b"\xff\xff"


def test_faulting_store_on_watched_page_neither_notifies_nor_writes() -> None:
    space, calls = watched_space(prot=RX, pages=1)
    with pytest.raises(MemoryFault):
        space.store(CODE, 4, 0)
    space2, calls2 = watched_space(prot=RWX, pages=1)  # store running off the end of the mapping
    before = space2.read(CODE, PAGE_SIZE)
    with pytest.raises(MemoryFault) as info:
        space2.store(CODE + PAGE_SIZE - 2, 4, 0xFFFFFFFF)
    assert info.value.address == CODE + PAGE_SIZE
    assert calls == [] == calls2
    assert space.is_code_watched(PN) and space2.is_code_watched(PN)
    assert space2.read(CODE, PAGE_SIZE) == before


def test_watched_read_only_page_stays_out_of_writable_when_made_writable() -> None:
    space, calls = watched_space(prot=RX, pages=1)
    space.protect(CODE, PAGE_SIZE, RWX)  # still executable: stays watched
    assert PN not in space.writable and space.is_code_watched(PN)
    space.store(CODE, 2, 0xABCD)
    assert calls == [PN] and space.writable[PN] is space.pages[PN]


def test_unwatch_restores_writable_without_callbacks() -> None:
    space, calls = watched_space(pages=1)
    space.unwatch_code(PN)
    space.unwatch_code(PN + 7)  # not watched: no-op
    assert space.writable[PN] is space.pages[PN] and calls == []
    ro, _ = watched_space(prot=RX, pages=1)
    ro.unwatch_code(PN)
    assert PN not in ro.writable


def test_replacing_unmapping_or_unexecuting_watched_code_notifies() -> None:
    space, calls = watched_space(pages=3)
    space.map(CODE, PAGE_SIZE, RWX)
    assert calls == [PN]
    space.unmap(CODE + PAGE_SIZE, PAGE_SIZE)
    assert calls == [PN, PN + 1]
    space.protect(CODE + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ | PROT_WRITE)
    assert calls == [PN, PN + 1, PN + 2] and space.watched_pages == set()
    assert space.writable[PN + 2] is space.pages[PN + 2]


def test_every_callback_is_called_and_unmapped_pages_cannot_be_watched() -> None:
    space, calls = watched_space(pages=1)
    more: list[int] = []
    space.on_code_write.append(more.append)
    space.store(CODE, 1, 0)
    assert calls == more == [PN]
    with pytest.raises(NotMapped):
        space.watch_code(PN + 5)


def test_restore_pages_releases_watches() -> None:
    space, calls = watched_space(pages=1)
    snapshot = list(space.dump_pages())
    space.restore_pages(snapshot)
    assert calls == [PN] and space.watched_pages == set() and PN in space.writable
