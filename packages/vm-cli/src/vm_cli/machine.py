"""The Python embedding API: a guest CPU and its memory, Unicorn-style.

>>> from vm_cli import Machine
>>> m = Machine("riscv64")
>>> m.mem_map(0x10000, 0x1000)
>>> m.mem_write(0x10000, bytes.fromhex("9305a002"))   # addi a1, zero, 42
>>> stop = m.run(begin=0x10000, count=1)
>>> m.reg_read("a1")
42

A :class:`Machine` is assembled by the same composition root as ``vm run``
(:func:`vm_cli.compose.compose_machine`): the ISA's front end, an engine
(``auto`` asks the plugins, else picks the fastest installed), a vm-mem
address space; ``vm_machine_event`` observers see it ``created``, each run
``started`` and ``stopped`` (with the stop kind), ``snapshot`` and
``restored``. It runs raw code with no operating system: an ``ecall`` stops
the run with ``StopKind.SYSCALL`` and the caller decides what it means
(``vm_linux`` is the Linux answer).
"""

from __future__ import annotations

import os
from typing import Any

import pluggy
from vm_core.arch import ArchInfo, RegisterInfo, RegisterValueError, UnknownRegister
from vm_core.errors import ConfigurationError, VmError
from vm_core.types import StopKind, StopReason
from vm_mem import PROT_EXEC, PROT_READ, PROT_WRITE, AddressSpace

from vm_cli.compose import Plugins, compose_machine

PROT_ALL = PROT_READ | PROT_WRITE | PROT_EXEC


