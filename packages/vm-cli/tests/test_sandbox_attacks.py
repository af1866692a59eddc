"""`vm run --root` confinement under attack: path escapes through every path-taking system call.

The attack programs (guest/attacks/*.c, riscv64 always, x86-64 through KVM when usable) only know guest
paths, the host path of OUTSIDE (the directory next to the root that holds the host's secret and
canary) and the inodes of the secret and canary. Each prints one line per attempt and exits 0 only
if nothing escaped; on top of that every test checks from the host that

* the guest printed no host data (secret, canary, link target) and not the root's host path,
* nothing outside the root was created, removed, changed (content, mode, owner, size, times, link
  count) or read (the secret's and the outside directories' access times, primed older than their
  change times so that ``relatime`` records any read or listing).

See guest/attacks/README.md for the classes and the layout.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from . import sandbox_fixtures as fixtures

sandbox = fixtures.sandbox


@pytest.fixture(scope="module", params=fixtures.ARCHES)
def arch(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def programs(arch: str) -> dict[str, Path]:
    return fixtures.binaries_for(arch)


def attack(tmp_path: Path, arch: str, programs: dict[str, Path], program: str, *extra: str,
           timeout: float = 120.0) -> tuple[object, list[str]]:
    layout = sandbox.make_layout(tmp_path, {program: programs[program]})
    before = sandbox.snapshot_host(layout)
    done = sandbox.run_attack(layout, arch, program, *extra, timeout=timeout)
    return done, sandbox.failures(layout, done, before)


def refused_in_root(stdout: str) -> list[str]:
    """Attempts that fail here though they work inside a real root (test_sandbox_oracle shows they do).

    ENOSYS is tolerated (a call vm does not serve cannot escape), as are probes of host-only names (they
    must fail) and linkat(AT_EMPTY_PATH)'s ENOENT (Linux's answer without CAP_DAC_READ_SEARCH).
    """
    refused = []
    for text in sandbox.verdicts(stdout)["blocked"]:
        name = text.partition(": ")[0]
        errno_name = text.rsplit("errno=", 1)[-1].split()[0]
        if errno_name == "ENOSYS" or name.startswith("probe-") or " probe-" in name:
            continue
        if name.startswith(("eloop", "enotdir", "exdev")):  # the errors Linux gives, checked by the program
            continue
        if name.startswith("link-AT_EMPTY_PATH") and errno_name == "ENOENT":
            continue
        refused.append(f"works in a real root but failed here: {text}")
    return refused


def report(done: object, problems: list[str]) -> str:
    stdout = getattr(done, "stdout", "")
    tail = "\n".join(stdout.splitlines()[-5:])
    return f"{len(problems)} problems:\n" + "\n".join(problems[:60]) + f"\n--- guest stdout tail:\n{tail}"


@pytest.mark.parametrize("group", ["read", "probe,loops,chroot", "change", "create"])
def test_classic_escapes(tmp_path: Path, arch: str, programs: dict[str, Path], group: str) -> None:
    """`..`, absolute host paths, absolute/relative/chained symlinks, hard links, loops: every syscall."""
    done, problems = attack(tmp_path, arch, programs, "classic", group)
    if not group.startswith("probe"):
        problems += refused_in_root(done.stdout)  # type: ignore[attr-defined]
    assert not problems, report(done, problems)
    grouped = sandbox.verdicts(done.stdout)  # type: ignore[attr-defined]
    # the program really tried, and plain within-root uses still work
    assert len(grouped["blocked"]) + len(grouped["contained"]) >= 10, done.stdout  # type: ignore[attr-defined]
    if not group.startswith("probe"):
        assert grouped["contained"], "no attempt reached its decoy inside the root: within-root use is broken"


def test_rename_and_plant_cwd_and_dirfd(tmp_path: Path, arch: str, programs: dict[str, Path]) -> None:
    """The cwd and directory fds follow the directory: rename it away, plant a symlink to the host."""
    done, problems = attack(tmp_path, arch, programs, "rename_plant")
    problems += refused_in_root(done.stdout)  # type: ignore[attr-defined]
    assert not problems, report(done, problems)


def test_proc_self_exe_inside_the_root(tmp_path: Path, arch: str, programs: dict[str, Path]) -> None:
    """/proc/self/exe (and /proc/PID/exe...) while the program is in the root, then replaced by symlinks."""
    done, problems = attack(tmp_path, arch, programs, "procfs", "inside", "/bin/procfs",
                            "destructive" if os.geteuid() != 0 else "safe")
    assert not problems, report(done, problems)


def test_proc_self_exe_of_a_program_outside_the_root(tmp_path: Path, arch: str, programs: dict[str, Path]) -> None:
    """The program lies outside the root: nothing through /proc/self/exe may change or show its host file."""
    layout = sandbox.make_layout(tmp_path, {"procfs": programs["procfs"]})
    hostbin = layout.outside / "hostbin"
    hostbin.mkdir()
    outside_program = hostbin / "procfs"
    shutil.copy2(programs["procfs"], outside_program)
    before = sandbox.snapshot_host(layout)
    done = sandbox.run_attack(layout, arch, "procfs", "outside", "/hostbin/procfs",
                              program_path=str(outside_program))
    problems = sandbox.failures(layout, done, before)  # the program's own access time is not watched
    assert not problems, report(done, problems)


def test_proc_and_dev_are_emulated(tmp_path: Path, arch: str, programs: dict[str, Path]) -> None:
    """What the guest must see: /proc/self/{maps,cmdline,status,stat,environ,auxv,exe,cwd}, /proc/cpuinfo,
    /proc/meminfo, /dev/{null,zero,urandom,tty}, from guest state."""
    done, problems = attack(tmp_path, arch, programs, "procfs", "emulated", "/bin/procfs")
    assert not problems, report(done, problems)
