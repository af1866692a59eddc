"""Every check of the vm monorepo. `nox` alone runs the default set.

Sessions:
  tests-<package>  that package's tests (vm-core, vm-mem, ...), in a fresh venv
                   with every vm package installed from packages/
  lint             ruff over the whole tree
  typecheck        mypy over every package
  bench            the benchmarks (not in the default set): guest MIPS per engine and
                   the ratio to qemu-riscv64 measured in the same run
  boot             (not in the default set) boots Debian's stock x86-64 kernel with a
                   busybox initramfs under `vm boot` on KVM and prints the time to
                   /init's first line; needs apt-get/dpkg-deb and hardware virtualization
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES = ["vm-core", "vm-mem", "vm-translate", "vm-jit", "vm-gc", "vm-accel", "vm-linux", "vm-cli"]
TEST_DEPS = ["pytest>=8", "hypothesis>=6.100", "unicorn>=2.0.1", "capstone>=5"]

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = [*(f"tests-{p.removeprefix('vm-')}" for p in PACKAGES), "lint", "typecheck"]


# vm-core's `postgres` extra brings psycopg, so the event-store suite also runs on PostgreSQL.
EXTRAS = {"vm-core": "[postgres]"}


def install_all(session: nox.Session, *extra: str) -> None:
    session.install(*(str(ROOT / "packages" / p) + EXTRAS.get(p, "") for p in PACKAGES), *extra)


def _make_test_session(package: str) -> None:
    @nox.session(name=f"tests-{package.removeprefix('vm-')}")
    def tests(session: nox.Session) -> None:
        install_all(session, *TEST_DEPS)
        session.run(
            "python", "-m", "pytest", str(ROOT / "packages" / package / "tests"), "-q", *session.posargs,
            env={"PYTHONHASHSEED": "0"},
        )


for _package in PACKAGES:
    _make_test_session(_package)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", str(ROOT))


@nox.session
def typecheck(session: nox.Session) -> None:
    install_all(session, "mypy>=1.10", *TEST_DEPS)
    session.run("mypy", *(str(ROOT / "packages" / p / "src") for p in PACKAGES))


@nox.session
def bench(session: nox.Session) -> None:
    install_all(session, *TEST_DEPS)
    session.run("python", str(ROOT / "bench" / "run.py"), *session.posargs)


@nox.session
def boot(session: nox.Session) -> None:
    install_all(session)
    session.run("python", str(ROOT / "guest" / "kernel" / "debian_boot.py"), *session.posargs)
