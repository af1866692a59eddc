"""Tunable settings of the translating engines (thresholds are settings, not buried constants)."""

from __future__ import annotations

import attrs


@attrs.frozen
class JitSettings:
    """Settings of the translating engines (``python``, and ``llvm`` for the native_* fields).

    ``compile_threshold``: how many times a block runs in the reference
    interpreter before its region is compiled to Python (1: on first sight).
    Compiling a region costs about as much as interpreting its blocks a few
    hundred times, so code that runs only a few times (most of a program's
    start-up and exit) is cheaper interpreted: 20 halves the guest time of
    ``hello`` against 2 and is no slower on long runs (bench/README.md).
    ``max_block_insns``: longest block lifted at once.
    ``max_region_blocks``: most blocks compiled into one region function.

    Tier 2 (the ``llvm`` engine, :mod:`vm_jit.native`):
    ``native_threshold``: guest instructions a tier-1 region retires, counted
    at its entry, before the region around that entry is compiled by LLVM.
    ``native_start_insns``: guest instructions the program must have retired
    before the first promotion starts LLVM, so short programs never pay for it
    (a program that runs 0.1 s in tiers 0-1 retires well under a million here).
    Starting LLVM costs a program about 30 ms (importing llvmlite) plus, if it
    ends soon after, waiting for the compile in flight: with 1M, bench_matmul
    60 (1.65M instructions) took 0.74-1.1 s against 0.66 s in tier 1, while
    long runs gained only 0.04-0.06 s over 2M (bench/README.md).
    ``native_max_region_blocks``: most blocks in one native function.
    ``native_background``: compile in a background thread (False: the
    dispatcher waits for LLVM, deterministic; for tests and ``vm aot``).
    ``aot_cache``: keep native code in the on-disk AOT cache and load it
    from there.

    The code cache (:mod:`vm_gc`): ``code_cache_blocks`` and ``code_cache_bytes``
    bound the translations kept (``vm run --code-cache-size``); beyond them the
    collector reclaims translations not recently used. ``gc_concurrent``: mark
    in a background thread (False: inside the pause, deterministic).
    ``gc_trigger_fraction``, ``gc_promote_after``, ``gc_major_every``: see
    :class:`vm_gc.GcPolicy`. ``gc_recent_entries``: slots (a power of two) of
    the dispatcher's table of recently entered pcs, the collector's roots.
    """

    compile_threshold: int = 20
    max_block_insns: int = 64
    max_region_blocks: int = 16
    native_threshold: int = 50_000
    native_start_insns: int = 2_000_000
    native_max_region_blocks: int = 32
    native_background: bool = True
    aot_cache: bool = True
    code_cache_blocks: int = 32768
    code_cache_bytes: int = 128 << 20
    gc_concurrent: bool = True
    gc_trigger_fraction: float = 0.75
    gc_promote_after: int = 1
    gc_major_every: int = 4
    gc_recent_entries: int = 1024
