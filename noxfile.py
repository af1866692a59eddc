"""Every check of the vm monorepo. `nox` alone runs the default set (under 15 minutes on 2 cores).

Sessions:
  tests-<package>  one per distribution (tests-vm-core, tests-vm-mem, ...), each in a fresh venv
                   holding only that package and what its pyproject.toml declares: first its
                   runtime dependencies alone, where every module of the package must import
                   (`import alone`), then its `test` extra, and its tests run. The vm-* packages
                   come from packages/, found by following the pyproject files' dependencies
                   (extras included), so an undeclared sibling is simply not installed.
  lint             ruff over the whole tree, and import-linter (the contracts in the root
                   pyproject.toml: layers, independence, no cycles)
  typecheck        mypy over every package
  full             (not in the default set; .ci/run runs it after `nox`) the long suites:
                   tests marked `full` (the guest program suite under the llvm engine and
                   under code-cache bounds, the snapshot cuts of every guest program, ...)
  bench            (not in the default set) the benchmarks: guest MIPS per engine and the
                   ratio to qemu-riscv64 measured in the same run
  boot             (not in the default set) boots Debian's stock x86-64 kernel with a
                   busybox initramfs under `vm boot` on KVM and prints the time to /init's
                   first line; needs apt-get/dpkg-deb and hardware virtualization

Arguments after `--` go to pytest, e.g. `nox -s tests-vm-jit -- -k native -x`.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parent
PACKAGES_DIR = ROOT / "packages"
PACKAGES = ["vm-core", "vm-mem", "vm-translate", "vm-gc", "vm-jit", "vm-linux", "vm-accel", "vm-cli"]
# Test runner plugins, not imported by any test: xdist spreads a suite over the CPUs.
RUNNER = ["pytest-xdist>=3.5"]

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = [*(f"tests-{p}" for p in PACKAGES), "lint", "typecheck"]

# Tests marked `full` run in the `full` session only; the default sessions deselect them.
DEFAULT_MARKS = ["-m", "not full"]


def _pyproject(package: str) -> dict:
    with (PACKAGES_DIR / package / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["project"]


def local_closure(package: str, extras: frozenset[str] = frozenset()) -> dict[str, set[str]]:
    """``package`` and every local (packages/) distribution it needs, transitively, with their extras.

    Follows ``dependencies`` and, for each requested extra, ``optional-dependencies[extra]``
    of each pyproject.toml; third-party requirements are left to the installer.
    """
    local = {canonicalize_name(p): p for p in PACKAGES}
    needed: dict[str, set[str]] = {}
    pending = [(package, set(extras))]
    while pending:
        name, wanted = pending.pop()
        seen = needed.get(name)
        if seen is not None and wanted <= seen:
            continue
        needed.setdefault(name, set()).update(wanted)
        project = _pyproject(name)
        requirements = list(project.get("dependencies", []))
        for extra in wanted:
            requirements += project.get("optional-dependencies", {}).get(extra, [])
        for text in requirements:
            requirement = Requirement(text)
            sibling = local.get(canonicalize_name(requirement.name))
            if sibling is not None:
                pending.append((sibling, set(requirement.extras)))
    return needed


def install_local(session: nox.Session, package: str, *extras: str, also: tuple[str, ...] = ()) -> None:
    """Install ``package[extras]`` from packages/ with exactly the local distributions it declares."""
    targets = []
    for name, wanted in sorted(local_closure(package, frozenset(extras)).items()):
        suffix = f"[{','.join(sorted(wanted))}]" if wanted else ""
        targets.append(f"{PACKAGES_DIR / name}{suffix}")
    session.install(*targets, *also)


def install_all(session: nox.Session, *also: str) -> None:
    """Every package from packages/ with its `test` extra (for mypy, the long suites, the benchmarks)."""
    targets = [f"{PACKAGES_DIR / package}[test]" for package in PACKAGES]
    session.install(*targets, *also)


# Imports every module of a package (test kits under `.testing` need the test extra, `__main__`
# runs the program, so both are left out): what the package imports must be installed with it.
IMPORT_ALONE = """
import importlib, pkgutil, sys
name = sys.argv[1]
package = importlib.import_module(name)
modules = [m.name for m in pkgutil.walk_packages(package.__path__, name + ".")
           if ".testing" not in m.name and not m.name.endswith(".__main__")]
for module in modules:
    importlib.import_module(module)
print(f"{name}: {len(modules) + 1} modules import with only the declared dependencies installed")
"""


# Suites whose tests are independent enough to share the CPUs (pytest-xdist, one worker per CPU).
PARALLEL = {"vm-translate", "vm-jit"}


def _xdist(session: nox.Session, package: str | None = None) -> list[str]:
    """``-n N`` for the CPUs there are (at most 4), unless the caller chose or there is one CPU."""
    if package is not None and package not in PARALLEL:
        return []
    if any(arg.startswith(("-n", "--numprocesses", "-p")) for arg in session.posargs):
        return []
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return ["-n", str(min(cpus, 4))] if cpus > 1 else []


def _make_test_session(package: str) -> None:
    @nox.session(name=f"tests-{package}", reuse_venv=False)
    def tests(session: nox.Session) -> None:
        module = package.replace("-", "_")
        install_local(session, package)
        session.run("python", "-c", IMPORT_ALONE, module)
        install_local(session, package, "test", also=tuple(RUNNER))
        session.run(
            "python", "-m", "pytest", str(PACKAGES_DIR / package / "tests"), "-q",
            *DEFAULT_MARKS, *_xdist(session, package), *session.posargs,
            env={"PYTHONHASHSEED": "0"},
        )

    tests.__doc__ = f"{package}'s tests with only {package} and its declared dependencies installed"


for _package in PACKAGES:
    _make_test_session(_package)


@nox.session
def full(session: nox.Session) -> None:
    """The long suites (tests marked `full`), every package's, with every package installed."""
    install_all(session, *RUNNER)
    for package in PACKAGES:
        session.run(
            "python", "-m", "pytest", str(PACKAGES_DIR / package / "tests"), "-q", "-m", "full",
            *_xdist(session, package), *session.posargs,
            env={"PYTHONHASHSEED": "0"},
            success_codes=[0, 5],  # 5: no test of this package is marked `full`
        )


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5", "import-linter>=2.1")
    session.run("ruff", "check", str(ROOT))
    # import-linter reads the sources; the packages need not be installed, only findable.
    sources = os.pathsep.join(str(PACKAGES_DIR / p / "src") for p in PACKAGES)
    session.run("lint-imports", "--config", str(ROOT / "pyproject.toml"), env={"PYTHONPATH": sources})


@nox.session
def typecheck(session: nox.Session) -> None:
    install_all(session, "mypy>=1.10")
    session.run("mypy", *(str(PACKAGES_DIR / p / "src") for p in PACKAGES))


@nox.session
def bench(session: nox.Session) -> None:
    install_all(session)
    session.run("python", str(ROOT / "bench" / "run.py"), *session.posargs)


@nox.session
def boot(session: nox.Session) -> None:
    install_local(session, "vm-cli")
    session.run("python", str(ROOT / "guest" / "kernel" / "debian_boot.py"), *session.posargs)
