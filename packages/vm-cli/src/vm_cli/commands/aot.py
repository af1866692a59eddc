"""``vm aot PROGRAM [ARGS...]``: fill the AOT cache of native code ahead of time.

The program runs once, for real (its output, files and exit status are what
``vm run`` would give), under the ``llvm`` engine with promotion forced
early: every tier-1 region that retires ``--threshold`` instructions is
compiled to native code at once (not in the background) and stored in the
AOT cache (``$VM_CACHE_DIR``, else ``$XDG_CACHE_HOME/vm/aot``, else
``~/.cache/vm/aot``). A later ``vm run`` of the same program loads those
regions the first time it reaches their entries, so it starts hot. Only
code the run reaches is compiled: choose ARGS that exercise the program.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import attrs
from vm_core.plugins import collect_registry, make_plugin_manager
from vm_mem import AddressSpace
from vm_translate.cpu import CpuState

from vm_cli.commands.run import elf_machine

DEFAULT_THRESHOLD = 2000


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "aot",
        help="run a program once to fill the AOT cache of native code",
        description="Run PROGRAM with ARGS once under the llvm engine, compiling every hot region to native "
        "code and storing it in the AOT cache, so later `vm run`s start hot.",
    )
    p.add_argument("--root", metavar="DIR", help="confine every guest path to DIR (like a chroot)")
    p.add_argument(
        "--threshold",
        type=int,
        default=DEFAULT_THRESHOLD,
        help=f"instructions a tier-1 region retires before it is compiled (default {DEFAULT_THRESHOLD})",
    )
    p.add_argument("program", help="the guest program")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the guest")
    p.set_defaults(func=aot)


def aot(args: argparse.Namespace) -> int:
    from vm_core.errors import ConfigurationError
    from vm_jit.settings import JitSettings
    from vm_linux.process import LinuxProcess

    if args.threshold < 1:
        raise ConfigurationError(f"--threshold must be positive, not {args.threshold}")
    machine = elf_machine(args.program)
    pm = make_plugin_manager()
    registry = collect_registry(pm)
    isa = registry.isa_for_elf_machine(machine)
    frontend = isa.factory()
    settings = attrs.evolve(
        JitSettings(), native_threshold=args.threshold, native_start_insns=0, native_background=False, aot_cache=True
    )
    engine: Any = registry.engine("llvm").factory(frontend, settings)
    mem = AddressSpace()
    cpu = CpuState(isa.name, frontend.layout.size, mem)
    process = LinuxProcess(isa.name, mem, args.program, [args.program, *args.args], root=args.root)
    process.load()
    process.init_cpu(cpu)
    result = process.run(engine, cpu)
    sys.stdout.flush()
    cache = engine.cache
    ending = f"signal {result.signal}" if result.signal is not None else f"exit status {result.exit_status}"
    print(
        f"vm aot: {args.program} ran to {ending}; {cache.stores} native regions stored, "
        f"{int(engine.stats['aot_loaded_regions'])} already cached, in {cache.directory}",
        file=sys.stderr,
    )
    return 0
