"""The RISC-V decoder against GNU binutils, and decoder robustness.

* Any 32-bit and any 16-bit word either decodes or raises
  :class:`vm_core.errors.IllegalInstruction` (hypothesis over the full
  32-bit range; all 65536 16-bit words exhaustively).
* Every 16-bit word is disassembled by ``riscv64-linux-gnu-objdump``; the
  decoder must name exactly the words objdump names, with the same mnemonic
  (modulo aliases), except the encodings the ISA manual reserves that objdump
  still prints.
* Random words of every row of every table (F and D included) and random
  32-bit words are disassembled by objdump; the names must agree.
* A ``.S`` fixture covering every I, M, A, C, Zicsr and Zifencei instruction
  is assembled with ``riscv64-linux-gnu-as``; each assembled word must decode
  to the mnemonic written in the source.
* The table framework rejects overlapping rows.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_core.errors import ConfigurationError, IllegalInstruction
from vm_translate.riscv import rv64a, rv64i, rv64m, zicsr, zifencei
from vm_translate.riscv.decoder import Decoder, InsnSpec, check_table
from vm_translate.riscv.rvc import RVC_TABLE, CompressedSpec, check_compressed_table

OBJDUMP = shutil.which("riscv64-linux-gnu-objdump")
AS = shutil.which("riscv64-linux-gnu-as")
needs_binutils = pytest.mark.skipif(OBJDUMP is None or AS is None, reason="riscv64 binutils not installed")

DEC = Decoder()

#: objdump mnemonic -> this decoder's row name.
OBJDUMP_ALIASES = {
    "c.slli64": "c.slli",  # shamt 0: a HINT (no-op) in RV64
    "c.srli64": "c.srli",
    "c.srai64": "c.srai",
    "fence.tso": "fence",
}
#: This decoder's names that objdump prints differently (with -M no-aliases).
OUR_ALIASES = {"c.nop": "c.addi"}
_LINE = re.compile(r"^\s*[0-9a-f]+:\s+([0-9a-f]+)\s+(\S+)")


def objdump_names(code: bytes, tmp_path: Path) -> list[tuple[int, str]]:
    """``(word, mnemonic)`` per instruction objdump finds in raw RV64 ``code``."""
    path = tmp_path / "code.bin"
    path.write_bytes(code)
    out = subprocess.run(
        [OBJDUMP, "-D", "-b", "binary", "-m", "riscv:rv64", "-M", "no-aliases", str(path)],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = []
    for line in out.splitlines():
        m = _LINE.match(line)
        if m:
            result.append((int(m.group(1), 16), m.group(2)))
    return result


def normalize(objdump_name: str) -> str:
    name = re.sub(r"\.(aqrl|aq|rl)$", "", objdump_name)
    return OBJDUMP_ALIASES.get(name, name)


#: Conversions that are exact whatever the rounding mode; binutils 2.40 only disassembles them with rm = 0.
EXACT_CONVERSIONS = frozenset({"fcvt.d.s", "fcvt.d.w", "fcvt.d.wu"})


def objdump_is_stricter(word: int, ours: str | None, objdump_name: str) -> bool:
    """Words the ISA manual defines (reserved fields ignored) that objdump refuses to name."""
    if objdump_name != ".4byte" or ours is None:
        return False
    if ours == "fence":  # reserved fm values, rs1, rd: "treated as a normal fence"
        return (word >> 28) not in (0, 8) or word & 0x000F8F80 != 0
    if ours == "fence.i":  # reserved imm, rs1, rd: ignored
        return word & 0xFFFF8F80 != 0
    return ours in EXACT_CONVERSIONS and (word >> 12) & 7 != 0


def our_name(word: int, compressed: bool) -> str | None:
    try:
        decoded = DEC.decode_compressed(word) if compressed else DEC.decode(word)
    except IllegalInstruction:
        return None
    return OUR_ALIASES.get(decoded.name, decoded.name)


@settings(max_examples=1500, deadline=None)
@given(st.integers(0, 0xFFFFFFFF))
def test_any_32bit_word_decodes_or_is_illegal(word: int) -> None:
    try:
        decoded = DEC.decode(word)
    except IllegalInstruction as exc:
        assert exc.word == word and exc.length == 4
    else:
        assert decoded.spec.matches(word) and decoded.length == 4


def test_every_16bit_word_decodes_or_is_illegal() -> None:
    decoded_count = 0
    for half in range(0x10000):
        try:
            decoded = DEC.decode_compressed(half)
        except IllegalInstruction as exc:
            assert exc.length == 2 and exc.word == half
        else:
            decoded_count += 1
            assert decoded.length == 2 and decoded.name.startswith("c.")
    assert decoded_count > 40000


def test_words_outside_32_bits_are_illegal() -> None:
    with pytest.raises(IllegalInstruction):
        DEC.decode(1 << 32 | 0x13)
    with pytest.raises(IllegalInstruction):
        DEC.decode_compressed(0x10001)


@needs_binutils
def test_compressed_decoding_matches_objdump_exhaustively(tmp_path: Path) -> None:
    halves = [h for h in range(0x10000) if h & 3 != 3]
    listing = objdump_names(b"".join(h.to_bytes(2, "little") for h in halves), tmp_path)
    assert [w for w, _ in listing] == halves
    for half, name in listing:
        ours = our_name(half, compressed=True)
        if name == ".2byte":
            assert ours is None, f"{half:04x}: objdump finds no instruction, decoder says {ours}"
        elif ours is None:
            # Reserved by the ISA manual, printed by objdump anyway: c.unimp (all zeros), c.addi16sp with 0.
            assert name == "c.unimp" or (name == "c.addi16sp" and half == 0x6101), f"{half:04x}: {name}"
        else:
            assert ours == normalize(name), f"{half:04x}: objdump {name}, decoder {ours}"


def _row_words(spec: InsnSpec, rng: random.Random, count: int) -> list[int]:
    words = []
    for _ in range(count * 4):
        word = spec.match | (rng.getrandbits(32) & ~spec.mask)
        if spec.format == "CSR":
            word = (word & 0xFFFFF) | (rng.choice((0x001, 0x002, 0x003, 0xC00, 0xC01, 0xC02)) << 20)
        try:
            DEC.decode(word)
        except IllegalInstruction:
            continue
        words.append(word)
        if len(words) == count:
            break
    return words


@needs_binutils
def test_every_row_matches_objdump(tmp_path: Path) -> None:
    rng = random.Random(243)
    words = [w for spec in DEC.specs for w in _row_words(spec, rng, 12)]
    assert {DEC.decode(w).name for w in words} == {s.name for s in DEC.specs}
    listing = objdump_names(b"".join(w.to_bytes(4, "little") for w in words), tmp_path)
    assert [w for w, _ in listing] == words
    for word, name in listing:
        ours = our_name(word, compressed=False)
        assert ours == normalize(name) or objdump_is_stricter(word, ours, name), f"{word:08x}: objdump {name}"


@needs_binutils
def test_random_words_agree_with_objdump(tmp_path: Path) -> None:
    rng = random.Random(64)
    words = [rng.getrandbits(32) | 3 for _ in range(30000)]
    words = [w for w in words if w & 0x1C != 0x1C]  # 48-bit and longer encodings are not 32-bit words
    listing = objdump_names(b"".join(w.to_bytes(4, "little") for w in words), tmp_path)
    assert [w for w, _ in listing] == words
    known = {s.name for s in DEC.specs}
    agreed = 0
    for word, name in listing:
        ours = our_name(word, compressed=False)
        theirs = normalize(name)
        if ours is not None:
            assert ours == theirs or objdump_is_stricter(word, ours, name), f"{word:08x}: objdump {name}, {ours}"
            agreed += 1
        elif theirs in known:
            # objdump prints CSR instructions on any CSR number and FP rows with reserved rounding modes.
            decoded_spec = next(s for s in DEC.specs if s.name == theirs)
            assert decoded_spec.matches(word) and decoded_spec.valid is not None, f"{word:08x}: {name}"
    assert agreed > 100


FIXTURE = """
    lui a0, 0x12345
    auipc a1, 0xfffff
    jal ra, 1f
