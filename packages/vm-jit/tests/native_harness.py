"""Shared machinery of the tier-2 tests: ``llvm`` engines with promotion forced, and a one-region runner.

:func:`llvm_engine` has the signature of ``engine_harness.python_engine``
so the existing engine-contract tests can run against the ``llvm`` engine:
blocks compile to tier 1 after ``threshold`` runs and every tier-1 region
is promoted to native code after retiring one instruction, synchronously,
without the AOT cache. :class:`RegionRunner` compiles IR blocks straight to
native code and runs them on a register list, for op-level checks against
the reference executor.
"""

from __future__ import annotations

import ctypes
from typing import Any

from vm_jit.engine import TieredEngine
from vm_jit.native.compiler import NativeLoader, compile_object
from vm_jit.native.llvm_ir import (
    CTX_BUDGET,
    CTX_ICOUNT,
    CTX_OUT_N,
    CTX_OUT_PC,
    CTX_READ,
    CTX_REGS,
    CTX_SLOTS,
    CTX_START,
    CTX_WRITE,
    region_code,
)
from vm_jit.native.pagetable import GuestPageTables
from vm_jit.native.tier import NativeTier, make_llvm_engine
from vm_jit.settings import JitSettings
from vm_jit.translation_cache import CompiledRegion
from vm_translate import ir

from .engine_harness import FRONTEND


def llvm_settings(threshold: int = 1, max_block_insns: int = 64, **changes: Any) -> JitSettings:
    base = dict(compile_threshold=threshold, max_block_insns=max_block_insns, native_threshold=1,
                native_start_insns=0, native_background=False, aot_cache=False)  # fmt: skip
    base.update(changes)
    return JitSettings(**base)


def llvm_engine(threshold: int = 1, max_block_insns: int = 64) -> TieredEngine:
    return make_llvm_engine(FRONTEND, llvm_settings(threshold, max_block_insns))


def native_tier(engine: TieredEngine) -> NativeTier:
    """The ``llvm`` engine's tier 2."""
    tier = engine.tier("native")
    assert isinstance(tier, NativeTier)
    return tier


def native_code(engine: TieredEngine) -> dict[int, CompiledRegion]:
    """The native regions the engine's translation cache dispatches, by entry pc."""
    return engine.translation_cache.compiled[native_tier(engine).level]


class RegionRunner:
    """IR blocks compiled to one native function, run over a register list and an address space."""

    def __init__(self, blocks: list[ir.Block], mem: Any, nregs: int = 67) -> None:
        code = region_code(blocks, "vm_test_region")  # every block an entry
        self.code = code
        self.native = NativeLoader().load(compile_object(code.text), code.name)  # owns the machine code
        fn = self.native.function
        assert fn is not None
        self.fn = fn
        self.tables = GuestPageTables(mem)
        self.regfile = (ctypes.c_uint64 * nregs)()
        self.ctx = (ctypes.c_uint64 * CTX_SLOTS)()
        self.ctx[CTX_REGS] = ctypes.addressof(self.regfile)
        self.ctx[CTX_READ] = self.tables.readable.address
        self.ctx[CTX_WRITE] = self.tables.writable.address

    def run(self, regs: list[int], pc: int, budget: int = 1 << 40, icount: int = 0) -> tuple[int, int, int]:
        """Run from ``pc``; updates ``regs``; returns (status, next pc, instructions retired)."""
        self.regfile[: len(regs)] = regs
        self.ctx[CTX_BUDGET], self.ctx[CTX_START], self.ctx[CTX_ICOUNT] = budget, pc, icount
        status = self.fn(ctypes.addressof(self.ctx))
        regs[:] = self.regfile[: len(regs)]
        return status, int(self.ctx[CTX_OUT_PC]), int(self.ctx[CTX_OUT_N])
