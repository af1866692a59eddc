"""brk semantics: the brk(2) man page cases, and a differential test against the host Linux kernel.

The kernel oracle is a tiny native C program that issues raw ``brk``, ``mmap``
(``MAP_FIXED_NOREPLACE``, one page) and ``munmap`` system calls relative to its
own initial break and prints the results; the same operation sequence is
replayed on an AddressSpace whose break starts at a page-aligned address with
nothing mapped above it, and every result must agree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from vm_core.errors import MemoryFault
from vm_mem import PROT_READ, PROT_WRITE, AddressSpace

PAGE = 4096

ORACLE_SOURCE = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

static char outbuf[1 << 16];
static long results[256];

int main(int argc, char **argv) {
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    long start = syscall(SYS_brk, 0);
    int n = 0;
    for (int i = 1; i < argc && n < 256; i++) {
        long delta = strtol(argv[i] + 1, NULL, 0);
        switch (argv[i][0]) {
        case 'z': results[n++] = syscall(SYS_brk, 0) - start; break;
        case 'b': results[n++] = syscall(SYS_brk, start + delta) - start; break;
        case 'm': {
            void *p = mmap((void *)(start + delta), 4096, PROT_READ,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            results[n++] = p == MAP_FAILED ? -1 : (long)p - start;
            break;
        }
        case 'u': results[n++] = munmap((void *)(start + delta), 4096); break;
        }
    }
    for (int i = 0; i < n; i++) printf("%ld\n", results[i]);
    return 0;
}
"""


@pytest.fixture(scope="module")
def kernel_oracle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not sys.platform.startswith("linux") or os.sysconf("SC_PAGE_SIZE") != PAGE:
        pytest.skip("the brk oracle needs a Linux host with 4 KiB pages")
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no native C compiler for the brk oracle")
    work = tmp_path_factory.mktemp("brk_oracle")
    (work / "brk_oracle.c").write_text(ORACLE_SOURCE)
    subprocess.run([compiler, "-O1", "-o", str(work / "brk_oracle"), str(work / "brk_oracle.c")], check=True)
    return work / "brk_oracle"


def replay(ops: list[tuple[str, int]]) -> list[int]:
    """Run ``ops`` on an AddressSpace with the break at ``base``; results relative to ``base``."""
    base = 0x4000_0000
    space = AddressSpace()
    space.set_brk_base(base)
    out = []
    for op, delta in ops:
        if op == "z":
            out.append(space.brk(0) - base)
        elif op == "b":
            out.append(space.brk(base + delta) - base)
        elif op == "m":
            if space.is_mapped(base + delta, 1):
                out.append(-1)
            else:
                space.map(base + delta, PAGE, PROT_READ)
                out.append(delta)
        else:
            space.unmap(base + delta, PAGE)
            out.append(0)
    return out


brk_deltas = st.one_of(
    st.integers(-0x3000, 0x12000),
    st.builds(lambda p, d: p * PAGE + d, st.integers(-2, 18), st.sampled_from([-1, 0, 1])),
)
page_deltas = st.integers(0, 18).map(lambda p: p * PAGE)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("b"), brk_deltas),
        st.tuples(st.just("z"), st.just(0)),
        st.tuples(st.just("m"), page_deltas),
        st.tuples(st.just("u"), page_deltas),
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=60, deadline=None)
@given(ops=operations)
def test_brk_matches_the_host_kernel(kernel_oracle: Path, ops: list[tuple[str, int]]) -> None:
    args = [f"{op}{delta}" for op, delta in ops]
    run = subprocess.run([str(kernel_oracle), *args], capture_output=True, text=True, check=True)
    assert [int(line) for line in run.stdout.split()] == replay(ops)


def test_kernel_oracle_sees_the_guard_page(kernel_oracle: Path) -> None:
    """Pin the corner cases: the oracle must refuse growth up to a mapping, and allow a one-page gap."""
    ops = [("m", 4 * PAGE), ("b", 4 * PAGE), ("b", 3 * PAGE), ("b", 3 * PAGE + 1)]
    run = subprocess.run([str(kernel_oracle), *(f"{o}{d}" for o, d in ops)], capture_output=True, text=True)
    assert [int(x) for x in run.stdout.split()] == [4 * PAGE, 0, 3 * PAGE, 3 * PAGE] == replay(ops)


