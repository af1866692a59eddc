"""Shared fixtures: riscv64 test programs cross-compiled from tests/c/ into a temporary directory."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

C_DIR = Path(__file__).parent / "c"
CC = "riscv64-linux-gnu-gcc"
QEMU = "qemu-riscv64"

BUILD_FLAGS = {
    "static": ["-static", "-O2"],
    "dynamic": ["-O2"],
    "freestanding-pie": ["-static-pie", "-nostdlib", "-fPIE", "-O2", "-Wl,--no-dynamic-linker"],
}


def need_compiler() -> None:
    if shutil.which(CC) is None:
        pytest.skip(f"{CC} (riscv64 cross compiler) is not installed")


@pytest.fixture(scope="session")
def qemu() -> str:
    """The qemu-riscv64 executable (the oracle for whole programs); skips when missing."""
    found = shutil.which(QEMU)
    if found is None:
        pytest.skip(f"{QEMU} (qemu-user, the oracle) is not installed")
    return found


@pytest.fixture(scope="session")
def riscv_program(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Path]:
    """``riscv_program("auxv_probe", "static")`` compiles tests/c/auxv_probe.c once per session."""
    built: dict[tuple[str, str], Path] = {}
    out_dir = tmp_path_factory.mktemp("riscv-programs")

    def build(name: str, flavour: str = "static") -> Path:
        need_compiler()
        key = (name, flavour)
        if key not in built:
            out = out_dir / f"{name}-{flavour}"
            cmd = [CC, *BUILD_FLAGS[flavour], "-o", str(out), str(C_DIR / f"{name}.c")]
            subprocess.run(cmd, check=True, capture_output=True)
            built[key] = out
        return built[key]

    return build
