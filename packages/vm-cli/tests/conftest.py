"""Fixtures for the guest program suite: build it, run it under qemu-riscv64 and under ``vm run``.

``guest/build.py`` (at the repository root, not a package) is loaded by path.
Any test that takes a ``guest_program`` argument is parametrized over every
program in ``guest/rv64/programs.toml``.

``guest_binaries`` builds the suite once per session. Without the RISC-V
toolchain (``riscv64-linux-gnu-gcc``, ``qemu-riscv64``) the tests that need
it are skipped, except when the environment says ``CI=true``: there a
missing toolchain is a failure.

``vm_command`` is the command prefix that runs a guest under the VM; extra
``vm run`` options can be injected by indirect parametrization, e.g.
``@pytest.mark.parametrize("vm_command", [["--engine", "jit"]], indirect=True)``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

from .repo_scripts import load_by_path

REPO_ROOT = Path(__file__).resolve().parents[3]
GUEST_BUILD_PATH = REPO_ROOT / "guest" / "build.py"
_GUEST_BUILD_MODULE = "vm_guest_build"
DEBIAN_SYSROOT_PATH = REPO_ROOT / "guest" / "debian" / "sysroot.py"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def load_guest_build() -> ModuleType:
    """Import ``guest/build.py`` once (as ``vm_guest_build``) and return the module."""
    return load_by_path(_GUEST_BUILD_MODULE, GUEST_BUILD_PATH)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "guest_vm: compares `vm run` with qemu-riscv64 on the guest program suite"
    )
    config.addinivalue_line(
        "markers",
        "quick_programs(*names): the default sessions run this guest-suite test for the named programs only;"
        " the other programs' cases are marked `full` (run by `nox -s full`)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "guest_program" in metafunc.fixturenames:
        programs = load_guest_build().load_manifest()
        quick = metafunc.definition.get_closest_marker("quick_programs")
        params = [
            pytest.param(
                program,
                id=program.name,
                marks=[pytest.mark.full] if quick is not None and program.name not in quick.args else [],
            )
            for program in programs
        ]
        metafunc.parametrize("guest_program", params)


@pytest.fixture(scope="session")
def guest_build() -> ModuleType:
    """The ``guest/build.py`` module."""
    return load_guest_build()


@pytest.fixture(scope="session")
def guest_binaries(guest_build: ModuleType) -> dict[str, Path]:
    """Program name -> built binary, for the whole suite (skipped without a toolchain unless CI=true)."""
    try:
        guest_build.check_toolchain()
    except guest_build.ToolchainMissing as err:
        if in_ci():
            pytest.fail(f"CI=true but the guest toolchain is missing: {err}")
        pytest.skip(f"guest program suite needs the RISC-V toolchain: {err}")
    binaries: dict[str, Path] = guest_build.build_all()
    return binaries


@pytest.fixture(scope="session")
def debian_sysroot() -> Path:
    """A riscv64 Debian 13 sysroot (``guest/debian/sysroot.py``'s default packages: busybox-static,
    coreutils, grep, sed, gawk, lua5.4, sqlite3, python3.13 and their libraries).

    Built once and kept under ``build/debian``; skipped where apt-get, dpkg-deb or Debian's archive
    are out of reach, except under ``CI=true``, where that is a failure.
    """
    sysroot = load_by_path("vm_guest_debian_sysroot", DEBIAN_SYSROOT_PATH)
    try:
        return Path(sysroot.make_sysroot())
    except sysroot.SysrootError as err:
        if in_ci():
            pytest.fail(f"CI=true but the Debian sysroot could not be made: {err}")
        pytest.skip(f"needs a Debian riscv64 sysroot: {err}")


@pytest.fixture
def vm_command(request: pytest.FixtureRequest) -> list[str]:
    """The command prefix that runs a guest under the VM; the binary and its arguments follow."""
    extra_options = [str(option) for option in getattr(request, "param", ())]
    return [sys.executable, "-m", "vm_cli", "run", *extra_options]
