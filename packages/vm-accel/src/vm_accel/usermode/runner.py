"""One KVM VM ready to run a user-mode process: memory, vCPU and engine, handed to an OS personality.

:class:`KvmUserMode` builds one KVM VM per program (the gVisor KVM platform
model): one RAM region holds the CPL 0 system area of
:func:`vm_accel.kvm.setup_long_mode`, the page tables and every page of the
process. It exposes what the composition root (vm-cli's
:mod:`vm_cli.compose`) needs to run a process on it exactly as it runs one on
an emulator:

* ``mem``: vm-mem's :class:`~vm_mem.AddressSpace` over a
  :class:`~vm_accel.usermode.address_space.KvmPageBacking` (guest frames
  behind the page tables), the process's memory (vm-linux loads the ELF,
  builds the stack and serves system calls on it);
* ``cpu``: a :class:`~vm_accel.usermode.engine.KvmUserCpu` (the registers of
  x86-64's :class:`~vm_core.arch.ArchInfo`, which the composition root hands
  over from the registered ``IsaSpec.arch``);
* ``engine``: a :class:`~vm_accel.usermode.engine.KvmUserEngine`, whose
  ``run(cpu, budget)`` returns a ``StopReason`` at every system call, like
  the emulating engines, so ``LinuxProcess.run(engine, cpu)`` drives it;
* ``hwcap``: the ``AT_HWCAP`` of the CPU the program really runs on.

vm-accel's plugin registers :func:`open_user_mode` as the ``kvm``
accelerator's ``user_mode`` factory; vm-accel never builds the process itself.
"""

from __future__ import annotations

from typing import Any

from vm_core.arch import ArchInfo
from vm_core.errors import UnsupportedError
from vm_core.logging import get_logger

from vm_accel.kvm.long_mode import LongModeLayout, setup_long_mode
from vm_accel.kvm.system import DEFAULT_DEVICE_PATH, Kvm
from vm_accel.usermode.address_space import RESERVED_TOP, KvmPageBacking, kvm_address_space
from vm_accel.usermode.cpu_setup import configure_user_vcpu, guest_hwcap
from vm_accel.usermode.engine import KvmUserCpu, KvmUserEngine
from vm_accel.usermode.frames import FrameAllocator
from vm_accel.usermode.page_tables import UserPageTables

log = get_logger("vm_accel.usermode.runner")

#: Guest RAM (reserved, not committed: host memory is used only as the guest touches it).
DEFAULT_RAM_SIZE = 4 << 30
ISA = "x86_64"


class KvmUserMode:
    """One KVM VM for one x86-64 user-mode process (see the module docstring); :meth:`close` it after."""

    def __init__(
        self, arch: ArchInfo, *, ram_size: int = DEFAULT_RAM_SIZE, device_path: str = DEFAULT_DEVICE_PATH
    ) -> None:
        if arch.name != ISA:
            raise UnsupportedError(f"KVM runs {ISA} user-mode programs, not {arch.name}")
        self.arch = arch
        self.kvm = Kvm(device_path)
        try:
            self.vm = self.kvm.create_vm()
            region = self.vm.add_memory(0, ram_size)
            self.vcpu = self.vm.create_vcpu()
            layout = LongModeLayout(base=0, identity_map_size=1 << 21)
            self.system = setup_long_mode(self.vcpu, layout)
            frames = FrameAllocator(region, RESERVED_TOP)
            self.tables = UserPageTables(region, frames)
            self.xcr0 = configure_user_vcpu(self.vcpu, layout, self.tables)
            self.backing = KvmPageBacking(region, frames, self.tables)
            self.mem = kvm_address_space(self.backing)
            self.hwcap: int | None = guest_hwcap(self.kvm.supported_cpuid())
            self.cpu = KvmUserCpu(self.vcpu, self.mem, arch)
            self.engine = KvmUserEngine(self.vcpu, self.system, self.mem, arch)
        except BaseException:
            self.close()
            raise
        log.debug("kvm_user_mode_ready", ram=ram_size, frames=frames.in_use)

    @property
    def stats(self) -> dict[str, Any]:
        """The engine's counters (vCPU exits, system calls) for ``vm run --stats``."""
        return dict(self.engine.stats)

    def close(self) -> None:
        """Release the VM, its memory and the device (safe to call twice)."""
        mem = getattr(self, "mem", None)
        if mem is not None:
            mem.clear()  # every page view of guest RAM goes, and every frame back
            self.backing.close()
        tables = getattr(self, "tables", None)
        if tables is not None:
            tables.release()
        vm = getattr(self, "vm", None)
        if vm is not None:
            vm.close()
        self.kvm.close()

    def __enter__(self) -> KvmUserMode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_user_mode(
    isa: str, arch: ArchInfo, *, ram_size: int = DEFAULT_RAM_SIZE, device_path: str = DEFAULT_DEVICE_PATH
) -> KvmUserMode:
    """The ``kvm`` accelerator's ``user_mode`` factory: a KVM VM ready for one ``isa`` process.

    ``arch`` is the ISA's :class:`~vm_core.arch.ArchInfo` (the registered ``IsaSpec.arch``): the CPU's
    register file and the engine's register mapping come from it.
    """
    if isa != ISA or arch.name != ISA:
        raise UnsupportedError(f"KVM runs {ISA} user-mode programs, not {isa}")
    return KvmUserMode(arch, ram_size=ram_size, device_path=device_path)
