"""vm-mem's AddressSpace on KVM frames (KvmPageBacking) against a plain one (the model), page tables against pages.

Runs without KVM: the guest RAM region is plain anonymous memory. Random
sequences of map / unmap / protect / brk / write / discard / remap (mremap that moves) must leave both address
spaces with the same mappings and bytes, every mapped page's leaf entry must
point at the frame that holds its bytes with the protection's rights, and
no frame may leak or be shared.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_accel.kvm.memory import GuestMemoryRegion
from vm_accel.kvm.page_tables import PTE_NO_EXECUTE, PTE_PRESENT, PTE_USER, PTE_WRITABLE
from vm_accel.usermode import (
    FrameAllocator,
    KvmPageBacking,
    OutOfGuestMemory,
    UserPageTables,
    kvm_address_space,
)
from vm_accel.usermode.address_space import RESERVED_TOP
from vm_core.errors import MemoryFault, VmError
from vm_mem import PROT_EXEC, PROT_READ, PROT_WRITE, AddressSpace
from vm_mem.errors import InvalidArgument

BASE = 0x40_0000
PAGES = 24
FRAMES = 256


class Pair:
    """An address space on KVM frames of a small region and the vm-mem model, driven together."""

    def __init__(self, frames: int = FRAMES) -> None:
        self.region = GuestMemoryRegion(0, 0, RESERVED_TOP + frames * 4096)
        self.frames = FrameAllocator(self.region, RESERVED_TOP)
        self.tables = UserPageTables(self.region, self.frames)
        self.backing = KvmPageBacking(self.region, self.frames, self.tables)
        self.kvm = kvm_address_space(self.backing)
        self.model = AddressSpace(mmap_base=self.kvm.mmap_base, mmap_min_addr=RESERVED_TOP,
                                  address_limit=self.kvm.address_limit)  # fmt: skip

    def close(self) -> None:
        self.kvm.clear()
        self.backing.close()
        self.tables.release()
        self.region.close()

    def check(self) -> None:
        kvm, model = self.kvm, self.model
        assert kvm.mappings() == model.mappings()
        assert set(kvm.pages) == set(kvm.prot)  # eager: every mapped page has its frame
        for pn in kvm.prot:  # the model's pages are created as this reads them (vm-mem is lazy)
            assert kvm.peek(pn << 12, 4096) == model.peek(pn << 12, 4096)
        assert kvm.brk_current == model.brk_current
        assert len(set(self.backing.frame_of.values())) == len(self.backing.frame_of) == len(kvm.pages)
        assert self.frames.in_use == len(kvm.pages) + self.tables.tables
        for pn, prot in kvm.prot.items():
            entry = self.tables.entry(pn << 12)
            if not prot:
                assert entry == 0
                continue
            assert entry & 0x000F_FFFF_FFFF_F000 == self.backing.frame_of[pn]
            assert entry & PTE_PRESENT and entry & PTE_USER
            assert bool(entry & PTE_WRITABLE) == bool(prot & PROT_WRITE)
            assert bool(entry & PTE_NO_EXECUTE) == (not prot & PROT_EXEC)
            start = self.backing.frame_of[pn]
            assert bytes(self.region.view[start : start + 4096]) == model.peek(pn << 12, 4096)


@pytest.fixture
def pair() -> Iterator[Pair]:
    made = Pair()
    yield made
    made.close()


prots = st.sampled_from([0, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE | PROT_EXEC])
pages = st.integers(0, PAGES - 1)
counts = st.integers(1, 6)
operations = st.one_of(
    st.tuples(st.just("map"), pages, counts, prots, st.binary(max_size=64)),
    st.tuples(st.just("unmap"), pages, counts),
    st.tuples(st.just("protect"), pages, counts, prots),
    st.tuples(st.just("write"), st.integers(0, PAGES * 4096 - 1), st.binary(min_size=1, max_size=9000)),
    st.tuples(st.just("brk"), st.integers(-3, 12)),
    st.tuples(st.just("discard"), pages, counts),
    st.tuples(st.just("remap"), pages, counts, pages, counts, st.booleans()),
)


def _apply(space: AddressSpace, op: tuple) -> object:  # type: ignore[type-arg]
    kind = op[0]
    try:
        if kind == "map":
            return space.map(BASE + op[1] * 4096, op[2] * 4096, op[3], op[4] or None)
        if kind == "unmap":
            return space.unmap(BASE + op[1] * 4096, op[2] * 4096)
        if kind == "protect":
            return space.protect(BASE + op[1] * 4096, op[2] * 4096, op[3])
        if kind == "write":
            return space.write(BASE + op[1], op[2])
        if kind == "discard":
            return space.discard(BASE + op[1] * 4096, op[2] * 4096)
        if kind == "remap":
            return space.remap(BASE + op[1] * 4096, op[2] * 4096, BASE + op[3] * 4096, op[4] * 4096, keep_old=op[5])
        return space.brk(BASE + PAGES * 4096 + op[1] * 1000)
    except VmError as exc:
        return type(exc)


def _cstring(space: AddressSpace, address: int) -> object:
    try:
        return space.read_cstring(address, 5000)
    except MemoryFault as exc:
        return exc.address


@settings(max_examples=60, deadline=None)
@given(st.lists(operations, max_size=25))
def test_kvm_address_space_agrees_with_vm_mem(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    pair = Pair()
    try:
        for space in (pair.kvm, pair.model):
            space.set_brk_base(BASE + PAGES * 4096 + 123)
        for op in ops:
            assert _apply(pair.kvm, op) == _apply(pair.model, op)
            pair.check()
        for pn in list(pair.model.pages):
            assert _cstring(pair.kvm, pn << 12) == _cstring(pair.model, pn << 12)
    finally:
        pair.close()


def test_freed_frames_read_zero_and_are_reused(pair: Pair) -> None:
    pair.kvm.map(BASE, 3 * 4096, PROT_READ | PROT_WRITE, b"\xff" * 3 * 4096)
    frames = set(pair.backing.frame_of.values())
    pair.kvm.unmap(BASE, 3 * 4096)
    for frame in frames:
        assert bytes(pair.region.view[frame : frame + 4096]) == bytes(4096)
    pair.kvm.map(BASE + 0x10000, 3 * 4096, PROT_READ)
    assert set(pair.backing.frame_of.values()) == frames


def test_a_moved_mapping_takes_its_frames_and_bytes_along(pair: Pair) -> None:
    pair.kvm.map(BASE, 2 * 4096, PROT_READ | PROT_WRITE, b"ab" * 4096)
    frames = [pair.backing.frame_of[(BASE >> 12) + i] for i in range(2)]
    pair.kvm.remap(BASE, 2 * 4096, BASE + 0x10000, 3 * 4096)
    target = (BASE + 0x10000) >> 12
    assert [pair.backing.frame_of[target + i] for i in range(2)] == frames
    assert pair.tables.translate(BASE + 0x10001) == frames[0] + 1 and pair.tables.translate(BASE) is None
    assert pair.kvm.peek(BASE + 0x10000, 4) == b"abab" and pair.kvm.peek(BASE + 0x12000, 4096) == bytes(4096)


def test_page_table_walk_translates_to_the_frame(pair: Pair) -> None:
    pair.kvm.map(0x7FFF_FFFF_0000, 2 * 4096, PROT_READ, b"xy")
    frame = pair.backing.frame_of[0x7FFF_FFFF_0000 >> 12]
    assert pair.tables.translate(0x7FFF_FFFF_0001) == frame + 1
    assert pair.tables.translate(0x7FFF_FFFE_0000) is None


def test_system_area_and_upper_half_are_refused(pair: Pair) -> None:
    with pytest.raises(InvalidArgument, match="reserved system area"):
        pair.kvm.map(0x1000, 4096, PROT_READ)
    with pytest.raises(InvalidArgument):
        pair.kvm.map(1 << 47, 4096, PROT_READ)


def test_running_out_of_frames_changes_nothing() -> None:
    small = Pair(frames=8)
    try:
        small.kvm.map(BASE, 2 * 4096, PROT_READ | PROT_WRITE, b"keep")
        with pytest.raises(OutOfGuestMemory):
            small.kvm.map(BASE, 64 * 4096, PROT_READ)
        assert small.kvm.read(BASE, 4) == b"keep"
        assert small.kvm.mappings() == [(BASE, BASE + 2 * 4096, PROT_READ | PROT_WRITE)]
    finally:
        small.close()
