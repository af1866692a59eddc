"""An out-of-tree plugin, installed from outside the packages, has every registration honoured by ``vm run``.

``examples/plugin-example`` (distribution ``vm-example-plugin``) is installed
into a temporary directory (``pip``/``uv`` ``--target``; CI may hand a wheel
it built through ``$VM_EXAMPLE_PLUGIN_WHEEL``) that only the ``vm`` processes
started here see, through ``PYTHONPATH``. The tests write tiny ELF files byte
by byte and check that

* the toy64 ISA it adds runs: its front end, its Linux ABI, vm's engines;
* its override of riscv64's ``getpid`` is what a riscv64 guest gets;
* its machine-event observer sees the run's lifecycle;
* ``VM_PLUGINS`` without it leaves it out: none of the three happens.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "plugin-example"
WHEEL_ENV = "VM_EXAMPLE_PLUGIN_WHEEL"
BUILT_INS = "mem,translate,jit,gc,accel,linux,cli"

EM_RISCV, EM_TOY64 = 243, 0x7A64
BASE, HEADERS = 0x10000, 64 + 56
EXAMPLE_PID = 4242
MESSAGE = b"hello from toy64\n"


def elf_file(machine: int, code: bytes) -> bytes:
    """A static ELF64 executable for ``machine``: one R+X segment holding the headers and ``code``."""
    size = HEADERS + len(code)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, BASE + HEADERS, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    segment = struct.pack("<IIQQQQQQ", 1, 5, 0, BASE, BASE, size, size, 0x1000)
    return header + segment + code


def toy64(*program: tuple[object, ...]) -> bytes:
    """toy64 machine code (``li rd, imm`` 10 bytes, ``add rd, rs1, rs2`` 4, ``syscall`` 2)."""
    out = bytearray()
    for name, *ops in program:
        values = [int(v) for v in ops]  # type: ignore[call-overload]
        if name == "li":
            out += bytes([1, values[0]]) + values[1].to_bytes(8, "little")
        elif name == "add":
            out += bytes([2, *values])
        else:
            out += bytes([3, 0])
    return bytes(out)


def toy64_hello() -> bytes:
    """write(1, MESSAGE, len) then exit(40 + 2), in toy64 (r0 = number, r1.. = arguments)."""

    def code(message_at: int) -> bytes:
        return toy64(
            ("li", 0, 64), ("li", 1, 1), ("li", 2, message_at), ("li", 3, len(MESSAGE)), ("syscall",),
            ("li", 4, 40), ("li", 5, 2), ("add", 1, 4, 5), ("li", 0, 93), ("syscall",),
        )

    return elf_file(EM_TOY64, code(BASE + HEADERS + len(code(0))) + MESSAGE)


def riscv64_exit_with_getpid() -> bytes:
    """Exits with status 1 when ``getpid()`` answers the example plugin's 4242, else 0 (hand-assembled RV64I)."""

    def addi(rd: int, rs1: int, imm: int, funct3: int = 0) -> int:
        return (imm & 0xFFF) << 20 | rs1 << 15 | funct3 << 12 | rd << 7 | 0x13

    a0, a7, t0, ecall = 10, 17, 5, 0x73
    words = [
        addi(a7, 0, 172), ecall,  # a0 = getpid()
        1 << 12 | t0 << 7 | 0x37, addi(t0, t0, EXAMPLE_PID - 4096),  # t0 = 4242 (lui, addi)
        0x20 << 25 | t0 << 20 | a0 << 15 | a0 << 7 | 0x33,  # sub a0, a0, t0
        addi(a0, a0, 1, funct3=3),  # sltiu a0, a0, 1: a0 = (a0 == 0)
        addi(a7, 0, 93), ecall,  # exit(a0)
    ]
    return elf_file(EM_RISCV, b"".join(w.to_bytes(4, "little") for w in words))


