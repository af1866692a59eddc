"""Shared pieces of the sandbox attack tests (test_sandbox_*.py): build the attack programs, decide the ISAs.

Imported by each test module as ``from . import sandbox_fixtures`` (tests/ is a package).
``guest/attacks/build.py`` builds the C programs and
``guest/attacks/sandbox.py`` lays out the host side and checks it afterwards.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from .repo_scripts import load_by_path

REPO_ROOT = Path(__file__).resolve().parents[3]
ATTACKS_DIR = REPO_ROOT / "guest" / "attacks"
ARCHES = ("riscv64", "x86_64")


build = load_by_path("vm_attacks_build", ATTACKS_DIR / "build.py")
sandbox = load_by_path("vm_attacks_sandbox", ATTACKS_DIR / "sandbox.py")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def kvm_unavailable() -> str | None:
    """Why x86-64 guests cannot run through KVM here (None: they can), as vm-accel's tests decide it."""
    try:
        from vm_accel.kvm import probe_kvm
        from vm_core.errors import AcceleratorUnavailable
    except ImportError as err:  # pragma: no cover - vm-accel is part of the monorepo
        return f"vm-accel is not installed: {err}"
    try:
        probe_kvm()
    except AcceleratorUnavailable as exc:
        return str(exc)
    return None


def binaries_for(arch: str) -> dict[str, Path]:
    """Every attack program built for ``arch``; skips (fails under CI=true for riscv64) without a toolchain."""
    if arch == "x86_64":
        reason = kvm_unavailable()
        if reason is not None:
            pytest.skip(f"x86-64 attacks run through KVM, which is unusable here: {reason}")
    try:
        return build.build_all(arch)
    except build.ToolchainMissing as err:
        if arch == "riscv64" and in_ci():
            pytest.fail(f"CI=true but the RISC-V toolchain is missing: {err}")
        pytest.skip(str(err))


def qemu_riscv64() -> str | None:
    return shutil.which("qemu-riscv64")
