"""A KVM virtual machine: its guest-physical memory, its I/O bus and its vCPUs.

Made by :meth:`vm_accel.kvm.system.Kvm.create_vm`; it sees the device as a
:class:`vm_accel.kvm.protocols.KvmDevice`. Guest RAM is added with
:meth:`KvmVm.add_memory` (anonymous host memory registered with
``KVM_SET_USER_MEMORY_REGION``) and reached through :attr:`KvmVm.memory`;
devices attach to :attr:`KvmVm.io`.
"""

from __future__ import annotations

import os

from vm_core.errors import ConfigurationError
from vm_core.logging import get_logger

from vm_accel.kvm import ioctl_numbers as nr
from vm_accel.kvm import structures as st
from vm_accel.kvm.errors import KvmIoctlError
from vm_accel.kvm.io_bus import IoBus
from vm_accel.kvm.ioctl import kvm_ioctl
from vm_accel.kvm.memory import GuestMemoryRegion, GuestPhysicalMemory
from vm_accel.kvm.protocols import KvmDevice
from vm_accel.kvm.vcpu import KvmVcpu

log = get_logger("vm_accel.kvm.vm")

# Three pages just below 4 GiB that Intel VMX needs for real-mode emulation (the same place QEMU uses).
DEFAULT_TSS_ADDRESS = 0xFFFB_D000


class KvmVm:
    """One KVM virtual machine."""

    def __init__(self, kvm: KvmDevice, fd: int, *, strict_io: bool = True) -> None:
        self.kvm = kvm
        self.fd = fd
        self.memory = GuestPhysicalMemory()
        self.io = IoBus(strict=strict_io)
        self.vcpus: list[KvmVcpu] = []
        self._next_slot = 0
        if kvm.check_extension(nr.KVM_CAP_SET_TSS_ADDR):
            kvm_ioctl(self.fd, nr.KVM_SET_TSS_ADDR, DEFAULT_TSS_ADDRESS, name="KVM_SET_TSS_ADDR")
        max_slots = kvm.check_extension(nr.KVM_CAP_NR_MEMSLOTS)
        self.max_memory_slots = max_slots if max_slots > 0 else 32

    def add_memory(self, guest_phys: int, size: int, *, readonly: bool = False) -> GuestMemoryRegion:
        """Back ``size`` bytes at ``guest_phys`` with fresh zeroed RAM; page-aligned, not overlapping.

        ``readonly`` RAM makes guest stores exit as MMIO writes (ROM).
        """
        if self._next_slot >= self.max_memory_slots:
            raise ConfigurationError(f"this KVM allows at most {self.max_memory_slots} memory regions")
        region = GuestMemoryRegion(self._next_slot, guest_phys, size, readonly=readonly)
        try:
            self.memory.add(region)
        except ConfigurationError:
            region.close()
            raise
        descriptor = st.KvmUserspaceMemoryRegion(
            slot=region.slot,
            flags=nr.KVM_MEM_READONLY if readonly else 0,
            guest_phys_addr=guest_phys,
            memory_size=size,
            userspace_addr=region.host_address,
        )
        try:
            kvm_ioctl(self.fd, nr.KVM_SET_USER_MEMORY_REGION, descriptor, name="KVM_SET_USER_MEMORY_REGION")
        except KvmIoctlError:
            self.memory.remove(region)
            region.close()
            raise
        self._next_slot += 1
        log.debug("memory_added", slot=region.slot, guest_phys=hex(guest_phys), size=hex(size), readonly=readonly)
        return region

    def create_vcpu(self) -> KvmVcpu:
        """``KVM_CREATE_VCPU`` with the next index; its CPUID is KVM's supported set."""
        index = len(self.vcpus)
        fd = kvm_ioctl(self.fd, nr.KVM_CREATE_VCPU, index, name="KVM_CREATE_VCPU")
        try:
            vcpu = KvmVcpu(self, index, fd)
        except BaseException:
            os.close(fd)
            raise
        self.vcpus.append(vcpu)
        return vcpu

    def close(self) -> None:
        """Close the vCPUs and the VM, then unmap guest RAM."""
        for vcpu in self.vcpus:
            vcpu.close()
        self.vcpus.clear()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        for region in list(self.memory):
            self.memory.remove(region)
            region.close()

    def __enter__(self) -> KvmVm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
