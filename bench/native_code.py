"""What holding tier-2 native code costs: one shared MCJIT engine (never freed) or one engine per region.

The regions are real: guest programs run under ``vm run --engine llvm`` with
promotion forced (``native_threshold=2000``, synchronous) and an empty AOT
cache, and the object files they leave in that cache are loaded again here,
in a fresh process per measurement (so resident memory starts clean):

``shared``
    every object added to one MCJIT engine, as vm-jit did before native
    code joined the code cache (an engine cannot give one object back);
``per-region``
    each object in an engine of its own (:class:`vm_jit.native.compiler.NativeLoader`),
    freed with :meth:`~vm_jit.native.compiler.NativeCode.free`.

Printed per strategy: microseconds to load one region (and to free it),
resident bytes per loaded region (all loaded and kept; for ``per-region``
also for the smallest and the largest objects, which give the fixed cost of
an engine and the cost per object byte), and the resident growth while
loading ``--churn`` regions with at most ``--live`` alive (the oldest freed;
``shared`` cannot free). A measurement, never a test; numbers from it are in
``vm_jit/native/compiler.py`` and ``packages/vm-gc/README.md``.
``python bench/native_code.py [--programs bench_hash,...] [--rounds 10] [--churn 5000] [--live 100]``
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from run import load_guest_build  # bench/ is on sys.path when a script here runs

FORCED = "native_threshold=2000,native_start_insns=0,native_background=false"


def collect_objects(programs: list[str], cache_dir: Path) -> list[tuple[bytes, str]]:
    """Run ``programs`` under the llvm engine into an empty AOT cache; the (object, function name) pairs left."""
    from vm_jit.native.cache import decode_entry

    build = load_guest_build()
    manifest = {p.name: p for p in build.load_manifest()}
    binaries = build.build_all(programs=[manifest[name] for name in programs])
    env = dict(os.environ, VM_JIT_SETTINGS=FORCED, VM_CACHE_DIR=str(cache_dir))
    for name in programs:
        command = [sys.executable, "-m", "vm_cli", "run", "--engine", "llvm", str(binaries[name]), *manifest[name].args]
        subprocess.run(command, env=env, capture_output=True, check=True, timeout=600)
    found = []
    for path in sorted(cache_dir.rglob("*.region")):
        entry = decode_entry(path.read_bytes())
        if entry is not None:
            found.append((entry.obj, entry.name))
    return found


def resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class SharedEngine:
    """The loader vm-jit had: one MCJIT engine that every object is added to."""

    def __init__(self) -> None:
        from vm_jit.native.compiler import _llvm, _target_machine

        self.llvm = _llvm()
        self.engine = self.llvm.create_mcjit_compiler(self.llvm.parse_assembly(""), _target_machine())

    def load(self, obj: bytes, name: str) -> None:
        self.engine.add_object_file(self.llvm.ObjectFileRef.from_data(obj))
        self.engine.finalize_object()
        assert self.engine.get_function_address(name)


def child(mode: str, objects_file: str, rounds: int, churn: int, live: int) -> dict[str, float]:
    """One measurement in this (fresh) process."""
    from vm_jit.native.compiler import NativeLoader

    with open(objects_file, "rb") as f:
        objects: list[tuple[bytes, str]] = pickle.load(f)
    if mode.startswith("per-region"):
        loader = NativeLoader()
        load = loader.load
    else:
        shared = SharedEngine()
        load = shared.load  # type: ignore[assignment]
    if mode.endswith("small") or mode.endswith("large"):
        objects = sorted(objects, key=lambda o: len(o[0]))
        objects = objects[: max(1, len(objects) // 5)] if mode.endswith("small") else objects[-max(1, len(objects) // 5):]
    result: dict[str, float] = {"object_bytes": sum(len(o) for o, _ in objects) / len(objects)}
    if churn:
        base = resident()
        held: list[Any] = []
        start = time.perf_counter()
        for i in range(churn):
            obj, name = objects[i % len(objects)]
            held.append(load(obj, name))
            if mode.startswith("per-region") and len(held) > live:
                held.pop(0).free()
        result["churn_seconds"] = time.perf_counter() - start
        result["churn_growth_mib"] = (resident() - base) / 2**20
        return result
    base = resident()
    start = time.perf_counter()
    loaded = [load(obj, name) for _ in range(rounds) for obj, name in objects]
    result["load_us"] = (time.perf_counter() - start) / len(loaded) * 1e6
    result["bytes_per_region"] = (resident() - base) / len(loaded)
    if mode.startswith("per-region"):
        start = time.perf_counter()
        for code in loaded:
            code.free()
        result["free_us"] = (time.perf_counter() - start) / len(loaded) * 1e6
    return result


def measure(mode: str, objects_file: str, rounds: int, churn: int = 0, live: int = 0) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", mode, objects_file, str(rounds), str(churn), str(live)]
    out = subprocess.run(command, capture_output=True, check=True, timeout=1800)
    result: dict[str, float] = json.loads(out.stdout.splitlines()[-1])
    return result


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        mode, objects_file, rounds, churn, live = sys.argv[2:7]
        print(json.dumps(child(mode, objects_file, int(rounds), int(churn), int(live))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", default="bench_hash,bench_sieve,sort_search,printf_float")
    parser.add_argument("--rounds", type=int, default=10, help="times every region is loaded (kept)")
    parser.add_argument("--churn", type=int, default=5000, help="regions loaded in the churn measurement")
    parser.add_argument("--live", type=int, default=100, help="regions kept alive in the churn measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vm-native-code-") as tmp:
        objects = collect_objects(args.programs.split(","), Path(tmp) / "aot")
        objects_file = str(Path(tmp) / "objects.pickle")
        with open(objects_file, "wb") as f:
            pickle.dump(objects, f)
        sizes = [len(obj) for obj, _ in objects]
        print(f"{len(objects)} regions from {args.programs}: object bytes mean {sum(sizes) / len(sizes):.0f}, "
              f"min {min(sizes)}, max {max(sizes)}")
        for mode in ("shared", "per-region"):
            kept = measure(mode, objects_file, args.rounds)
            churn = measure(mode, objects_file, 0, args.churn, args.live)
            freeing = f", free {kept['free_us']:.0f} us" if "free_us" in kept else ""
            print(f"{mode:>10}: load {kept['load_us']:.0f} us/region{freeing}; resident "
                  f"{kept['bytes_per_region']:.0f} B/region kept ({kept['bytes_per_region'] / kept['object_bytes']:.2f}"
                  f" x object); {args.churn} loaded with {args.live} alive: +{churn['churn_growth_mib']:.1f} MiB "
                  f"in {churn['churn_seconds']:.1f} s")
        small = measure("per-region-small", objects_file, args.rounds * 5)
        large = measure("per-region-large", objects_file, args.rounds * 5)
        per_byte = (large["bytes_per_region"] - small["bytes_per_region"]) / (large["object_bytes"] - small["object_bytes"])
        fixed = small["bytes_per_region"] - per_byte * small["object_bytes"]
        print(f"per-region fit (smallest fifth {small['object_bytes']:.0f} B: {small['bytes_per_region']:.0f} B/region,"
              f" largest fifth {large['object_bytes']:.0f} B: {large['bytes_per_region']:.0f} B/region): "
              f"{fixed:.0f} B per engine + {per_byte:.2f} B per object byte")
    return 0


if __name__ == "__main__":
    sys.exit(main())
