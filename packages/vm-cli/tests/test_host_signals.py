"""A signal sent to ``vm run`` reaches a guest that catches it, as under qemu-riscv64.

The guest (tests/c/sigint_read.c) blocks in ``read`` on an empty pipe; SIGINT
sent to the emulator's process must interrupt it with EINTR (no SA_RESTART)
and, the second time, restart it (SA_RESTART) so that it reads the byte the
test writes next. qemu-riscv64 run the same way is the oracle.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

VM = [sys.executable, "-m", "vm_cli", "run"]
#: time for the guest to get from its ``ready`` line into the blocking read
SETTLE_S = 0.5


@pytest.fixture(scope="module")
def sigint_read(guest_binaries: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> str:
    """tests/c/sigint_read.c built like the suite (guest_binaries checked the toolchain)."""
    out = tmp_path_factory.mktemp("sigint_read") / "sigint_read"
    source = Path(__file__).parent / "c" / "sigint_read.c"
    subprocess.run(["riscv64-linux-gnu-gcc", "-static", "-O2", "-o", str(out), str(source)], check=True)
    return str(out)


def _drive(command: list[str], env: dict[str, str], cwd: Path) -> tuple[bytes, int]:
    """Run ``command``: SIGINT after each ``ready`` line (once the guest sits in ``read``), a byte after
    the second handler's line; (stdout, returncode)."""
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=cwd)
    assert proc.stdin is not None and proc.stdout is not None
    lines: list[bytes] = []
    try:
        for round_ in range(2):
            lines.append(proc.stdout.readline())
            assert lines[-1].startswith(b"ready"), lines
            time.sleep(SETTLE_S)  # the guest goes on into read(2) and blocks there
            proc.send_signal(signal.SIGINT)
            lines.append(proc.stdout.readline())
            assert lines[-1] == b"handler\n", lines
            if round_ == 0:
                lines.append(proc.stdout.readline())  # the interrupted read's line
            else:
                proc.stdin.write(b"z")
                proc.stdin.flush()
        rest = proc.stdout.read()
        proc.stdin.close()
        return b"".join(lines) + rest, proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.guest_vm
def test_sigint_interrupts_then_restarts_a_blocking_read(
    sigint_read: str, guest_build: ModuleType, tmp_path: Path
) -> None:
    env = {**guest_build.GUEST_ENV, "VM_HOME": str(tmp_path / "home")}
    qemu = _drive([guest_build.find_tool(guest_build.QEMU), sigint_read], env, tmp_path)
    under_vm = _drive([*VM, sigint_read], env, tmp_path)
    assert qemu == (
        b"ready\nhandler\nread: -1 EINTR, handled 1\nready again\nhandler\nread: 1 'z', handled 2\n",
        0,
    )
    assert under_vm == qemu
