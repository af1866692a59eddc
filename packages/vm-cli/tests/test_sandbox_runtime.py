"""`vm run --root` confinement under attack: races, `vm resume`, descriptors, limits and signals.

* a race: two `vm run --root SAME` processes, one swapping a directory and a symlink to the host with
  renameat2(RENAME_EXCHANGE), the other opening, stating, creating and changing through that path;
* `vm resume` after the guest's open file (or its cwd, or a directory fd) was replaced by a symlink to
  the host between the snapshot and the resume: refused with one clear line, or never followed;
* vm's own descriptors (fds 3..1023), RLIMIT_NOFILE, kill/tkill/tgkill of host processes;
* signals the guest sends itself: SIGKILL ends it like qemu-riscv64 (or the native x86-64 run), SIGSTOP
  stops it until SIGCONT.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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


@pytest.fixture(scope="module")
def rv_programs() -> dict[str, Path]:
    return fixtures.binaries_for("riscv64")


def report(problems: list[str], *outputs: str) -> str:
    tails = "\n".join("\n".join(out.splitlines()[-4:]) for out in outputs)
    return f"{len(problems)} problems:\n" + "\n".join(problems[:60]) + f"\n--- guest output tails:\n{tails}"


# ---------------------------------------------------------------------------------- the race


def test_exchange_race_between_two_guests(tmp_path: Path, arch: str, programs: dict[str, Path]) -> None:
    """/race/d <-> /race/l (-> OUTSIDE), /race/d2 <-> /race/l2 (-> ../..), and the files /race/f, /race/f2 <->
    symlinks to the host canary, swapped by one guest while the other opens, stats, creates, mkdirs, chmods,
    appends, renames and links through them, also from a cwd inside them (bounded: 200 rounds or 4 s)."""
    layout = sandbox.make_layout(tmp_path, {"race": programs["race"]})
    sandbox.make_race_tree(layout)
    before = sandbox.snapshot_host(layout)
    command = [*sandbox.vm_command(arch, "--root", str(layout.root)), str(layout.root / "bin" / "race"),
               *layout.program_args()]
    env = sandbox.vm_env(layout)
    kwargs = dict(cwd=layout.run_dir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE, text=True, errors="replace")
    swapper = subprocess.Popen([*command, "swap", "20", "0"], **kwargs)
    user = subprocess.Popen([*command, "use", "4", "200"], **kwargs)
    try:
        user_out, user_err = user.communicate(timeout=150)
        swap_out, swap_err = swapper.communicate(timeout=60)
    finally:
        for process in (swapper, user):
            if process.poll() is None:
                process.kill()
                process.wait()
    problems = []
    for name, out, err, code in (("user", user_out, user_err, user.returncode),
                                 ("swapper", swap_out, swap_err, swapper.returncode)):
        done = subprocess.CompletedProcess([name], code, out, err)
        problems += [f"{name}: {p}" for p in sandbox.failures(layout, done, None)]
    problems += sandbox.host_changes(layout, before)
    assert not problems, report(problems, user_out, swap_out, user_err, swap_err)
    assert "swaps=" in swap_out and "opens=" in user_out


# ---------------------------------------------------------------------------------- vm resume


def _vm(layout: object, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vm_cli", *args], cwd=layout.run_dir,  # type: ignore[attr-defined]
                          env=sandbox.vm_env(layout), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace", timeout=timeout, check=False)


SPIN = "3000000"
SNAPSHOT_AT = "2000000"


@pytest.mark.parametrize("mode", ["file", "dirs"])
def test_resume_does_not_follow_what_was_planted_after_the_snapshot(
    tmp_path: Path, rv_programs: dict[str, Path], mode: str
) -> None:
    """Open files ("file": one replaced by a symlink to the secret, one to the canary, and the program's own
    file by one to the secret) and the cwd and a dirfd
    ("dirs": moved away, symlinks to OUTSIDE and ".." planted) across a snapshot. riscv64 only: vm has no
    snapshots of KVM guests."""
    layout = sandbox.make_layout(tmp_path, {"resume": rv_programs["resume"]})
    (layout.root / "data").mkdir()
    victims = {"victim": "secret", "victim2": "canary"}
    for name in victims:
        (layout.root / "data" / name).write_text(f"GUEST-{name}-content\n")
    plants = {"work": str(layout.outside), "work2": ".."}
    for name in plants:
        (layout.root / name).mkdir()
        (layout.root / name / "secret").write_text(f"GUEST-{name}-secret\n")
        (layout.root / name / "canary").write_text(f"GUEST-{name}-canary\n")
    before = sandbox.snapshot_host(layout)
    first = _vm(layout, "run", "--root", str(layout.root), "--snapshot-at", SNAPSHOT_AT,
                str(layout.root / "bin" / "resume"), *layout.program_args(), mode, SPIN)
    assert first.returncode == 0, first.stderr
    assert "before:" in first.stdout, first.stdout
    last = first.stderr.strip().splitlines()[-1]
    assert last.startswith("snapshot: "), first.stderr
    snapshot_id = last.removeprefix("snapshot: ")
    # the plant, between the cut and the resume
    if mode == "file":
        for name, target in victims.items():
            (layout.root / "data" / name).unlink()
            os.symlink(str(layout.outside / target), layout.root / "data" / name)
        program = layout.root / "bin" / "resume"
        program.rename(layout.root / "bin" / "resume.orig")
        os.symlink(str(layout.secret), program)
    else:
        for name, target in plants.items():
            (layout.root / name).rename(layout.root / f"{name}_moved")
            os.symlink(target, layout.root / name)
    resumed = _vm(layout, "resume", snapshot_id)
    done = subprocess.CompletedProcess(["resume"], resumed.returncode, first.stdout + resumed.stdout,
                                       resumed.stderr)
    refused = resumed.returncode != 0 and not resumed.stdout
    problems = sandbox.failures(layout, done, before, expect_status=None if refused else 0)
    if refused:
        # refused before the guest ran on: one clear line
        lines = [text for text in resumed.stderr.strip().splitlines() if text.strip()]
        if len(lines) != 1:
            problems.append(f"vm resume refused with {len(lines)} lines, not one: {resumed.stderr[-600:]}")
    assert not problems, report(problems, first.stdout + resumed.stdout, resumed.stderr)


# ---------------------------------------------------------------------------------- fds, limits, kill


def _state(pid: int) -> str:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text.rpartition(")")[2].split()[0]


def test_fds_rlimit_and_host_processes(tmp_path: Path, arch: str, programs: dict[str, Path]) -> None:
    victim = subprocess.Popen(["sleep", "120"], start_new_session=True)
    try:
        layout = sandbox.make_layout(tmp_path, {"fds_signals": programs["fds_signals"]})
        before = sandbox.snapshot_host(layout)
        done = sandbox.run_attack(layout, arch, "fds_signals", str(victim.pid), str(victim.pid))
        problems = sandbox.failures(layout, done, before)
        if victim.poll() is not None:
            problems.append(f"the host process the guest tried to signal is gone: {victim.returncode}")
        elif _state(victim.pid) in ("T", "t"):
            problems.append("the host process the guest tried to signal was stopped")
        assert not problems, report(problems, done.stdout, done.stderr)
    finally:
        victim.kill()
        victim.wait()


# ---------------------------------------------------------------------------------- self-signals


def _oracle(arch: str, binary: Path, mode: str, cwd: Path) -> tuple[int, str]:
    if arch == "x86_64":
        command = [str(binary), mode]
    else:
        qemu = fixtures.qemu_riscv64()
        if qemu is None:
            if fixtures.in_ci():
                pytest.fail("CI=true but qemu-riscv64 is missing")
            pytest.skip("qemu-riscv64 is missing (apt-get install qemu-user)")
        command = [qemu, str(binary), mode]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False,
                          stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout


@pytest.mark.parametrize("mode,signo", [("raise-kill", signal.SIGKILL), ("kill-kill", signal.SIGKILL),
                                        ("blocked-kill", signal.SIGKILL), ("handler-kill", signal.SIGKILL),
                                        ("raise-term", signal.SIGTERM), ("raise-usr1", signal.SIGUSR1)])
def test_a_fatal_signal_to_itself_ends_the_guest_like_linux(tmp_path: Path, arch: str, programs: dict[str, Path],
                                                            mode: str, signo: int) -> None:
    """Killed by the signal (subprocess sees -N), as under qemu-riscv64 or natively for x86-64."""
    binary = programs["selfsig"]
    expected_code, expected_out = _oracle(arch, binary, mode, tmp_path)
    assert expected_code == -signo, (expected_code, expected_out)
    done = subprocess.run([*sandbox.vm_command(arch), str(binary), mode], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False, stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout) == (expected_code, expected_out), done.stderr[-800:]
    if mode != "raise-kill":
        return
    # from a shell: 128 + 9, as for qemu
    shell = subprocess.run(["sh", "-c", " ".join([*sandbox.vm_command(arch), str(binary), mode]) + "; echo status=$?"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
                           stdin=subprocess.DEVNULL)
    assert shell.stdout.strip().endswith("status=137"), shell.stdout + shell.stderr[-800:]


def _wait_stopped(process: subprocess.Popen[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if _state(process.pid) in ("T", "t"):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("mode", ["raise-stop", "kill-stop"])
def test_sigstop_to_itself_stops_the_guest_until_sigcont(tmp_path: Path, arch: str, programs: dict[str, Path],
                                                         mode: str) -> None:
    binary = programs["selfsig"]
    runners = [("vm", [*sandbox.vm_command(arch), str(binary), mode])]
    if arch == "riscv64" and fixtures.qemu_riscv64():
        runners.insert(0, ("qemu", [str(fixtures.qemu_riscv64()), str(binary), mode]))
    for name, command in runners:
        process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, text=True)
        try:
            stopped = _wait_stopped(process, 60)
            if stopped:
                os.kill(process.pid, signal.SIGCONT)
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert stopped, f"{name}: the guest did not stop (status {process.returncode}): {out} {err[-600:]}"
        assert (process.returncode, out) == (0, f"before {mode}\ncontinued\n"), f"{name}: {err[-600:]}"