def test_break_before_set_brk_base_is_zero_and_maps_nothing() -> None:
    space = AddressSpace()
    assert space.brk(0) == 0
    assert space.brk(0x10000) == 0
    assert space.mappings() == []
    assert space.brk_start is None


def test_initial_break_is_the_program_end_rounded_up_to_a_page() -> None:
    space = AddressSpace()
    space.set_brk_base(0x12345)
    assert space.brk(0) == 0x13000 == space.brk_start
    space.set_brk_base(0x20000)
    assert space.brk(0) == 0x20000


def test_growth_maps_zeroed_read_write_pages_up_to_the_rounded_break() -> None:
    space = AddressSpace()
    space.set_brk_base(0x10000)
    assert space.brk(0x12001) == 0x12001  # the exact requested value is the new break
    assert space.mappings() == [(0x10000, 0x13000, PROT_READ | PROT_WRITE)]
    assert space.read(0x10000, 3 * PAGE) == bytes(3 * PAGE)
    space.store(0x12FF8, 8, 0x1122334455667788)
    with pytest.raises(MemoryFault) as info:
        space.load(0x12FFC, 8)
    assert info.value.address == 0x13000


def test_growth_inside_the_current_page_maps_nothing_new() -> None:
    space = AddressSpace()
    space.set_brk_base(0x10000)
    assert space.brk(0x10010) == 0x10010
    assert space.brk(0x10FFF) == 0x10FFF
    assert space.mappings() == [(0x10000, 0x11000, PROT_READ | PROT_WRITE)]


def test_shrink_unmaps_whole_pages_above_the_new_break_and_keeps_the_rest() -> None:
    space = AddressSpace()
    space.set_brk_base(0x10000)
    space.brk(0x14000)
    space.write(0x10FF0, b"kept")
    assert space.brk(0x10800) == 0x10800
    assert space.mappings() == [(0x10000, 0x11000, PROT_READ | PROT_WRITE)]
    assert space.read(0x10FF0, 4) == b"kept"
    # regrowing gives fresh zero pages, not the old contents
    assert space.brk(0x12000) == 0x12000
    space.store(0x11000, 4, 0xFFFFFFFF)
    assert space.brk(0x10800) == 0x10800
    assert space.brk(0x12000) == 0x12000
    assert space.load(0x11000, 4) == 0
    assert space.read(0x10FF0, 4) == b"kept"


def test_invalid_requests_return_the_current_break_unchanged() -> None:
    space = AddressSpace()
    space.set_brk_base(0x10000)
    space.brk(0x11000)
    before = space.mappings()
    for bad in (0, 0xFFFF, 1 << 70, -1):
        assert space.brk(bad) == 0x11000
    assert space.mappings() == before


def test_growth_into_an_existing_mapping_or_its_guard_page_is_refused() -> None:
    space = AddressSpace()
    space.set_brk_base(0x10000)
    space.map(0x14000, PAGE, PROT_READ)
    assert space.brk(0x15000) == 0x10000  # would overlap
    assert space.brk(0x14000) == 0x10000  # would touch the mapping with no guard page
    assert space.brk(0x13000) == 0x13000  # one free page left below the mapping
    assert space.mappings() == [(0x10000, 0x13000, PROT_READ | PROT_WRITE), (0x14000, 0x15000, PROT_READ)]


def test_restore_brk_round_trips_the_break_state() -> None:
    space = AddressSpace()
    space.set_brk_base(0x10000)
    space.brk(0x12345)
    copy = AddressSpace()
    copy.restore_pages(space.dump_pages(), space.dump_regions())
    copy.restore_brk(space.brk_start or 0, space.brk_current)
    assert copy.brk(0) == 0x12345
    assert copy.brk(0x11000) == 0x11000
    assert copy.mappings() == [(0x10000, 0x11000, PROT_READ | PROT_WRITE)]
