"""The initial process stack, laid out exactly as Linux's ``create_elf_tables`` does.

From the top of the stack mapping down (no randomisation, as ``setarch -R``):

* an 8-byte zero word at ``stack_top - 8``;
* the ``AT_EXECFN`` string, then the environment strings, then the argument
  strings (so ``argv[0] < argv[1] < ... < envp[0] < ... < execfn``);
* alignment to 16, then the 16 ``AT_RANDOM`` bytes (riscv64 has no
  ``AT_PLATFORM`` string: its kernel's ``ELF_PLATFORM`` is ``NULL``, and
  qemu-riscv64 agrees);
* ``argc``, the ``argv`` pointers and a NULL, the ``envp`` pointers and a
  NULL, the auxiliary vector (``AT_MINSIGSTKSZ`` first as riscv's
  ``ARCH_DLINFO``, then the generic entries in the kernel's order) ending
  with ``AT_NULL``; ``sp`` points at ``argc`` and is 16-byte aligned.

The stack mapping is :data:`STACK_SIZE` (8 MiB) read-write (and executable
when the program's ``PT_GNU_STACK`` asks for it) ending at the ISA's
``ArchInfo.stack_top``; ``AT_PAGESZ`` is the ISA's page size.
:func:`parse_initial_stack` reads such a stack back (tests, debugging).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from typing import Any

import attrs
from vm_core.errors import ConfigurationError
from vm_mem import PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE

from vm_linux.elf import LoadedProgram

STACK_SIZE = 8 << 20
MAX_ARG_STRLEN = 32 * PAGE_SIZE
CLOCK_TICKS = 100

AT_NULL = 0
AT_PHDR = 3
AT_PHENT = 4
AT_PHNUM = 5
AT_PAGESZ = 6
AT_BASE = 7
AT_FLAGS = 8
AT_ENTRY = 9
AT_UID = 11
AT_EUID = 12
AT_GID = 13
AT_EGID = 14
AT_PLATFORM = 15
AT_HWCAP = 16
AT_CLKTCK = 17
AT_SECURE = 23
AT_RANDOM = 25
AT_EXECFN = 31
AT_MINSIGSTKSZ = 51


@attrs.frozen
class InitialStack:
    """Where things went: ``sp`` (points at argc) and the addresses the auxv refers to."""

    sp: int
    argv: tuple[int, ...]
    envp: tuple[int, ...]
    auxv: tuple[tuple[int, int], ...]
    random_addr: int
    execfn_addr: int


@attrs.frozen
class ExecImage:
    """What ``execve`` left that /proc shows: the loaded program, its initial stack, the task name."""

    program: LoadedProgram
    stack: InitialStack
    comm: str


@attrs.frozen
class ParsedStack:
    """An initial stack read back from guest memory."""

    argc: int
    argv: tuple[bytes, ...]
    envp: tuple[bytes, ...]
    auxv: tuple[tuple[int, int], ...]

    def aux(self, key: int) -> int | None:
        """The value of auxv entry ``key``, or None when absent."""
        for k, v in self.auxv:
            if k == key:
                return v
        return None


def _encode_all(what: str, items: Sequence[str | bytes]) -> list[bytes]:
    out = []
    for item in items:
        raw = os.fsencode(item)
        if b"\0" in raw:
            raise ConfigurationError(f"{what} string {item!r} contains a NUL byte")
        if len(raw) + 1 > MAX_ARG_STRLEN:
            raise ConfigurationError(f"{what} string of {len(raw)} bytes is longer than Linux allows")
        out.append(raw + b"\0")
    return out


def build_initial_stack(
    mem: Any,
    program: LoadedProgram,
    argv: Sequence[str | bytes],
    envp: Sequence[str | bytes],
    *,
    execfn: str | bytes,
    stack_top: int,
    page_size: int,
    hwcap: int,
    minsigstksz: int,
    random_bytes: bytes | None = None,
) -> InitialStack:
    """Map the stack and write argc/argv/envp/auxv and their strings; return the layout."""
    arg_strings = _encode_all("argument", argv)
    env_strings = _encode_all("environment", envp)
    (execfn_bytes,) = _encode_all("program path", [execfn])
    strings_size = sum(map(len, arg_strings)) + sum(map(len, env_strings)) + len(execfn_bytes)
    if strings_size > STACK_SIZE // 4:
        raise ConfigurationError(
            f"arguments and environment take {strings_size} bytes; Linux allows at most {STACK_SIZE // 4}"
        )
    prot = PROT_READ | PROT_WRITE | (PROT_EXEC if program.executable_stack else 0)
    mem.map(stack_top - STACK_SIZE, STACK_SIZE, prot)

    p = stack_top - 8
    p -= len(execfn_bytes)
    execfn_addr = p
    mem.write(p, execfn_bytes)
    p -= sum(map(len, env_strings)) + sum(map(len, arg_strings))
    cursor = p
    argv_addrs: list[int] = []
    envp_addrs: list[int] = []
    for addrs, strings in ((argv_addrs, arg_strings), (envp_addrs, env_strings)):
        for raw in strings:
            addrs.append(cursor)
            mem.write(cursor, raw)
            cursor += len(raw)
    p &= ~15
    p -= 16
    random_addr = p
    mem.write(random_addr, random_bytes if random_bytes is not None else os.urandom(16))

    auxv: list[tuple[int, int]] = [
        (AT_MINSIGSTKSZ, minsigstksz),
        (AT_HWCAP, hwcap),
        (AT_PAGESZ, page_size),
        (AT_CLKTCK, CLOCK_TICKS),
        (AT_PHDR, program.phdr_addr),
        (AT_PHENT, program.phent),
        (AT_PHNUM, program.phnum),
        (AT_BASE, 0),
        (AT_FLAGS, 0),
        (AT_ENTRY, program.entry),
        (AT_UID, os.getuid()),
        (AT_EUID, os.geteuid()),
        (AT_GID, os.getgid()),
        (AT_EGID, os.getegid()),
        (AT_SECURE, 0),
        (AT_RANDOM, random_addr),
        (AT_EXECFN, execfn_addr),
        (AT_NULL, 0),
    ]
    words = [len(argv_addrs), *argv_addrs, 0, *envp_addrs, 0]
    for key, value in auxv:
        words += [key, value]
    sp = (p - len(words) * 8) & ~15
    mem.write(sp, struct.pack(f"<{len(words)}Q", *words))
    return InitialStack(
        sp=sp,
        argv=tuple(argv_addrs),
        envp=tuple(envp_addrs),
        auxv=tuple(auxv),
        random_addr=random_addr,
        execfn_addr=execfn_addr,
    )


def parse_initial_stack(mem: Any, sp: int) -> ParsedStack:
    """Read argc, argv, envp and the auxiliary vector back from the stack at ``sp``."""
    argc = mem.load(sp, 8)
    addr = sp + 8
    argv = []
    for _ in range(argc):
        argv.append(mem.read_cstring(mem.load(addr, 8)))
        addr += 8
    addr += 8  # the NULL after argv
    envp = []
    while (ptr := mem.load(addr, 8)) != 0:
        envp.append(mem.read_cstring(ptr))
        addr += 8
    addr += 8
    auxv = []
    while True:
        key, value = mem.load(addr, 8), mem.load(addr + 8, 8)
        auxv.append((key, value))
        addr += 16
        if key == AT_NULL:
            break
    return ParsedStack(argc=argc, argv=tuple(argv), envp=tuple(envp), auxv=tuple(auxv))
