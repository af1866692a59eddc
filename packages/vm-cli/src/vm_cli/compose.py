"""The composition root: one VM assembled from whatever plugins are installed.

Every way vm runs a guest goes through here: ``vm run``, ``vm aot``,
``vm resume``, ``vm boot`` and :class:`vm_cli.Machine`. Nothing below names a
built-in part; each comes from the plugin registry (:mod:`vm_core.plugins`),
and vm-cli imports no accelerator package (import-linter forbids it):

1. :meth:`Plugins.load` builds the plugin manager (entry points of
   ``vm_core.plugins``, the ``VM_PLUGINS`` allow-list, ``check_pending``)
   and calls every registration hook once.
2. :func:`compose_program` reads the program's first bytes and asks every
   registered loader's ``probe`` (exactly one must accept); the loader's
   ``machine`` names the ISA (the ``IsaSpec`` registered for that ELF machine,
   emulated or not: an ISA with no front end, such as x86-64, is still
   registered with its :class:`~vm_core.arch.ArchInfo`).
3. ``vm_select_accelerator`` is asked (unless ``--accel none``). A chosen
   accelerator's ``user_mode(isa, arch)`` gives the memory, CPU and engine the
   process runs on (the CPU's registers are the ISA's ArchInfo's); otherwise the ISA's front end (``vm_register_isas``) and
   an engine (``--engine``, else ``vm_select_engine``, else the highest
   rank) run it on a vm-mem :class:`~vm_mem.AddressSpace` and a
   :class:`~vm_translate.cpu.CpuState`. The translating engines keep their
   code in vm-gc's code cache, which their factory builds.
4. The OS personality: a :class:`~vm_linux.process.LinuxProcess` with the
   ABI registered for (``linux``, ISA) through ``vm_register_syscall_tables``,
   built from the ISA's ArchInfo (``spec.factory(isa.arch)``: registers,
   ``AT_HWCAP``, start state and layout are the ArchInfo's),
   the system calls plugins override through ``vm_register_syscalls``, and
   the chosen loader's factory.
5. The result is a :class:`ComposedVm`; :meth:`ComposedVm.run` drives
   ``LinuxProcess.run(engine, cpu)`` (the same loop for an emulator and an
   accelerator) and tells ``vm_machine_event`` observers ``created``,
   ``restored``, ``started``, ``snapshot``, ``exited`` and ``stopped``.

``vm boot`` (:func:`compose_boot`) takes steps 1 and 3 only: the accelerator
``vm_select_accelerator`` chooses for the kernel's ISA must offer
``system_mode(isa, request)`` (a :class:`~vm_core.types.BootRequest`), and
:meth:`ComposedBoot.boot` runs it to a :class:`~vm_core.types.BootOutcome`,
with the same machine events.

The event store (:mod:`vm_cli.recording`) records the same runs; the
commands wrap :meth:`ComposedVm.run` in it.
"""

from __future__ import annotations

import errno
import os
import platform
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pluggy
from vm_core.arch import ArchInfo
from vm_core.errors import (
    AcceleratorUnavailable,
    BadProgramError,
    ConfigurationError,
    NotFoundError,
    UnsupportedError,
)
from vm_core.logging import get_logger
from vm_core.plugins import MachineEventBus, Registry, collect_registry, make_plugin_manager
from vm_core.types import AcceleratorSpec, BootOutcome, BootRequest, EngineSpec, IsaSpec

log = get_logger("vm_cli.compose")

LINUX = "linux"
HEADER_SIZE = 64


