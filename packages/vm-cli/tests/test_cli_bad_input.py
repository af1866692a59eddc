"""Bad command lines: every one is a single ``vm: error:`` line, exit status 2, and never a traceback.

A hypothesis test feeds random argument vectors (the subcommand's own options
mixed with random text, numbers, huge strings and awkward paths) to every
subcommand in-process; a few fixed cases run the real ``vm`` command.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vm_cli.main import build_parser, main

VM = [sys.executable, "-m", "vm_cli"]
HELLO = Path(__file__).resolve().parents[3] / "examples" / "hello-riscv64"


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(
        option for action in parser._actions for option in action.option_strings if option not in ("-h", "--help")
    )


@pytest.fixture
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if key.startswith("VM_") or key in ("PERSISTENCE_MODULE", "SQLITE_DBNAME"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    monkeypatch.setenv("VM_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


AWKWARD = [
    "", " ", "-", "--", ".", "/", "/dev/null", "/nonexistent/x", "x" * 300, "f" * 300, "0" * 70, "-1", "0",
    "18446744073709551616", "1e309", "nan", "inf", "64Q", "12blocks,3", "ünïcödé", "a b", "'", '"', "%s", "\\",
    "../..", "abc123", "0123456789abcdef", "deadbeef",
]


@st.composite
def argument_vectors(draw: st.DrawFn, name: str, options: list[str]) -> list[str]:
    text = st.text(st.characters(codec="utf-8", blacklist_characters="\x00"), max_size=40)
    token = st.one_of(
        st.sampled_from(options) if options else st.nothing(),
        st.sampled_from(AWKWARD),
        text,
        st.integers(-(2**70), 2**70).map(str),
    )
    return [name, *draw(st.lists(token, max_size=6))]


def check_one(argv: list[str], capfd: pytest.CaptureFixture[str]) -> None:
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2)
        status = exit_.code if isinstance(exit_.code, int) else 1
    _, err = capfd.readouterr()
    assert "Traceback" not in err, argv
    assert "internal error" not in err, (argv, err)
    assert status in (0, 1, 2), (argv, status, err)
    errors = [line for line in err.splitlines() if line.startswith("vm: error:")]
    assert len(errors) <= len(argv), (argv, err)
    if status == 2:  # a usage error: one line per bad argument (vm rm A B names both), nothing else
        lines = err.strip().splitlines()
        assert lines and lines == errors, (argv, err)


@pytest.mark.parametrize("name", sorted(subcommands()))
def test_random_argument_vectors_never_give_a_traceback(
    name: str, private_home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    options = option_strings(subcommands()[name])

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(argv=argument_vectors(name, options))
    def check(argv: list[str]) -> None:
        check_one(argv, capfd)

    check()


def vm(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "VM_HOME": str(home)}
    return subprocess.run([*VM, *args], env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["show", "no_such_vm"], "no VM named 'no_such_vm'"),
        (["rm", "x" * 300], "300 characters"),
        (["stop", "f" * 300], "300 characters"),
        (["resume", "a" * 300], "300 characters"),
        (["resume", "0" * 16], "no snapshot"),
        (["run", "--code-cache-size", "64Q", str(HELLO)], "64Q"),
        (["run", "--snapshot-at", "many", "prog"], "invalid int value"),
        (["run", "/nonexistent/program"], "/nonexistent/program: no such file"),
        (["run", "x" * 5000], "cannot open the program"),
        (["boot", "--kernel", "/nonexistent/bzImage"], "/nonexistent/bzImage"),
        (["show"], "required"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(argv: list[str], words: str, tmp_path: Path) -> None:
    done = vm(*argv, home=tmp_path / "home")
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert (done.returncode, len(lines)) == (2, 1), done.stderr
    assert lines[0].startswith("vm: error: ") and words in lines[0], lines[0]
    assert done.stdout == ""
