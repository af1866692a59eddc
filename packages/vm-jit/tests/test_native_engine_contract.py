"""The ``llvm`` engine against the ``interp`` engine and Unicorn: vm-jit's engine-contract tests, re-run.

The hypothesis tests of ``test_engine_differential`` and
``test_engine_smc_and_helpers`` (random RV64 straight-line code and hot
loops, faults at the walking access and at planted endings, budget stops in
the middle of blocks, F/D loops whose blocks stay in tier 1 next to native
ones, self-modifying code with and without ``fence.i``, ``rdinstret``,
``lr``/``sc`` and AMOs, misaligned atomics) are collected again here with
the harness's second engine swapped for ``llvm`` with promotion forced
(``native_harness.llvm_engine``): every region that runs once in tier 1 is
compiled to native code, so the comparisons exercise native code, its
slow-path exits and its invalidation. Every stop must leave identical
registers, pc, icount, memory and fault.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from vm_jit.engine import TieredEngine

from . import engine_harness
from .native_harness import llvm_engine
from .test_engine_differential import (  # noqa: F401 - collected again under the llvm engine
    test_faults_in_hot_loops_leave_identical_state,
    test_float_loops_agree_with_interp,
    test_loops_agree_with_interp_and_unicorn,
    test_straight_line_sequences_agree_with_interp_and_unicorn,
)
from .test_engine_smc_and_helpers import (  # noqa: F401 - collected again under the llvm engine
    test_lr_sc_counter_loop,
    test_random_rewritten_instructions_agree_with_interp_and_unicorn,
    test_rdinstret_counts_instructions_retired_before_it,
    test_rewritten_instruction_runs_after_fence_i,
    test_store_conditional_fault_in_compiled_loop,
    test_unaligned_amo_faults_identically,
)

ENGINES: list[TieredEngine] = []


def counting_llvm_engine(threshold: int = 1, max_block_insns: int = 64) -> TieredEngine:
    engine = llvm_engine(threshold, max_block_insns)
    ENGINES.append(engine)
    return engine


@pytest.fixture(scope="module", autouse=True)
def llvm_instead_of_python() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine_harness, "python_engine", counting_llvm_engine)
        yield
    # the swap took effect and native code really ran in these tests
    assert ENGINES, "no test built an llvm engine"
    assert sum(e.stats["native_insns"] for e in ENGINES) > 0
    assert sum(e.stats["slow_path_exits"] for e in ENGINES) > 0
