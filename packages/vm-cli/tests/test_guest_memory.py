"""Sparse guest memory end to end: host RSS of a 64 GiB reservation, and ``vm run --max-memory``.

The guest programs' output is compared with qemu-riscv64 by test_guest_programs.py
(sparse_reserve, mmap_ceiling, touch_memory); here the VM process itself is measured:

* while ``sparse_reserve`` holds its 64 GiB ``MAP_NORESERVE`` reservation with
  three pages touched (it waits on stdin there), the ``vm run`` process's
  VmHWM (peak resident set, from /proc/PID/status) must stay under 1 GB:
  it would be 64 GiB if untouched pages cost host memory;
* under ``--max-memory 64M``, ``touch_memory 256`` must see malloc fail
  (ENOMEM for the commit) and then be killed with SIGKILL on touching the
  reservation past 64 MiB, with one ``vm:`` line on stderr.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

RSS_BOUND_KIB = 1 << 20  # 1 GiB


def _status_kib(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB$", text, re.MULTILINE)
    assert match, f"no {field} in /proc/{pid}/status"
    return int(match.group(1))


@pytest.mark.guest_vm
def test_a_64_gib_reservation_costs_only_its_touched_pages(
    guest_build: ModuleType, guest_binaries: dict[str, Path], vm_command: list[str], tmp_path: Path
) -> None:
    binary = guest_binaries["sparse_reserve"]
    env = {**guest_build.GUEST_ENV, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    with subprocess.Popen(
        [*vm_command, str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=tmp_path, env=env,
    ) as vm:
        assert vm.stdout is not None and vm.stdin is not None
        first = vm.stdout.readline()
        second = vm.stdout.readline()  # printed after the three pages were touched; the guest now waits on stdin
        assert first.startswith(b"mmap 64 GiB MAP_NORESERVE") and first.rstrip().endswith(b"ok"), first
        assert second.startswith(b"three pages touched"), second
        peak = _status_kib(vm.pid, "VmHWM")
        rest, errors = vm.communicate(input=b"", timeout=300)  # end of input: the guest goes on
    assert vm.returncode == 0, errors.decode(errors="replace")[-2000:]
    assert b"munmap everything" in rest
    assert peak < RSS_BOUND_KIB, f"vm's peak RSS with a 64 GiB reservation live was {peak} KiB"


@pytest.mark.guest_vm
def test_max_memory_refuses_commits_and_kills_on_touch(
    guest_binaries: dict[str, Path], vm_command: list[str], tmp_path: Path
) -> None:
    result = subprocess.run(
        [*vm_command[:-1], "run", "--max-memory", "64M", str(guest_binaries["touch_memory"]), "256"],
        capture_output=True, cwd=tmp_path, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert result.stdout == b"malloc 256 MiB: failed\nmmap 256 MiB MAP_NORESERVE: ok\n"
    assert result.returncode == -9, result.stderr.decode(errors="replace")[-2000:]
    lines = result.stderr.decode().splitlines()
    assert lines == [line for line in lines if line.startswith("vm: guest killed (SIGKILL): out of memory")]
    assert len(lines) == 1 and "--max-memory" in lines[0]


@pytest.mark.guest_vm
def test_max_memory_within_the_bound_changes_nothing(
    guest_binaries: dict[str, Path], vm_command: list[str], tmp_path: Path
) -> None:
    result = subprocess.run(
        [*vm_command[:-1], "run", "--max-memory", "64M", str(guest_binaries["touch_memory"]), "8"],
        capture_output=True, cwd=tmp_path, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    assert result.stdout.endswith(b"touched 8 MiB, checksum 261120\n")


def test_max_memory_rejects_sizes_it_cannot_read(
    guest_binaries: dict[str, Path], vm_command: list[str], tmp_path: Path
) -> None:
    result = subprocess.run(
        [*vm_command[:-1], "run", "--max-memory", "lots", str(guest_binaries["touch_memory"])],
        capture_output=True, cwd=tmp_path, timeout=60,
    )
    assert result.returncode != 0 and b"not a memory size" in result.stderr
