"""The guest program suite under ``vm run --engine llvm``, with tier 2 forced on, against qemu-riscv64.

``test_vm_run_matches_qemu`` (see ``test_guest_programs``) is collected
again here with a ``vm_command`` that runs the ``llvm`` engine with
promotion forced early and synchronous (``VM_JIT_SETTINGS``: every tier-1
region that retires 2000 instructions is compiled to native code at once,
at most 12 blocks per native function to keep compiles short), so every
program's hot code, libc's included, runs natively: stdout, stderr,
exit status or signal and the files left behind must be exactly qemu's.
The AOT cache is a per-session temporary directory (``VM_CACHE_DIR``), so
programs that share code also exercise loading regions from the cache.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .test_guest_programs import test_vm_run_matches_qemu  # noqa: F401 - collected again with vm_command below

# The whole suite again, under another engine: a long suite, run by `nox -s full` (CI runs it too).
pytestmark = pytest.mark.full

NATIVE_SETTINGS = "native_threshold=2000,native_start_insns=0,native_background=false,native_max_region_blocks=12"


@pytest.fixture(scope="session")
def aot_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("aot-cache")


@pytest.fixture
def vm_command(aot_cache_dir: Path) -> list[str]:
    """``vm run --engine llvm`` with tier 2 forced (the guest environment is fixed, hence ``env``)."""
    return ["/usr/bin/env", f"VM_JIT_SETTINGS={NATIVE_SETTINGS}", f"VM_CACHE_DIR={aot_cache_dir}",
            sys.executable, "-m", "vm_cli", "run", "--engine", "llvm"]  # fmt: skip
