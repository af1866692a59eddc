"""vm-translate's plugin: the RISC-V front end, x86-64's architecture facts and the reference interpreter engine.

x86-64 is registered as an ISA with ``emulated=False``: its
:class:`~vm_core.arch.ArchInfo` is there for KVM user mode and the Linux
layer, but there is no emulation front end yet (its factory says so).

Loaded through the entry point ``translate`` of the group ``vm_core.plugins``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vm_core.errors import UnsupportedError
from vm_core.hookspecs import hookimpl
from vm_core.types import EngineSpec, IsaSpec


def _interp_factory(frontend: Any, settings: Any = None) -> Any:
    from vm_translate.executor import ReferenceEngine

    return ReferenceEngine(frontend)


def _no_x86_64_front_end() -> Any:
    raise UnsupportedError(
        "there is no x86-64 emulation front end yet", hint="x86-64 programs run through KVM: vm run --accel kvm"
    )


@hookimpl
def vm_register_isas(register: Callable[[IsaSpec], None]) -> None:
    from vm_translate.riscv import isa_spec
    from vm_translate.x86_64.archinfo import X86_64

    register(isa_spec())
    register(
        IsaSpec(
            name=X86_64.name,
            factory=_no_x86_64_front_end,
            elf_machine=X86_64.elf_machine,
            bits=X86_64.word_bits,
            description="x86-64: architecture facts only (no emulation front end yet; programs run through KVM)",
            aliases=("amd64", "x86-64"),
            arch=X86_64,
            emulated=False,
        )
    )


@hookimpl
def vm_register_engines(register: Callable[[EngineSpec], None]) -> None:
    register(
        EngineSpec(
            name="interp",
            factory=_interp_factory,
            description="reference interpreter of vm's IR (the definition every engine is tested against)",
            rank=0,
        )
    )
