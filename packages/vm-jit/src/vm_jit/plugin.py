"""vm-jit's plugin: the ``python`` engine (tier 1), chosen by ``--engine auto``.

Loaded through the entry point ``jit`` of the group ``vm_core.plugins``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vm_core.hookspecs import hookimpl
from vm_core.types import EngineSpec


def _python_factory(frontend: Any, settings: Any = None) -> Any:
    from vm_jit.engine import PythonEngine

    return PythonEngine(frontend, settings)


@hookimpl
def vm_register_engines(register: Callable[[EngineSpec], None]) -> None:
    register(
        EngineSpec(
            name="python",
            factory=_python_factory,
            description="tier 1: hot blocks compiled to Python functions, cold ones interpreted",
            rank=10,
        )
    )


@hookimpl
def vm_select_engine(isa: str, requested: str, available: list[str]) -> str | None:
    if requested == "auto" and "python" in available:
        return "python"
    return None
