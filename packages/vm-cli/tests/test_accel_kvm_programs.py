"""`vm run --accel kvm` against the host: static x86-64 programs behave exactly as they do natively.

(Moved from vm-accel's tests: these run the `vm` command or vm_cli.compose, so they belong to
vm-cli, the package above vm-accel.)

Each program of ``guest/x86_64`` is compiled by the host's ``gcc -static
-O2``, run natively (the oracle) and under ``python -m vm_cli run --accel
kvm`` in fresh working directories with the same environment; stdout,
stderr, exit status (signals included) and the files left behind must be
identical. Skipped, with the probe's reason, where KVM cannot be used: also
under CI=true, because CI machines may have no /dev/kvm.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .kvm_probe import KVM_UNAVAILABLE

REPO = Path(__file__).resolve().parents[3]
GUEST_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC"}

if KVM_UNAVAILABLE is not None:
    pytestmark = pytest.mark.skip(
        reason=f"KVM unavailable: {KVM_UNAVAILABLE} (skipped even with CI=true: CI machines may lack /dev/kvm)"
    )
elif platform.machine() != "x86_64" or shutil.which("gcc") is None:
    pytestmark = pytest.mark.skip(reason="needs an x86-64 host with gcc to build and run the native oracle")


def _load_build_module() -> object:
    spec = importlib.util.spec_from_file_location("guest_x86_64_build", REPO / "guest" / "x86_64" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    build = _load_build_module()
    try:
        built: dict[str, Path] = build.build_all(tmp_path_factory.mktemp("x86_64"))  # type: ignore[attr-defined]
    except build.BuildError as err:  # type: ignore[attr-defined]
        pytest.skip(f"cannot build the x86-64 guest programs: {err}")
    return built


def _snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every file (contents) and directory (None) under ``directory``, by relative path."""
    found: dict[str, bytes | None] = {}
    for path in sorted(directory.rglob("*")):
        found[str(path.relative_to(directory))] = None if path.is_dir() else path.read_bytes()
    return found


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(command, cwd=cwd, env=GUEST_ENV, capture_output=True, timeout=120, check=False)


def _compare(binary: Path, args: list[str], tmp_path: Path, vm_options: tuple[str, ...] = ()) -> bytes:
    native_dir, vm_dir = tmp_path / "native", tmp_path / "vm"
    native_dir.mkdir(parents=True)
    vm_dir.mkdir(parents=True)
    native = _run([str(binary), *args], native_dir)
    under_vm = _run([sys.executable, "-m", "vm_cli", "run", "--accel", "kvm", *vm_options, str(binary), *args], vm_dir)
    assert under_vm.stderr == native.stderr
    assert under_vm.stdout == native.stdout
    assert under_vm.returncode == native.returncode
    assert _snapshot(vm_dir) == _snapshot(native_dir)
    return native.stdout


CASES = [
    ("hello", []),
    ("printf_float", []),
    ("malloc_realloc", []),
    ("file_io", []),
    ("qsort", []),
    ("argv_exit", ["7", "two words", ""]),
    ("argv_exit", ["300"]),
    ("segv", []),
    ("cpu_loop", ["3"]),
    ("memory_protection", []),
    ("signal_handler", []),
    ("getppid_loop", ["1"]),
    ("unix_sockets", []),
    ("inet_sockets", []),
    # the rv64 programs (links): x86-64's packed epoll_event, SA_RESTART restarts 2 bytes back
    ("waiting_fds", []),
    ("timers_signals", []),
]


