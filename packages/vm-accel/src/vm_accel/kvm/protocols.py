"""What each KVM object needs of the one that made it, as protocols, so the modules import only downwards.

The objects form a tree: the device (:class:`vm_accel.kvm.system.Kvm`) makes
VMs, a VM (:class:`vm_accel.kvm.vm.KvmVm`) makes vCPUs, and a vCPU
(:class:`vm_accel.kvm.vcpu.KvmVcpu`) runs in the run loop
(:func:`vm_accel.kvm.run_loop.run_vcpu`). Each child sees its parent through
one of these protocols instead of its class:

* :class:`KvmDevice`: the device as a VM and its vCPUs see it;
* :class:`VcpuParent`: the VM as its vCPUs see it;
* :class:`RunnableVcpu`: the vCPU as the run loop sees it.

The module order is therefore system -> vm -> vcpu -> run_loop -> protocols.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from vm_accel.kvm import structures as st
from vm_accel.kvm.io_bus import DeviceVcpu, IoBus
from vm_accel.kvm.memory import GuestPhysicalMemory
from vm_accel.kvm.state import CpuidEntry


class KvmDevice(Protocol):
    """The open KVM device: its capabilities, CPUID and the size of a vCPU's ``kvm_run`` mapping."""

    @property
    def vcpu_mmap_size(self) -> int: ...

    def check_extension(self, capability: int) -> int:
        """``KVM_CHECK_EXTENSION``: 0 when unsupported, else a capability-specific positive value."""
        ...

    def supported_cpuid(self) -> tuple[CpuidEntry, ...]:
        """``KVM_GET_SUPPORTED_CPUID``: the CPUID leaves KVM can expose to a guest."""
        ...


class VcpuParent(Protocol):
    """The VM a vCPU belongs to: the device, guest-physical memory and the I/O bus."""

    @property
    def kvm(self) -> KvmDevice: ...

    @property
    def memory(self) -> GuestPhysicalMemory: ...

    @property
    def io(self) -> IoBus: ...


class RunnableVcpu(DeviceVcpu, Protocol):
    """A vCPU as the run loop drives it: ``KVM_RUN`` on ``fd``, the ``kvm_run`` page, stop requests.

    It is also the :class:`~vm_accel.kvm.io_bus.DeviceVcpu` the loop hands to port and MMIO handlers.
    """

    @property
    def fd(self) -> int: ...

    @property
    def io(self) -> IoBus: ...

    @property
    def run_page(self) -> st.KvmRun: ...

    def run_data(self, offset: int, length: int) -> memoryview: ...

    def set_signal_mask(self, blocked: Iterable[int]) -> None: ...

    def begin_run(self) -> None:
        """The calling thread is about to run the vCPU."""
        ...

    def take_stop(self) -> tuple[bool, object]:
        """(whether a stop was requested, its value); clears the request."""
        ...

    def consume_interrupt(self) -> bool:
        """Take a pending SIGINT; True when it was a real interrupt, not a kick."""
        ...

    def end_run(self) -> None:
        """The run loop returned."""
        ...