def _installer() -> list[str] | None:
    uv = shutil.which("uv")
    if uv is not None:
        return [uv, "pip", "install", "--quiet", "--no-deps", "--python", sys.executable]
    probe = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
    return None


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the installed example plugin (its package and its .dist-info)."""
    installer = _installer()
    if installer is None:
        if os.environ.get("CI") == "true":
            pytest.fail("neither uv nor pip is available to install examples/plugin-example")
        pytest.skip("neither uv nor pip is available to install examples/plugin-example")
    work = tmp_path_factory.mktemp("example-plugin")
    source = os.environ.get(WHEEL_ENV) or str(shutil.copytree(EXAMPLE, work / "source"))  # builds stay out of the repo
    target = work / "site"
    subprocess.run([*installer, "--target", str(target), source], check=True, timeout=120)
    assert (target / "vm_example_plugin").is_dir()
    return target


def _vm(plugin_path: Path, tmp_path: Path, *args: str, plugins: str | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "VM_HOME": str(tmp_path / "home"),
        "VM_EXAMPLE_EVENTS": str(tmp_path / "events.jsonl"),
    }
    env.pop("VM_PLUGINS", None)
    if plugins is not None:
        env["VM_PLUGINS"] = plugins
    return subprocess.run([sys.executable, "-m", "vm_cli", *args], capture_output=True, env=env, timeout=120, check=False)


def _program(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    path.chmod(0o755)
    return str(path)


def _events(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("engine", ["interp", "python", "auto"])
def test_vm_run_runs_a_program_of_the_plugins_toy_isa(plugin_path: Path, tmp_path: Path, engine: str) -> None:
    program = _program(tmp_path, "hello.toy64", toy64_hello())
    done = _vm(plugin_path, tmp_path, "run", "--engine", engine, "--stats", program)
    assert (done.returncode, done.stdout) == (42, MESSAGE), done.stderr.decode()
    assert b"vm: instructions retired 10" in done.stderr


def test_the_plugins_getpid_override_is_what_a_riscv64_guest_gets(plugin_path: Path, tmp_path: Path) -> None:
    program = _program(tmp_path, "getpid.rv64", riscv64_exit_with_getpid())
    done = _vm(plugin_path, tmp_path, "run", program)
    assert done.returncode == 1, done.stderr.decode()


def test_the_plugins_observer_sees_the_lifecycle_of_the_run(plugin_path: Path, tmp_path: Path) -> None:
    program = _program(tmp_path, "hello.toy64", toy64_hello())
    assert _vm(plugin_path, tmp_path, "run", "--engine", "interp", program).returncode == 42
    events = _events(tmp_path)
    assert [e["event"] for e in events] == ["created", "started", "exited"]
    assert len({e["vm"] for e in events}) == 1
    assert events[0]["isa"] == "toy64" and events[0]["engine"] == "interp" and events[0]["program"] == program
    assert (events[-1]["exit_status"], events[-1]["signal"], events[-1]["instructions"]) == (42, None, 10)


def test_vm_plugins_lists_what_the_plugin_registered(plugin_path: Path, tmp_path: Path) -> None:
    done = _vm(plugin_path, tmp_path, "plugins", "--json")
    data = json.loads(done.stdout)
    assert "example" in data["plugins"]
    parts = {(p["kind"], p["name"]) for p in data["parts"]}
    assert {("isa", "toy64"), ("syscalls", "linux/toy64"), ("syscall", "linux/riscv64/getpid")} <= parts


def test_the_allow_list_leaves_the_plugin_out(plugin_path: Path, tmp_path: Path) -> None:
    toy = _program(tmp_path, "hello.toy64", toy64_hello())
    refused = _vm(plugin_path, tmp_path, "run", toy, plugins=BUILT_INS)
    assert refused.returncode != 0 and refused.stdout == b""
    assert refused.stderr.decode().startswith("vm: error:") and "31332" in refused.stderr.decode()  # 0x7a64
    getpid = _program(tmp_path, "getpid.rv64", riscv64_exit_with_getpid())
    assert _vm(plugin_path, tmp_path, "run", getpid, plugins=BUILT_INS).returncode == 0  # vm-linux's own getpid
    assert _events(tmp_path) == []
    admitted = _vm(plugin_path, tmp_path, "run", toy, plugins=f"{BUILT_INS},example")
    assert (admitted.returncode, admitted.stdout) == (42, MESSAGE)
