"""Errors render as one clear line and carry what a caller needs."""

from __future__ import annotations

import signal

from vm_core.errors import (
    AcceleratorUnavailable,
    BadProgramError,
    Breakpoint,
    ConfigurationError,
    IllegalInstruction,
    MemoryFault,
    VmError,
)


def test_hint_is_rendered_after_the_message():
    err = BadProgramError("prog: not an ELF file", hint="give a static riscv64 Linux executable")
    assert str(err) == "prog: not an ELF file (give a static riscv64 Linux executable)"
    assert isinstance(err, VmError)
    assert "\n" not in str(err)


def test_exit_codes():
    assert VmError("x").exit_code == 1
    assert ConfigurationError("bad option").exit_code == 2


def test_guest_faults_carry_the_linux_signal():
    fault = MemoryFault(0xDEAD0, "write", pc=0x1000)
    assert fault.signo == signal.SIGSEGV
    assert fault.address == 0xDEAD0 and fault.access == "write" and fault.pc == 0x1000
    assert str(fault) == "guest write fault at 0xdead0"
    ill = IllegalInstruction(0x0000, pc=0x2000, isa="riscv64", length=2)
    assert ill.signo == signal.SIGILL
    assert str(ill) == "illegal riscv64 instruction 0000 at 0x2000"
    assert Breakpoint("ebreak").signo == signal.SIGTRAP


def test_accelerator_unavailable_names_the_failed_check():
    err = AcceleratorUnavailable("kvm", "/dev/kvm does not exist", hint="load the kvm module")
    assert err.check == "/dev/kvm does not exist"
    assert str(err) == "accelerator 'kvm' unavailable: /dev/kvm does not exist (load the kvm module)"