class Machine:
    """One guest CPU with its address space (see the module docstring)."""

    def __init__(
        self,
        isa: str = "riscv64",
        *,
        engine: str = "auto",
        plugin_manager: pluggy.PluginManager | None = None,
        settings: Any = None,
        mem: AddressSpace | None = None,
    ) -> None:
        plugins = Plugins.load(plugin_manager)
        self.vm = compose_machine(plugins, isa, engine=engine, settings=settings, mem=mem)
        self.plugin_manager = plugins.manager
        self.registry = plugins.registry
        self.isa = self.registry.isa(self.vm.isa)
        self.engine_spec = self.registry.engine(self.vm.engine_name)
        self.frontend = self.vm.frontend
        self.mem = self.vm.mem
        self.layout = self.frontend.layout
        if self.isa.arch is None:
            raise ConfigurationError(f"the {self.isa.name} front end registers no ArchInfo (IsaSpec.arch)")
        #: The ISA's facts: register names, indices, widths (see :mod:`vm_core.arch`).
        self.arch: ArchInfo = self.isa.arch
        self.cpu = self.vm.cpu
        self.engine = self.vm.engine

    # -- memory ----------------------------------------------------------------
    def mem_map(self, address: int, size: int, perms: int = PROT_ALL) -> None:
        """Map ``size`` bytes (whole pages) at page-aligned ``address`` with ``perms`` (PROT_* bits)."""
        self.mem.map(address, size, perms)

    def mem_unmap(self, address: int, size: int) -> None:
        self.mem.unmap(address, size)

    def mem_protect(self, address: int, size: int, perms: int) -> None:
        self.mem.protect(address, size, perms)

    def mem_read(self, address: int, size: int) -> bytes:
        """Read guest memory (needs read permission; raises MemoryFault otherwise)."""
        return bytes(self.mem.read(address, size))

    def mem_write(self, address: int, data: bytes) -> None:
        """Write guest memory as the host does: any mapped page, whatever its permissions.

        Translations of the pages written are dropped, as for a guest store.
        """
        self.mem.poke(address, bytes(data))

    # -- registers -------------------------------------------------------------
    def _register(self, name: str | int) -> RegisterInfo | None:
        """The register ``name`` names (any of its names, or its index in the register file); None for the pc."""
        if name in (self.arch.pc_name, "pc"):
            return None
        if not isinstance(name, (str, int)) or isinstance(name, bool):
            raise UnknownRegister(f"a register is named by a str or an int, not {type(name).__name__}")
        return self.arch.register(name)

    def reg_read(self, name: str | int) -> int:
        """A register by name (``"a0"``, ``"x10"``, ``"f3"``, ``"fflags"``, ``"pc"``) or register-file index.

        Raises :class:`~vm_core.arch.UnknownRegister` (a ConfigurationError) for a name the ISA does not have.
        """
        register = self._register(name)
        if register is None:
            return self.cpu.pc
        return 0 if register.hardwired_zero else self.cpu.regs[register.index]

    def reg_write(self, name: str | int, value: int) -> None:
        """Set a register; ``value`` must fit its width (negative values are written in two's complement).

        Raises :class:`~vm_core.arch.UnknownRegister` for an unknown name and
        :class:`~vm_core.arch.RegisterValueError` (a ConfigurationError) for a value that does not fit.
        Writes to a hard-wired zero register (RISC-V ``x0``) are dropped, as the hardware does.
        """
        if not isinstance(value, int) or isinstance(value, bool):
            raise RegisterValueError(f"register values are ints, not {type(value).__name__}")
        register = self._register(name)
        if register is None:
            self.cpu.pc = self.arch.pc.fit(value)
            return
        stored = register.fit(value)
        if not register.hardwired_zero:
            self.cpu.regs[register.index] = stored

    @property
    def pc(self) -> int:
        return self.cpu.pc

    @pc.setter
    def pc(self, value: int) -> None:
        self.reg_write(self.arch.pc_name, value)

    @property
    def icount(self) -> int:
        """Guest instructions retired so far."""
        return self.cpu.icount

    # -- running ---------------------------------------------------------------
    def run(self, begin: int | None = None, until: int | None = None, count: int | None = None) -> StopReason:
        """Run from ``begin`` (default: the current pc).

        Stops after ``count`` instructions, when the pc reaches ``until``
        (checked at every instruction: the run single-steps when ``until``
        is given), or earlier at a system call, breakpoint or fault; the
        returned :class:`~vm_core.types.StopReason` says which. The CPU state
        is exact at every stop.
        """
        if begin is not None:
            self.pc = begin
        if count is not None and count < 0:
            raise ConfigurationError("count must be >= 0")
        budget = count if count is not None else 2**62
        self.vm.event("started", instructions=self.cpu.icount, pc=self.cpu.pc)
        stop = self._run(until, budget)
        self.vm.event("stopped", reason=stop.kind.value, instructions=self.cpu.icount, pc=stop.pc)
        return stop

    def _run(self, until: int | None, budget: int) -> StopReason:
        if until is None:
            return self.engine.run(self.cpu, budget)
        start = self.cpu.icount
        while True:
            if self.cpu.pc == until:
                return StopReason(StopKind.UNTIL, self.cpu.pc)
            if self.cpu.icount - start >= budget:
                return StopReason(StopKind.BUDGET, self.cpu.pc)
            stop = self.engine.run(self.cpu, 1)
            if stop.kind is not StopKind.BUDGET:
                return stop

    # -- snapshots -------------------------------------------------------------
    def snapshot(self, home: str | os.PathLike[str] | None = None) -> str:
        """Save registers, pc, instructions retired and memory in the snapshot store; return the id.

        ``home`` is the store's directory (default: the VM home, see :mod:`vm_cli.snapshot`).
        """
        from vm_cli.snapshot import Snapshot, SnapshotStore, capture_cpu, capture_memory

        if not isinstance(self.mem, AddressSpace):
            raise ConfigurationError("only a machine on a vm-mem AddressSpace can be snapshotted")
        image = Snapshot(
            kind="machine", isa=self.isa.name, engine=self.engine_spec.name,
            cpu=capture_cpu(self.cpu), memory=capture_memory(self.mem),
        )
        snapshot_id = SnapshotStore(home).save(image).snapshot_id
        self.vm.event("snapshot", snapshot_id=snapshot_id, instructions=self.cpu.icount)
        return snapshot_id

    @classmethod
    def restore(
        cls,
        snapshot_id: str,
        *,
        home: str | os.PathLike[str] | None = None,
        engine: str | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
        settings: Any = None,
    ) -> Machine:
        """A new machine in the state :meth:`snapshot` saved (verified first: ``SnapshotError`` if damaged).

        ``engine`` defaults to the engine the snapshot was taken with.
        """
        from vm_cli.snapshot import SnapshotStore, build_address_space, restore_cpu

        snapshot = SnapshotStore(home).load(snapshot_id).snapshot
        mem = build_address_space(snapshot.memory)
        machine = cls(
            snapshot.isa, engine=engine or snapshot.engine, plugin_manager=plugin_manager, settings=settings, mem=mem
        )
        restore_cpu(machine.cpu, snapshot.cpu)
        machine.vm.event("restored", snapshot_id=snapshot_id, instructions=machine.cpu.icount)
        return machine

    def emu_start(self, begin: int, until: int, timeout: int = 0, count: int = 0) -> StopReason:
        """Unicorn's spelling of :meth:`run` (``count=0`` means no limit; ``timeout`` is not supported)."""
        if timeout:
            raise VmError("emu_start(timeout=...) is not supported; use count=")
        return self.run(begin=begin, until=until, count=count or None)
