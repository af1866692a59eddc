"""The attack programs judged against the kernel itself: run natively in a real chroot, they see no escape.

A self-test of the sandbox suite (test_sandbox_attacks.py, test_sandbox_runtime.py): the x86-64 builds of
the path attacks are run natively with the root as a real ``chroot`` (so this needs root, and is skipped
otherwise), on the same layout. Linux confines them, so every attempt must be blocked or contained, the
host must be untouched, and the calls that work inside a root must work (the decoys are reached). A
failure here is a bug in the attack programs, not in vm. The chroot breakout (classic's ``chroot`` group)
and /proc (not mounted in the chroot) are left out: a real chroot does not stop root from the first, and
the second is vm's emulation.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from . import sandbox_fixtures as fixtures

sandbox = fixtures.sandbox

pytestmark = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="a native chroot needs root"
)


@pytest.fixture(scope="module")
def native_programs() -> dict[str, Path]:
    try:
        return dict(fixtures.build.build_all("x86_64"))
    except (fixtures.build.ToolchainMissing, fixtures.build.BuildError) as err:
        pytest.skip(f"the x86-64 attack programs cannot be built: {err}")
    raise AssertionError("unreachable")


def chrooted(layout: Any, program: str, *extra: str) -> list[str]:
    """The command line, inside the root (run it with ``preexec_fn=enter(layout)``)."""
    return [f"/bin/{program}", *layout.program_args(), *extra]


def enter(layout: Any) -> Any:
    root = str(layout.root)

    def chroot_here() -> None:
        os.chroot(root)
        os.chdir("/")

    return chroot_here


def run_native(layout: Any, program: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(chrooted(layout, program, *extra), cwd=layout.run_dir, env=dict(sandbox.GUEST_ENV),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace", timeout=120,
                          check=False, preexec_fn=enter(layout))


@pytest.mark.parametrize("group", ["read", "probe,loops", "change", "create"])
def test_classic_attacks_see_no_escape_under_a_real_chroot(tmp_path: Path, native_programs: dict[str, Path],
                                                          group: str) -> None:
    layout = sandbox.make_layout(tmp_path, {"classic": native_programs["classic"]})
    before = sandbox.snapshot_host(layout)
    done = run_native(layout, "classic", group)
    problems = sandbox.failures(layout, done, before)
    assert not problems, "\n".join(problems[:40])
    grouped = sandbox.verdicts(done.stdout)
    if group == "probe,loops":
        # every probe of a host-only name: ENOENT
        assert all(text.endswith("errno=ENOENT") or text.startswith(("eloop", "enotdir", "exdev"))
                   for text in grouped["blocked"]), grouped["blocked"]
    else:
        # inside a root every one of these calls works on its decoy
        assert not grouped["blocked"], grouped["blocked"][:20]


def test_rename_and_plant_sees_no_escape_under_a_real_chroot(tmp_path: Path,
                                                             native_programs: dict[str, Path]) -> None:
    layout = sandbox.make_layout(tmp_path, {"rename_plant": native_programs["rename_plant"]})
    before = sandbox.snapshot_host(layout)
    done = run_native(layout, "rename_plant")
    problems = sandbox.failures(layout, done, before)
    assert not problems, "\n".join(problems[:40])
    blocked = sandbox.verdicts(done.stdout)["blocked"]
    assert all(" probe-" in text and text.endswith("errno=ENOENT") for text in blocked), blocked[:20]


def test_the_race_sees_no_escape_under_a_real_chroot(tmp_path: Path, native_programs: dict[str, Path]) -> None:
    layout = sandbox.make_layout(tmp_path, {"race": native_programs["race"]})
    sandbox.make_race_tree(layout)
    before = sandbox.snapshot_host(layout)
    kwargs: dict[str, Any] = dict(cwd=layout.run_dir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, preexec_fn=enter(layout))
    swapper = subprocess.Popen(chrooted(layout, "race", "swap", "20", "0"), **kwargs)
    user = subprocess.Popen(chrooted(layout, "race", "use", "2", "2000"), **kwargs)
    try:
        user_out, user_err = user.communicate(timeout=60)
        swap_out, swap_err = swapper.communicate(timeout=60)
    finally:
        for process in (swapper, user):
            if process.poll() is None:
                process.kill()
                process.wait()
    problems = sandbox.host_changes(layout, before)
    for name, out, err, code in (("user", user_out, user_err, user.returncode),
                                 ("swapper", swap_out, swap_err, swapper.returncode)):
        problems += [f"{name}: {p}" for p in sandbox.failures(layout, subprocess.CompletedProcess([name], code, out, err),
                                                              None)]
    assert not problems, "\n".join(problems[:40])
    assert "swaps=" in swap_out and "opens=" in user_out, (swap_out, user_out, swap_err, user_err)
