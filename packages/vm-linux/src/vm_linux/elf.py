"""Loading static ELF programs into a guest address space, the way Linux's binfmt_elf does.

:func:`load_elf` reads a 64-bit little-endian ELF executable (``ET_EXEC``,
or ``ET_DYN`` for static-pie) with pyelftools, checks that it is for the
caller's machine, and maps every ``PT_LOAD`` segment with the protections of
its ``p_flags``. Pages are filled from the file starting at the page-aligned
file offset (so two segments sharing a page see each other's bytes, as with
Linux's file mappings); the bytes from ``p_filesz`` to ``p_memsz`` (bss) are
zero. The program break starts after the highest segment.

Static-pie programs (``ET_DYN`` without ``PT_INTERP``) are loaded at
:data:`STATIC_PIE_BASE` = 0x2aaaaaa000, riscv64's ``ELF_ET_DYN_BASE`` for a
39-bit (Sv39) user address space, ``(2/3) * 2**38`` rounded down to a page,
without randomisation (as with ``setarch -R``). Dynamically linked programs
(``PT_INTERP``) are refused: only static programs are supported. ``PT_TLS``
needs nothing from the loader; glibc sets up its thread pointer itself.

Every failure is a :class:`vm_core.errors.VmError`: a missing file is
:class:`~vm_core.errors.NotFoundError`; unreadable, non-regular, malformed or
wrong-machine files are :class:`~vm_core.errors.BadProgramError`.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from typing import Any

import attrs
from elftools.common.exceptions import ELFError, ELFParseError
from elftools.elf.elffile import ELFFile
from vm_core.errors import BadProgramError, NotFoundError, UnsupportedError
from vm_core.logging import get_logger
from vm_mem import PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE

log = get_logger("vm_linux.elf")

EM_RISCV = 243
EM_X86_64 = 62
STATIC_PIE_BASE = 0x2A_AAAA_A000
ELF64_PHDR_SIZE = 56
PF_X, PF_W, PF_R = 1, 2, 4
# The emulated address space is backed eagerly by host memory; refuse images above this size.
MAX_IMAGE_BYTES = 1 << 30
_MACHINE_NAMES = {EM_RISCV: "RISC-V", EM_X86_64: "x86-64", 183: "AArch64", 3: "x86", 40: "ARM"}


@attrs.frozen
class LoadedSegment:
    """One mapped ``PT_LOAD`` segment: guest ``[start, end)`` page range and ``PROT_*`` bits."""

    start: int
    end: int
    prot: int
    vaddr: int
    memsz: int
    filesz: int
    offset: int = 0  # file offset of ``start`` (page-aligned ``p_offset``): /proc/self/maps shows it


@attrs.frozen
class LoadedProgram:
    """What the loader mapped and what the initial stack needs to describe it (auxv)."""

    path: str
    entry: int
    load_bias: int
    phdr_addr: int
    phent: int
    phnum: int
    brk_start: int
    segments: tuple[LoadedSegment, ...]
    is_pie: bool
    executable_stack: bool


def segment_prot(p_flags: int) -> int:
    """The ``PROT_*`` bits for an ELF segment's ``PF_*`` flags."""
    prot = 0
    if p_flags & PF_R:
        prot |= PROT_READ
    if p_flags & PF_W:
        prot |= PROT_WRITE
    if p_flags & PF_X:
        prot |= PROT_EXEC
    return prot


def read_program_file(path: str) -> bytes:
    """The bytes of the program at host ``path``; the errors say exactly why it cannot be read."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NotFoundError(f"program not found: {path}") from None
    except NotADirectoryError:
        raise NotFoundError(f"program not found: {path} (a path component is not a directory)") from None
    except OSError as exc:
        raise BadProgramError(f"cannot access program {path}: {os.strerror(exc.errno or 0)}") from None
    if stat.S_ISDIR(st.st_mode):
        raise BadProgramError(f"cannot run {path}: it is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise BadProgramError(f"cannot run {path}: not a regular file")
    if not st.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH):
        raise BadProgramError(f"cannot run {path}: permission denied (no execute permission)")
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except PermissionError:
        raise BadProgramError(f"cannot run {path}: permission denied") from None
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise BadProgramError(f"cannot read program {path}: {reason}") from None


def _bad(path: str, why: str) -> BadProgramError:
    return BadProgramError(f"{path}: {why}")


def _check_header(path: str, data: bytes, machine: int) -> None:
    if len(data) < 64 or data[:4] != b"\x7fELF":
        raise _bad(path, "not an ELF file")
    if data[4] != 2:
        raise _bad(path, "not a 64-bit ELF file (ELFCLASS64 required)")
    if data[5] != 1:
        raise _bad(path, "not a little-endian ELF file")
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    if e_machine != machine:
        got = _MACHINE_NAMES.get(e_machine, f"machine {e_machine}")
        want = _MACHINE_NAMES.get(machine, f"machine {machine}")
        raise _bad(path, f"ELF file is for {got}, not {want}")
    if e_type not in (2, 3):
        raise _bad(path, "not an executable ELF file (ET_EXEC or ET_DYN required)")


def _program_headers(path: str, data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ELF header and program headers as plain dicts; parse errors become BadProgramError."""
    try:
        elf = ELFFile(io.BytesIO(data))
        header = dict(elf.header)
        if header["e_phentsize"] != ELF64_PHDR_SIZE:
            raise _bad(path, f"unexpected program header size {header['e_phentsize']}")
        if header["e_phnum"] == 0:
            raise _bad(path, "no program headers")
        if header["e_phoff"] + header["e_phnum"] * ELF64_PHDR_SIZE > len(data):
            raise _bad(path, "program headers extend past the end of the file (truncated?)")
        phdrs = [dict(elf.get_segment(i).header) for i in range(header["e_phnum"])]
    except BadProgramError:
        raise
    except (ELFError, ELFParseError, struct.error, ValueError, KeyError, IndexError, TypeError) as exc:
        raise _bad(path, f"malformed ELF file ({exc})") from None
    except Exception as exc:  # construct raises its own hierarchy for truncated data
        raise _bad(path, f"malformed ELF file ({type(exc).__name__}: {exc})") from None
    return header, phdrs


