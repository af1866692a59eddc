"""`vm run --root` confines the guest end to end; the embedding API agrees with Unicorn."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from vm_cli import Machine
from vm_core.types import StopKind

HERE = Path(__file__).parent
CC = "riscv64-linux-gnu-gcc"


def _need_toolchain() -> None:
    if shutil.which(CC) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CC} is missing (apt-get install gcc-riscv64-linux-gnu)")
        pytest.skip(f"{CC} is missing (apt-get install gcc-riscv64-linux-gnu)")


@pytest.fixture(scope="module")
def root_escape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _need_toolchain()
    out = tmp_path_factory.mktemp("bin") / "root_escape"
    subprocess.run([CC, "-static", "-O2", "-o", str(out), str(HERE / "c" / "root_escape.c")], check=True)
    return out


def test_guest_root_cannot_be_escaped(root_escape: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("guest-passwd\n")
    os.symlink("/etc", root / "escape-abs")
    os.symlink("../../../../etc", root / "escape-rel")
    proc = subprocess.run(
        [sys.executable, "-m", "vm_cli", "run", "--root", str(root), str(root_escape)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    # every route ends at the file inside the root, never the host's /etc/passwd
    assert lines == [
        "/etc/passwd: guest-passwd",
        "../../../../../../etc/passwd: guest-passwd",
        "/../../etc/passwd: guest-passwd",
        "/escape-abs/passwd: guest-passwd",
        "/escape-rel/passwd: guest-passwd",
        "cwd after chdir(/../../..): /",
        "etc/passwd: guest-passwd",
    ]


# addi a0, zero, 0; addi a1, zero, 1; loop: add a0, a0, a1; addi a1, a1, 1; slli a2, a0, 3;
# xor a3, a2, a1; blt a1, a4, loop; ebreak  (assembled with riscv64-linux-gnu-as)
LOOP = bytes.fromhex("13050000" "93051000" "3305b500" "93851500" "13163500" "b346b600" "e3c8e5fe" "73001000")
BASE = 0x10000


def _unicorn_run(a4: int) -> dict[str, int]:
    from unicorn import UC_ARCH_RISCV, UC_MODE_RISCV64, Uc
    from unicorn import riscv_const as rc

    uc = Uc(UC_ARCH_RISCV, UC_MODE_RISCV64)
    uc.mem_map(BASE, 0x1000)
    uc.mem_write(BASE, LOOP)
    uc.reg_write(rc.UC_RISCV_REG_A4, a4)
    uc.emu_start(BASE, BASE + len(LOOP) - 4)
    return {name: uc.reg_read(getattr(rc, f"UC_RISCV_REG_{name.upper()}")) for name in ("a0", "a1", "a2", "a3")}


@pytest.mark.parametrize("engine", ["interp", "python"])
def test_machine_api_matches_unicorn(engine: str) -> None:
    m = Machine("riscv64", engine=engine)
    m.mem_map(BASE, 0x1000)
    m.mem_write(BASE, LOOP)
    m.reg_write("a4", 300)
    stop = m.run(begin=BASE)
    assert stop.kind is StopKind.BREAKPOINT and m.pc == BASE + len(LOOP) - 4
    expected = _unicorn_run(300)
    assert {name: m.reg_read(name) for name in expected} == expected
    assert m.icount == 2 + 5 * 299  # the ebreak does not retire


def test_machine_api_until_and_count() -> None:
    m = Machine("riscv64", engine="python")
    m.mem_map(BASE, 0x1000)
    m.mem_write(BASE, LOOP)
    m.reg_write("a4", 300)
    stop = m.run(begin=BASE, count=7)
    assert stop.kind is StopKind.BUDGET and m.icount == 7 and m.pc == BASE + 8
    stop = m.emu_start(m.pc, until=BASE + 0x18)
    assert stop.kind is StopKind.UNTIL and m.pc == BASE + 0x18
    assert m.reg_read("x10") == m.reg_read("a0")


def test_machine_reports_faults_with_the_guest_pc() -> None:
    m = Machine("riscv64")
    m.mem_map(BASE, 0x1000)
    m.mem_write(BASE, bytes.fromhex("83300500"))  # ld ra, 0(a0)
    m.reg_write("a0", 0xDEAD000)
    stop = m.run(begin=BASE)
    assert stop.kind is StopKind.FAULT and stop.signal == 11 and m.pc == BASE
    assert stop.fault is not None and getattr(stop.fault, "address", None) == 0xDEAD000
