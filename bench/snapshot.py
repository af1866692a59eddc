"""Snapshot benchmark: save and restore time and on-disk size for a guest with 64 MiB touched, and sharing.

Through the embedding API (:class:`vm_cli.Machine`) it maps ``--mib`` MiB
(default 64) and fills every page with distinct data shaped like a program's
heap (little-endian 64-bit counters: compressible, but no two pages alike),
then measures:

1. ``machine.snapshot()``: wall time, total size on disk (manifest + page blobs);
2. ``Machine.restore(id)``: wall time of reading, verifying every page's hash and
   rebuilding the machine; the restored memory is compared with the original;
3. after writing ``--touch-mib`` MiB more (default 1), a second snapshot: its
   wall time and the bytes it added to the store (only the changed pages and
   its manifest, since page blobs are shared by content).

The store is a fresh temporary directory unless ``--home`` names one. It is a
measurement, not a test: nothing is compared with a threshold. Run it as
``python bench/snapshot.py [--mib 64] [--touch-mib 1] [--engine interp]``.
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table
from vm_cli import Machine
from vm_cli.snapshot import SnapshotStore
from vm_core.errors import VmError

PAGE = 4096
BASE = 0x4000_0000
MIB = 1 << 20


def heap_like_page(page_index: int) -> bytes:
    """A page of 512 consecutive 64-bit counters starting at a page-specific value."""
    start = page_index * 512 * 3 + 1
    return struct.pack("<512Q", *range(start, start + 512 * 3, 3))


def fill(machine: Machine, address: int, size: int, first_page: int) -> None:
    data = b"".join(heap_like_page(first_page + i) for i in range(size // PAGE))
    machine.mem_write(address, data)


def run(mib: int, touch_mib: int, engine: str, home: Path) -> list[tuple[str, str, str]]:
    size = mib * MIB
    machine = Machine("riscv64", engine=engine)
    machine.mem_map(BASE, size + touch_mib * MIB)
    fill(machine, BASE, size, 0)
    store = SnapshotStore(home)
    rows: list[tuple[str, str, str]] = []

    start = time.perf_counter()
    first_id = machine.snapshot(home)
    first_s = time.perf_counter() - start
    first_size = _stored_size(store)
    rows.append((f"snapshot of {mib} MiB touched", f"{first_s:.2f} s",
                 f"{first_size / MIB:.1f} MiB on disk ({first_size / size:.0%} of the memory)"))

    start = time.perf_counter()
    restored = Machine.restore(first_id, home=home, engine=engine)
    restore_s = time.perf_counter() - start
    same = list(restored.mem.dump_pages()) == list(machine.mem.dump_pages())
    rows.append(("restore (read, verify every page, rebuild)", f"{restore_s:.2f} s",
                 "memory identical" if same else "MEMORY DIFFERS"))

    fill(machine, BASE + size, touch_mib * MIB, size // PAGE)
    start = time.perf_counter()
    second_id = machine.snapshot(home)
    second_s = time.perf_counter() - start
    added = _stored_size(store) - first_size
    manifest = store.manifest_path(second_id).stat().st_size
    rows.append((f"second snapshot after touching {touch_mib} MiB more", f"{second_s:.2f} s",
                 f"{added / MIB:.2f} MiB added to the store: its manifest {manifest / MIB:.2f} MiB "
                 f"+ the changed pages {(added - manifest) / MIB:.2f} MiB"))
    if not same:
        raise VmError("the restored memory differs from the snapshotted memory")
    return rows


def _stored_size(store: SnapshotStore) -> int:
    return sum(path.stat().st_size for folder in (store.snapshot_dir, store.page_dir) for path in folder.iterdir())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/snapshot.py", description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64, help="MiB of guest memory filled before the snapshot")
    parser.add_argument("--touch-mib", type=int, default=1, help="MiB written before the second snapshot")
    parser.add_argument("--engine", default="interp", help="engine of the machines (does not affect the numbers)")
    parser.add_argument("--home", type=Path, help="snapshot store directory (default: a fresh temporary one)")
    options = parser.parse_args(argv)
    if options.mib <= 0 or options.touch_mib <= 0:
        parser.error("--mib and --touch-mib must be positive")
    console = Console()
    try:
        if options.home is not None:
            rows = run(options.mib, options.touch_mib, options.engine, options.home)
        else:
            with tempfile.TemporaryDirectory(prefix="vm-snapshot-bench-") as home:
                rows = run(options.mib, options.touch_mib, options.engine, Path(home))
    except VmError as err:
        console.print(f"bench/snapshot.py: error: {err}")
        return 1
    table = Table(title="vm snapshots")
    for column in ("step", "wall", "result"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
