"""The KVM backend of vm, in pure Python (fcntl.ioctl, mmap and ctypes over /dev/kvm).

Modules: :mod:`~vm_accel.kvm.ioctl_numbers` and :mod:`~vm_accel.kvm.structures`
(the kernel ABI), :mod:`~vm_accel.kvm.ioctl` (``ioctl`` on KVM fds),
:mod:`~vm_accel.kvm.system` (the device), :mod:`~vm_accel.kvm.vm`
(a VM, its memory and I/O bus), :mod:`~vm_accel.kvm.vcpu` (registers),
:mod:`~vm_accel.kvm.run_loop` (KVM_RUN and exits), :mod:`~vm_accel.kvm.protocols`
(what each of those needs of its parent, so they import only downwards), :mod:`~vm_accel.kvm.long_mode`
with :mod:`~vm_accel.kvm.page_tables` and :mod:`~vm_accel.kvm.kernel_stubs`
(64-bit mode and a CPL 0 stub kernel).
"""

from vm_accel.kvm.errors import KvmExitError, KvmIoctlError
from vm_accel.kvm.io_bus import DeviceVcpu, IoBus, MmioHandler, PortHandler
from vm_accel.kvm.long_mode import ExceptionFrame, LongModeLayout, LongModeSystem, setup_long_mode
from vm_accel.kvm.memory import GuestMemoryRegion, GuestPhysicalMemory
from vm_accel.kvm.page_tables import PageTableBuilder, identity_map
from vm_accel.kvm.run_loop import StopKind, VcpuStop
from vm_accel.kvm.state import CpuidEntry, DescriptorTable, FpuState, Registers, Segment, SpecialRegisters
from vm_accel.kvm.system import DEFAULT_DEVICE_PATH, Kvm, probe_kvm
from vm_accel.kvm.vcpu import KvmVcpu
from vm_accel.kvm.vm import KvmVm

__all__ = [
    "DEFAULT_DEVICE_PATH",
    "CpuidEntry",
    "DescriptorTable",
    "DeviceVcpu",
    "ExceptionFrame",
    "FpuState",
    "GuestMemoryRegion",
    "GuestPhysicalMemory",
    "IoBus",
    "Kvm",
    "KvmExitError",
    "KvmIoctlError",
    "KvmVcpu",
    "KvmVm",
    "LongModeLayout",
    "LongModeSystem",
    "MmioHandler",
    "PageTableBuilder",
    "PortHandler",
    "Registers",
    "Segment",
    "SpecialRegisters",
    "StopKind",
    "VcpuStop",
    "identity_map",
    "probe_kvm",
    "setup_long_mode",
]