@attrs.frozen
class Plugins:
    """The plugin manager, what its plugins registered, and the bus to its event observers."""

    manager: pluggy.PluginManager
    registry: Registry
    events: MachineEventBus

    @classmethod
    def load(cls, manager: pluggy.PluginManager | None = None) -> Plugins:
        """The installed plugins (or those of ``manager``), every registration hook called once."""
        pm = manager if manager is not None else make_plugin_manager()
        return cls(pm, collect_registry(pm), MachineEventBus(pm))

    def choose_engine(self, isa: str, requested: str) -> EngineSpec:
        """Resolve ``--engine``: a registered name, or ``auto`` (``vm_select_engine``, else the highest rank)."""
        registry = self.registry
        if requested != "auto":
            return registry.engine(requested)
        if not registry.engines:
            raise ConfigurationError("no execution engine is installed", hint="install vm-translate")
        chosen = self.manager.hook.vm_select_engine(isa=isa, requested=requested, available=sorted(registry.engines))
        if chosen is not None:
            return registry.engine(chosen)
        return max(registry.engines.values(), key=lambda spec: spec.rank)

    def choose_accelerator(self, isa: str, requested: str) -> AcceleratorSpec | None:
        """The accelerator ``vm_select_accelerator`` chooses for ``isa`` (None: emulate; ``none`` never asks)."""
        if requested == "none":
            return None
        if requested != "auto":
            self.registry.accelerator(requested)  # NotFoundError naming the installed ones
        chosen = self.manager.hook.vm_select_accelerator(isa=isa, requested=requested, host_isa=platform.machine())
        if chosen is None:
            return None
        spec = self.registry.accelerator(chosen)
        if isa not in spec.isas:
            raise UnsupportedError(
                f"accelerator {chosen!r} cannot run {isa} guests (it runs {', '.join(spec.isas) or 'none'})",
                hint="use --accel auto or none",
            )
        return spec

    def isa_name_for(self, machine: int) -> str:
        """The ISA a program for ELF machine ``machine`` is: the registered ``IsaSpec``'s (emulated or not)."""
        return self.registry.isa_for_elf_machine(machine).name  # NotFoundError naming the installed ISAs

    def arch_of(self, isa: str) -> ArchInfo:
        """The :class:`~vm_core.arch.ArchInfo` registered with ``isa`` (``IsaSpec.arch``)."""
        spec = self.registry.isa(isa)
        if spec.arch is None:
            raise ConfigurationError(
                f"the {spec.name} ISA registers no ArchInfo (IsaSpec.arch)",
                hint="an OS personality builds its ABI from the ISA's ArchInfo",
            )
        return spec.arch

    def linux_personality(self, isa: str) -> tuple[Any, dict[str | int, Callable[..., Any]]]:
        """(the Linux ABI registered for ``isa``, built from its ArchInfo; the plugins' system calls over it)."""
        abi = self.registry.syscall_table(LINUX, isa).factory(self.arch_of(isa))
        overrides = {call: spec.handler for call, spec in self.registry.syscall_overrides(LINUX, isa).items()}
        return abi, overrides


@attrs.frozen
class ProgramRequest:
    """What to run and how: ``vm run``'s arguments as values."""

    program: str
    args: tuple[str, ...] = ()
    root: str | None = None
    engine: str = "auto"
    accel: str = "auto"
    engine_settings: Any = None
    max_memory: int | None = None
    envp: tuple[str, ...] | None = None
    std_streams: tuple[int, int, int] = (0, 1, 2)
    #: ``vm run --net``: "host" (sockets of every family, on the host's network) or "none" (AF_UNIX only)
    net: str = "host"


