"""`vm boot` end to end on the real /dev/kvm with the project's test kernel (guest/kernel/).

(Moved from vm-accel's test_boot_kvm.py, which tests the boot protocol through the library:
these run the `vm` command, so they belong to vm-cli.) Skipped, with the reason, where KVM or
the host toolchain is missing.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
from vm_accel.boot import MemoryLayout

from .kvm_probe import KVM_UNAVAILABLE
from .repo_scripts import load_by_path

KERNEL_BUILD_SCRIPT = Path(__file__).resolve().parents[3] / "guest" / "kernel" / "build.py"


pytestmark = pytest.mark.skipif(KVM_UNAVAILABLE is not None, reason=KVM_UNAVAILABLE or "")

MIB = 1 << 20
INITRD = b"VMINITRD\x00\x01\x02\xfe\xff-the-rest-of-the-initrd" * 3


def kernel_build_module() -> ModuleType:
    """guest/kernel/build.py (a repository script, not a package), loaded by path."""
    return load_by_path("vm_guest_kernel_build", KERNEL_BUILD_SCRIPT)


@pytest.fixture(scope="module")
def test_kernel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build = kernel_build_module()
    missing = build.missing_tools()
    if missing:
        pytest.skip(f"cannot build guest/kernel: missing {', '.join(missing)} (apt-get install gcc binutils)")
    image: Path = build.build_kernel(tmp_path_factory.mktemp("kernel"))
    return image


@pytest.fixture
def initrd(tmp_path: Path) -> Path:
    path = tmp_path / "initrd.img"
    path.write_bytes(INITRD)
    return path


KERNEL_SCRIPT = kernel_build_module()


printed = KERNEL_SCRIPT.report_values


def check_report(output: str, *, command_line: str, memory: int, initrd: bytes, initrd_address: int) -> None:
    """The test kernel's report matches what the loader was given (see guest/kernel/kmain.c)."""
    e820 = [(e.address, e.size, e.type) for e in MemoryLayout(memory).e820()]
    KERNEL_SCRIPT.check_report(output, command_line=command_line, e820=e820, initrd=initrd, initrd_address=initrd_address)


def vm_boot(*args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "vm_cli", "boot", *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def read_until(proc: subprocess.Popen[bytes], marker: bytes, seconds: float = 30) -> bytes:
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + seconds
    while marker not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in {seen!r}"
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, f"output ended before {marker!r}: {seen!r}"
            seen += chunk
    return seen


def test_vm_boot_command(test_kernel: Path, initrd: Path) -> None:
    line = "console=ttyS0 quiet answer=42"
    proc = vm_boot("--accel", "kvm", "--kernel", str(test_kernel), "--initrd", str(initrd), "--append", line,
                   "--memory", "128M")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    text = out.decode()
    initrd_at = int(printed(text, "initrd")[0].split()[0], 16)
    check_report(text, command_line=line, memory=128 * MIB, initrd=INITRD, initrd_address=initrd_at)
    assert re.search(r"vm: guest powered off: ACPI sleep control port 0x604 <- 0x2000 \([\d.]+ s\)", err.decode())


def test_vm_boot_console_input_and_ctrl_a_x(test_kernel: Path) -> None:
    proc = vm_boot("--kernel", str(test_kernel), "--append", "echo", "--memory", "32M", stdin=subprocess.PIPE)
    assert proc.stdin is not None
    read_until(proc, b"echo: ready\n")
    proc.stdin.write(b"typed at the console\r")
    proc.stdin.flush()
    rest = read_until(proc, b"powering off")
    assert b"echo: typed at the console\n" in rest
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0

    proc = vm_boot("--kernel", str(test_kernel), "--append", "echo", "--memory", "32M", stdin=subprocess.PIPE)
    assert proc.stdin is not None
    read_until(proc, b"echo: ready\n")
    proc.stdin.write(b"\x01x")
    proc.stdin.flush()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and b"stopped from the console: Ctrl-A x" in err


def test_vm_boot_timeout_and_errors(test_kernel: Path, tmp_path: Path) -> None:
    proc = vm_boot("--kernel", str(test_kernel), "--append", "echo", "--memory", "32M", "--timeout", "1")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 124 and b"stopped by --timeout" in err
    not_a_kernel = tmp_path / "not-a-kernel"
    not_a_kernel.write_bytes(bytes(4096))
    proc = vm_boot("--kernel", str(not_a_kernel))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and b"vm: error:" in err and b"HdrS" in err and b"Traceback" not in err
    proc = vm_boot("--kernel", str(test_kernel), "--accel", "none")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and b"hardware accelerator" in err
