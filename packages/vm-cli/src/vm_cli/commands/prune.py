"""``vm prune``: remove every finished VM, the snapshots of removed VMs and the pages nothing references.

Finished means stopped (exited, killed, failed, interrupted) or lost (its
``vm`` process vanished; recorded ``lost`` first). Running, paused (a
snapshot waits to be resumed) and created VMs are kept, as are snapshots
that belong to no recorded VM. Removed VMs' histories stay in the event
store (nothing recorded is rewritten); their snapshots and every page blob
no remaining snapshot names are deleted (:mod:`vm_cli.snapshot_pruning`).
Prints the removed VMs' names, then one summary line on stderr.
"""

from __future__ import annotations

import argparse
import sys

from vm_core.domainmodel import VmState
from vm_core.errors import VmError

from vm_cli.messages import error_line
from vm_cli.registry import is_lost, open_registry


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "prune",
        help="remove finished VMs, their snapshots and unreferenced snapshot pages",
        description="Remove every stopped or lost VM, the snapshots of removed VMs and the snapshot pages "
        "no remaining snapshot references.",
    )
    p.set_defaults(func=run_prune)


def run_prune(args: argparse.Namespace) -> int:
    from vm_cli.snapshot import SnapshotStore
    from vm_cli.snapshot_pruning import remove_snapshots

    failures: list[VmError] = []
    removed = 0
    with open_registry() as app:
        for vm in app.list_vms():
            try:
                if is_lost(vm):
                    app.mark_lost(vm.id)
                elif vm.state is not VmState.STOPPED:
                    continue
                app.remove(vm.id)
            except VmError as err:
                failures.append(err)
                continue
            removed += 1
            print(vm.name, flush=True)
        gone = [str(vm_id) for vm_id in app.removed_vm_ids()]
    try:
        report = remove_snapshots(SnapshotStore(), gone)
    except VmError as err:
        failures.append(err)
    else:
        print(f"vm: pruned {removed} VMs, {report.describe()}", file=sys.stderr)
    for failure in failures[:-1]:
        error_line(failure)
    if failures:
        raise failures[-1]
    return 0
