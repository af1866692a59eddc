"""Every plugin hook of vm, in one place.

A plugin is any module or object with functions named like these hooks and
decorated with :data:`hookimpl`; installed packages expose one through the
entry-point group ``vm_core.plugins`` (see :mod:`vm_core.plugins`). Built-in
parts use exactly the same hooks as third-party ones.

Two kinds of hook:

* registration hooks (``vm_register_*``) hand the plugin a ``register``
  callback; the plugin calls it once per part it provides. They return
  nothing. The composition root calls them once when it builds a machine or
  lists plugins.
* selection hooks are ``firstresult``: the first implementation that returns
  something other than ``None`` wins ("first backend that can, wins").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from vm_core.types import (
    AcceleratorSpec,
    DeviceSpec,
    EngineSpec,
    IsaSpec,
    LoaderSpec,
    SyscallTableSpec,
)

PROJECT = "vm"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def vm_register_isas(register: Callable[[IsaSpec], None]) -> None:
    """Register instruction-set front ends.

    Called by: the composition root (vm-cli's machine builder) and ``vm plugins``.
    Call ``register(IsaSpec(...))`` once per ISA the plugin decodes and lifts
    into vm's IR. Return nothing.
    """


@hookspec
def vm_register_engines(register: Callable[[EngineSpec], None]) -> None:
    """Register execution engines (reference interpreter, Python tier, native tier...).

    Called by: the composition root when it resolves ``--engine`` and by ``vm plugins``.
    Call ``register(EngineSpec(...))`` once per engine. Return nothing.
    """


@hookspec
def vm_register_accelerators(register: Callable[[AcceleratorSpec], None]) -> None:
    """Register hardware accelerators (KVM, HVF, WHPX...).

    Called by: the composition root when it resolves ``--accel`` and by ``vm plugins``.
    Call ``register(AcceleratorSpec(...))`` for each accelerator the plugin
    implements, whether or not it is usable on this host (``probe`` says so).
    Return nothing.
    """


@hookspec
def vm_register_devices(register: Callable[[DeviceSpec], None]) -> None:
    """Register device models for system-mode machines.

    Called by: the composition root when it builds a system-mode machine, and
    by ``vm plugins``. Call ``register(DeviceSpec(...))`` per device. Return nothing.
    """


@hookspec
def vm_register_syscall_tables(register: Callable[[SyscallTableSpec], None]) -> None:
    """Register operating-system call tables (e.g. Linux for riscv64).

    Called by: the composition root when it builds a user-mode process, and
    by ``vm plugins``. Call ``register(SyscallTableSpec(...))`` per (os, isa).
    Return nothing.
    """


@hookspec
def vm_register_loaders(register: Callable[[LoaderSpec], None]) -> None:
    """Register guest program loaders (ELF...).

    Called by: the composition root when ``vm run`` opens a program, and by
    ``vm plugins``. Call ``register(LoaderSpec(...))`` per format. Return nothing.
    """


@hookspec(firstresult=True)
def vm_select_engine(isa: str, requested: str, available: list[str]) -> str | None:
    """Choose the execution engine for a guest.

    Called by: the composition root before a run. ``requested`` is the user's
    ``--engine`` value (``"auto"`` when unset); ``available`` the registered
    engine names. Return an engine name from ``available`` to decide, or
    ``None`` to let the next plugin (and finally the highest ``rank``) decide.
    """


@hookspec(firstresult=True)
def vm_select_accelerator(isa: str, requested: str, host_isa: str) -> str | None:
    """Choose a hardware accelerator for a guest, or none.

    Called by: the composition root before a run. ``requested`` is the user's
    ``--accel`` value (``"auto"`` when unset, ``"none"`` to refuse). Return the
    name of a registered accelerator whose probe passed, or ``None`` to pass
    (no plugin answering means: emulate).
    """


@hookspec
def vm_machine_event(name: str, data: dict[str, Any]) -> None:
    """Observe a machine's lifecycle events (created, started, stopped, snapshot...).

    Called by: the composition root after each domain event it records.
    ``name`` is the event class name, ``data`` its attributes. Return nothing;
    observers must not raise.
    """
