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

x86-64 programs run natively through a hardware accelerator instead
(``--accel auto|kvm|none``; the plugins' ``vm_select_accelerator`` hook
chooses): KVM runs them at CPL 3 with vm-linux serving their system calls
(:mod:`vm_accel.usermode`). When no accelerator can be used, one line says
which check failed and what to do.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from typing import Any

from vm_core.errors import BadProgramError, ConfigurationError, NotFoundError, UnsupportedError
from vm_core.logging import get_logger
from vm_core.plugins import collect_registry, make_plugin_manager
from vm_mem import AddressSpace, parse_memory_size
from vm_translate.cpu import CpuState

from vm_cli.machine import choose_engine
from vm_cli.recording import RunRecord, die_like_the_guest

__all__ = ["RunRecord", "die_like_the_guest", "elf_machine", "run"]

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
    p.add_argument("--accel", default="auto", choices=("auto", "kvm", "none"),
                   help="hardware accelerator for x86-64 programs (default auto: KVM when usable)")
    p.add_argument("--snapshot-at", type=int, metavar="N",
                   help="after N guest instructions, save a snapshot, print `snapshot: ID` on stderr and exit 0")
    p.add_argument("--max-memory", metavar="SIZE",
                   help="bound on guest memory (e.g. 512M, 2G): mmap/brk committing more fail with ENOMEM; touching "
                        "more pages kills the guest with SIGKILL, like the OOM killer (default: the host's limits)")
    p.add_argument("program", help="the guest program")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the guest")
    p.set_defaults(func=run)


def elf_machine(path: str) -> int:
    """The ELF ``e_machine`` of ``path`` (clear errors for missing or non-ELF files)."""
    try:
        with open(path, "rb") as f:
            header = f.read(64)
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{path}: is a directory") from None
    except PermissionError:
        raise ConfigurationError(f"{path}: permission denied") from None
    except (OSError, ValueError) as err:  # a name too long, a NUL byte, ...
        raise ConfigurationError(f"{path!r:.200}: cannot open the program: {getattr(err, 'strerror', None) or err}") from None
    if len(header) < 20 or header[:4] != b"\x7fELF":
        raise BadProgramError(f"{path}: not an ELF file", hint="vm runs static Linux ELF executables")
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


EM_X86_64 = 62


def run_accelerated(args: argparse.Namespace, pm: Any, registry: Any, isa: str) -> int:
    """Run an ``isa`` program (x86-64) through the accelerator the plugins choose; no emulator exists for it."""
    import platform

    chosen = None
    if args.accel != "none":
        chosen = pm.hook.vm_select_accelerator(isa=isa, requested=args.accel, host_isa=platform.machine())
    if chosen is None:
        if args.accel == "auto" and "kvm" in registry.accelerators:
            registry.accelerators["kvm"].probe()  # raises AcceleratorUnavailable naming the failed check
        raise UnsupportedError(
            f"{args.program}: {isa} programs run only through a hardware accelerator, and none was selected",
            hint="use --accel kvm (or auto) on an x86-64 Linux host with /dev/kvm",
        )
    if chosen != "kvm":
        raise UnsupportedError(f"accelerator {chosen!r} cannot run Linux programs", hint="use --accel kvm")
    from vm_accel.usermode import KvmUserProcess

    argv = [args.program, *args.args]
    record = RunRecord(args, isa, "kvm")
    with KvmUserProcess(args.program, argv, root=args.root) as guest, record.running():
        start = time.perf_counter()
        result = guest.run()
        wall = time.perf_counter() - start
        stats = guest.engine.stats
        exit_status = None if result.signal is not None else int(result.exit_status or 0) & 0xFF
        record.guest_ended(exit_status, result.signal, 0, wall)
    if args.stats:
        sys.stdout.flush()
        lines = [f"vm: accelerator {chosen}", f"vm: wall time {wall:.3f} s"]
        lines += [f"vm: {key.replace('_', ' ')} {value}" for key, value in stats.items()]
        print("\n".join(lines), file=sys.stderr)
    end_like_the_guest(result)
    return exit_status or 0


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
    from vm_linux.process import LinuxProcess

    program = args.program
    machine = elf_machine(program)
    pm = make_plugin_manager()
    registry = collect_registry(pm)
    if machine == EM_X86_64:
        if args.max_memory is not None:
            raise UnsupportedError("--max-memory: programs run through a hardware accelerator are not bounded by it")
        if args.snapshot_at is not None:
            raise UnsupportedError("--snapshot-at: programs run through a hardware accelerator cannot be snapshotted")
        return run_accelerated(args, pm, registry, "x86_64")
    isa = registry.isa_for_elf_machine(machine)
    frontend = isa.factory()
    engine_spec = choose_engine(pm, registry, isa.name, args.engine)
    engine: Any = engine_spec.factory(frontend, engine_settings(args))
    mem = AddressSpace(max_memory=None if args.max_memory is None else parse_memory_size(args.max_memory))
    cpu = CpuState(isa.name, frontend.layout.size, mem)
    process = LinuxProcess(isa.name, mem, program, [program, *args.args], root=args.root)
    process.load()
    process.init_cpu(cpu)
    record = RunRecord(args, isa.name, engine_spec.name)
    # everything start-up built (modules, plugins, the loaded program) lives as long as the process: moved out
    # of the cyclic collector's generations, it is not scanned again by every full collection nor at exit
    gc.freeze()
    with record.running(lambda: cpu.icount):
        start = time.perf_counter()
        if args.snapshot_at is not None:
            from vm_cli.snapshot import SavedSnapshot, run_or_snapshot

            outcome = run_or_snapshot(
                process, engine, cpu, args.snapshot_at, engine_name=engine_spec.name, app=record.app,
                vm_id=record.vm_id,
            )
            if isinstance(outcome, SavedSnapshot):
                record.snapshot_taken()
                print(f"snapshot: {outcome.snapshot_id}", file=sys.stderr)
                return 0
            result = outcome
        else:
            result = process.run(engine, cpu)
        wall = time.perf_counter() - start
        exit_status = None if result.signal is not None else int(result.exit_status or 0) & 0xFF
        record.guest_ended(exit_status, result.signal, cpu.icount, wall)
    if args.stats:
        sys.stdout.flush()
        mips = cpu.icount / wall / 1e6 if wall > 0 else 0.0
        lines = [
            f"vm: engine {engine_spec.name}",
            f"vm: instructions retired {cpu.icount}",
            f"vm: wall time {wall:.3f} s",
            f"vm: guest MIPS {mips:.2f}",
        ]
        stats = getattr(engine, "stats", None)
        if stats:
            lines += [f"vm: {key.replace('_', ' ')} {value:.3f}" if isinstance(value, float) else
                      f"vm: {key.replace('_', ' ')} {value}" for key, value in stats.items()]
        print("\n".join(lines), file=sys.stderr)
    end_like_the_guest(result)
    return exit_status or 0
