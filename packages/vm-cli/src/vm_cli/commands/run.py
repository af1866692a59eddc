"""``vm run PROGRAM [ARGS...]``: run a static Linux program built for another CPU, like qemu-user.

The guest's stdout, stderr, files and exit status are the program's own. A
guest killed by a signal ends the ``vm`` process with the same signal, as
qemu-user does. The run is recorded as a VM (``vm ls``) from its start to
how it ended, SIGINT/SIGTERM/SIGHUP to ``vm`` and errors included
(:mod:`vm_cli.recording`); a store that cannot be written costs one warning
line, never the run. ``--stats`` prints instructions
retired, wall time and guest MIPS on stderr after the guest ends, then the
engine's own counters (the translating engines: their code cache and its
collector, ``gc ...`` and ``code cache ...`` lines). ``--code-cache-size``
bounds the translating engines' code cache: ``64M`` (bytes, K/M/G suffixes),
``2000blocks`` (translations) or both, ``64M,2000blocks``.

The VM is assembled by the composition root (:mod:`vm_cli.compose`) from
the installed plugins: the loader that accepts the file, the ISA it names,
an accelerator when the plugins' ``vm_select_accelerator`` chooses one
(``--accel auto|none|NAME``; KVM runs x86-64 programs at CPL 3), else the
ISA's front end and an engine, and vm-linux's process with the registered
system-call table. When a program's ISA can only run through an
accelerator and none can be used, one line says which check failed.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from vm_core.errors import UnsupportedError
from vm_core.logging import get_logger
from vm_linux.guest_procs import PROCESSES
from vm_mem import parse_memory_size

from vm_cli.compose import ComposedVm, Plugins, ProgramRequest, compose_program
from vm_cli.recording import RunRecord, die_like_the_guest

if TYPE_CHECKING:
    from vm_cli.snapshot import SavedSnapshot

__all__ = ["RunRecord", "die_like_the_guest", "run"]

log = get_logger("vm_cli.run")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a static Linux program for another CPU (like qemu-user)",
        description="Run PROGRAM (a static riscv64 Linux ELF, or x86-64 through KVM) with ARGS; its exit status becomes vm's.",
    )
    p.add_argument("--engine", default="auto", help="execution engine: interp, python, llvm, or auto (default: the fastest installed)")
    p.add_argument("--root", metavar="DIR", help="confine every guest path to DIR (like a chroot)")
    p.add_argument("--stats", action="store_true", help="print instructions, wall time and MIPS on stderr")
    p.add_argument("--name", help="name of the VM this run is recorded as (default: a generated one)")
    p.add_argument("--code-cache-size", metavar="SIZE",
                   help="bound on translated code kept: 64M (bytes), 2000blocks, or 64M,2000blocks")
    p.add_argument("--accel", default="auto",
                   help="hardware accelerator: auto (default: one a plugin selects, KVM for x86-64 when usable), "
                        "none, or a registered name such as kvm")
    p.add_argument("--snapshot-at", type=int, metavar="N",
                   help="after N guest instructions, save a snapshot, print `snapshot: ID` on stderr and exit 0")
    p.add_argument("--max-memory", metavar="SIZE",
                   help="bound on guest memory (e.g. 512M, 2G): mmap/brk committing more fail with ENOMEM; touching "
                        "more pages kills the guest with SIGKILL, like the OOM killer (default: the host's limits)")
    p.add_argument("--net", choices=("host", "none"), default="host",
                   help="guest network: host (default: sockets of every family on the host's network, not confined "
                        "by --root) or none (only AF_UNIX sockets; other families fail with EACCES)")
    p.add_argument("program", help="the guest program")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the guest")
    p.set_defaults(func=run)


def end_like_the_guest(result: Any) -> None:
    """Die as the guest did: by its signal, or by SIGKILL after one line when vm killed it (out of memory)."""
    if result.killed_because is not None:
        print(f"vm: guest killed (SIGKILL): {result.killed_because}", file=sys.stderr)
        die_like_the_guest(9)
    if result.signal is not None:
        die_like_the_guest(result.signal)


def engine_settings(args: argparse.Namespace) -> Any:
    """The engine factory's settings: with ``--code-cache-size``, the translating engines' settings from
    ``VM_JIT_SETTINGS`` (as the factory would read them) with that bound; else None (the factory's own)."""
    size_text = getattr(args, "code_cache_size", None)
    if size_text is None:
        return None
    import attrs
    from vm_gc import CacheLimits, parse_cache_size
    from vm_jit.plugin import SETTINGS_ENV, settings_from_text

    base = settings_from_text(os.environ.get(SETTINGS_ENV, ""))
    limits = parse_cache_size(size_text).limits(CacheLimits(base.code_cache_blocks, base.code_cache_bytes))
    return attrs.evolve(base, code_cache_blocks=limits.blocks, code_cache_bytes=limits.bytes)


def run(args: argparse.Namespace) -> int:
    request = ProgramRequest(
        program=args.program,
        args=tuple(args.args),
        root=args.root,
        engine=args.engine,
        accel=args.accel,
        engine_settings=engine_settings(args),
        max_memory=None if args.max_memory is None else parse_memory_size(args.max_memory),
        net=args.net,
    )
    with compose_program(Plugins.load(), request) as vm:
        if vm.accelerator is not None and args.snapshot_at is not None:
            raise UnsupportedError("--snapshot-at: programs run through a hardware accelerator cannot be snapshotted")
        record = RunRecord(args, vm.isa, vm.engine_name)
        vm.on_exec = lambda program: record.process_event("executed", program=program)
        # everything start-up built (modules, plugins, the loaded program) lives as long as the process: moved out
        # of the cyclic collector's generations, it is not scanned again by every full collection nor at exit
        gc.freeze()
        with record.running(lambda: vm.cpu.icount):
            start = time.perf_counter()
            outcome = vm.run(snapshot_at=args.snapshot_at, app=record.app, vm_id=record.vm_id)
            if args.snapshot_at is not None and isinstance(outcome, saved_snapshot_type()):
                record.snapshot_taken()
                print(f"snapshot: {outcome.snapshot_id}", file=sys.stderr)
                return 0
            result = outcome
            wall = time.perf_counter() - start
            exit_status = None if result.signal is not None else int(result.exit_status or 0) & 0xFF
            record.guest_ended(exit_status, result.signal, vm.cpu.icount, wall)
        if args.stats and not PROCESSES.forked:
            print_stats(vm, wall)
    if PROCESSES.forked:
        record.process_event("exited", exit_status=exit_status, signal=result.signal)
    end_like_the_guest(result)
    if PROCESSES.forked:  # a guest fork ends here, without the interpreter's teardown (the parent's to do)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_status or 0)
    return exit_status or 0


def saved_snapshot_type() -> type[SavedSnapshot]:
    """vm-cli's ``SavedSnapshot`` (imported only by runs that snapshot: the snapshot module is not small)."""
    from vm_cli.snapshot import SavedSnapshot

    return SavedSnapshot


def print_stats(vm: ComposedVm, wall: float) -> None:
    """``--stats``: the engine (or accelerator), instructions, wall time, MIPS, then the engine's own counters."""
    sys.stdout.flush()
    if vm.accelerator is not None:
        lines = [f"vm: accelerator {vm.accelerator}", f"vm: wall time {wall:.3f} s"]
    else:
        icount = vm.cpu.icount
        mips = icount / wall / 1e6 if wall > 0 else 0.0
        lines = [
            f"vm: engine {vm.engine_name}",
            f"vm: instructions retired {icount}",
            f"vm: wall time {wall:.3f} s",
            f"vm: guest MIPS {mips:.2f}",
        ]
    lines += [f"vm: {key.replace('_', ' ')} {value:.3f}" if isinstance(value, float) else
              f"vm: {key.replace('_', ' ')} {value}" for key, value in vm.stats.items()]
    print("\n".join(lines), file=sys.stderr)
