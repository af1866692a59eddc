"""Static x86-64 Linux programs at hardware speed in a KVM guest (user mode, the gVisor KVM model).

Modules: :mod:`~vm_accel.usermode.frames` (guest-physical frames),
:mod:`~vm_accel.usermode.page_tables` (the process's x86-64 page tables),
:mod:`~vm_accel.usermode.address_space` (vm-mem's AddressSpace backed by KVM RAM),
:mod:`~vm_accel.usermode.cpu_setup` (CR3, segments, SSE/AVX, FPU images),
:mod:`~vm_accel.usermode.engine` (CPL 3 runs, system calls and faults as stops),
:mod:`~vm_accel.usermode.runner` (:class:`KvmUserMode`: the VM, memory, CPU and engine one process runs on).
"""

from vm_accel.usermode.address_space import KvmPageBacking, kvm_address_space
from vm_accel.usermode.engine import CpuException, KvmUserCpu, KvmUserEngine
from vm_accel.usermode.frames import FrameAllocator, OutOfGuestMemory
from vm_accel.usermode.page_tables import UserPageTables
from vm_accel.usermode.runner import DEFAULT_RAM_SIZE, KvmUserMode, open_user_mode

__all__ = [
    "DEFAULT_RAM_SIZE",
    "CpuException",
    "FrameAllocator",
    "KvmPageBacking",
    "KvmUserCpu",
    "KvmUserEngine",
    "KvmUserMode",
    "OutOfGuestMemory",
    "UserPageTables",
    "kvm_address_space",
    "open_user_mode",
]
