"""``vm ls``, ``vm show`` and ``vm rm`` over a registry in a temporary VM_HOME."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from uuid import UUID

import pytest
from vm_cli.commands.machines import ago
from vm_cli.main import main
from vm_core.application import VmApplication

VM_ARGS = {"isa": "riscv64", "memory_size": 32 << 20, "engine": "interp", "program": "/guest/hello"}


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> VmApplication:
    for key in list(os.environ):
        if key.startswith("VM_") or key in ("PERSISTENCE_MODULE", "SQLITE_DBNAME"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("VM_HOME", str(tmp_path / "vm-home"))
    monkeypatch.setenv("COLUMNS", "200")
    return VmApplication()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_ls_lists_vms_with_short_id_name_isa_state_and_last_exit(
    registry: VmApplication, capsys: pytest.CaptureFixture[str]
) -> None:
    web = registry.create_vm(name="web", **VM_ARGS)  # type: ignore[arg-type]
    registry.start(web)
    registry.stop(web, signal=int(signal.SIGSEGV), instructions_retired=10, wall_time_s=0.1)
    other = registry.create_vm(name="db", **{**VM_ARGS, "isa": "aarch64"})  # type: ignore[arg-type]

    status, out, _ = run_cli(capsys, "ls")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "ISA", "STATE", "LAST", "EXIT", "CREATED"]
    assert lines[1].split()[:6] == [web.hex[:12], "web", "riscv64", "stopped", "signal", "11"]
    assert "(SIGSEGV)" in lines[1]
    assert lines[2].split()[:5] == [other.hex[:12], "db", "aarch64", "created", "-"]
    assert lines[2].rstrip().endswith("ago")


def test_ls_json_is_machine_readable(registry: VmApplication, capsys: pytest.CaptureFixture[str]) -> None:
    vm_id = registry.create_vm(name="j", **VM_ARGS)  # type: ignore[arg-type]
    status, out, _ = run_cli(capsys, "ls", "--json")
    assert status == 0
    (row,) = json.loads(out)
    assert UUID(row["id"]) == vm_id
    assert row["short_id"] == vm_id.hex[:12]
    assert (row["name"], row["isa"], row["state"], row["last_exit"]) == ("j", "riscv64", "created", None)


def test_ls_on_an_empty_registry_prints_only_the_header(
    registry: VmApplication, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run_cli(capsys, "ls")
    assert status == 0
    assert len(out.splitlines()) == 1
    assert run_cli(capsys, "ls", "--json")[1].strip() == "[]"


def test_show_by_name_prefix_and_full_id(registry: VmApplication, capsys: pytest.CaptureFixture[str]) -> None:
    vm_id = registry.create_vm(name="svc", arguments=["--flag", "two words"], **VM_ARGS)  # type: ignore[arg-type]
    registry.start(vm_id)
    registry.record_snapshot(vm_id, "snap", "sha256:" + "cd" * 32, 4096)
    registry.stop(vm_id, exit_status=3, instructions_retired=777, wall_time_s=1.25)

    for ref in ["svc", vm_id.hex[:6], str(vm_id)]:
        status, out, _ = run_cli(capsys, "show", ref)
        assert status == 0
        assert str(vm_id) in out
        assert "exit 3, 777 instructions, 1.250 s" in out
        for kind in ["Created", "Started", "SnapshotTaken", "Stopped"]:
            assert kind in out

    status, out, _ = run_cli(capsys, "show", "svc", "--json")
    info = json.loads(out)
    assert info["config"]["arguments"] == ["--flag", "two words"]
    assert info["config"]["memory_size"] == 32 << 20
    assert info["last_exit"]["exit_status"] == 3
    assert info["snapshots"] == [{"snapshot_id": "snap", "digest": "sha256:" + "cd" * 32, "size": 4096}]
    assert [event["event"] for event in info["events"]] == ["Created", "Started", "SnapshotTaken", "Stopped"]
    assert info["events"][3]["details"]["instructions_retired"] == 777


def test_show_unknown_vm_is_a_one_line_error(registry: VmApplication, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run_cli(capsys, "show", "ghost")
    assert status == 2  # naming something that is not there is a usage error
    assert out == ""
    assert err.startswith("vm: error: no VM named 'ghost'")
    assert "Traceback" not in err


def test_ambiguous_prefix_is_reported(registry: VmApplication, capsys: pytest.CaptureFixture[str]) -> None:
    ids = [registry.create_vm(**VM_ARGS) for _ in range(17)]  # type: ignore[arg-type]
    digits = [vm_id.hex[0] for vm_id in ids]
    shared = next(d for d in digits if digits.count(d) > 1)
    status, _, err = run_cli(capsys, "show", shared)
    assert status == 2
    assert f"the id prefix '{shared}' matches" in err


def test_rm_removes_by_name_or_prefix_and_frees_the_name(
    registry: VmApplication, capsys: pytest.CaptureFixture[str]
) -> None:
    first = registry.create_vm(name="gone", **VM_ARGS)  # type: ignore[arg-type]
    second = registry.create_vm(name="kept", **VM_ARGS)  # type: ignore[arg-type]
    third = registry.create_vm(name="also_gone", **VM_ARGS)  # type: ignore[arg-type]
    status, out, _ = run_cli(capsys, "rm", "gone", third.hex[:12])
    assert status == 0
    assert out.split() == ["gone", "also_gone"]
    names = [row["name"] for row in json.loads(run_cli(capsys, "ls", "--json")[1])]
    assert names == ["kept"]
    assert run_cli(capsys, "show", str(first))[0] == 2
    assert registry.create_vm(name="gone", **VM_ARGS) not in {first, second, third}  # type: ignore[arg-type]


def test_rm_of_a_running_vm_needs_force(registry: VmApplication, capsys: pytest.CaptureFixture[str]) -> None:
    vm_id = registry.create_vm(name="busy", **VM_ARGS)  # type: ignore[arg-type]
    registry.start(vm_id)
    status, out, err = run_cli(capsys, "rm", "busy")
    assert out == ""
    assert status == 1
    assert "cannot remove VM 'busy'" in err
    assert "it is running" in err
    assert run_cli(capsys, "rm", "-f", "busy")[:2] == (0, "busy\n")
    assert json.loads(run_cli(capsys, "ls", "--json")[1]) == []


def test_rm_reports_every_failure_and_removes_the_rest(
    registry: VmApplication, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.create_vm(name="fine", **VM_ARGS)  # type: ignore[arg-type]
    status, out, err = run_cli(capsys, "rm", "nope1", "fine", "nope2")
    assert status == 2
    assert out == "fine\n"
    assert "'nope1'" in err
    assert "'nope2'" in err


def test_ago_reads_like_docker() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert ago(now - timedelta(seconds=1), now) == "1 second ago"
    assert ago(now - timedelta(seconds=59), now) == "59 seconds ago"
    assert ago(now - timedelta(minutes=3, seconds=5), now) == "3 minutes ago"
    assert ago(now - timedelta(hours=1), now) == "1 hour ago"
    assert ago(now - timedelta(days=9), now) == "9 days ago"
