"""Building a plugin manager, collecting what plugins register, and telling observers.

There is no global manager: :func:`make_plugin_manager` returns a new one
each call, so tests build their own. Installed plugins come from the
entry-point group ``vm_core.plugins``; the ``VM_PLUGINS`` environment
variable (comma-separated entry-point names) restricts which ones load.
:func:`collect_registry` calls every registration hook once and gives the
parts by kind (:class:`Registry`); :class:`MachineEventBus` calls
``vm_machine_event`` so that no observer can break a run.
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
    EngineSpec,
    IsaSpec,
    LoaderSpec,
    SyscallSpec,
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
    directly (for tests and embedding). Every plugin's hook implementations
    are then checked against the hookspecs (pluggy's ``check_pending``): an
    implementation of a hook that does not exist is a :class:`PluginError`.
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
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"plugin {pm.get_name(exc.plugin) or exc.plugin!r} implements a hook vm does not have: {exc}",
            hint="the hooks are listed in vm_core/hookspecs.py (docs/plugins.md)",
        ) from exc
    return pm


@attrs.frozen
class Registry:
    """Everything the loaded plugins registered, by kind and name."""

    isas: dict[str, IsaSpec]
    engines: dict[str, EngineSpec]
    accelerators: dict[str, AcceleratorSpec]
    syscall_tables: dict[tuple[str, str], SyscallTableSpec]
    syscalls: dict[tuple[str, str, str | int], SyscallSpec]
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

    def accelerator(self, name: str) -> AcceleratorSpec:
        try:
            return self.accelerators[name]
        except KeyError:
            raise NotFoundError(
                f"no accelerator named {name!r}",
                hint=f"installed: {', '.join(sorted(self.accelerators)) or 'none'}",
            ) from None

    def syscall_table(self, os_name: str, isa: str) -> SyscallTableSpec:
        try:
            return self.syscall_tables[(os_name, isa)]
        except KeyError:
            known = ", ".join(f"{o}/{i}" for o, i in sorted(self.syscall_tables)) or "none"
            raise NotFoundError(f"no {os_name} system-call table for {isa}", hint=f"installed: {known}") from None

    def syscall_overrides(self, os_name: str, isa: str) -> dict[str | int, SyscallSpec]:
        """The system calls plugins add or override for (``os_name``, ``isa``), by name or number.

        A registration for ``isa`` wins over one for ``"*"`` (every ISA).
        """
        chosen: dict[str | int, SyscallSpec] = {}
        for wanted in ("*", isa):
            for (os_key, isa_key, call), spec in self.syscalls.items():
                if os_key == os_name and isa_key == wanted:
                    chosen[call] = spec
        return chosen

    def loader_for(self, header: bytes, path: str) -> LoaderSpec:
        """The one loader whose probe accepts a file starting with ``header``."""
        accepting = [spec for spec in self.loaders.values() if spec.probe(header)]
        if not accepting:
            raise NotFoundError(
                f"{path}: no installed loader accepts this file",
                hint=f"installed: {', '.join(sorted(self.loaders)) or 'none'}",
            )
        if len(accepting) > 1:
            names = ", ".join(sorted(spec.name for spec in accepting))
            raise PluginError(f"{path}: more than one loader accepts this file ({names})")
        return accepting[0]


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
        syscall_tables=_collect(h.vm_register_syscall_tables, lambda s: (s.os, s.isa)),
        syscalls=_collect(h.vm_register_syscalls, lambda s: (s.os, s.isa, s.syscall)),
        loaders=_collect(h.vm_register_loaders, lambda s: s.name),
    )


class MachineEventBus:
    """Calls every plugin's ``vm_machine_event``; an observer that raises is logged once and skipped.

    pluggy would stop at the first exception and hand it to the caller; here
    each implementation is called on its own, so one broken observer neither
    ends the run nor hides the event from the others.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.failed: set[str] = set()

    def emit(self, name: str, data: dict[str, Any]) -> None:
        """Tell every observer that event ``name`` happened, with ``data``."""
        for impl in self.pm.hook.vm_machine_event.get_hookimpls():
            arguments = {"name": name, "data": dict(data)}
            try:
                impl.function(*[arguments[arg] for arg in impl.argnames])
            except Exception as exc:  # an observer must never break a run
                plugin = impl.plugin_name
                if plugin not in self.failed:
                    self.failed.add(plugin)
                    log.warning("machine_event_observer_failed", plugin=plugin, machine_event=name, error=repr(exc))
                else:
                    log.debug("machine_event_observer_failed", plugin=plugin, machine_event=name, error=repr(exc))
