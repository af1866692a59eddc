"""The tiny CPL 0 kernel of a long-mode vCPU, as hand-assembled x86-64 machine code.

Guest ring-0 code may be emulated instruction by instruction by the host
(KVM-PVM does), so these stubs are a handful of instructions each::

    enter_user:                 ; rcx = user rip, r11 = user rflags
        sysretq                 ; 48 0f 07
    syscall_entry:              ; LSTAR; rcx/r11 hold the user rip/rflags
        out  HYPERCALL, al      ; e6 HP   (the host handles the system call)
        sysretq                 ; 48 0f 07
    exception_common:           ; [rsp] = vector, [rsp+8] = error code, then the CPU's frame
        out  EXCEPTION, al      ; e6 EP   (the host reads the frame)
        add  rsp, 16            ; 48 83 c4 10
        iretq                   ; 48 cf
    vector_N:                   ; one per exception vector 0..31, 16 bytes apart
        push 0                  ; 6a 00   (only where the CPU pushes no error code)
        push N                  ; 6a NN
        jmp  exception_common   ; eb rel8, or e9 rel32 when out of reach

:func:`gnu_as_source` gives the same program as GNU assembler input; the
tests assemble it with ``as --64`` and compare the bytes.
"""

from __future__ import annotations

import struct

import attrs

EXCEPTION_VECTORS = 32
ERROR_CODE_VECTORS = frozenset({8, 10, 11, 12, 13, 14, 17, 21, 29, 30})
SYSRETQ = b"\x48\x0f\x07"
IRETQ = b"\x48\xcf"
ENTER_USER_OFFSET = 0x00
SYSCALL_ENTRY_OFFSET = 0x10
EXCEPTION_COMMON_OFFSET = 0x20
VECTOR_STUBS_OFFSET = 0x40
VECTOR_STUB_SIZE = 16
CODE_SIZE = VECTOR_STUBS_OFFSET + EXCEPTION_VECTORS * VECTOR_STUB_SIZE


@attrs.frozen
class KernelStubs:
    """The assembled stubs and the guest addresses of their entry points."""

    image: bytes
    enter_user: int
    syscall_entry: int
    exception_stubs: int
    vector_entries: tuple[int, ...]


def _out_imm8(port: int) -> bytes:
    return bytes((0xE6, port))


def assemble(base: int, hypercall_port: int, exception_port: int) -> KernelStubs:
    """The stub code for load address ``base``."""
    image = bytearray(b"\xcc" * CODE_SIZE)  # int3 padding
    image[ENTER_USER_OFFSET : ENTER_USER_OFFSET + 3] = SYSRETQ
    image[SYSCALL_ENTRY_OFFSET : SYSCALL_ENTRY_OFFSET + 5] = _out_imm8(hypercall_port) + SYSRETQ
    common = _out_imm8(exception_port) + b"\x48\x83\xc4\x10" + IRETQ
    image[EXCEPTION_COMMON_OFFSET : EXCEPTION_COMMON_OFFSET + len(common)] = common
    entries = []
    for vector in range(EXCEPTION_VECTORS):
        start = VECTOR_STUBS_OFFSET + vector * VECTOR_STUB_SIZE
        stub = b"" if vector in ERROR_CODE_VECTORS else b"\x6a\x00"
        stub += bytes((0x6A, vector))
        short = EXCEPTION_COMMON_OFFSET - (start + len(stub) + 2)
        if -128 <= short:
            stub += b"\xeb" + struct.pack("<b", short)
        else:
            stub += b"\xe9" + struct.pack("<i", EXCEPTION_COMMON_OFFSET - (start + len(stub) + 5))
        image[start : start + len(stub)] = stub
        entries.append(base + start)
    return KernelStubs(
        image=bytes(image),
        enter_user=base + ENTER_USER_OFFSET,
        syscall_entry=base + SYSCALL_ENTRY_OFFSET,
        exception_stubs=base + VECTOR_STUBS_OFFSET,
        vector_entries=tuple(entries),
    )


def gnu_as_source(hypercall_port: int, exception_port: int) -> str:
    """The same stubs as GNU ``as --64`` input (Intel syntax), padded the same way."""

    def pad_to(offset: int) -> str:
        return f"    .fill {offset} - (. - start), 1, 0xcc\n"

    lines = [".intel_syntax noprefix\n", ".text\n", "start:\n", "    sysretq\n", pad_to(SYSCALL_ENTRY_OFFSET)]
    lines += [f"    out {hypercall_port:#x}, al\n", "    sysretq\n", pad_to(EXCEPTION_COMMON_OFFSET)]
    lines += ["common:\n", f"    out {exception_port:#x}, al\n", "    add rsp, 16\n", "    iretq\n"]
    for vector in range(EXCEPTION_VECTORS):
        lines.append(pad_to(VECTOR_STUBS_OFFSET + vector * VECTOR_STUB_SIZE))
        if vector not in ERROR_CODE_VECTORS:
            lines.append("    push 0\n")
        lines += [f"    push {vector}\n", "    jmp common\n"]
    lines.append(pad_to(CODE_SIZE))
    return "".join(lines)
