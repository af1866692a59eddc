"""Differential state-machine test: AddressSpace against a byte-dict reference model.

The model is deliberately naive and written independently of the implementation:
memory is a dict address -> non-zero byte, protections a dict page -> prot,
and every access is checked byte by byte. Each step compares results, faults
(address and access kind), code-watch notifications and, through the
invariants, the whole state: a faulting access must leave everything unchanged.
The model also knows which pages the guest has touched (a successful access
to them since they were mapped): exactly those, and no others, may cost a
page in the address space's dicts (sparse, lazy memory).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from vm_core.errors import MemoryFault
from vm_mem import AddressSpace, NotMapped

PAGE = 4096
LO_PAGE = 16  # the machine maps pages in [LO_PAGE, HI_PAGE)
HI_PAGE = 25
R, W, X = 1, 2, 4
BRK_PROGRAM_END = 0x137F3  # initial break rounds up to 0x14000

page_numbers = st.integers(LO_PAGE, HI_PAGE - 1)
page_counts = st.integers(1, 4)
prots = st.integers(0, 7)
addresses = st.one_of(
    st.integers((LO_PAGE - 1) * PAGE, (HI_PAGE + 1) * PAGE),
    st.builds(lambda p, d: p * PAGE + d, st.integers(LO_PAGE, HI_PAGE), st.integers(-17, 17)),
)
sizes = st.sampled_from([1, 2, 4, 8, 16])
values = st.integers(-(2**130), 2**130)
payloads = st.builds(lambda pattern, repeat: pattern * repeat, st.binary(min_size=1, max_size=13), st.integers(0, 700))


class ReferenceMemory:
    """Byte-granular model of a guest address space."""

    def __init__(self) -> None:
        self.mem: dict[int, int] = {}
        self.prot: dict[int, int] = {}
        self.watched: set[int] = set()
        self.touched: set[int] = set()
        self.brk_start = -(-BRK_PROGRAM_END // PAGE) * PAGE
        self.brk_cur = self.brk_start

    def first_bad(self, addr: int, n: int, need: int) -> int | None:
        for a in range(addr, addr + n):
            p = self.prot.get(a // PAGE)
            if p is None or not p & need:
                return a
        return None

    def get(self, addr: int, n: int) -> bytes:
        return bytes(self.mem.get(a, 0) for a in range(addr, addr + n))

    def put(self, addr: int, data: bytes) -> None:
        for i, b in enumerate(data):
            if b:
                self.mem[addr + i] = b
            else:
                self.mem.pop(addr + i, None)

    def drop_pages(self, pns: set[int]) -> list[int]:
        """Forget the contents of pages ``pns``; return the watched ones among them (now released)."""
        for a in [a for a in self.mem if a // PAGE in pns]:
            del self.mem[a]
        released = sorted(self.watched & pns)
        self.watched -= pns
        self.touched -= pns
        return released

    def touch(self, addr: int, n: int) -> None:
        self.touched.update(a // PAGE for a in range(addr, addr + n, PAGE))
        if n:
            self.touched.add((addr + n - 1) // PAGE)


class AddressSpaceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.space = AddressSpace(mmap_base=HI_PAGE * PAGE, mmap_min_addr=LO_PAGE * PAGE)
        self.model = ReferenceMemory()
        self.notified: list[int] = []
        self.space.on_code_write.append(self.notified.append)

    @initialize()
    def set_break(self) -> None:
        self.space.set_brk_base(BRK_PROGRAM_END)

    def expect_notified(self, pages: list[int]) -> None:
        assert sorted(self.notified) == sorted(pages)
        self.notified.clear()

    # -------------------------------------------------------------- mapping rules

    @rule(first=page_numbers, count=page_counts, prot=prots, data=st.none() | payloads)
    def map(self, first: int, count: int, prot: int, data: bytes | None) -> None:
        length = count * PAGE - (7 if count > 1 else 0)  # exercise rounding up
        if data is not None:
            data = data[:length]
        self.space.map(first * PAGE, length, prot, data)
        pns = set(range(first, first + count))
        self.expect_notified(self.model.drop_pages(pns))
        for pn in pns:
            self.model.prot[pn] = prot
        if data:
            self.model.put(first * PAGE, data)

    @rule(first=page_numbers, count=page_counts)
    def unmap(self, first: int, count: int) -> None:
        self.space.unmap(first * PAGE, count * PAGE)
        pns = set(range(first, first + count))
        self.expect_notified(self.model.drop_pages(pns))
        for pn in pns:
            self.model.prot.pop(pn, None)

    @rule(first=page_numbers, count=page_counts, prot=prots)
    def protect(self, first: int, count: int, prot: int) -> None:
        pns = range(first, first + count)
        hole = next((pn for pn in pns if pn not in self.model.prot), None)
        if hole is not None:
            with pytest.raises(NotMapped) as info:
                self.space.protect(first * PAGE, count * PAGE, prot)
            assert info.value.first_unmapped == hole * PAGE
            self.expect_notified([])
            return
        self.space.protect(first * PAGE, count * PAGE, prot)
        released = []
        for pn in pns:
            self.model.prot[pn] = prot
            if pn in self.model.watched and not prot & X:
                self.model.watched.discard(pn)
                released.append(pn)
        self.expect_notified(released)

    @rule(count=page_counts, hint=st.just(0) | st.integers(0, (HI_PAGE + 2) * PAGE), take=st.booleans())
    def find_free(self, count: int, hint: int, take: bool) -> None:
        def free(start_pn: int) -> bool:
            return all(pn not in self.model.prot for pn in range(start_pn, start_pn + count))

        expected = None
        hint_pn = -(-hint // PAGE)
        if hint and hint_pn >= LO_PAGE and free(hint_pn):
            expected = hint_pn * PAGE
        else:
            for start_pn in range(HI_PAGE - count, LO_PAGE - 1, -1):
                if free(start_pn):
                    expected = start_pn * PAGE
                    break
            else:  # nothing below mmap_base: the lowest free range above it (Linux's bottom-up fallback)
                expected = next(pn for pn in itertools.count(HI_PAGE) if free(pn)) * PAGE
        assert self.space.find_free(count * PAGE, hint) == expected
        if take:
            self.space.map(expected, count * PAGE, R | W)
            for pn in range(expected // PAGE, expected // PAGE + count):
                self.model.prot[pn] = R | W

    # -------------------------------------------------------------- access rules

    def expect_fault(self, call: Callable[[], object], addr: int, n: int, need: int, access: str) -> bool:
        bad = self.model.first_bad(addr, n, need)
        if bad is None:
            return False
        with pytest.raises(MemoryFault) as info:
            call()
        assert (info.value.address, info.value.access) == (bad, access)
        self.expect_notified([])
        return True

    @rule(addr=addresses, size=sizes)
    def load(self, addr: int, size: int) -> None:
        if not self.expect_fault(lambda: self.space.load(addr, size), addr, size, R, "read"):
            assert self.space.load(addr, size) == int.from_bytes(self.model.get(addr, size), "little")
            self.model.touch(addr, size)

    @rule(addr=addresses, n=st.integers(0, 9000))
    def read(self, addr: int, n: int) -> None:
        if not self.expect_fault(lambda: self.space.read(addr, n), addr, n, R, "read"):
            assert self.space.read(addr, n) == self.model.get(addr, n)
            self.model.touch(addr, n)

    @rule(addr=addresses, n=st.integers(0, 40))
    def fetch(self, addr: int, n: int) -> None:
        if not self.expect_fault(lambda: self.space.fetch(addr, n), addr, n, X, "execute"):
            assert self.space.fetch(addr, n) == self.model.get(addr, n)
            self.model.touch(addr, n)

    @rule(addr=addresses, limit=st.integers(0, 5000))
    def read_cstring(self, addr: int, limit: int) -> None:
        expected = bytearray()
        fault = None
        for a in range(addr, addr + limit):
            if self.model.first_bad(a, 1, R) is not None:
                fault = a
                break
            b = self.model.mem.get(a, 0)
            if b == 0:
                break
            expected.append(b)
        if fault is not None:
            with pytest.raises(MemoryFault) as info:
                self.space.read_cstring(addr, limit)
            assert (info.value.address, info.value.access) == (fault, "read")
            self.model.touch(addr, fault - addr)
        else:
            assert self.space.read_cstring(addr, limit) == bytes(expected)
            self.model.touch(addr, min(len(expected) + 1, limit))

    def written(self, addr: int, n: int) -> None:
        touched = {a // PAGE for a in range(addr, addr + n)}
        released = sorted(self.model.watched & touched)
        self.model.watched -= touched
        self.expect_notified(released)

    @rule(addr=addresses, size=sizes, value=values)
    def store(self, addr: int, size: int, value: int) -> None:
        if self.expect_fault(lambda: self.space.store(addr, size, value), addr, size, W, "write"):
            return
        self.space.store(addr, size, value)
        self.written(addr, size)
        self.model.touch(addr, size)
        self.model.put(addr, (value % (1 << (8 * size))).to_bytes(size, "little"))

    @rule(addr=addresses, data=payloads)
    def write(self, addr: int, data: bytes) -> None:
        if self.expect_fault(lambda: self.space.write(addr, data), addr, len(data), W, "write"):
            return
        self.space.write(addr, data)
        self.written(addr, len(data))
        self.model.touch(addr, len(data))
        self.model.put(addr, data)

    # -------------------------------------------------------------- code watching

    @rule(pn=st.integers(LO_PAGE - 1, HI_PAGE))
    def watch(self, pn: int) -> None:
        if pn not in self.model.prot:
            with pytest.raises(NotMapped):
                self.space.watch_code(pn)
            return
        self.space.watch_code(pn)
        self.model.watched.add(pn)

    @rule(pn=st.integers(LO_PAGE - 1, HI_PAGE))
    def unwatch(self, pn: int) -> None:
        self.space.unwatch_code(pn)
        self.model.watched.discard(pn)
        self.expect_notified([])

    # -------------------------------------------------------------- brk (Linux mm/mmap.c semantics)

    @rule(new=st.just(0) | st.integers(0x13000, HI_PAGE * PAGE + 0x800))
    def brk(self, new: int) -> None:
        m = self.model
        expected, released = m.brk_cur, []
        if new >= m.brk_start:
            new_top = -(-new // PAGE)
            old_top = -(-m.brk_cur // PAGE)
            if new_top == old_top:
                expected = new
            elif new < m.brk_cur:  # shrink: pages wholly above the new break go, if there are any
                if any(pn in m.prot for pn in range(new_top, old_top)):
                    released = m.drop_pages(set(range(new_top, old_top)))
                    for pn in range(new_top, old_top):
                        m.prot.pop(pn, None)
                    expected = new
            elif all(pn not in m.prot for pn in range(old_top, new_top + 1)):  # heap + guard page free
                for pn in range(old_top, new_top):
                    m.prot[pn] = R | W
                expected = new
        assert self.space.brk(new) == expected
        self.expect_notified(released)
        m.brk_cur = expected

    # -------------------------------------------------------------- invariants

    @invariant()
    def layout_is_consistent(self) -> None:
        s, m = self.space, self.model
        assert dict(s.prot) == m.prot and len(s.prot) == len(m.prot)
        assert all(s.prot.get(pn) == m.prot.get(pn) for pn in range(LO_PAGE - 1, HI_PAGE + 1))
        assert set(s.pages) == m.touched and m.touched <= set(m.prot)
        assert set(s.readable) == {pn for pn in m.touched if m.prot[pn] & R}
        assert set(s.writable) == {pn for pn in m.touched if m.prot[pn] & W and pn not in m.watched}
        for pn, page in s.pages.items():
            assert type(page) is bytearray and len(page) == PAGE
            assert s.readable.get(pn, page) is page and s.writable.get(pn, page) is page
        assert s.watched_pages == m.watched
        assert s.brk_current == m.brk_cur

    @invariant()
    def contents_match(self) -> None:
        pages = {pn: data for pn, _prot, data in self.space.dump_pages()}  # touched or holding initial data
        nonzero_per_page: dict[int, int] = {}
        for a, b in self.model.mem.items():
            assert pages[a // PAGE][a % PAGE] == b
            nonzero_per_page[a // PAGE] = nonzero_per_page.get(a // PAGE, 0) + 1
        for pn, page in pages.items():
            assert PAGE - page.count(0) == nonzero_per_page.get(pn, 0)
        for pn, page in self.space.pages.items():
            assert bytes(page) == pages[pn]

    @invariant()
    def mappings_are_coalesced_model(self) -> None:
        expected: list[tuple[int, int, int]] = []
        for pn in sorted(self.model.prot):
            p = self.model.prot[pn]
            if expected and expected[-1][1] == pn * PAGE and expected[-1][2] == p:
                expected[-1] = (expected[-1][0], (pn + 1) * PAGE, p)
            else:
                expected.append((pn * PAGE, (pn + 1) * PAGE, p))
        assert self.space.mappings() == expected


AddressSpaceMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAddressSpaceMachine = AddressSpaceMachine.TestCase
