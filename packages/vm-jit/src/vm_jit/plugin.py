"""vm-jit's plugin: the ``python`` engine (tier 1) and the ``llvm`` engine (tiers 0-2, native code).

Loaded through the entry point ``jit`` of the group ``vm_core.plugins``.
``--engine auto`` chooses ``llvm`` when llvmlite is installed (the engine
itself falls back to tiers 0-1 if LLVM then fails to start), else ``python``.
The selector is ``trylast``: a third-party plugin's ``vm_select_engine`` is
asked first and wins by answering.

Both engines take their :class:`~vm_jit.settings.JitSettings` from the
caller, or else from the defaults overridden by the environment variable
``VM_JIT_SETTINGS`` (comma-separated ``field=value`` pairs, e.g.
``native_threshold=2000,native_background=false``).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from typing import Any

import attrs
from vm_core.errors import ConfigurationError
from vm_core.hookspecs import hookimpl
from vm_core.types import EngineSpec

from vm_jit.settings import JitSettings

SETTINGS_ENV = "VM_JIT_SETTINGS"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def settings_from_text(text: str, base: JitSettings | None = None) -> JitSettings:
    """``base`` (default settings) with the ``field=value,...`` overrides of ``text`` applied."""
    settings = base or JitSettings()
    fields = {f.name: f for f in attrs.fields(JitSettings)}
    changes: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, raw = item.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or name not in fields:
            raise ConfigurationError(f"{SETTINGS_ENV}: unknown setting {item!r}", hint=f"known: {', '.join(fields)}")
        if isinstance(getattr(settings, name), bool):
            if raw.lower() not in _TRUE | _FALSE:
                raise ConfigurationError(f"{SETTINGS_ENV}: {name} must be true or false, not {raw!r}")
            changes[name] = raw.lower() in _TRUE
        elif isinstance(getattr(settings, name), float):
            try:
                changes[name] = float(raw)
            except ValueError:
                raise ConfigurationError(f"{SETTINGS_ENV}: {name} must be a number, not {raw!r}") from None
        else:
            try:
                value = int(raw, 0)
            except ValueError:
                raise ConfigurationError(f"{SETTINGS_ENV}: {name} must be an integer, not {raw!r}") from None
            if value < 0:
                raise ConfigurationError(f"{SETTINGS_ENV}: {name} must not be negative, not {value}")
            changes[name] = value
    return attrs.evolve(settings, **changes)


def _settings(settings: Any) -> JitSettings:
    if settings is not None:
        return settings
    return settings_from_text(os.environ.get(SETTINGS_ENV, ""))


def _python_factory(frontend: Any, settings: Any = None) -> Any:
    from vm_jit.engine import make_python_engine

    return make_python_engine(frontend, _settings(settings))


def _llvm_factory(frontend: Any, settings: Any = None) -> Any:
    from vm_jit.native.tier import make_llvm_engine

    return make_llvm_engine(frontend, _settings(settings))


def llvmlite_installed() -> bool:
    """Whether llvmlite can be imported (checked without importing it: that takes ~60 ms)."""
    return importlib.util.find_spec("llvmlite") is not None


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
    register(
        EngineSpec(
            name="llvm",
            factory=_llvm_factory,
            description="tiers 0-2: hot regions promoted to native code with LLVM, AOT cache",
            rank=20,
        )
    )


@hookimpl(trylast=True)
def vm_select_engine(isa: str, requested: str, available: list[str]) -> str | None:
    if requested != "auto":
        return None
    if "llvm" in available and llvmlite_installed():
        return "llvm"
    if "python" in available:
        return "python"
    return None
