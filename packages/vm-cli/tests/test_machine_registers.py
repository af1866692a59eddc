"""Machine's named registers: every name the ISA's ArchInfo knows, checked against Unicorn's names; clear errors."""

from __future__ import annotations

import re

import pytest
from vm_cli import Machine
from vm_core.arch import RegisterGroup, RegisterValueError, UnknownRegister
from vm_core.errors import ConfigurationError, UnsupportedError


@pytest.fixture(scope="module")
def machine() -> Machine:
    return Machine("riscv64", engine="interp")


def test_every_name_reaches_the_register_unicorn_gives_it(machine: Machine) -> None:
    unicorn = pytest.importorskip("unicorn")
    rc = pytest.importorskip("unicorn.riscv_const")
    uc = unicorn.Uc(unicorn.UC_ARCH_RISCV, unicorn.UC_MODE_RISCV64)
    checked = 0
    for register in machine.arch.group(RegisterGroup.GENERAL) + machine.arch.group(RegisterGroup.FLOAT):
        for name in (register.name, *register.aliases):
            constant = getattr(rc, f"UC_RISCV_REG_{name.upper()}")
            value = 0 if register.hardwired_zero else 0x1111_0000 + register.index
            machine.reg_write(name, value)
            uc.reg_write(constant, value)
            number, kind = register.index % 32, "F" if register.index >= 32 else "X"
            assert machine.reg_read(f"{kind.lower()}{number}") == uc.reg_read(getattr(rc, f"UC_RISCV_REG_{kind}{number}"))
            assert machine.reg_read(name) == value
            checked += 1
    assert checked >= 2 * 64  # x0..x31 and f0..f31, each by architectural and ABI name


def test_pc_sp_and_widths(machine: Machine) -> None:
    machine.reg_write("pc", 0x1000)
    assert machine.pc == 0x1000 and machine.reg_read("pc") == 0x1000
    machine.reg_write("sp", -16)
    assert machine.reg_read("x2") == 2**64 - 16
    machine.reg_write("zero", 5)
    assert machine.reg_read("x0") == 0
    machine.reg_write("frm", 7)
    assert machine.reg_read("frm") == 7
    machine.reg_write(machine.arch.index("a0"), 9)
    assert machine.reg_read("a0") == 9


@pytest.mark.parametrize(
    ("name", "value", "error", "words"),
    [
        ("eax", 1, UnknownRegister, "no register named 'eax'"),
        (67, 1, UnknownRegister, "no register number 67"),
        (-1, 1, UnknownRegister, "no register number -1"),
        ("frm", 8, RegisterValueError, "does not fit frm (3 bits)"),
        ("fflags", -17, RegisterValueError, "does not fit fflags (5 bits)"),
        ("a0", 2**64, RegisterValueError, "does not fit x10 (64 bits)"),
        ("pc", -(2**64), RegisterValueError, "does not fit pc"),
        ("a0", 1.5, RegisterValueError, "not float"),
    ],
)
def test_bad_names_and_values_are_clear_errors(machine: Machine, name: object, value: object, error: type,
                                               words: str) -> None:  # fmt: skip
    with pytest.raises(error, match=re.escape(words)) as caught:
        machine.reg_write(name, value)  # type: ignore[arg-type]
    assert isinstance(caught.value, ConfigurationError)
    if isinstance(caught.value, UnknownRegister):
        with pytest.raises(UnknownRegister):
            machine.reg_read(name)  # type: ignore[arg-type]


def test_an_isa_without_a_front_end_says_so() -> None:
    with pytest.raises(UnsupportedError, match="no x86-64 emulation front end"):
        Machine("x86_64")
