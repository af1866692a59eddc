"""``vm resume SNAPSHOT``: continue a Linux guest from a snapshot taken by ``vm run --snapshot-at N``.

The snapshot is read and verified completely, the guest's files are
reopened, and the VM it belongs to is marked restored (the domain refuses a
restore onto a running VM) before the guest runs on; its stdout, stderr and
exit status from there are exactly the rest of the program's, and a guest
killed by a signal ends ``vm`` with that signal as ``vm run`` does.
``--snapshot-at N`` snapshots it again after N instructions in all (counted
from the program's start, so N must be past the snapshot's own count).
"""

from __future__ import annotations

import argparse
import sys
import time

from vm_core.errors import ConfigurationError, SnapshotError
from vm_core.logging import get_logger
from vm_core.runner import current_runner

from vm_cli.compose import Plugins, compose_restored
from vm_cli.messages import warning_line
from vm_cli.recording import RecordedRun, die_like_the_guest
from vm_cli.snapshot import LoadedSnapshot, SavedSnapshot, SnapshotStore

log = get_logger("vm_cli.resume")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "resume",
        help="continue a guest from a snapshot (see vm run --snapshot-at)",
        description="Restore SNAPSHOT (an id, or a unique prefix) in this process and run the guest on.",
    )
    p.add_argument("--engine", help="execution engine (default: the one the snapshot was taken with)")
    p.add_argument("--stats", action="store_true", help="print instructions, wall time and MIPS on stderr")
    p.add_argument("--snapshot-at", type=int, metavar="N",
                   help="snapshot again once N guest instructions in all are retired")
    p.add_argument("snapshot", help="the snapshot id `vm run --snapshot-at` printed")
    p.set_defaults(func=resume)


class ResumeRecord(RecordedRun):
    """The VM a snapshot belongs to: restored from it (refused while the VM runs), resumed, ended.

    A snapshot taken while the event store was unavailable names no VM; one
    whose store cannot be opened or read now is resumed with one warning
    line, as ``vm run`` runs unrecorded. The domain's refusals (a running or
    removed VM, a snapshot the VM does not know, a digest that differs from
    the recorded one) stop the resume before the guest runs, and record nothing.
    """

    def __init__(self, loaded: LoadedSnapshot) -> None:
        super().__init__()
        self.loaded = loaded
        self.vm_id = loaded.snapshot.vm_id

    def begin(self) -> None:
        if self.vm_id is None:
            return
        from vm_core.application import VmApplication
        from vm_core.store_health import StorageError

        try:
            self.app = VmApplication()
            vm = self.app.get(self.vm_id)
        except (ConfigurationError, StorageError) as err:
            warning_line(f"this run is not recorded: {err}")
            log.info("resume_not_recorded", reason=str(err))
            self.close()
            return
        recorded = vm.snapshots.get(self.loaded.snapshot_id)
        if recorded is not None and recorded.digest != self.loaded.digest:
            raise SnapshotError(
                f"snapshot {self.loaded.snapshot_id}: its digest differs from the one VM {vm.label} recorded (replaced?)"
            )
        vm.restore_from(self.loaded.snapshot_id)
        vm.resume(current_runner())
        try:
            self.app.save(vm)
        except StorageError as err:
            warning_line(f"this run is not recorded: {err}")
            self.close()
            return
        self.started = True


def resume(args: argparse.Namespace) -> int:
    store = SnapshotStore()
    loaded = store.load(args.snapshot)
    vm = compose_restored(Plugins.load(), loaded.snapshot_id, loaded.snapshot, args.engine)
    cpu = vm.cpu
    record = ResumeRecord(loaded)
    try:
        with record.running(lambda: cpu.icount):
            start = time.perf_counter()
            outcome = vm.run(
                snapshot_at=args.snapshot_at, app=record.app, vm_id=record.vm_id if record.started else None,
                store=store,
            )
            wall = time.perf_counter() - start
            if isinstance(outcome, SavedSnapshot):
                record.snapshot_taken()
            else:
                exit_status = None if outcome.signal is not None else int(outcome.exit_status or 0) & 0xFF
                record.guest_ended(exit_status, outcome.signal, cpu.icount, wall)
    finally:
        vm.close()
    print_stats(args, vm.engine_name, cpu.icount, wall)
    if isinstance(outcome, SavedSnapshot):
        print(f"snapshot: {outcome.snapshot_id}", file=sys.stderr)
        return 0
    if outcome.signal is not None:
        die_like_the_guest(outcome.signal)
    return exit_status or 0


def print_stats(args: argparse.Namespace, engine: str, icount: int, wall: float) -> None:
    """``--stats``: the engine, instructions retired since the program started, this run's wall time."""
    if not args.stats:
        return
    sys.stdout.flush()
    print(f"vm: engine {engine}\nvm: instructions retired {icount}\nvm: wall time {wall:.3f} s", file=sys.stderr)
