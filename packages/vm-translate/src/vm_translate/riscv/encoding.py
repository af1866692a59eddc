"""Instruction encoders for the RISC-V base formats (R, R4, I, S, B, U, J), and sign extension.

The compressed-instruction expander builds 32-bit words with these, and the
tests use them to generate instruction words; they are the inverse of the
field extraction in :mod:`vm_translate.riscv.decoder`. Immediates are
Python ints (negative allowed) and are truncated to the field width.
:func:`sign_extend` reads a field back as a signed number (the decoder's
and the expander's immediates).
"""

from __future__ import annotations


def sign_extend(value: int, bits: int) -> int:
    """Interpret the low ``bits`` of ``value`` as a two's complement number."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


def enc_r(opcode: int, rd: int, funct3: int, rs1: int, rs2: int, funct7: int) -> int:
    """An R-type word."""
    return (funct7 << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode


def enc_r4(opcode: int, rd: int, funct3: int, rs1: int, rs2: int, funct2: int, rs3: int) -> int:
    """An R4-type word (fused multiply-add)."""
    return (rs3 << 27) | (funct2 << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode


def enc_i(opcode: int, rd: int, funct3: int, rs1: int, imm: int) -> int:
    """An I-type word (12-bit immediate)."""
    return ((imm & 0xFFF) << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode


def enc_s(opcode: int, funct3: int, rs1: int, rs2: int, imm: int) -> int:
    """An S-type word (12-bit store offset)."""
    imm &= 0xFFF
    return ((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | ((imm & 31) << 7) | opcode


def enc_b(opcode: int, funct3: int, rs1: int, rs2: int, imm: int) -> int:
    """A B-type word (13-bit even branch offset)."""
    imm &= 0x1FFF
    return (
        (((imm >> 12) & 1) << 31)
        | (((imm >> 5) & 0x3F) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (funct3 << 12)
        | (((imm >> 1) & 0xF) << 8)
        | (((imm >> 11) & 1) << 7)
        | opcode
    )


def enc_u(opcode: int, rd: int, imm: int) -> int:
    """A U-type word; ``imm`` is the value of the upper 20 bits (not shifted)."""
    return ((imm & 0xFFFFF) << 12) | (rd << 7) | opcode


def enc_j(opcode: int, rd: int, imm: int) -> int:
    """A J-type word (21-bit even jump offset)."""
    imm &= 0x1FFFFF
    return (
        (((imm >> 20) & 1) << 31)
        | (((imm >> 1) & 0x3FF) << 21)
        | (((imm >> 11) & 1) << 20)
        | (((imm >> 12) & 0xFF) << 12)
        | (rd << 7)
        | opcode
    )
