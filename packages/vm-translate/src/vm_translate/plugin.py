"""vm-translate's plugin: the RISC-V front end and the reference interpreter engine.

Loaded through the entry point ``translate`` of the group ``vm_core.plugins``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vm_core.hookspecs import hookimpl
from vm_core.types import EngineSpec, IsaSpec


def _interp_factory(frontend: Any, settings: Any = None) -> Any:
    from vm_translate.executor import ReferenceEngine

    return ReferenceEngine(frontend)


@hookimpl
def vm_register_isas(register: Callable[[IsaSpec], None]) -> None:
    from vm_translate.riscv import isa_spec

    register(isa_spec())


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
