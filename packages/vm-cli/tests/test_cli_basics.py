"""The vm command answers: help, version, plugins, and errors as one line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from vm_cli.main import main


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("version", "plugins", "run"):
        assert command in out


def test_version_lists_every_distribution(capsys):
    assert main(["version"]) == 0
    out = capsys.readouterr().out
    for dist in ("vm-core", "vm-mem", "vm-translate", "vm-jit", "vm-gc", "vm-accel", "vm-linux", "vm-cli"):
        assert f"{dist} 0.1.0" in out


def test_plugins_json_reports_what_is_registered(capsys):
    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"translate", "jit", "linux", "mem"} <= set(data["plugins"])
    parts = {(p["kind"], p["name"]) for p in data["parts"]}
    assert ("isa", "riscv64") in parts
    assert ("engine", "interp") in parts and ("engine", "python") in parts
    assert ("syscalls", "linux/riscv64") in parts


def test_python_dash_m_runs_the_cli():
    proc = subprocess.run([sys.executable, "-m", "vm_cli", "version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert proc.stdout.startswith("vm 0.1.0")


def test_errors_are_one_line_without_traceback(tmp_path):
    missing = tmp_path / "nope"
    proc = subprocess.run(
        [sys.executable, "-m", "vm_cli", "run", str(missing)], capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vm: error:") and "nope" in lines[0]


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: vm" in capsys.readouterr().out


def test_code_cache_size_keeps_the_other_engine_settings(monkeypatch):
    """``--code-cache-size`` sets the bound it names; VM_JIT_SETTINGS still sets the rest (and the other bound)."""
    from vm_cli.commands.run import engine_settings
    from vm_cli.main import build_parser

    monkeypatch.setenv("VM_JIT_SETTINGS", "native_threshold=2000,code_cache_bytes=1048576")
    args = build_parser().parse_args(["run", "--code-cache-size", "300blocks", "prog"])
    settings = engine_settings(args)
    assert (settings.native_threshold, settings.code_cache_blocks, settings.code_cache_bytes) == (2000, 300, 1 << 20)
    monkeypatch.delenv("VM_JIT_SETTINGS")
    assert engine_settings(build_parser().parse_args(["run", "prog"])) is None
