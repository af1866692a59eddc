"""``vm rm`` and ``vm prune`` delete snapshots and exactly the pages nothing else references; saves are atomic."""

from __future__ import annotations

import errno
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from vm_cli.snapshot import CpuImage, MemoryImage, Snapshot, SnapshotStore
from vm_core.errors import SnapshotError

VM = [sys.executable, "-m", "vm_cli"]
HELLO = Path(__file__).resolve().parents[3] / "examples" / "hello-riscv64"
HELLO_OUTPUT = b"Hello from RISC-V!\na little floating point: 85.997559\n"


def vm(*args: str, home: Path) -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "VM_HOME": str(home)}
    return subprocess.run([*VM, *args], env=env, capture_output=True, timeout=120, check=False)


def snapshot(home: Path, name: str, at: int) -> str:
    done = vm("run", "--engine", "interp", "--name", name, "--snapshot-at", str(at), str(HELLO), home=home)
    assert done.returncode == 0, done.stderr
    return done.stderr.decode().splitlines()[-1].removeprefix("snapshot: ")


def blobs(store: SnapshotStore, snapshot_id: str) -> set[str]:
    document = json.loads(gzip.decompress(store.manifest_path(snapshot_id).read_bytes()))
    return set(document["body"]["memory"]["blobs"])


def pages(store: SnapshotStore) -> set[str]:
    return {p.name for p in store.page_dir.iterdir()}


def test_rm_deletes_the_vms_snapshots_and_only_the_pages_no_other_snapshot_shares(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = SnapshotStore(home)
    first = snapshot(home, "first", 3_000)
    second = snapshot(home, "second", 6_000)
    shared = blobs(store, first) & blobs(store, second)
    assert shared and blobs(store, first) - shared  # the two snapshots share pages, and the first has its own
    assert pages(store) == blobs(store, first) | blobs(store, second)

    done = vm("rm", "-f", "first", home=home)  # paused at its snapshot: -f
    assert (done.returncode, done.stdout) == (0, b"first\n"), done.stderr
    assert store.snapshot_ids() == [second]
    assert pages(store) == blobs(store, second)
    resumed = vm("resume", second, home=home)
    assert resumed.returncode == 0 and resumed.stdout.endswith(b"85.997559\n")


def test_prune_removes_finished_runs_their_snapshots_and_unreferenced_pages(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = SnapshotStore(home)
    assert vm("run", "--name", "done", str(HELLO), home=home).stdout == HELLO_OUTPUT
    kept = snapshot(home, "waiting", 3_000)  # paused at its snapshot: not finished, kept
    finished = snapshot(home, "resumed", 3_000)
    assert vm("resume", finished, home=home).returncode == 0  # it ran to its end: finished
    scratch = store.page_dir / ".leftover.123.abcd.tmp"  # what a save killed half-way leaves
    scratch.write_bytes(b"half")
    orphan = store.page_dir / ("0" * 64)  # a page no snapshot names
    orphan.write_bytes(b"x")

    done = vm("prune", home=home)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.decode().split()) == ["done", "resumed"]
    assert done.stderr.decode().startswith("vm: pruned 2 VMs, 1 snapshots, ")
    assert store.snapshot_ids() == [kept]
    assert pages(store) == blobs(store, kept)
    names = [row["name"] for row in json.loads(vm("ls", "--json", home=home).stdout)]
    assert names == ["waiting"]
    assert vm("prune", home=home).stdout == b""


def test_a_damaged_manifest_keeps_every_page(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = SnapshotStore(home)
    first = snapshot(home, "first", 3_000)
    second = snapshot(home, "second", 6_000)
    store.manifest_path(second).write_bytes(b"not gzip")
    before = pages(store)
    assert vm("rm", "-f", "first", home=home).returncode == 0
    assert store.snapshot_ids() == [second]  # the damaged one is kept, and so is every page it may name
    assert pages(store) == before
    assert first not in store.snapshot_ids()


def tiny_snapshot() -> Snapshot:
    memory = MemoryImage(
        pages=tuple((0x10 + i, 5, bytes([i]) * 4096) for i in range(4)),
        brk_start=None, brk_current=0, mmap_base=0x3F_0000_0000, mmap_min_addr=0x10000, address_limit=1 << 38,
    )
    return Snapshot(kind="machine", isa="riscv64", engine="interp", cpu=CpuImage((0,) * 67, 0x10000, 5), memory=memory)


@pytest.mark.parametrize("failing_call", [1, 3, 5, 6])
def test_a_save_that_fails_half_way_leaves_no_snapshot_and_no_temporary_file(
    failing_call: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync fails on one of the calls (4 pages, the page directory, the manifest): nothing half-written remains."""
    store = SnapshotStore(tmp_path)
    real_fsync = os.fsync
    calls = 0

    def fsync(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls == failing_call:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(SnapshotError, match="No space left on device"):
        store.save(tiny_snapshot())
    assert store.snapshot_ids() == []
    leftovers = [p.name for d in (store.snapshot_dir, store.page_dir) for p in d.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    monkeypatch.setattr(os, "fsync", real_fsync)
    saved = store.save(tiny_snapshot())
    assert store.load(saved.snapshot_id).snapshot.memory == tiny_snapshot().memory
