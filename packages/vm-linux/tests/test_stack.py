"""Initial-stack tests: the bytes parse back to what Linux puts there, and match qemu-riscv64's auxv."""

from __future__ import annotations

import subprocess

import pytest
from vm_linux.elf import EM_RISCV, load_elf
from vm_linux.stack import (
    AT_CLKTCK,
    AT_EGID,
    AT_ENTRY,
    AT_EUID,
    AT_EXECFN,
    AT_FLAGS,
    AT_GID,
    AT_HWCAP,
    AT_MINSIGSTKSZ,
    AT_NULL,
    AT_PAGESZ,
    AT_PHENT,
    AT_PHNUM,
    AT_PLATFORM,
    AT_RANDOM,
    AT_SECURE,
    AT_UID,
    STACK_SIZE,
    build_initial_stack,
    parse_initial_stack,
)
from vm_mem import PROT_READ, PROT_WRITE, AddressSpace
from vm_translate.riscv.archinfo import RV64

STACK_TOP = RV64.stack_top
STACK_BOTTOM = STACK_TOP - STACK_SIZE


ARGV = ["/prog/auxv", "a", "b c", ""]
ENVP = ["A=1", "LONGER=value with spaces", "EMPTY="]


def build(riscv_program):
    path = riscv_program("auxv_probe", "static")
    mem = AddressSpace()
    program = load_elf(mem, str(path), EM_RISCV, limit=STACK_BOTTOM)
    stack = build_initial_stack(
        mem, program, ARGV, ENVP, execfn=str(path), stack_top=STACK_TOP, page_size=4096, hwcap=RV64.hwcap, minsigstksz=1088,
        random_bytes=bytes(range(16)),
    )
    return path, mem, program, stack


def test_hwcap_bits_follow_the_letters() -> None:
    assert RV64.hwcap == 0x112D  # the value qemu-riscv64 and Linux report for rv64gc


def test_stack_parses_back(riscv_program) -> None:
    path, mem, program, stack = build(riscv_program)
    assert stack.sp % 16 == 0
    assert STACK_BOTTOM <= stack.sp < STACK_TOP
    assert (STACK_BOTTOM, STACK_TOP, PROT_READ | PROT_WRITE) in mem.mappings()
    parsed = parse_initial_stack(mem, stack.sp)
    assert parsed.argc == len(ARGV)
    assert parsed.argv == tuple(a.encode() for a in ARGV)
    assert parsed.envp == tuple(e.encode() for e in ENVP)
    assert parsed.auxv[-1] == (AT_NULL, 0)
    assert parsed.aux(AT_ENTRY) == program.entry
    assert parsed.aux(AT_PAGESZ) == 4096
    assert parsed.aux(AT_MINSIGSTKSZ) == 1088
    assert parsed.aux(AT_PLATFORM) is None
    assert mem.read(parsed.aux(AT_RANDOM), 16) == bytes(range(16))
    assert mem.read_cstring(parsed.aux(AT_EXECFN)) == str(path).encode()
    # Linux's string order: argv strings, then envp strings, then execfn, then the zero word at the top
    addrs = list(stack.argv) + list(stack.envp) + [stack.execfn_addr]
    assert addrs == sorted(addrs)
    assert stack.execfn_addr + len(str(path)) + 1 == STACK_TOP - 8
    assert mem.load(STACK_TOP - 8, 8) == 0
    assert parsed.aux(AT_RANDOM) + 16 <= stack.argv[0]


def test_auxv_matches_qemu(riscv_program, qemu: str) -> None:
    path, mem, _program, stack = build(riscv_program)
    run = subprocess.run(
        [qemu, str(path), *ARGV[1:]], env={k.split("=", 1)[0]: k.split("=", 1)[1] for k in ENVP},
        capture_output=True, text=True, check=False,
    )
    assert run.returncode == len(ARGV)
    qemu = dict(line.split("=", 1) for line in run.stdout.splitlines() if "=" in line)
    parsed = parse_initial_stack(mem, stack.sp)
    assert int(qemu["argc"]) == parsed.argc
    assert int(qemu["envc"]) == len(parsed.envp)
    for i, arg in enumerate(ARGV[1:], start=1):
        assert qemu[f"argv[{i}]"] == arg
    for name, key in [
        ("AT_PAGESZ", AT_PAGESZ), ("AT_PHENT", AT_PHENT), ("AT_PHNUM", AT_PHNUM), ("AT_CLKTCK", AT_CLKTCK),
        ("AT_UID", AT_UID), ("AT_EUID", AT_EUID), ("AT_GID", AT_GID), ("AT_EGID", AT_EGID),
        ("AT_SECURE", AT_SECURE), ("AT_FLAGS", AT_FLAGS),
    ]:
        assert int(qemu[name]) == parsed.aux(key), name
    assert int(qemu["AT_HWCAP"], 16) == parsed.aux(AT_HWCAP)
    assert qemu["AT_BASE"] == "0"
    assert qemu["AT_EXECFN"].encode() == mem.read_cstring(parsed.aux(AT_EXECFN))
    assert qemu["AT_PLATFORM"] == "(null)" and parsed.aux(AT_PLATFORM) is None
    assert qemu["AT_RANDOM_set"] == "1" and qemu["sp_aligned"] == "1"


def test_nul_in_argument_is_refused(riscv_program) -> None:
    from vm_core.errors import ConfigurationError

    path = riscv_program("auxv_probe", "static")
    mem = AddressSpace()
    program = load_elf(mem, str(path), EM_RISCV, limit=STACK_BOTTOM)
    with pytest.raises(ConfigurationError, match="NUL"):
        build_initial_stack(mem, program, ["x\0y"], [], execfn="x", stack_top=STACK_TOP, page_size=4096, hwcap=0, minsigstksz=1088)
