"""`vm run --snapshot-at` / `vm resume` from the outside: damaged snapshots, the VM's lifecycle, edge points.

A damaged snapshot (a corrupted page blob, a truncated or edited manifest)
and a restore the domain refuses (onto a running VM) must end ``vm resume``
with one clear error line before the guest runs: no guest output, and no
``RestoredFrom`` event on the VM.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from vm_cli.snapshot import SnapshotStore
from vm_core.application import VmApplication
from vm_core.domainmodel import VmState

VM = [sys.executable, "-m", "vm_cli"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private VM home for this test (the snapshot store and the VM registry)."""
    path = tmp_path / "home"
    monkeypatch.setenv("VM_HOME", str(path))
    monkeypatch.delenv("PERSISTENCE_MODULE", raising=False)
    return path


@pytest.fixture
def hello(guest_binaries: dict[str, Path]) -> str:
    return str(guest_binaries["hello"])


def vm(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[bytes]:
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "VM_HOME": str(home)}
    return subprocess.run([*VM, *args], cwd=cwd, env=env, capture_output=True, timeout=300, check=False)


def snapshot_of(hello: str, at: int, tmp_path: Path, home: Path) -> tuple[str, bytes]:
    """Run hello to ``at`` instructions; the snapshot id and what the guest printed so far."""
    done = vm("run", "--snapshot-at", str(at), hello, cwd=tmp_path, home=home)
    assert done.returncode == 0, done.stderr
    last = done.stderr.decode().splitlines()[-1]
    assert last.startswith("snapshot: ")
    return last.removeprefix("snapshot: "), done.stdout


def event_kinds(vm_id: str) -> list[str]:
    return [record.kind for record in VmApplication().history(vm_id)]


def test_resume_continues_and_the_vm_records_the_lifecycle(
    hello: str, guest_build: ModuleType, tmp_path: Path, home: Path
) -> None:
    expected, _, _ = guest_build.run_qemu(Path(hello), [], tmp_path)
    snapshot_id, before = snapshot_of(hello, 3_000, tmp_path, home)
    loaded = SnapshotStore(home).load(snapshot_id)
    vm_id = loaded.snapshot.vm_id
    assert vm_id is not None and loaded.snapshot.cpu.icount == 3_000
    app = VmApplication()
    assert app.get(vm_id).state is VmState.PAUSED
    assert app.get(vm_id).snapshots[snapshot_id].digest == loaded.digest
    for _ in range(2):  # a stopped VM may be restored from its snapshot again
        done = vm("resume", snapshot_id[:6], cwd=tmp_path, home=home)
        assert done.returncode == 0, done.stderr
        assert before + done.stdout == expected
    assert VmApplication().get(vm_id).state is VmState.STOPPED
    assert event_kinds(vm_id) == [
        "Created", "Started", "SnapshotTaken", "Paused",
        "RestoredFrom", "Resumed", "Stopped", "RestoredFrom", "Resumed", "Stopped",
    ]


def test_a_point_past_the_end_just_runs_the_program(hello: str, tmp_path: Path, home: Path) -> None:
    done = vm("run", "--snapshot-at", str(10**12), hello, cwd=tmp_path, home=home)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"Hello, world!\n", b"")
    assert not (home / "snapshots").exists() or not list((home / "snapshots").iterdir())


def test_a_point_not_after_the_start_is_a_usage_error(hello: str, tmp_path: Path, home: Path) -> None:
    done = vm("run", "--snapshot-at", "0", hello, cwd=tmp_path, home=home)
    assert done.returncode == 2 and b"--snapshot-at 0" in done.stderr and not done.stdout
    snapshot_id, _ = snapshot_of(hello, 3_000, tmp_path, home)
    done = vm("resume", "--snapshot-at", "3000", snapshot_id, cwd=tmp_path, home=home)
    assert done.returncode == 2 and b"3000 instructions already retired" in done.stderr and not done.stdout


def _refused(snapshot_id: str, vm_id: str, tmp_path: Path, home: Path, message: bytes) -> None:
    before = event_kinds(vm_id)
    done = vm("resume", snapshot_id, cwd=tmp_path, home=home)
    assert done.returncode == 1
    assert done.stdout == b""
    lines = done.stderr.decode().splitlines()
    assert lines[-1].startswith("vm: error: ") and message.decode() in lines[-1], done.stderr
    assert event_kinds(vm_id) == before  # nothing recorded: no RestoredFrom


def test_a_corrupted_page_blob_is_refused(hello: str, tmp_path: Path, home: Path) -> None:
    snapshot_id, _ = snapshot_of(hello, 3_000, tmp_path, home)
    store = SnapshotStore(home)
    manifest = json.loads(gzip.decompress(store.manifest_path(snapshot_id).read_bytes()))
    victim = store.page_path(manifest["body"]["memory"]["blobs"][3])
    blob = bytearray(victim.read_bytes())
    blob[len(blob) // 2] ^= 0x40
    victim.write_bytes(bytes(blob))
    vm_id = manifest["body"]["vm_id"]
    _refused(snapshot_id, vm_id, tmp_path, home, f"page blob {victim.name} is corrupted".encode())
    victim.unlink()
    _refused(snapshot_id, vm_id, tmp_path, home, f"page blob {victim.name} is missing".encode())


def test_a_truncated_or_edited_manifest_is_refused(hello: str, tmp_path: Path, home: Path) -> None:
    snapshot_id, _ = snapshot_of(hello, 3_000, tmp_path, home)
    path = SnapshotStore(home).manifest_path(snapshot_id)
    original = path.read_bytes()
    document = json.loads(gzip.decompress(original))
    vm_id = document["body"]["vm_id"]
    path.write_bytes(original[: len(original) // 2])
    _refused(snapshot_id, vm_id, tmp_path, home, b"is truncated or corrupted")
    document["body"]["cpu"]["pc"] += 4
    path.write_bytes(gzip.compress(json.dumps(document).encode()))
    _refused(snapshot_id, vm_id, tmp_path, home, b"does not match its digest")


def test_restoring_onto_a_running_vm_is_refused(hello: str, tmp_path: Path, home: Path) -> None:
    snapshot_id, _ = snapshot_of(hello, 3_000, tmp_path, home)
    vm_id = SnapshotStore(home).load(snapshot_id).snapshot.vm_id
    assert vm_id is not None
    VmApplication().resume(vm_id)
    _refused(snapshot_id, vm_id, tmp_path, home, b"cannot restore VM")
    assert VmApplication().get(vm_id).state is VmState.RUNNING


def test_resume_names_unknown_and_raw_machine_snapshots(tmp_path: Path, home: Path) -> None:
    from vm_cli import Machine

    done = vm("resume", "0123456789abcdef", cwd=tmp_path, home=home)
    assert done.returncode == 2 and b"no snapshot '0123456789abcdef'" in done.stderr
    machine = Machine("riscv64", engine="interp")
    machine.mem_map(0x10000, 0x1000)
    done = vm("resume", machine.snapshot(home), cwd=tmp_path, home=home)
    assert done.returncode == 2 and b"raw machine snapshot" in done.stderr
