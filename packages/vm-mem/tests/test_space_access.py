"""Loads, stores, bulk reads/writes, fetch and C strings: round trips, faults, all-or-nothing stores.

Oracles: Python's own little-endian integer/struct encodings, the host's
``mmap`` module for the Linux PROT_* values, and the fault rules of the
task (first bad byte, access kind).
"""

from __future__ import annotations

import mmap
import signal
import struct

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from vm_core.errors import MemoryFault, VmError
from vm_mem import (
    PAGE_SHIFT,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    AddressSpace,
    InvalidArgument,
    fastpath,
)

BASE = 0x40_0000
RW = PROT_READ | PROT_WRITE


def rw_space(pages: int = 4) -> AddressSpace:
    space = AddressSpace()
    space.map(BASE, pages * PAGE_SIZE, RW)
    return space


def test_constants_are_the_linux_values() -> None:
    assert (PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC) == (
        mmap.PROT_NONE if hasattr(mmap, "PROT_NONE") else 0,
        mmap.PROT_READ,
        mmap.PROT_WRITE,
        mmap.PROT_EXEC,
    )
    assert PAGE_SIZE == 1 << PAGE_SHIFT == 4096


near_boundary = st.integers(PAGE_SIZE - 20, PAGE_SIZE + 4).map(lambda off: BASE + off)
anywhere = st.integers(BASE, BASE + 3 * PAGE_SIZE - 16)


@settings(max_examples=200, deadline=None)
@given(addr=near_boundary | anywhere, size=st.sampled_from([1, 2, 4, 8, 16]), value=st.integers(-(2**140), 2**140))
def test_store_then_load_round_trips_at_any_alignment(addr: int, size: int, value: int) -> None:
    space = rw_space()
    space.store(addr, size, value)
    expected = value % (1 << (8 * size))
    assert space.load(addr, size) == expected
    assert space.read(addr, size) == expected.to_bytes(size, "little")
    assert space.read(BASE, 4 * PAGE_SIZE).count(0) >= 4 * PAGE_SIZE - size  # nothing else written
    assert space.read(addr + size, 1) == b"\0"
    if size <= 8:
        assert fastpath.load(space, addr, size) == expected
        signed = fastpath.SIGNED[size].unpack(space.read(addr, size))[0]
        assert signed % (1 << (8 * size)) == expected


@settings(max_examples=100, deadline=None)
@given(addr=near_boundary | anywhere, size=st.sampled_from([1, 2, 4, 8]), value=st.integers(-(2**70), 2**70))
def test_fastpath_store_matches_slow_store(addr: int, size: int, value: int) -> None:
    fast, slow = rw_space(), rw_space()
    fastpath.store(fast, addr, size, value)
    fastpath.slow_store(slow, addr, size, value)
    assert fast.read(BASE, 4 * PAGE_SIZE) == slow.read(BASE, 4 * PAGE_SIZE)
    fmt = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}[size]
    assert fast.read(addr, size) == struct.pack(fmt, value % (1 << (8 * size)))
    assert fastpath.slow_load(slow, addr, size) == value % (1 << (8 * size))


@settings(max_examples=60, deadline=None)
@given(offset=st.integers(0, 3 * PAGE_SIZE), data=st.binary(min_size=0, max_size=5 * PAGE_SIZE))
def test_bulk_write_then_read_round_trips_across_pages(offset: int, data: bytes) -> None:
    space = rw_space(9)
    space.write(BASE + offset, data)
    assert space.read(BASE + offset, len(data)) == data
    whole = space.read(BASE, 9 * PAGE_SIZE)
    assert whole == bytes(offset) + data + bytes(9 * PAGE_SIZE - offset - len(data))


def test_cross_page_store_faulting_on_the_second_page_changes_nothing() -> None:
    space = AddressSpace()
    space.map(BASE, PAGE_SIZE, RW)
    space.map(BASE + PAGE_SIZE, PAGE_SIZE, PROT_READ)
    for size in (2, 4, 8, 16):
        addr = BASE + PAGE_SIZE - 1
        with pytest.raises(MemoryFault) as info:
            space.store(addr, size, -1)
        assert (info.value.address, info.value.access) == (BASE + PAGE_SIZE, "write")
        assert space.read(BASE, 2 * PAGE_SIZE) == bytes(2 * PAGE_SIZE)
    space.unmap(BASE + PAGE_SIZE, PAGE_SIZE)
    with pytest.raises(MemoryFault) as info:
        space.write(BASE + 10, b"\xff" * (2 * PAGE_SIZE))
    assert info.value.address == BASE + PAGE_SIZE
    assert space.read(BASE, PAGE_SIZE) == bytes(PAGE_SIZE)


def test_fault_reports_the_first_bad_byte_and_access_kind() -> None:
    space = AddressSpace()
    space.map(BASE, PAGE_SIZE, RW)
    space.map(BASE + 2 * PAGE_SIZE, PAGE_SIZE, RW)  # hole at BASE + PAGE_SIZE
    space.write(BASE + PAGE_SIZE - 1, b"a")  # an unterminated string running into the hole
    cases = [
        (lambda: space.read(BASE + 5, 3 * PAGE_SIZE), BASE + PAGE_SIZE, "read"),
        (lambda: space.load(BASE - 2, 4), BASE - 2, "read"),
        (lambda: space.load(BASE + 2 * PAGE_SIZE - 3, 8), BASE + 2 * PAGE_SIZE - 3, "read"),
        (lambda: space.fetch(BASE, 4), BASE, "execute"),
        (lambda: space.store(BASE + 3 * PAGE_SIZE - 1, 2, 0), BASE + 3 * PAGE_SIZE, "write"),
        (lambda: space.read_cstring(BASE + PAGE_SIZE - 1), BASE + PAGE_SIZE, "read"),
    ]
    for call, address, access in cases:
        with pytest.raises(MemoryFault) as info:
            call()
        assert (info.value.address, info.value.access) == (address, access)
        assert isinstance(info.value, VmError) and info.value.signo == signal.SIGSEGV


