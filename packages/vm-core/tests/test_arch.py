"""vm_core.arch: ArchInfo lookups, its consistency checks, and register widths."""

from __future__ import annotations

import pytest
from vm_core.arch import (
    ArchInfo,
    RegisterGroup,
    RegisterInfo,
    RegisterValueError,
    SyscallConvention,
    UnknownRegister,
)
from vm_core.errors import ConfigurationError, NotFoundError


def _toy(*registers: RegisterInfo, **changes: object) -> ArchInfo:
    fields: dict[str, object] = dict(
        name="toy", elf_machine=0x7777, endianness="little", word_bits=32, page_size=4096,
        registers=registers, pc_name="pc", stack_pointer="sp",
        syscall=SyscallConvention(number="r0", args=("r1",), result="r0"), hwcap=0, hwcap_bits=(),
        initial_registers=(("flags", 2),), user_address_limit=1 << 31, stack_top=1 << 31, mmap_base=1 << 30,
        gdb_architecture="toy", gdb_features=(),
    )  # fmt: skip
    fields.update(changes)
    return ArchInfo(**fields)  # type: ignore[arg-type]


REGISTERS = (
    RegisterInfo("r0", 0, 32, RegisterGroup.GENERAL, ("zero",), hardwired_zero=True),
    RegisterInfo("r1", 1, 32, RegisterGroup.GENERAL, ("sp",)),
    RegisterInfo("flags", 2, 4, RegisterGroup.SYSTEM),
)


def test_lookups_by_name_alias_and_index() -> None:
    toy = _toy(*REGISTERS)
    assert toy.index("sp") == toy.index("r1") == toy.index(1) == 1
    assert toy.indices("r0", "flags") == (0, 2)
    assert toy.names == ("r0", "r1", "flags") and toy.register_count == 3
    assert toy.group(RegisterGroup.SYSTEM) == (REGISTERS[2],)
    for bad in ("r9", 3, -1, True, None):
        with pytest.raises(UnknownRegister) as caught:
            toy.register(bad)  # type: ignore[arg-type]
        assert isinstance(caught.value, NotFoundError) and isinstance(caught.value, ConfigurationError)


def test_reset_registers_is_linux_start_state() -> None:
    regs = [9, 9, 9]
    _toy(*REGISTERS).reset_registers(regs, sp=0x100)
    assert regs == [0, 0x100, 2]


@pytest.mark.parametrize(
    ("registers", "changes", "words"),
    [
        ((REGISTERS[1], REGISTERS[0], REGISTERS[2]), {}, "has index 1, not 0"),
        ((*REGISTERS[:2], RegisterInfo("flags", 2, 4, RegisterGroup.SYSTEM, ("sp",))), {}, "'sp' used twice"),
        (REGISTERS, {"pc_name": "flags"}, "'flags' used twice"),
        (REGISTERS, {"stack_pointer": "r7"}, "no register named 'r7'"),
    ],
)
def test_inconsistent_facts_are_refused(registers: tuple[RegisterInfo, ...], changes: dict[str, object],
                                        words: str) -> None:  # fmt: skip
    with pytest.raises((ValueError, UnknownRegister), match=words):
        _toy(*registers, **changes)


def test_fit_takes_the_width_and_twos_complement() -> None:
    flags = REGISTERS[2]
    assert flags.fit(15) == 15 and flags.fit(-1) == 15 and flags.fit(-8) == 8
    for bad in (16, -9):
        with pytest.raises(RegisterValueError, match="does not fit flags"):
            flags.fit(bad)


def test_archinfo_is_a_hashable_value() -> None:
    assert hash(_toy(*REGISTERS)) == hash(_toy(*REGISTERS)) and _toy(*REGISTERS) == _toy(*REGISTERS)
