"""Every plugin hook of vm, in one place.

A plugin is any module or object with functions named like these hooks and
decorated with :data:`hookimpl`; installed packages expose one through the
entry-point group ``vm_core.plugins`` (see :mod:`vm_core.plugins`). Built-in
parts use exactly the same hooks as third-party ones.

Two kinds of hook:

* registration hooks (``vm_register_*``) hand the plugin a ``register``
  callback; the plugin calls it once per part it provides. They return
  nothing. The composition root (vm-cli's :mod:`vm_cli.compose`) calls them
  once when it assembles a VM, and ``vm plugins`` when it lists them. Two
  plugins registering the same name is a :class:`~vm_core.errors.PluginError`
  (no silent "last one wins").
* selection hooks are ``firstresult``: the first implementation that returns
  something other than ``None`` wins ("first backend that can, wins").
  pluggy calls implementations newest-registered first; the built-in
  selectors (vm-jit's, vm-accel's) are ``trylast``, so any third-party
  selector is asked before them and wins by answering.
* the notification hook ``vm_machine_event`` is called for every
  implementation; an exception in one is logged (once per plugin) and never
  reaches the run.

``make_plugin_manager`` calls pluggy's ``check_pending``: a plugin with a
``@hookimpl`` whose name is not one of these hooks (a typo) is refused with a
:class:`~vm_core.errors.PluginError` at start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

from vm_core.types import (
    AcceleratorSpec,
    EngineSpec,
    IsaSpec,
    LoaderSpec,
    SyscallSpec,
    SyscallTableSpec,
)

PROJECT = "vm"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def vm_register_isas(register: Callable[[IsaSpec], None]) -> None:
    """Register instruction-set front ends.

    Called by: the composition root (a program's ISA is the one whose
    ``elf_machine`` its loader reports; ``vm_cli.Machine(isa)`` names one) and
    ``vm plugins``. Call ``register(IsaSpec(...))`` once per ISA the plugin
    decodes and lifts into vm's IR. Return nothing.
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

    Called by: the composition root when it resolves ``--accel`` (``vm run``
    runs a program on the chosen spec's ``user_mode(isa, arch)``; ``vm boot``
    boots a kernel on its ``system_mode(isa, request)``, given a
    :class:`~vm_core.types.BootRequest`, and reports the
    :class:`~vm_core.types.BootOutcome` its ``boot()`` returns; an accelerator
    without the capability a command needs is refused with one line) and by
    ``vm plugins``. Call ``register(AcceleratorSpec(...))`` for each
    accelerator the plugin implements, whether or not it is usable on this
    host (``probe`` says so). Return nothing.
    """


@hookspec
def vm_register_syscall_tables(register: Callable[[SyscallTableSpec], None]) -> None:
    """Register operating-system personalities' per-ISA ABIs (e.g. Linux for riscv64).

    Called by: the composition root when it builds a user-mode process (the
    process serves the guest's system calls with the table registered for
    its (os, ISA); vm-linux's ``LinuxProcess`` takes it from there), and by
    ``vm plugins``. Call ``register(SyscallTableSpec(os, isa, factory))`` per
    (os, isa). ``factory(arch)`` takes the ISA's :class:`~vm_core.arch.ArchInfo`
    (the ``IsaSpec.arch`` its front end registered through ``vm_register_isas``)
    and returns the ABI built from it: the composition root calls
    ``spec.factory(isa.arch)``, so registers, ``AT_HWCAP``, the start state
    and the address-space layout come from the ISA's one ArchInfo, never from
    a table of the OS layer's own. For ``"linux"`` the factory returns a
    ``vm_linux.abi.LinuxAbi`` (numbers -> names, ``uname`` machine, stat
    layout, signal frames, plus the ArchInfo). An ISA needs a registered
    ArchInfo (an ``IsaSpec`` with ``arch``, ``emulated=False`` when it has no
    front end) for its programs to run under an OS personality. Return nothing.
    """


@hookspec
def vm_register_syscalls(register: Callable[[SyscallSpec], None]) -> None:
    """Add or override single system calls of an OS personality.

    Called by: the composition root when it builds a user-mode process, and
    by ``vm plugins``. Call ``register(SyscallSpec(os, isa, syscall, handler))``
    per call: ``syscall`` is the name in the ISA's table or a number,
    ``isa`` an ISA name or ``"*"`` for all. Ordering: the handler registered
    for the ISA wins over a ``"*"`` one, which wins over the table's own; two
    plugins registering the same (os, isa, syscall) is a ``PluginError``.
    Return nothing.
    """


@hookspec
def vm_register_loaders(register: Callable[[LoaderSpec], None]) -> None:
    """Register guest program loaders (ELF...).

    Called by: the composition root when ``vm run`` opens a program (it asks
    every loader's ``probe`` for the file's first bytes; exactly one may
    accept), and by ``vm plugins``. Call ``register(LoaderSpec(...))`` per
    format. Return nothing.
    """


@hookspec(firstresult=True)
def vm_select_engine(isa: str, requested: str, available: list[str]) -> str | None:
    """Choose the execution engine for a guest.

    Called by: the composition root before a run. ``requested`` is the user's
    ``--engine`` value (``"auto"`` when unset; any other value names the
    engine and this hook is not called); ``available`` the registered engine
    names. Return an engine name from ``available`` to decide, or ``None`` to
    let the next plugin (and finally the highest ``rank``) decide.
    firstresult; vm-jit's implementation is ``trylast``, so a third-party
    selector is asked first.
    """


@hookspec(firstresult=True)
def vm_select_accelerator(isa: str, requested: str, host_isa: str) -> str | None:
    """Choose a hardware accelerator for a guest, or none.

    Called by: the composition root before a run, for every program (any
    ISA) unless ``--accel none``, and for ``vm boot`` (``isa``: the kernel's,
    ``x86_64``; ``vm boot`` has no emulated fallback, so ``None`` from every
    plugin is an error there). ``requested`` is the user's ``--accel``
    value (``"auto"`` when unset). Return the name of a registered
    accelerator whose probe passed, or ``None`` to pass (no plugin answering
    means: emulate with an engine, when the ISA has a front end).
    firstresult; vm-accel's implementation is ``trylast``.
    """


@hookspec
def vm_machine_event(name: str, data: dict[str, Any]) -> None:
    """Observe a VM's lifecycle, as the composition root drives it.

    Called by: the composition root (:mod:`vm_cli.compose`) for every VM it
    assembles, ``vm run``, ``vm aot``, ``vm resume``, ``vm boot`` (``program``:
    the kernel; ``instructions``: 0, an accelerator does not count them) and
    ``vm_cli.Machine`` alike. ``name`` is one of ``created`` (assembled; ``data``: ``vm``, ``isa``,
    ``engine`` or ``accelerator``, ``program``, ``argv``), ``restored``
    (from a snapshot; ``snapshot_id``), ``started`` (the guest starts or
    resumes running), ``snapshot`` (one was saved; ``snapshot_id``,
    ``instructions``), ``exited`` (the guest ended; ``exit_status``,
    ``signal``, ``instructions``) and ``stopped`` (the run ended otherwise:
    interrupted or failed; ``reason``). Every event's ``data`` carries ``vm``,
    an id unique to the assembled VM. Return nothing. An observer must never
    break a run: an exception raised here is logged (a warning, once per
    plugin) and swallowed; the other observers are still called.
    """