def _p_type(ph: dict[str, Any]) -> str:
    kind = ph["p_type"]
    return kind if isinstance(kind, str) else f"0x{kind:x}"


def _validate_loads(path: str, data: bytes, loads: list[dict[str, Any]], bias: int, limit: int) -> None:
    total = 0
    for ph in loads:
        vaddr, memsz, filesz, offset = ph["p_vaddr"], ph["p_memsz"], ph["p_filesz"], ph["p_offset"]
        if filesz > memsz:
            raise _bad(path, f"segment at {vaddr:#x} has p_filesz larger than p_memsz")
        if offset + filesz > len(data):
            raise _bad(path, f"segment at {vaddr:#x} extends past the end of the file (truncated?)")
        if (vaddr - offset) % PAGE_SIZE:
            raise _bad(path, f"segment at {vaddr:#x} is not congruent to its file offset modulo the page size")
        start = bias + vaddr
        if memsz and (start < PAGE_SIZE or start + memsz > limit):
            raise _bad(path, f"segment at {start:#x}+{memsz:#x} lies outside the user address space")
        total += memsz
    if total > MAX_IMAGE_BYTES:
        raise UnsupportedError(
            f"{path}: program image of {total} bytes is larger than vm supports ({MAX_IMAGE_BYTES} bytes)"
        )


def _map_segment(mem: Any, data: bytes, ph: dict[str, Any], bias: int) -> LoadedSegment:
    vaddr, memsz, filesz, offset = ph["p_vaddr"] + bias, ph["p_memsz"], ph["p_filesz"], ph["p_offset"]
    prot = segment_prot(ph["p_flags"])
    start = vaddr & ~(PAGE_SIZE - 1)
    end = (vaddr + memsz + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    lead = vaddr - start
    file_end = offset + filesz
    if memsz == filesz:  # a pure file mapping shows the file's bytes up to the end of the last page
        file_end = min(len(data), offset - lead + ((lead + filesz + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)))
    content = data[offset - lead : file_end]
    file_pages = (len(content) + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    if file_pages:
        mem.map(start, file_pages, prot, content)
    if start + file_pages < end:
        mem.map(start + file_pages, end - start - file_pages, prot)
    log.debug("segment", start=hex(start), end=hex(end), prot=prot, filesz=filesz, memsz=memsz)
    return LoadedSegment(
        start=start, end=end, prot=prot, vaddr=vaddr, memsz=memsz, filesz=filesz, offset=offset - lead
    )


def load_elf(mem: Any, path: str, machine: int, *, limit: int, data: bytes | None = None) -> LoadedProgram:
    """Map the static ELF program at host ``path`` into ``mem`` and set its program break.

    ``machine`` is the expected ``e_machine``; ``limit`` is one past the
    highest guest address a segment may use (the initial stack lives above).
    ``data`` may hold the file's bytes already read.
    """
    if data is None:
        data = read_program_file(path)
    _check_header(path, data, machine)
    header, phdrs = _program_headers(path, data)
    if any(_p_type(ph) == "PT_INTERP" for ph in phdrs):
        raise UnsupportedError(
            f"{path} is dynamically linked (has PT_INTERP); only static programs are supported",
            hint="link it with -static",
        )
    loads = [ph for ph in phdrs if _p_type(ph) == "PT_LOAD" and ph["p_memsz"] > 0]
    if not loads:
        raise _bad(path, "no loadable segments")
    is_pie = header["e_type"] == "ET_DYN"
    first_page = min(ph["p_vaddr"] for ph in loads) & ~(PAGE_SIZE - 1)
    bias = STATIC_PIE_BASE - first_page if is_pie else 0
    _validate_loads(path, data, loads, bias, limit)
    segments = tuple(_map_segment(mem, data, ph, bias) for ph in loads)
    phdr_addr = _phdr_address(header, phdrs, loads, bias)
    brk = max(bias + ph["p_vaddr"] + ph["p_memsz"] for ph in loads)
    mem.set_brk_base(brk)
    stack_flags = [ph["p_flags"] for ph in phdrs if _p_type(ph) == "PT_GNU_STACK"]
    program = LoadedProgram(
        path=path,
        entry=header["e_entry"] + bias,
        load_bias=bias,
        phdr_addr=phdr_addr,
        phent=header["e_phentsize"],
        phnum=header["e_phnum"],
        brk_start=mem.brk_start,
        segments=segments,
        is_pie=is_pie,
        executable_stack=bool(stack_flags and stack_flags[0] & PF_X),
    )
    log.info("loaded", path=path, entry=hex(program.entry), bias=hex(bias), segments=len(segments))
    return program


def _phdr_address(header: dict[str, Any], phdrs: list[dict[str, Any]], loads: list[dict[str, Any]], bias: int) -> int:
    """AT_PHDR: where the program headers are in guest memory (PT_PHDR, else the load that holds them)."""
    for ph in phdrs:
        if _p_type(ph) == "PT_PHDR":
            return int(ph["p_vaddr"]) + bias
    phoff = header["e_phoff"]
    for ph in loads:
        if ph["p_offset"] <= phoff < ph["p_offset"] + ph["p_filesz"]:
            return int(ph["p_vaddr"] + (phoff - ph["p_offset"])) + bias
    return 0

