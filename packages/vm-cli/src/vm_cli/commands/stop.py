"""``vm stop VM...``: stop running VMs, as ``docker stop`` stops containers.

The ``vm`` process that runs the VM (its identity was recorded when the run
started: pid, start time, boot id) gets SIGTERM, records the run
``interrupted`` and ends; after ``--timeout`` seconds it gets SIGKILL and
``vm stop`` records the end itself. The signal goes only to that very
process: it is opened as a pidfd and its start time checked first, so a
pid reused by another process is never signalled. A VM whose process
already vanished is recorded ``lost``; one that runs on another host is
refused (stop it there).
"""

from __future__ import annotations

import argparse

from vm_core.errors import ConfigurationError, VmError

from vm_cli.messages import error_line
from vm_cli.registry import open_registry
from vm_cli.stopping import STOP_TIMEOUT, stop_vm


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "stop",
        help="stop running VMs (SIGTERM to their vm process, SIGKILL after --timeout)",
        description="Stop each running VM: its vm process gets SIGTERM and records the run interrupted; "
        "after --timeout seconds it gets SIGKILL. A VM whose process vanished is recorded lost.",
    )
    p.add_argument("vms", metavar="VM", nargs="+", help="name, id or unique id prefix")
    p.add_argument(
        "-t", "--timeout", type=float, default=STOP_TIMEOUT, metavar="SECONDS",
        help=f"seconds to wait for the VM to record its end before SIGKILL (default {STOP_TIMEOUT:g})",
    )
    p.set_defaults(func=run_stop)


def run_stop(args: argparse.Namespace) -> int:
    if not args.timeout >= 0 or args.timeout == float("inf"):
        raise ConfigurationError(f"--timeout {args.timeout}: give a number of seconds, 0 or more")
    failures: list[VmError] = []
    with open_registry() as app:
        for ref in args.vms:
            try:
                vm = app.get(ref)
                what = stop_vm(app, vm, args.timeout)
            except VmError as err:
                failures.append(err)
                continue
            print(vm.name if what == "stopped" else f"{vm.name} (lost: its vm process had already vanished)", flush=True)
    for failure in failures[:-1]:
        error_line(failure)
    if failures:
        raise failures[-1]
    return 0