def test_permissions_are_enforced_per_access_kind() -> None:
    space = AddressSpace()
    space.map(BASE, PAGE_SIZE, PROT_EXEC, b"\x13\x00\x00\x00")
    space.map(BASE + PAGE_SIZE, PAGE_SIZE, PROT_NONE)
    space.map(BASE + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ, b"ro")
    assert space.fetch(BASE, 4) == b"\x13\x00\x00\x00"  # execute-only is fetchable
    with pytest.raises(MemoryFault):
        space.load(BASE, 4)
    with pytest.raises(MemoryFault):
        space.read(BASE + PAGE_SIZE, 1)  # PROT_NONE: mapped but untouchable
    assert BASE + PAGE_SIZE >> PAGE_SHIFT in space.prot and BASE + PAGE_SIZE >> PAGE_SHIFT not in space.pages
    assert space.read(BASE + 2 * PAGE_SIZE, 2) == b"ro"
    with pytest.raises(MemoryFault) as info:
        space.write(BASE + 2 * PAGE_SIZE, b"x")
    assert info.value.access == "write"
    assert space.fetch(BASE + PAGE_SIZE - 2, 0) == b""


def test_fetch_across_pages_needs_exec_on_both() -> None:
    space = AddressSpace()
    space.map(BASE, 2 * PAGE_SIZE, PROT_READ | PROT_EXEC)
    space.map(BASE + 2 * PAGE_SIZE, PAGE_SIZE, PROT_READ)
    space.map(BASE, 2 * PAGE_SIZE, PROT_READ | PROT_EXEC, bytes(range(256)) * 32)
    assert space.fetch(BASE + PAGE_SIZE - 2, 4) == bytes([254, 255, 0, 1])
    with pytest.raises(MemoryFault) as info:
        space.fetch(BASE + 2 * PAGE_SIZE - 2, 4)
    assert (info.value.address, info.value.access) == (BASE + 2 * PAGE_SIZE, "execute")


def test_read_cstring_stops_at_nul_across_pages_and_honours_the_limit() -> None:
    space = rw_space(3)
    space.write(BASE + PAGE_SIZE - 3, b"hello\0world")
    assert space.read_cstring(BASE + PAGE_SIZE - 3) == b"hello"
    assert space.read_cstring(BASE + PAGE_SIZE + 2) == b""
    assert space.read_cstring(BASE + PAGE_SIZE + 3) == b"world"
    assert space.read_cstring(BASE + PAGE_SIZE - 3, limit=4) == b"hell"
    assert space.read_cstring(BASE + PAGE_SIZE - 3, limit=0) == b""
    space.write(BASE + PAGE_SIZE - 3, b"x" * (PAGE_SIZE + 10))  # long string over a page boundary
    assert space.read_cstring(BASE + PAGE_SIZE - 3) == b"x" * (PAGE_SIZE + 10)
    assert space.read_cstring(BASE + PAGE_SIZE - 3, limit=PAGE_SIZE + 1) == b"x" * (PAGE_SIZE + 1)
    space.write(BASE + 3 * PAGE_SIZE - 2, b"ab")  # no NUL before the end of the mapping
    with pytest.raises(MemoryFault) as info:
        space.read_cstring(BASE + 3 * PAGE_SIZE - 2)
    assert info.value.address == BASE + 3 * PAGE_SIZE
    assert space.read_cstring(BASE + 3 * PAGE_SIZE - 2, limit=2) == b"ab"


def test_bad_arguments_raise_invalid_argument() -> None:
    space = rw_space(1)
    bad_calls = [
        lambda: space.load(BASE, 3),
        lambda: space.store(BASE, 32, 0),
        lambda: space.read(BASE, -1),
        lambda: space.fetch(BASE, -1),
        lambda: space.read_cstring(BASE, -1),
        lambda: space.map(BASE + 1, PAGE_SIZE, RW),
        lambda: space.map(BASE, 0, RW),
        lambda: space.map(BASE, PAGE_SIZE, 8),
        lambda: space.map(BASE, PAGE_SIZE, RW, b"x" * (PAGE_SIZE + 1)),
        lambda: space.map(-PAGE_SIZE, PAGE_SIZE, RW),
        lambda: space.map((1 << 64) - PAGE_SIZE, 2 * PAGE_SIZE, RW),
        lambda: space.map("0x1000", PAGE_SIZE, RW),  # type: ignore[arg-type]
        lambda: space.unmap(BASE, 0),
        lambda: space.unmap(BASE + 8, PAGE_SIZE),
        lambda: space.protect(BASE + 8, PAGE_SIZE, RW),
        lambda: space.protect(BASE, PAGE_SIZE, -1),
        lambda: space.is_mapped(BASE, -1),
        lambda: space.find_free(0),
        lambda: space.set_brk_base(-5),
        lambda: space.restore_brk(BASE + 1, BASE),
    ]
    before = space.mappings()
    for call in bad_calls:
        with pytest.raises(InvalidArgument):
            call()
    assert space.mappings() == before
    assert space.read(BASE, PAGE_SIZE) == bytes(PAGE_SIZE)
