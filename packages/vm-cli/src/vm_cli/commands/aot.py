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

from vm_cli.compose import Plugins, ProgramRequest, compose_program

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

    if args.threshold < 1:
        raise ConfigurationError(f"--threshold must be positive, not {args.threshold}")
    settings = attrs.evolve(
        JitSettings(), native_threshold=args.threshold, native_start_insns=0, native_background=False, aot_cache=True
    )
    request = ProgramRequest(
        program=args.program, args=tuple(args.args), root=args.root, engine="llvm", accel="none",
        engine_settings=settings,
    )
    with compose_program(Plugins.load(), request) as vm:
        result = vm.run()
        engine: Any = vm.engine
    sys.stdout.flush()
    cache = engine.tier("native").aot_cache
    ending = f"signal {result.signal}" if result.signal is not None else f"exit status {result.exit_status}"
    print(
        f"vm aot: {args.program} ran to {ending}; {cache.stores} native regions stored, "
        f"{int(engine.stats['aot_loaded_regions'])} already cached, in {cache.directory}",
        file=sys.stderr,
    )
    return 0
