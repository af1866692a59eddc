"""Hand-assembled x86 guest programs for the KVM tests, each with its GNU assembler source.

``test_programs.py`` assembles every ``source`` with ``as`` and checks the
bytes, so the encodings here are checked by an assembler we did not write.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class GuestProgram:
    name: str
    bits: int  # 16 or 64
    source: str  # GNU as, Intel syntax, without directives
    code: bytes


def _program(name: str, bits: int, source: str, code: str) -> GuestProgram:
    return GuestProgram(name, bits, source.strip() + "\n", bytes.fromhex(code.replace(" ", "")))


REAL_MODE_OUT_HLT = _program(
    "real_mode_out_hlt",
    16,
    """
    mov al, 0x42
    mov dx, 0x3f8
    out dx, al
    mov bx, 0x1234
    hlt
    """,
    "b0 42 ba f8 03 ee bb 34 12 f4",
)

REAL_MODE_IN = _program(
    "real_mode_in",
    16,
    """
    mov dx, 0x60
    in al, dx
    mov bl, al
    in ax, dx
    mov cx, ax
    hlt
    """,
    "ba 60 00 ec 88 c3 ed 89 c1 f4",
)

# "hello" is stored at 0x1100 by the test; ds = 0.
REAL_MODE_REP_OUTSB = _program(
    "real_mode_rep_outsb",
    16,
    """
    mov si, 0x1100
    mov cx, 5
    mov dx, 0x3f8
    rep outsb
    hlt
    """,
    "be 00 11 b9 05 00 ba f8 03 f3 6e f4",
)

# ds = 0x2000: stores to 0x20010 and loads from 0x20020, outside RAM.
REAL_MODE_MMIO = _program(
    "real_mode_mmio",
    16,
    """
    mov ax, 0x2000
    mov ds, ax
    mov dword ptr [0x10], 0xdeadbeef
    mov eax, dword ptr [0x20]
    hlt
    """,
    "b8 00 20 8e d8 66 c7 06 10 00 ef be ad de 66 a1 20 00 f4",
)

# With an empty IDT the #UD cannot be delivered: #GP, then #DF, then a triple fault.
REAL_MODE_UD2 = _program("real_mode_ud2", 16, "ud2", "0f 0b")

REAL_MODE_SPIN = _program("real_mode_spin", 16, "spin: jmp spin", "eb fe")

# CPL 0, 64-bit: rax = 1 + 2 + ... + 100, reported with `out 0x80, eax`.
LONG_MODE_SUM = _program(
    "long_mode_sum",
    64,
    """
    xor eax, eax
    mov ecx, 100
    again:
    add rax, rcx
    dec ecx
    jnz again
    out 0x80, eax
    hlt
    """,
    "31 c0 b9 64 00 00 00 48 01 c8 ff c9 75 f9 e7 80 f4",
)


def user_sum_loop(iterations: int) -> GuestProgram:
    """CPL 3: rdi = 1 + ... + iterations, then exit(rdi) through `syscall` (rax = 60)."""
    return _program(
        f"user_sum_loop_{iterations}",
        64,
        f"""
        mov ecx, {iterations}
        xor eax, eax
        again:
        add rax, rcx
        dec rcx
        jnz again
        mov rdi, rax
        mov eax, 60
        syscall
        """,
        "b9" + iterations.to_bytes(4, "little").hex() + "31 c0 48 01 c8 48 ff c9 75 f8 48 89 c7 b8 3c 00 00 00 0f 05",
    )


# CPL 3: a load from 1 GiB, just past the identity map: #PF, error code 4 (user read, not present).
USER_PAGE_FAULT = _program("user_page_fault", 64, "mov rax, qword ptr [0x40000000]", "48 8b 04 25 00 00 00 40")

# CPL 3 arithmetic compared with Unicorn; inputs in rdi, rsi, rdx, r8, r9 (not rcx/r11: sysret uses them).
USER_ARITHMETIC = _program(
    "user_arithmetic",
    64,
    """
    mov rax, rdi
    imul rax, rsi
    add rax, rdx
    mov rbx, rax
    shr rbx, 7
    xor rax, rbx
    ror rax, 13
    sub rax, r8
    rol r9, 5
    add rax, r9
    lea rdx, [rax + 2*rdi + 0x1234]
    bswap rbx
    adc rbx, rsi
    syscall
    """,
    "48 89 f8 48 0f af c6 48 01 d0 48 89 c3 48 c1 eb 07 48 31 d8 48 c1 c8 0d 4c 29 c0 49 c1 c1 05 "
    "4c 01 c8 48 8d 94 78 34 12 00 00 48 0f cb 48 11 f3 0f 05",
)

USER_SPIN = _program("user_spin", 64, "spin: jmp spin", "eb fe")

ALL_PROGRAMS = (
    REAL_MODE_OUT_HLT,
    REAL_MODE_IN,
    REAL_MODE_REP_OUTSB,
    REAL_MODE_MMIO,
    REAL_MODE_UD2,
    REAL_MODE_SPIN,
    LONG_MODE_SUM,
    user_sum_loop(1000),
    USER_PAGE_FAULT,
    USER_ARITHMETIC,
    USER_SPIN,
)
