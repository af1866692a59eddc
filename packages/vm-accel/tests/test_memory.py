"""Guest-physical memory against a bytearray model, and page tables against their own walk."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as stst
from vm_accel.kvm.memory import PAGE_SIZE, GuestMemoryRegion, GuestPhysicalMemory
from vm_accel.kvm.page_tables import PAGE_2M, PAGE_4K, PageTableBuilder
from vm_core.errors import ConfigurationError, MemoryFault

# Two adjacent regions and one after a hole: [0, 2 pages) [2, 3 pages) hole [5, 6 pages)
LAYOUT = [(0, 2 * PAGE_SIZE), (2 * PAGE_SIZE, PAGE_SIZE), (5 * PAGE_SIZE, PAGE_SIZE)]
SPAN = 6 * PAGE_SIZE


def _memory() -> GuestPhysicalMemory:
    memory = GuestPhysicalMemory()
    for slot, (base, size) in enumerate(LAYOUT):
        memory.add(GuestMemoryRegion(slot, base, size))
    return memory


def _is_ram(address: int) -> bool:
    return any(base <= address < base + size for base, size in LAYOUT)


operation = stst.tuples(
    stst.sampled_from(["write", "read", "write_int", "fill"]),
    stst.integers(0, SPAN + 16),
    stst.binary(min_size=0, max_size=300),
    stst.sampled_from([1, 2, 4, 8]),
)


@settings(max_examples=200, deadline=None)
@given(stst.lists(operation, max_size=30))
def test_memory_matches_bytearray_model(ops: list[tuple[str, int, bytes, int]]) -> None:
    memory = _memory()
    model = bytearray(SPAN + 400)
    for kind, address, data, width in ops:
        length = {"write": len(data), "read": len(data), "write_int": width, "fill": len(data)}[kind]
        inside = all(_is_ram(a) for a in range(address, address + length))
        if not inside:
            with pytest.raises(MemoryFault):
                if kind == "read":
                    memory.read(address, length)
                elif kind == "write":
                    memory.write(address, data)
                elif kind == "fill":
                    memory.fill(address, length, 0xAB)
                else:
                    memory.write_int(address, width, 7)
            continue
        if kind == "write":
            memory.write(address, data)
            model[address : address + length] = data
        elif kind == "fill":
            memory.fill(address, length, 0xAB)
            model[address : address + length] = b"\xab" * length
        elif kind == "write_int":
            value = int.from_bytes(data[:8].ljust(8, b"\x5a"), "little")
            memory.write_int(address, width, value)
            model[address : address + width] = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
            assert memory.read_int(address, width) == value & ((1 << (8 * width)) - 1)
        else:
            assert memory.read(address, length) == bytes(model[address : address + length])


def test_fault_names_the_address_and_access() -> None:
    memory = _memory()
    with pytest.raises(MemoryFault) as info:
        memory.read(3 * PAGE_SIZE + 5, 4)
    assert info.value.address == 3 * PAGE_SIZE + 5
    assert info.value.access == "read"
    with pytest.raises(MemoryFault) as info:
        memory.write(2 * PAGE_SIZE + PAGE_SIZE - 1, b"ab")
    assert info.value.address == 3 * PAGE_SIZE and info.value.access == "write"


def test_bad_regions_are_configuration_errors() -> None:
    memory = _memory()
    with pytest.raises(ConfigurationError):
        GuestMemoryRegion(9, 123, PAGE_SIZE)
    with pytest.raises(ConfigurationError):
        memory.add(GuestMemoryRegion(9, PAGE_SIZE, PAGE_SIZE))


@settings(max_examples=60, deadline=None)
@given(
    stst.dictionaries(
        stst.integers(0, (1 << 35) // PAGE_4K - 1), stst.integers(0, (1 << 20) - 1), min_size=1, max_size=40
    ),
    stst.integers(0, PAGE_4K - 1),
)
def test_page_table_translation_matches_mapping(pages: dict[int, int], offset: int) -> None:
    memory = GuestPhysicalMemory()
    memory.add(GuestMemoryRegion(0, 0, 256 * PAGE_4K))
    tables = PageTableBuilder(memory, 0, 256 * PAGE_4K)
    for virtual_page, physical_page in pages.items():
        tables.map(virtual_page * PAGE_4K, physical_page * PAGE_4K, PAGE_4K)
    for virtual_page, physical_page in pages.items():
        assert tables.translate(virtual_page * PAGE_4K + offset) == physical_page * PAGE_4K + offset
    unmapped = next(p for p in range(1 << 20) if p not in pages)
    assert tables.translate(unmapped * PAGE_4K) is None


def test_large_pages_and_conflicts() -> None:
    memory = GuestPhysicalMemory()
    memory.add(GuestMemoryRegion(0, 0, 16 * PAGE_4K))
    tables = PageTableBuilder(memory, 0, 16 * PAGE_4K)
    tables.map(PAGE_2M, 3 * PAGE_2M, PAGE_2M, page_size=PAGE_2M)
    assert tables.translate(PAGE_2M + 0x12345) == 3 * PAGE_2M + 0x12345
    with pytest.raises(ConfigurationError):
        tables.map(PAGE_2M + PAGE_4K, 0, PAGE_4K)
    with pytest.raises(ConfigurationError):
        tables.map(5, 0, PAGE_4K)