@pytest.mark.parametrize(("name", "args"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_program_matches_native(programs: dict[str, Path], tmp_path: Path, name: str, args: list[str]) -> None:
    _compare(programs[name], args, tmp_path)


def test_outputs_are_what_the_programs_promise(programs: dict[str, Path], tmp_path: Path) -> None:
    """Guards the oracle itself: the native runs produced the behaviour the tests rely on."""
    assert b"faults caught 3" in _compare(programs["memory_protection"], [], tmp_path / "a")
    assert b"handler: signo 10" in _compare(programs["signal_handler"], [], tmp_path / "b")
    native = _run([str(programs["segv"])], tmp_path)
    assert native.returncode == -11 and native.stdout == b"about to crash\n"


def test_root_confines_files_to_the_guest_root(programs: dict[str, Path], tmp_path: Path) -> None:
    root, native_dir, cwd = tmp_path / "root", tmp_path / "native", tmp_path / "cwd"
    for directory in (root, native_dir, cwd):
        directory.mkdir()
    native = _run([str(programs["file_io"])], native_dir)
    command = [sys.executable, "-m", "vm_cli", "run", "--accel", "kvm", "--root", str(root), str(programs["file_io"])]
    under_vm = _run(command, cwd)
    assert (under_vm.stdout, under_vm.stderr, under_vm.returncode) == (native.stdout, native.stderr, 0)
    assert _snapshot(root) == _snapshot(native_dir)
    assert _snapshot(cwd) == {}


def test_refused_kvm_is_one_clear_line(
    programs: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from vm_accel.kvm.system import Kvm
    from vm_accel.usermode import runner
    from vm_cli.main import main

    monkeypatch.setattr(runner, "Kvm", lambda _path: Kvm("/nonexistent/kvm"))
    status = main(["run", "--accel", "kvm", str(programs["hello"])])
    err = capsys.readouterr().err.strip().splitlines()
    assert status != 0
    assert len(err) == 1
    assert "accelerator 'kvm' unavailable: /nonexistent/kvm does not exist" in err[0]
    assert "modprobe" in err[0]


def test_accel_none_refuses_x86_64(programs: dict[str, Path], tmp_path: Path) -> None:
    done = _run([sys.executable, "-m", "vm_cli", "run", "--accel", "none", str(programs["hello"])], tmp_path)
    assert done.returncode != 0 and done.stdout == b""
    assert done.stderr.decode().startswith("vm: error:") and "--accel kvm" in done.stderr.decode()


def test_kvm_user_mode_runs_a_process_composed_by_the_composition_root(programs: dict[str, Path], tmp_path: Path) -> None:
    from vm_cli.compose import Plugins, ProgramRequest, compose_program

    out = os.open(tmp_path / "out.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    request = ProgramRequest(
        program=str(programs["argv_exit"]), args=("42",), accel="kvm", envp=("LC_ALL=C",), std_streams=(0, out, 2)
    )
    try:
        with compose_program(Plugins.load(), request) as vm:
            assert vm.accelerator == "kvm" and vm.engine_name == "kvm"
            result = vm.run()
            assert vm.stats["system_calls"] >= 3
    finally:
        os.close(out)
    assert (result.exit_status, result.signal) == (42, None)
    assert (tmp_path / "out.txt").read_text().startswith("argc 2\nargv[1] = '42'\nenvironment entries 1, LC_ALL=C")


def test_a_kvm_process_has_x86_64_linux_layout_and_hwcap(programs: dict[str, Path]) -> None:
    """Registers, layout and AT_HWCAP of a KVM process come from x86-64's registered ArchInfo (and the real CPU)."""
    from vm_accel.kvm.system import Kvm
    from vm_accel.usermode.cpu_setup import guest_hwcap
    from vm_cli.compose import Plugins, ProgramRequest, compose_program
    from vm_translate.x86_64.archinfo import X86_64

    request = ProgramRequest(program=str(programs["hello"]), accel="kvm", envp=())
    with compose_program(Plugins.load(), request) as vm:
        process = vm.process
        assert process.abi.arch is X86_64 and len(vm.cpu.regs) == X86_64.register_count
        assert vm.mem.mmap_base == X86_64.mmap_base and vm.mem.address_limit <= X86_64.user_address_limit
        assert process.stack.sp < X86_64.stack_top == 0x7FFF_FFFF_F000
        assert vm.cpu.regs[X86_64.index("rsp")] == process.stack.sp
        with Kvm("/dev/kvm") as kvm:
            assert process.abi.hwcap == guest_hwcap(kvm.supported_cpuid())