class ComposedVm:
    """One assembled VM: ISA, engine or accelerator, memory, CPU and (for programs) its OS process.

    ``engine_name`` is the engine's name, or the accelerator's when one runs
    the guest (``accelerator`` is then that name too). ``process`` is the
    :class:`~vm_linux.process.LinuxProcess`, or None for a bare machine.
    """

    def __init__(
        self,
        plugins: Plugins,
        *,
        isa: str,
        engine_name: str,
        engine: Any,
        mem: Any,
        cpu: Any,
        process: Any = None,
        frontend: Any = None,
        accelerator: str | None = None,
        owner: Any = None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.plugins = plugins
        self.isa = isa
        self.engine_name = engine_name
        self.engine = engine
        self.mem = mem
        self.cpu = cpu
        self.process = process
        self.frontend = frontend
        self.accelerator = accelerator
        self.owner = owner  # what must be closed after the run (the accelerator's user-mode VM)
        #: Called with the guest path after every ``execve`` (``vm run`` records it in the VM's history).
        self.on_exec: Callable[[str], None] | None = None

    def event(self, name: str, **data: Any) -> None:
        """Tell the ``vm_machine_event`` observers that ``name`` happened to this VM."""
        self.plugins.events.emit(name, {"vm": self.id, "isa": self.isa, **data})

    @property
    def stats(self) -> dict[str, Any]:
        """The engine's (or accelerator's) own counters for ``--stats``."""
        source = self.owner if self.owner is not None else self.engine
        return dict(getattr(source, "stats", None) or {})

    def run(
        self, *, snapshot_at: int | None = None, app: Any = None, vm_id: Any = None, store: Any = None
    ) -> Any:
        """Run the process to its end (a ``ProcessResult``), or to a snapshot after ``snapshot_at`` instructions.

        A snapshot is saved in ``store`` and recorded on ``vm_id`` through
        ``app`` (see :func:`vm_cli.snapshot.run_or_snapshot`); the result is
        then a :class:`~vm_cli.snapshot.SavedSnapshot`.
        """
        if self.process is None:
            raise ConfigurationError("this VM has no program to run (a bare machine runs with Machine.run)")
        self.event("started", instructions=self.cpu.icount)
        from vm_cli.recording import GUARD

        GUARD.forward = self.process.accept_host_signal  # SIGINT/SIGTERM/SIGHUP the guest catches: its own
        try:
            if snapshot_at is None:
                outcome = self.process.run(self.engine, self.cpu)
            else:
                from vm_cli.snapshot import SavedSnapshot, run_or_snapshot

                outcome = run_or_snapshot(
                    self.process, self.engine, self.cpu, snapshot_at, engine_name=self.engine_name,
                    app=app, vm_id=vm_id, store=store,
                )
                if isinstance(outcome, SavedSnapshot):
                    self.event("snapshot", snapshot_id=outcome.snapshot_id, instructions=self.cpu.icount)
                    return outcome
        except BaseException as err:
            self.event("stopped", reason=f"{type(err).__name__}: {err}", instructions=self.cpu.icount)
            raise
        finally:
            GUARD.forward = None
        self.event("exited", exit_status=outcome.exit_status, signal=outcome.signal, instructions=self.cpu.icount)
        return outcome

    def close(self) -> None:
        """Release what the VM holds on the host (the process's files, the accelerator's VM)."""
        if self.process is not None:
            self.process.state.fds.close_all()
        if self.owner is not None:
            self.owner.close()

    def __enter__(self) -> ComposedVm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_program_header(path: str) -> bytes:
    """The first bytes of the program at ``path`` (clear errors for missing, unreadable or odd paths)."""
    try:
        with open(path, "rb") as f:
            return f.read(HEADER_SIZE)
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigurationError(f"{path}: is a directory") from None
    except PermissionError:
        raise ConfigurationError(f"{path}: permission denied") from None
    except (OSError, ValueError) as err:  # a name too long, a NUL byte, ...
        raise ConfigurationError(f"{path!r:.200}: cannot open the program: {getattr(err, 'strerror', None) or err}") from None


def program_isa(plugins: Plugins, path: str) -> tuple[str, Any]:
    """(the ISA name of the program at ``path``, the loader that accepts it)."""
    header = read_program_header(path)
    try:
        loader = plugins.registry.loader_for(header, path)
    except NotFoundError:
        raise BadProgramError(f"{path}: not an ELF file", hint="vm runs static Linux ELF executables") from None
    return plugins.isa_name_for(loader.machine(header)), loader


def _new_process(
    plugins: Plugins, isa: str, mem: Any, request: ProgramRequest, *, loader: Any, hwcap: int | None = None
) -> Any:
    """The Linux process of ``request`` on ``mem``: the registered ABI, the plugins' system calls, ``loader``."""
    from vm_linux.process import LinuxProcess

    abi, overrides = plugins.linux_personality(isa)
    if hwcap is not None:
        abi = attrs.evolve(abi, hwcap_override=hwcap)  # AT_HWCAP describes the CPU the program really runs on
    stdin, stdout, stderr = request.std_streams
    envp: Sequence[str] | None = None if request.envp is None else list(request.envp)
    return LinuxProcess(
        abi, mem, request.program, [request.program, *request.args], envp, root=request.root,
        stdin=stdin, stdout=stdout, stderr=stderr, syscall_overrides=overrides, load_program=loader.factory,
        network=request.net != "none",
        exec_hook=ExecHook(plugins, request, isa),
    )


class ExecHook:
    """``execve`` inside the same host process: the new image on a new address space, composed here.

    The loader that accepts the new file decides its ISA (none: ``ENOEXEC``).
    The same ISA keeps the engine (it re-attaches to the new address space,
    dropping the old image's code; the AOT cache stays valid for the same
    binary); another emulated ISA gets its own front end, engine (the one the
    command line chose) and Linux ABI. A guest on a hardware accelerator
    cannot exec (``ENOEXEC``), nor can an emulated one exec an accelerated ISA.
    """

    def __init__(self, plugins: Plugins, request: ProgramRequest, isa: str) -> None:
        self.plugins = plugins
        self.request = request
        self.isa = isa
        self.vm: ComposedVm | None = None  # set when the VM is assembled: exec updates its parts

    def __call__(self, process: Any, plan: Any, engine: Any, cpu: Any) -> tuple[Any, Any]:
        from vm_linux.guest_errno import GuestErrno
        from vm_mem import AddressSpace

        registry = self.plugins.registry
        try:
            loader = registry.loader_for(plan.data[:HEADER_SIZE], plan.host_path)
            isa = registry.isa(self.plugins.isa_name_for(loader.machine(plan.data[:HEADER_SIZE])))
        except (NotFoundError, BadProgramError):
            raise GuestErrno(errno.ENOEXEC) from None
        vm = self.vm
        if vm is None or vm.accelerator is not None or not isa.emulated:
            log.info("exec_refused", program=plan.guest_path, isa=isa.name, reason="needs a hardware accelerator")
            raise GuestErrno(errno.ENOEXEC)
        mem = AddressSpace(max_memory=self.request.max_memory)
        abi = overrides = None
        if isa.name != self.isa:
            abi, overrides = self.plugins.linux_personality(isa.name)
            frontend, engine_spec, new_engine, new_cpu = _emulated_parts(
                self.plugins, isa, self.request.engine, self.request.engine_settings, mem
            )
        else:
            from vm_translate.cpu import CpuState

            frontend, engine_spec, new_engine = vm.frontend, None, engine
            new_cpu = CpuState(isa.name, frontend.layout.size, mem)
        process.replace_image(plan, mem, loader.factory, abi=abi, syscall_overrides=overrides)
        process.init_cpu(new_cpu)
        new_cpu.icount = cpu.icount
        if new_engine is not engine and hasattr(engine, "close"):
            engine.close()
        self.isa = isa.name
        vm.isa, vm.mem, vm.cpu, vm.engine, vm.frontend = isa.name, mem, new_cpu, new_engine, frontend
        if engine_spec is not None:
            vm.engine_name = engine_spec.name
        vm.event("exec", program=plan.guest_path, argv=[os.fsdecode(arg) for arg in plan.argv])
        if vm.on_exec is not None:
            vm.on_exec(plan.guest_path)
        return new_engine, new_cpu


def _emulated_parts(plugins: Plugins, isa: IsaSpec, engine: str, settings: Any, mem: Any) -> tuple[Any, Any, Any, Any]:
    """(front end, engine spec, engine, cpu) for ``isa`` emulated on ``mem``."""
    from vm_translate.cpu import CpuState

    frontend = isa.factory()
    engine_spec = plugins.choose_engine(isa.name, engine)
    return frontend, engine_spec, engine_spec.factory(frontend, settings), CpuState(isa.name, frontend.layout.size, mem)


def compose_program(plugins: Plugins, request: ProgramRequest) -> ComposedVm:
    """A VM with ``request.program`` loaded in a Linux process, ready to :meth:`~ComposedVm.run`."""
    isa_name, loader = program_isa(plugins, request.program)
    accelerator = plugins.choose_accelerator(isa_name, request.accel)
    if accelerator is not None:
        return _compose_accelerated(plugins, request, isa_name, accelerator, loader)
    isa = plugins.registry.isa(isa_name)
    if not isa.emulated:
        _raise_no_accelerator(plugins, request, isa.name)
    from vm_mem import AddressSpace

    mem = AddressSpace(max_memory=request.max_memory)
    frontend, engine_spec, engine, cpu = _emulated_parts(plugins, isa, request.engine, request.engine_settings, mem)
    process = _new_process(plugins, isa.name, mem, request, loader=loader)
    process.load()
    process.init_cpu(cpu)
    vm = ComposedVm(
        plugins, isa=isa.name, engine_name=engine_spec.name, engine=engine, mem=mem, cpu=cpu,
        process=process, frontend=frontend,
    )
    process.exec_hook.vm = vm
    vm.event("created", engine=engine_spec.name, program=request.program, argv=[request.program, *request.args])
    return vm


def _raise_no_accelerator(plugins: Plugins, request: ProgramRequest, isa: str) -> None:
    """No front end emulates ``isa`` and no accelerator was chosen: say which check failed."""
    if request.accel == "auto":
        for spec in plugins.registry.accelerators.values():
            if isa in spec.isas:
                spec.probe()  # raises AcceleratorUnavailable naming the failed check
    runs = sorted(name for name, spec in plugins.registry.accelerators.items() if isa in spec.isas)
    hint = f"use --accel {runs[0]} (or auto) on a host where it works" if runs else "install a plugin for it"
    raise UnsupportedError(
        f"{request.program}: {isa} programs run only through a hardware accelerator, and none was selected",
        hint=hint,
    )


def _compose_accelerated(
    plugins: Plugins, request: ProgramRequest, isa: str, spec: AcceleratorSpec, loader: Any
) -> ComposedVm:
    if request.max_memory is not None:
        raise UnsupportedError("--max-memory: programs run through a hardware accelerator are not bounded by it")
    if spec.user_mode is None:
        raise UnsupportedError(f"accelerator {spec.name!r} cannot run user-mode programs", hint="use --accel none")
    spec.probe()
    guest = spec.user_mode(isa, plugins.arch_of(isa))
    try:
        process = _new_process(plugins, isa, guest.mem, request, hwcap=guest.hwcap, loader=loader)
        try:
            entry, sp = process.load()
            process.init_cpu(guest.cpu)
        except BaseException:
            process.close()
            raise
    except BaseException:
        guest.close()
        raise
    process.state.forkable = False  # the accelerator's VM is not the host's to copy
    log.info("accelerated_process_loaded", accelerator=spec.name, entry=hex(entry), sp=hex(sp))
    vm = ComposedVm(
        plugins, isa=isa, engine_name=spec.name, engine=guest.engine, mem=guest.mem, cpu=guest.cpu,
        process=process, accelerator=spec.name, owner=guest,
    )
    vm.event("created", accelerator=spec.name, program=request.program, argv=[request.program, *request.args])
    return vm


def compose_restored(plugins: Plugins, snapshot_id: str, snapshot: Any, engine: str | None) -> ComposedVm:
    """A VM in the state of the Linux-process ``snapshot`` (vm-cli's :class:`~vm_cli.snapshot.Snapshot`)."""
    from vm_cli.snapshot import restore_linux

    isa = plugins.registry.isa(snapshot.isa)
    frontend = isa.factory()
    engine_spec = plugins.choose_engine(isa.name, engine or snapshot.engine)
    abi, overrides = plugins.linux_personality(isa.name)
    process, cpu = restore_linux(snapshot, frontend.layout.size, abi=abi, syscall_overrides=overrides)
    try:
        engine_object = engine_spec.factory(frontend, None)
    except BaseException:
        process.state.fds.close_all()
        raise
    vm = ComposedVm(
        plugins, isa=isa.name, engine_name=engine_spec.name, engine=engine_object, mem=process.mem, cpu=cpu,
        process=process, frontend=frontend,
    )
    process.exec_hook = ExecHook(plugins, ProgramRequest(program=process.program_path, engine=engine_spec.name), isa.name)
    process.exec_hook.vm = vm
    vm.event("created", engine=engine_spec.name, program=process.program_path, argv=list(process.argv))
    vm.event("restored", snapshot_id=snapshot_id, instructions=cpu.icount)
    return vm


def compose_machine(
    plugins: Plugins, isa_name: str, *, engine: str = "auto", settings: Any = None, mem: Any = None
) -> ComposedVm:
    """A bare machine (no OS): ``isa_name``'s front end, an engine, a CPU on ``mem`` (default a new address space)."""
    from vm_mem import AddressSpace

    isa = plugins.registry.isa(isa_name)
    space = mem if mem is not None else AddressSpace()
    frontend, engine_spec, engine_object, cpu = _emulated_parts(plugins, isa, engine, settings, space)
    vm = ComposedVm(
        plugins, isa=isa.name, engine_name=engine_spec.name, engine=engine_object, mem=space, cpu=cpu,
        frontend=frontend,
    )
    vm.event("created", engine=engine_spec.name, program=None, argv=[])
    return vm


class ComposedBoot:
    """An operating system kernel ready to boot on an accelerator's ``system_mode`` (``vm boot``).

    ``machine`` is the context the accelerator's ``system_mode(isa, request)``
    returned; :meth:`boot` runs it to the guest's end and tells the
    ``vm_machine_event`` observers ``started`` and ``exited`` (or ``stopped``).
    """

    def __init__(self, plugins: Plugins, *, isa: str, accelerator: str, machine: Any) -> None:
        self.id = uuid.uuid4().hex
        self.plugins = plugins
        self.isa = isa
        self.accelerator = accelerator
        self.machine = machine

    def event(self, name: str, **data: Any) -> None:
        """Tell the ``vm_machine_event`` observers that ``name`` happened to this VM."""
        self.plugins.events.emit(name, {"vm": self.id, "isa": self.isa, **data})

    def boot(self, exit_status: Callable[[BootOutcome], int]) -> BootOutcome:
        """Boot the kernel and return how the guest ended; ``exit_status`` is what ``exited`` reports for it."""
        self.event("started", instructions=0)
        try:
            outcome: BootOutcome = self.machine.boot()
        except BaseException as err:
            self.event("stopped", reason=f"{type(err).__name__}: {err}", instructions=0)
            raise
        self.event("exited", exit_status=exit_status(outcome), signal=None, instructions=0)
        return outcome

    def close(self) -> None:
        """Release the accelerator."""
        self.machine.close()

    def __enter__(self) -> ComposedBoot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def compose_boot(plugins: Plugins, isa: str, requested: str, request: BootRequest) -> ComposedBoot:
    """The kernel of ``request`` on the accelerator chosen for an ``isa`` guest (``vm boot``).

    ``vm_select_accelerator`` chooses (``--accel auto`` or a name; ``none`` is
    refused: nothing emulates a whole machine); the chosen spec's probe must
    pass and it must offer ``system_mode``, which checks the request and
    opens the accelerator. ``created`` is emitted.
    """
    if requested == "none":
        raise ConfigurationError("vm boot needs a hardware accelerator", hint="use --accel kvm")
    if requested != "auto" and requested not in plugins.registry.accelerators:
        known = ", ".join(sorted(plugins.registry.accelerators)) or "none"
        raise ConfigurationError(f"no accelerator named {requested!r} (registered: {known})")
    spec = plugins.choose_accelerator(isa, requested)
    if spec is None:
        raise AcceleratorUnavailable(
            requested, f"none usable for {isa} guests on this {platform.machine()} host", hint="see `vm plugins`"
        )
    if spec.system_mode is None:
        raise UnsupportedError(
            f"accelerator {spec.name!r} cannot boot an operating system (it registers no system_mode)",
            hint="choose another with --accel (see `vm plugins`)",
        )
    spec.probe()
    machine = spec.system_mode(isa, request)
    composed = ComposedBoot(plugins, isa=isa, accelerator=spec.name, machine=machine)
    composed.event("created", accelerator=spec.name, program=request.kernel, argv=[])
    return composed


__all__ = [
    "ComposedBoot",
    "ComposedVm",
    "Plugins",
    "ProgramRequest",
    "compose_boot",
    "compose_machine",
    "compose_program",
    "compose_restored",
    "program_isa",
    "read_program_header",
]
