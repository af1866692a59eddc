"""The snapshot store and the embedding API's snapshot()/restore().

* Round trip (hypothesis): any set of pages, protections, break and CPU
  state reads back exactly as saved, and the store holds one blob per
  distinct page content across all snapshots (a model of the sharing).
* Damage: every kind of corruption gives SnapshotError and nothing else.
* Machine: a loop with integer, memory and floating-point work is stopped at
  any instruction, snapshotted, restored into a new machine (maybe on the
  other engine) and run to its end; registers, fcsr, memory and pc equal
  Unicorn's uninterrupted run.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vm_cli import Machine
from vm_cli.snapshot import CpuImage, MemoryImage, Snapshot, SnapshotStore
from vm_core.errors import SnapshotError
from vm_core.types import StopKind
from vm_translate.riscv.registers import F0, FFLAGS, FRM

PAGE = 4096
CONTENTS = [bytes(PAGE), b"\x01" * PAGE, bytes(range(256)) * 16, b"\xff" * PAGE]

pages_strategy = st.dictionaries(
    st.integers(min_value=0x10, max_value=0x60),
    st.tuples(st.integers(min_value=0, max_value=7), st.sampled_from(range(len(CONTENTS))), st.binary(max_size=8)),
    max_size=24,
)


def _memory(pages: dict[int, tuple[int, int, bytes]], brk: int | None) -> MemoryImage:
    items = tuple(
        (pn, prot, (tweak + CONTENTS[which][len(tweak):]))
        for pn, (prot, which, tweak) in sorted(pages.items())
    )
    return MemoryImage(
        pages=items, brk_start=brk, brk_current=0 if brk is None else brk + 0x123,
        mmap_base=0x3F_0000_0000, mmap_min_addr=0x10000, address_limit=1 << 38,
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(st.tuples(pages_strategy, st.lists(st.integers(0, 2**64 - 1), min_size=67, max_size=67)),
                     min_size=1, max_size=3),
    brk=st.none() | st.sampled_from([0x70000, 0x100000]),
)
def test_round_trip_and_page_sharing(tmp_path_factory: pytest.TempPathFactory, batches: list, brk: int | None) -> None:
    store = SnapshotStore(tmp_path_factory.mktemp("store"))
    distinct: set[bytes] = set()
    for pages, regs in batches:
        memory = _memory(pages, brk)
        image = Snapshot(kind="machine", isa="riscv64", engine="interp",
                         cpu=CpuImage(regs=tuple(regs), pc=regs[1], icount=regs[2]), memory=memory)
        saved = store.save(image)
        loaded = store.load(saved.snapshot_id)
        assert loaded.snapshot == image
        assert loaded.digest == saved.digest
        distinct |= {data for _, _, data in memory.pages}
        assert {p.name for p in store.page_dir.iterdir()} == {hashlib.sha256(d).hexdigest() for d in distinct}


def _machine() -> Machine:
    machine = Machine("riscv64", engine="interp")
    machine.mem_map(0x10000, 3 * PAGE)
    machine.mem_protect(0x12000, PAGE, 1)
    machine.mem_write(0x10000, b"code" * 100)
    machine.mem_write(0x11000, bytes(range(256)) * 16)
    machine.reg_write("a0", 42)
    machine.pc = 0x10010
    return machine


def _saved_machine(home: Path) -> tuple[SnapshotStore, str]:
    return SnapshotStore(home), _machine().snapshot(home)


def test_a_second_snapshot_writes_only_the_changed_page(tmp_path: Path) -> None:
    machine = Machine("riscv64", engine="interp")
    machine.mem_map(0x10000, 64 * PAGE)
    machine.mem_write(0x10000, bytes(range(256)) * 16 * 64)  # 64 equal pages: one blob
    store = SnapshotStore(tmp_path)
    first = store.save(Snapshot("machine", "riscv64", "interp", CpuImage((0,) * 67, 0, 0), _capture(machine)))
    machine.mem_write(0x20000, b"changed")
    second = store.save(Snapshot("machine", "riscv64", "interp", CpuImage((0,) * 67, 0, 0), _capture(machine)))
    blobs = sorted(store.page_dir.iterdir())
    assert len(blobs) == 2
    manifest_size = store.manifest_path(second.snapshot_id).stat().st_size
    assert second.new_bytes == manifest_size + next(b.stat().st_size for b in blobs if b.name != _hash(bytes(range(256)) * 16))
    assert second.size == manifest_size + sum(b.stat().st_size for b in blobs)
    assert first.new_bytes == first.size


def _capture(machine: Machine) -> MemoryImage:
    from vm_cli.snapshot import capture_memory

    return capture_memory(machine.mem)


def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _rewrite_manifest(store: SnapshotStore, snapshot_id: str, edit: object) -> None:
    path = store.manifest_path(snapshot_id)
    document = json.loads(gzip.decompress(path.read_bytes()))
    edit(document)  # type: ignore[operator]
    path.write_bytes(gzip.compress(json.dumps(document).encode()))


def _damage_blob(store: SnapshotStore, key: str, data: bytes) -> None:
    store.page_path(key).write_bytes(data)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda s, i, k: s.manifest_path(i).write_bytes(s.manifest_path(i).read_bytes()[:40]), "truncated"),
        (lambda s, i, k: s.manifest_path(i).write_bytes(b""), "truncated"),
        (lambda s, i, k: s.manifest_path(i).write_bytes(gzip.compress(b"[1, 2")), "truncated"),
        (lambda s, i, k: s.manifest_path(i).write_bytes(gzip.compress(b"{}")), "not a vm-snapshot/1"),
        (lambda s, i, k: _rewrite_manifest(s, i, lambda d: d["body"]["cpu"]["regs"].__setitem__(10, 7)), "digest"),
        (lambda s, i, k: _rewrite_manifest(s, i, lambda d: d.__setitem__("digest", "0" * 64)), "digest"),
        (lambda s, i, k: _damage_blob(s, k, s.page_path(k).read_bytes()[:-3]), "corrupted"),
        (lambda s, i, k: _damage_blob(s, k, b"not zlib at all"), "corrupted"),
        (lambda s, i, k: _damage_blob(s, k, zlib.compress(b"\x00" * PAGE)), "do not match its hash"),
        (lambda s, i, k: _damage_blob(s, k, zlib.compress(b"\x00" * (PAGE + 1))), "do not match its hash"),
        (lambda s, i, k: s.page_path(k).unlink(), "missing"),
    ],
)
def test_damage_gives_snapshot_error_and_no_machine(tmp_path: Path, damage: object, message: str) -> None:
    store, snapshot_id = _saved_machine(tmp_path)
    key = _hash(bytes(range(256)) * 16)
    damage(store, snapshot_id, key)  # type: ignore[operator]
    with pytest.raises(SnapshotError, match=message):
        Machine.restore(snapshot_id, home=tmp_path)


def test_a_valid_snapshot_restores(tmp_path: Path) -> None:
    original = _machine()
    snapshot_id = original.snapshot(tmp_path)
    machine = Machine.restore(snapshot_id[:5], home=tmp_path)
    assert machine.engine_spec.name == "interp"
    assert (machine.reg_read("a0"), machine.pc) == (42, 0x10010)
    assert machine.cpu.regs == original.cpu.regs
    assert machine.mem.mappings() == original.mem.mappings()
    assert list(machine.mem.dump_pages()) == list(original.mem.dump_pages())


# loop: c.add a0,a1; c.addi a1,1; c.sd a0,0(a5); c.addi a5,8; fcvt.d.l fa0,a1; fdiv.d fa1,fa0,fa2;
#       fadd.d fa3,fa3,fa1; blt a1,a4,loop; c.ebreak   (assembled with riscv64-linux-gnu-as -march=rv64gc)
LOOP = bytes.fromhex("2e95850588e3a10753f525d2d375c51ad3f6b602e3c6e5fe0290")
CODE, DATA = 0x10000, 0x20000
THREE = struct.unpack("<Q", struct.pack("<d", 3.0))[0]


def _unicorn(iterations: int, frm: int) -> tuple[list[int], list[int], int, bytes]:
    from unicorn import UC_ARCH_RISCV, UC_MODE_RISCV64, Uc
    from unicorn import riscv_const as rc

    uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
    uc.reg_write(rc.UC_RISCV_REG_MSTATUS, uc.reg_read(rc.UC_RISCV_REG_MSTATUS) | (0b11 << 13))
    uc.mem_map(CODE, PAGE)
    uc.mem_map(DATA, 2 * PAGE)
    uc.mem_write(CODE, LOOP)
    uc.reg_write(rc.UC_RISCV_REG_A4, iterations)
    uc.reg_write(rc.UC_RISCV_REG_A5, DATA)
    uc.reg_write(rc.UC_RISCV_REG_F12, THREE)
    uc.reg_write(rc.UC_RISCV_REG_FCSR, frm << 5)
    uc.emu_start(CODE, CODE + len(LOOP) - 2)
    x = [uc.reg_read(getattr(rc, f"UC_RISCV_REG_X{i}")) for i in range(32)]
    f = [uc.reg_read(getattr(rc, f"UC_RISCV_REG_F{i}")) for i in range(32)]
    return x, f, uc.reg_read(rc.UC_RISCV_REG_FCSR), bytes(uc.mem_read(DATA, 2 * PAGE))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    iterations=st.integers(1, 300),
    cut=st.floats(0, 1),
    engines=st.sampled_from([("interp", "python"), ("python", "interp"), ("python", "python")]),
    frm=st.sampled_from([0, 1, 2, 3, 4]),
)
def test_machine_snapshot_restore_matches_unicorn(
    tmp_path_factory: pytest.TempPathFactory, iterations: int, cut: float, engines: tuple[str, str], frm: int
) -> None:
    home = tmp_path_factory.mktemp("home")
    total = 8 * iterations
    first = Machine("riscv64", engine=engines[0])
    first.mem_map(CODE, PAGE, 5)
    first.mem_map(DATA, 2 * PAGE, 3)
    first.mem_write(CODE, LOOP)
    first.reg_write("a4", iterations)
    first.reg_write("a5", DATA)
    first.reg_write("f12", THREE)
    first.reg_write(FRM, frm)
    stop = first.run(begin=CODE, count=int(cut * total))
    assert stop.kind in (StopKind.BUDGET, StopKind.BREAKPOINT)
    second = Machine.restore(first.snapshot(home), home=home, engine=engines[1])
    assert second.engine_spec.name == engines[1]
    assert second.mem.mappings() == first.mem.mappings()
    assert (second.cpu.regs, second.pc, second.icount) == (first.cpu.regs, first.pc, first.icount)
    stop = second.run()
    assert stop.kind is StopKind.BREAKPOINT and second.pc == CODE + len(LOOP) - 2
    assert second.icount == total
    x, f, fcsr, data = _unicorn(iterations, frm)
    assert second.cpu.regs[:32] == x
    assert second.cpu.regs[F0 : F0 + 32] == f
    assert second.cpu.regs[FFLAGS] | second.cpu.regs[FRM] << 5 == fcsr
    assert second.mem_read(DATA, 2 * PAGE) == data
