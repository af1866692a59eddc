"""System-call overrides a plugin registers (vm_register_syscalls) go over the ABI's table."""

from __future__ import annotations

from vm_linux.syscalls import SyscallDispatcher
from vm_linux.syscalls.riscv64 import riscv64_abi
from vm_translate.riscv.archinfo import RV64

RISCV64_ABI = riscv64_abi(RV64)


def _mine(state: object, cpu: object, args: object) -> int:
    return 7


def test_a_name_replaces_the_tables_handler_and_a_number_adds_a_call() -> None:
    plain = SyscallDispatcher(RISCV64_ABI)
    dispatcher = SyscallDispatcher(RISCV64_ABI, {"getpid": _mine, 999: _mine})
    assert dispatcher.handlers[172] == ("getpid", _mine) and plain.handlers[172][1] is not _mine
    assert dispatcher.handlers[999] == ("syscall_999", _mine) and 999 not in plain.handlers
    assert dispatcher.handlers[64] == plain.handlers[64]  # write: untouched