1:  jalr t0, -4(a0)
    beq a0, a1, 1b
    bne a0, a1, 1b
    blt a0, a1, 1b
    bge a0, a1, 1b
    bltu a0, a1, 1b
    bgeu a0, a1, 1b
    lb a0, -1(sp)
    lh a0, 2(sp)
    lw a0, 2047(sp)
    ld a0, -2048(sp)
    lbu a0, 0(a1)
    lhu a0, 0(a1)
    lwu a0, 0(a1)
    sb a0, 0(a1)
    sh a0, 0(a1)
    sw a0, 0(a1)
    sd a0, 0(a1)
    addi a0, a1, -1
    slti a0, a1, 5
    sltiu a0, a1, 5
    xori a0, a1, -1
    ori a0, a1, 1
    andi a0, a1, 1
    slli a0, a1, 63
    srli a0, a1, 63
    srai a0, a1, 63
    addiw a0, a1, 1
    slliw a0, a1, 31
    srliw a0, a1, 31
    sraiw a0, a1, 31
    add a0, a1, a2
    sub a0, a1, a2
    sll a0, a1, a2
    slt a0, a1, a2
    sltu a0, a1, a2
    xor a0, a1, a2
    srl a0, a1, a2
    sra a0, a1, a2
    or a0, a1, a2
    and a0, a1, a2
    addw a0, a1, a2
    subw a0, a1, a2
    sllw a0, a1, a2
    srlw a0, a1, a2
    sraw a0, a1, a2
    fence rw, rw
    fence.i
    ecall
    ebreak
    mul a0, a1, a2
    mulh a0, a1, a2
    mulhsu a0, a1, a2
    mulhu a0, a1, a2
    div a0, a1, a2
    divu a0, a1, a2
    rem a0, a1, a2
    remu a0, a1, a2
    mulw a0, a1, a2
    divw a0, a1, a2
    divuw a0, a1, a2
    remw a0, a1, a2
    remuw a0, a1, a2
    lr.w a0, (a1)
    sc.w a0, a2, (a1)
    lr.d.aq a0, (a1)
    sc.d.rl a0, a2, (a1)
    amoswap.w a0, a2, (a1)
    amoadd.w a0, a2, (a1)
    amoxor.w a0, a2, (a1)
    amoand.w a0, a2, (a1)
    amoor.w a0, a2, (a1)
    amomin.w a0, a2, (a1)
    amomax.w a0, a2, (a1)
    amominu.w a0, a2, (a1)
    amomaxu.w a0, a2, (a1)
    amoswap.d.aqrl a0, a2, (a1)
    amoadd.d a0, a2, (a1)
    amoxor.d a0, a2, (a1)
    amoand.d a0, a2, (a1)
    amoor.d a0, a2, (a1)
    amomin.d a0, a2, (a1)
    amomax.d a0, a2, (a1)
    amominu.d a0, a2, (a1)
    amomaxu.d a0, a2, (a1)
    csrrw a0, fcsr, a1
    csrrs a0, fflags, a1
    csrrc a0, frm, a1
    csrrwi a0, fcsr, 5
    csrrsi a0, fflags, 1
    csrrci a0, frm, 1
    csrrs a0, cycle, zero
    csrrs a0, time, zero
    csrrs a0, instret, zero
    c.addi4spn s0, sp, 1020
    c.fld fs0, 248(s1)
    c.lw a0, 124(s1)
    c.ld a0, 248(s1)
    c.fsd fs0, 8(s1)
    c.sw a0, 4(s1)
    c.sd a0, 8(s1)
    c.nop
    c.addi a0, -32
    c.addiw a0, 31
    c.li a0, -1
    c.addi16sp sp, -512
    c.lui a0, 0xfffe1
    c.srli a0, 63
    c.srai a0, 1
    c.andi a0, -1
    c.sub a0, a1
    c.xor a0, a1
    c.or a0, a1
    c.and a0, a1
    c.subw a0, a1
    c.addw a0, a1
