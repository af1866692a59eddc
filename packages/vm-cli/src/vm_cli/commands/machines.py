"""``vm ls``, ``vm show`` and ``vm rm``: the recorded virtual machines.

VMs are named the way docker names containers: by name, full id, or any
unique prefix of the id's hex digits. The store is the one
:class:`vm_core.application.VmApplication` opens (SQLite under ``$VM_HOME``
unless eventsourcing's ``PERSISTENCE_MODULE`` says otherwise).

A VM recorded ``running`` whose ``vm`` process no longer exists (killed with
SIGKILL, or the host lost power) is shown ``lost``: the liveness check
compares the recorded runner identity (pid, start time, boot id) with the
live process (:mod:`vm_core.runner`). ``vm rm`` records such a VM lost
before removing it, stops a live one first with ``-f`` (as ``vm stop``),
and deletes the removed VMs' snapshots and the pages no other snapshot
shares (:mod:`vm_cli.snapshot_pruning`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from rich.console import Console
from rich.table import Table
from vm_core.application import VmEventRecord
from vm_core.domainmodel import VirtualMachine
from vm_core.errors import VmError

from vm_cli.messages import error_line
from vm_cli.registry import is_live_here, is_lost, open_registry, shown_state
from vm_cli.snapshot import SnapshotStore
from vm_cli.snapshot_pruning import remove_snapshots
from vm_cli.stopping import STOP_TIMEOUT, stop_vm


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ls = subparsers.add_parser("ls", help="list the virtual machines")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    ls.set_defaults(func=run_ls)

    show = subparsers.add_parser("show", help="show a VM's configuration and event history")
    show.add_argument("vm", metavar="VM", help="name, id or unique id prefix")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=run_show)

    rm = subparsers.add_parser("rm", help="remove virtual machines")
    rm.add_argument("vms", metavar="VM", nargs="+", help="name, id or unique id prefix")
    rm.add_argument("-f", "--force", action="store_true", help="also remove running (stopped first) or paused VMs")
    rm.set_defaults(func=run_rm)


def jsonable(value: Any) -> Any:
    """``value`` with UUIDs, datetimes, enums and tuples made JSON-friendly."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value


def ago(when: datetime, now: datetime | None = None) -> str:
    """Docker-style age: ``5 seconds ago``, ``3 minutes ago``, ``2 days ago``."""
    seconds = max(0, int(((now or datetime.now(UTC)) - when).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return f"{seconds} second{'s' if seconds != 1 else ''} ago"


def summary(vm: VirtualMachine) -> dict[str, Any]:
    """The fields ``vm ls`` shows for one VM."""
    return {
        "id": str(vm.id),
        "short_id": vm.short_id,
        "name": vm.name,
        "isa": vm.config.isa,
        "state": shown_state(vm),
        "last_exit": vm.last_exit.describe() if vm.last_exit else None,
        "created": vm.created_on.isoformat(),
    }


def details(vm: VirtualMachine, history: list[VmEventRecord]) -> dict[str, Any]:
    """Everything ``vm show`` shows for one VM."""
    exit_record = vm.last_exit
    return {
        **summary(vm),
        "modified": vm.modified_on.isoformat(),
        "config": jsonable(
            {
                "name": vm.config.name,
                "isa": vm.config.isa,
                "memory_size": vm.config.memory_size,
                "engine": vm.config.engine,
                "accelerator": vm.config.accelerator,
                "program": vm.config.program,
                "kernel": vm.config.kernel,
                "arguments": vm.config.arguments,
            }
        ),
        "last_exit": None
        if exit_record is None
        else {
            "description": exit_record.describe(),
            "exit_status": exit_record.exit_status,
            "signal": exit_record.signal,
            "instructions_retired": exit_record.instructions_retired,
            "wall_time_s": exit_record.wall_time_s,
        },
        "snapshots": [
            {"snapshot_id": snap.snapshot_id, "digest": snap.digest, "size": snap.size}
            for snap in vm.snapshots.values()
        ],
        "restored_from": vm.restored_from,
        "runner": None if vm.runner is None else vm.runner.to_json(),
        "events": [
            {
                "version": record.version,
                "event": record.kind,
                "timestamp": record.timestamp.isoformat(),
                "details": jsonable(record.details),
            }
            for record in history
        ],
    }


def run_ls(args: argparse.Namespace) -> int:
    with open_registry() as app:
        vms = app.list_vms()
    rows = [summary(vm) for vm in vms]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = Table("ID", "NAME", "ISA", "STATE", "LAST EXIT", "CREATED", box=None, pad_edge=False)
    for vm, row in zip(vms, rows):
        table.add_row(
            row["short_id"], row["name"], row["isa"], row["state"], row["last_exit"] or "-", ago(vm.created_on)
        )
    Console(soft_wrap=True).print(table)
    return 0


def run_show(args: argparse.Namespace) -> int:
    with open_registry() as app:
        vm = app.get(args.vm)
        history = app.history(vm.id)
    info = details(vm, history)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    console = Console(soft_wrap=True)
    overview = Table(show_header=False, box=None, pad_edge=False)
    overview.add_row("id", info["id"])
    overview.add_row("state", info["state"])
    for key, value in info["config"].items():
        if value is not None:
            overview.add_row(key, " ".join(value) if key == "arguments" else str(value))
    if info["last_exit"]:
        exit_info = info["last_exit"]
        overview.add_row(
            "last exit",
            f"{exit_info['description']}, {exit_info['instructions_retired']} instructions, "
            f"{exit_info['wall_time_s']:.3f} s",
        )
    for snap in info["snapshots"]:
        overview.add_row("snapshot", f"{snap['snapshot_id']} {snap['digest']} ({snap['size']} bytes)")
    if info["restored_from"]:
        overview.add_row("restored from", info["restored_from"])
    if vm.runner is not None:
        overview.add_row("process", vm.runner.describe())
    overview.add_row("created", f"{info['created']} ({ago(vm.created_on)})")
    console.print(overview)
    events = Table("#", "TIME (UTC)", "EVENT", "DETAILS", title="history", box=None, pad_edge=False)
    for record, entry in zip(history, info["events"]):
        payload = ", ".join(f"{key}={value}" for key, value in entry["details"].items() if value is not None)
        when = record.timestamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        events.add_row(str(record.version), when, record.kind, payload)
    console.print(events)
    return 0


def run_rm(args: argparse.Namespace) -> int:
    failures: list[VmError] = []
    removed: list[str] = []
    with open_registry() as app:
        for ref in args.vms:
            try:
                vm = app.get(ref)
                if is_lost(vm):
                    app.mark_lost(vm.id)
                elif args.force and is_live_here(vm):
                    stop_vm(app, vm, STOP_TIMEOUT)
                app.remove(vm.id, force=args.force)
            except VmError as err:
                failures.append(err)
                continue
            removed.append(str(vm.id))
            print(vm.name, flush=True)
    if removed:
        try:
            remove_snapshots(SnapshotStore(), removed)
        except VmError as err:
            failures.append(err)
    for failure in failures[:-1]:
        error_line(failure)
    if failures:
        raise failures[-1]
    return 0
