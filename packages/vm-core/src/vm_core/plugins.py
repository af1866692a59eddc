"""Building a plugin manager and collecting what plugins register.

There is no global manager: :func:`make_plugin_manager` returns a new one
each call, so tests build their own. Installed plugins come from the
entry-point group ``vm_core.plugins``; the ``VM_PLUGINS`` environment
variable (comma-separated entry-point names) restricts which ones load.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any, TypeVar

import attrs
import pluggy

from vm_core import hookspecs
from vm_core.errors import NotFoundError, PluginError
from vm_core.logging import get_logger
from vm_core.types import (
    AcceleratorSpec,
    DeviceSpec,
    EngineSpec,
    IsaSpec,
    LoaderSpec,
    SyscallTableSpec,
)

ENTRY_POINT_GROUP = "vm_core.plugins"
ALLOW_LIST_ENV = "VM_PLUGINS"

log = get_logger("vm_core.plugins")

T = TypeVar("T")


def allow_list(environ: dict[str, str] | None = None) -> set[str] | None:
    """The entry-point names ``VM_PLUGINS`` allows, or ``None`` for "all"."""
    env = os.environ if environ is None else environ
    raw = env.get(ALLOW_LIST_ENV)
    if raw is None or raw.strip() == "":
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def make_plugin_manager(
    *,
    load_entry_points: bool = True,
    plugins: Iterable[Any] = (),
    environ: dict[str, str] | None = None,
) -> pluggy.PluginManager:
    """Return a new plugin manager with vm's hookspecs.

    Loads every entry point of ``vm_core.plugins`` that the ``VM_PLUGINS``
    allow-list admits (all when unset), then registers ``plugins`` given
    directly (for tests and embedding).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if load_entry_points:
        allowed = allow_list(environ)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if allowed is not None and ep.name not in allowed:
                log.debug("plugin_skipped", plugin=ep.name, reason="not in VM_PLUGINS")
                continue
            if pm.get_plugin(ep.name) is not None:
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must not take the VM down silently
                raise PluginError(
                    f"plugin {ep.name!r} ({ep.value}) failed to load: {exc}",
                    hint=f"uninstall it or leave it out of {ALLOW_LIST_ENV}",
                ) from exc
            pm.register(obj, name=ep.name)
            log.debug("plugin_loaded", plugin=ep.name, value=ep.value)
    for plugin in plugins:
        pm.register(plugin)
    return pm


@attrs.frozen
class Registry:
    """Everything the loaded plugins registered, by kind and name."""

    isas: dict[str, IsaSpec]
    engines: dict[str, EngineSpec]
    accelerators: dict[str, AcceleratorSpec]
    devices: dict[str, DeviceSpec]
    syscall_tables: dict[tuple[str, str], SyscallTableSpec]
    loaders: dict[str, LoaderSpec]

    def isa(self, name: str) -> IsaSpec:
        """Look an ISA up by name or alias."""
        for spec in self.isas.values():
            if name == spec.name or name in spec.aliases:
                return spec
        raise NotFoundError(
            f"no installed front end for ISA {name!r}",
            hint=f"installed: {', '.join(sorted(self.isas)) or 'none'}",
        )

    def isa_for_elf_machine(self, machine: int) -> IsaSpec:
        for spec in self.isas.values():
            if spec.elf_machine == machine:
                return spec
        raise NotFoundError(
            f"no installed front end for ELF machine {machine}",
            hint=f"installed: {', '.join(sorted(self.isas)) or 'none'}",
        )

    def engine(self, name: str) -> EngineSpec:
        try:
            return self.engines[name]
        except KeyError:
            raise NotFoundError(
                f"no engine named {name!r}", hint=f"installed: {', '.join(sorted(self.engines)) or 'none'}"
            ) from None

    def syscall_table(self, os_name: str, isa: str) -> SyscallTableSpec:
        try:
            return self.syscall_tables[(os_name, isa)]
        except KeyError:
            raise NotFoundError(f"no {os_name} system-call table for {isa}") from None


def _collect(hook: Any, key: Any) -> dict[Any, Any]:
    found: dict[Any, Any] = {}

    def register(spec: Any) -> None:
        k = key(spec)
        if k in found:
            raise PluginError(f"two plugins registered {type(spec).__name__} {k!r}")
        found[k] = spec

    hook(register=register)
    return found


def collect_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every registration hook and gather what was registered."""
    h = pm.hook
    return Registry(
        isas=_collect(h.vm_register_isas, lambda s: s.name),
        engines=_collect(h.vm_register_engines, lambda s: s.name),
        accelerators=_collect(h.vm_register_accelerators, lambda s: s.name),
        devices=_collect(h.vm_register_devices, lambda s: s.name),
        syscall_tables=_collect(h.vm_register_syscall_tables, lambda s: (s.os, s.isa)),
        loaders=_collect(h.vm_register_loaders, lambda s: s.name),
    )