2:  c.j 1b
    c.beqz a0, 2b
    c.bnez a0, 2b
    c.slli a0, 63
    c.fldsp fa0, 504(sp)
    c.lwsp a0, 252(sp)
    c.ldsp a0, 504(sp)
    c.jr a0
    c.mv a0, a1
    c.ebreak
    c.jalr a0
    c.add a0, a1
    c.fsdsp fa0, 0(sp)
    c.swsp a0, 252(sp)
    c.sdsp a0, 504(sp)
"""


@needs_binutils
def test_assembled_fixture_decodes_to_its_mnemonics(tmp_path: Path) -> None:
    source = tmp_path / "all.S"
    lines = FIXTURE.strip().splitlines()
    first_c = next(i for i, line in enumerate(lines) if line.split()[0].startswith("c."))
    # No automatic compression of the 32-bit part; explicit c.* mnemonics after.
    lines.insert(first_c, "    .option rvc")
    source.write_text("    .option norvc\n    .text\n" + "\n".join(lines) + "\n")
    obj = tmp_path / "all.o"
    subprocess.run([AS, "-march=rv64gc", "-o", str(obj), str(source)], check=True)  # type: ignore[list-item]
    raw = tmp_path / "all.bin"
    subprocess.run(
        [str(Path(str(AS)).with_name("riscv64-linux-gnu-objcopy")), "-O", "binary", "-j", ".text", str(obj), str(raw)], check=True
    )
    code = raw.read_bytes()
    expected = [line.split(":")[-1].split()[0] for line in FIXTURE.strip().splitlines()]
    names = []
    pos = 0
    while pos < len(code):
        low = int.from_bytes(code[pos : pos + 2], "little")
        length = 4 if low & 3 == 3 else 2
        word = int.from_bytes(code[pos : pos + length], "little")
        names.append((DEC.decode(word) if length == 4 else DEC.decode_compressed(word)).name)
        pos += length
    assert names == [re.sub(r"\.(aqrl|aq|rl)$", "", name) for name in expected]
    mine = {s.name for module in (rv64i, rv64m, rv64a, zicsr, zifencei) for s in module.INSTRUCTIONS}
    assert mine | {row.name for row in RVC_TABLE} <= set(names)


def _lift_nothing(builder: object, fields: object) -> None:
    return None


def test_overlapping_rows_are_rejected() -> None:
    a = InsnSpec("a", 0x0000707F, 0x00000013, "I", _lift_nothing)
    b = InsnSpec("b", 0xFE00707F, 0x00000013, "R", _lift_nothing)
    with pytest.raises(ConfigurationError, match="overlap"):
        check_table([a, b])
    with pytest.raises(ConfigurationError, match="overlap"):
        Decoder([[a], [b]])
    check_table([a, InsnSpec("c", 0x0000707F, 0x00001013, "I", _lift_nothing)])


def test_malformed_rows_are_rejected() -> None:
    with pytest.raises(ConfigurationError, match="format"):
        check_table([InsnSpec("a", 0x7F, 0x13, "Q", _lift_nothing)])
    with pytest.raises(ConfigurationError, match="outside"):
        check_table([InsnSpec("a", 0x7F, 0x1013, "I", _lift_nothing)])
    with pytest.raises(ConfigurationError, match="opcode"):
        check_table([InsnSpec("a", 0x3F, 0x13, "I", _lift_nothing)])


def test_compressed_rows_may_only_refine() -> None:
    def expand(h: int) -> int:
        return 0x13

    check_compressed_table(RVC_TABLE)
    wide = CompressedSpec("wide", 0xE003, 0x0001, expand)
    same = CompressedSpec("same", 0xE003, 0x0001, expand)
    crossing = CompressedSpec("crossing", 0x0F83, 0x0001, expand)
    with pytest.raises(ConfigurationError):
        check_compressed_table([wide, same])
    with pytest.raises(ConfigurationError):
        check_compressed_table([CompressedSpec("w2", 0xE003 & ~0x0F80, 0x0001, expand), crossing])
