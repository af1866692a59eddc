"""The guest's network options against qemu-riscv64: ``vm run --net none`` and name resolution in ``--root``.

* ``--net none`` refuses every socket family but AF_UNIX with EACCES: ``unix_sockets`` prints exactly
  what it prints under qemu-riscv64 (where sockets of every family work) but for its two AF_INET lines.
* Static glibc resolves names from ``/etc/hosts`` itself (its "files" NSS source needs no shared
  library): under ``vm run --root DIR`` ``resolve_hosts`` reads DIR/etc/hosts and DIR/etc/nsswitch.conf,
  as qemu-riscv64 does with ``-L DIR`` (qemu looks absolute paths up under DIR first).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

NET_LINES = (b"AF_INET socket: ", b"AF_INET socketpair: ")


@pytest.mark.guest_vm
def test_net_none_refuses_inet_and_keeps_unix(
    guest_build: ModuleType, guest_binaries: dict[str, Path], vm_command: list[str], tmp_path: Path
) -> None:
    binary = str(guest_binaries["unix_sockets"])
    (tmp_path / "qemu").mkdir()
    (tmp_path / "vm").mkdir()
    expected, _err, expected_rc = guest_build.run_guest_command(
        [guest_build.find_tool(guest_build.QEMU), binary], tmp_path / "qemu", timeout=60.0
    )
    actual, stderr, returncode = guest_build.run_guest_command(
        [*vm_command, "--net", "none", binary], tmp_path / "vm", timeout=300.0
    )
    assert returncode == expected_rc == 0, stderr.decode(errors="replace")
    expected_lines, actual_lines = expected.splitlines(), actual.splitlines()
    assert len(actual_lines) == len(expected_lines)
    differing = [(want, got) for want, got in zip(expected_lines, actual_lines, strict=True) if want != got]
    assert differing == [
        (b"AF_INET socket: ok", b"AF_INET socket: Permission denied"),
        (b"AF_INET socketpair: -1 Operation not supported", b"AF_INET socketpair: -1 Permission denied"),
    ]
    assert all(line.startswith(NET_LINES) for pair in differing for line in pair)


@pytest.mark.guest_vm
def test_getaddrinfo_reads_hosts_inside_the_root(
    guest_build: ModuleType, guest_binaries: dict[str, Path], vm_command: list[str], tmp_path: Path
) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "etc" / "hosts").write_text("10.1.2.3 myhost alias.example\n127.0.0.1 localhost\n")
    (root / "etc" / "nsswitch.conf").write_text("hosts: files\n")
    program = root / "bin" / "resolve_hosts"
    shutil.copy2(guest_binaries["resolve_hosts"], program)
    names = ["myhost", "alias.example", "localhost", "not-in-hosts.invalid"]
    (tmp_path / "qemu").mkdir()
    (tmp_path / "vm").mkdir()
    expected, _err, expected_rc = guest_build.run_guest_command(
        [guest_build.find_tool(guest_build.QEMU), "-L", str(root), str(program), *names],
        tmp_path / "qemu",
        timeout=60.0,
    )
    actual, stderr, returncode = guest_build.run_guest_command(
        [*vm_command, "--root", str(root), str(program), *names], tmp_path / "vm", timeout=300.0
    )
    assert returncode == expected_rc == 0, stderr.decode(errors="replace")
    assert actual == expected
    assert actual.startswith(
        b"myhost: 10.1.2.3 port 80\nalias.example: 10.1.2.3 port 80\nlocalhost: 127.0.0.1"
    )
    assert b"not-in-hosts.invalid: Name or service not known" in actual


@pytest.mark.guest_vm
def test_net_none_survives_a_snapshot(
    guest_build: ModuleType, guest_binaries: dict[str, Path], vm_command: list[str], tmp_path: Path
) -> None:
    """`vm resume` of a `--net none` run keeps refusing AF_INET (the snapshot records it)."""
    binary = str(guest_binaries["unix_sockets"])
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC", "VM_HOME": str(tmp_path / "home")}
    for name in ("plain", "cut"):
        (tmp_path / name).mkdir()
    whole = subprocess.run(
        [*vm_command, "--net", "none", binary],
        cwd=tmp_path / "plain",
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert whole.returncode == 0, whole.stderr
    assert b"AF_INET socket: Permission denied\n" in whole.stdout
    cut = subprocess.run(
        [*vm_command, "--net", "none", "--snapshot-at", "5000", binary],
        cwd=tmp_path / "cut",
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert cut.returncode == 0, cut.stderr
    snapshot_id = cut.stderr.decode().splitlines()[-1].removeprefix("snapshot: ")
    resume = [*vm_command[:-1], "resume", snapshot_id]  # vm_command ends with "run"
    resumed = subprocess.run(resume, cwd=tmp_path / "cut", env=env, capture_output=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert cut.stdout + resumed.stdout == whole.stdout
