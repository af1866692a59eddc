"""ioctl request numbers and constants of the Linux KVM API (linux/kvm.h, asm/kvm.h for x86).

The request numbers are computed the way ``<asm-generic/ioctl.h>`` computes
them (``_IO``/``_IOR``/``_IOW``/``_IOWR``: direction, size, type and number
packed into 32 bits), with the argument sizes taken from the ctypes
structures in :mod:`vm_accel.kvm.structures`, so a wrong structure layout
also shows up as a wrong request number (which the kernel rejects with
``ENOTTY``).
"""

from __future__ import annotations

import ctypes

from vm_accel.kvm import structures as st

_IOC_NRBITS = 8
_IOC_TYPEBITS = 8
_IOC_SIZEBITS = 14
_IOC_NRSHIFT = 0
_IOC_TYPESHIFT = _IOC_NRSHIFT + _IOC_NRBITS
_IOC_SIZESHIFT = _IOC_TYPESHIFT + _IOC_TYPEBITS
_IOC_DIRSHIFT = _IOC_SIZESHIFT + _IOC_SIZEBITS

IOC_NONE = 0
IOC_WRITE = 1
IOC_READ = 2


def ioc(direction: int, kind: int, number: int, size: int) -> int:
    """``_IOC(dir, type, nr, size)`` of ``<asm-generic/ioctl.h>``."""
    if not 0 <= size < (1 << _IOC_SIZEBITS):
        raise ValueError(f"ioctl argument size {size} does not fit {_IOC_SIZEBITS} bits")
    return (
        (direction << _IOC_DIRSHIFT)
        | (kind << _IOC_TYPESHIFT)
        | (number << _IOC_NRSHIFT)
        | (size << _IOC_SIZESHIFT)
    )


def io(kind: int, number: int) -> int:
    """``_IO(type, nr)``: no argument structure."""
    return ioc(IOC_NONE, kind, number, 0)


def ior(kind: int, number: int, argument: type[ctypes.Structure] | int) -> int:
    """``_IOR(type, nr, argtype)``: the kernel writes the argument."""
    return ioc(IOC_READ, kind, number, _size(argument))


def iow(kind: int, number: int, argument: type[ctypes.Structure] | int) -> int:
    """``_IOW(type, nr, argtype)``: the kernel reads the argument."""
    return ioc(IOC_WRITE, kind, number, _size(argument))


def iowr(kind: int, number: int, argument: type[ctypes.Structure] | int) -> int:
    """``_IOWR(type, nr, argtype)``: the kernel reads and writes the argument."""
    return ioc(IOC_READ | IOC_WRITE, kind, number, _size(argument))


def _size(argument: type[ctypes.Structure] | int) -> int:
    return argument if isinstance(argument, int) else ctypes.sizeof(argument)


KVMIO = 0xAE

# System ioctls (on the /dev/kvm descriptor).
KVM_GET_API_VERSION = io(KVMIO, 0x00)
KVM_CREATE_VM = io(KVMIO, 0x01)
KVM_GET_MSR_INDEX_LIST = iowr(KVMIO, 0x02, st.KvmMsrList)
KVM_CHECK_EXTENSION = io(KVMIO, 0x03)
KVM_GET_VCPU_MMAP_SIZE = io(KVMIO, 0x04)
KVM_GET_SUPPORTED_CPUID = iowr(KVMIO, 0x05, st.KvmCpuid2Header)

# VM ioctls.
KVM_CREATE_VCPU = io(KVMIO, 0x41)
KVM_SET_USER_MEMORY_REGION = iow(KVMIO, 0x46, st.KvmUserspaceMemoryRegion)
KVM_SET_TSS_ADDR = io(KVMIO, 0x47)
KVM_SET_IDENTITY_MAP_ADDR = iow(KVMIO, 0x48, ctypes.sizeof(ctypes.c_uint64))

# vCPU ioctls.
KVM_RUN = io(KVMIO, 0x80)
KVM_GET_REGS = ior(KVMIO, 0x81, st.KvmRegs)
KVM_SET_REGS = iow(KVMIO, 0x82, st.KvmRegs)
KVM_GET_SREGS = ior(KVMIO, 0x83, st.KvmSregs)
KVM_SET_SREGS = iow(KVMIO, 0x84, st.KvmSregs)
KVM_GET_MSRS = iowr(KVMIO, 0x88, st.KvmMsrsHeader)
KVM_SET_MSRS = iow(KVMIO, 0x89, st.KvmMsrsHeader)
KVM_SET_SIGNAL_MASK = iow(KVMIO, 0x8B, st.KvmSignalMaskHeader)
KVM_GET_FPU = ior(KVMIO, 0x8C, st.KvmFpu)
KVM_SET_FPU = iow(KVMIO, 0x8D, st.KvmFpu)
KVM_SET_CPUID2 = iow(KVMIO, 0x90, st.KvmCpuid2Header)

KVM_API_VERSION = 12

# KVM_CHECK_EXTENSION capabilities used here.
KVM_CAP_USER_MEMORY = 3
KVM_CAP_SET_TSS_ADDR = 4
KVM_CAP_EXT_CPUID = 7
KVM_CAP_NR_VCPUS = 9
KVM_CAP_NR_MEMSLOTS = 10
KVM_CAP_SYNC_MMU = 16
KVM_CAP_INTERNAL_ERROR_DATA = 40
KVM_CAP_MAX_VCPUS = 66
KVM_CAP_IMMEDIATE_EXIT = 136

KVM_MEM_LOG_DIRTY_PAGES = 1 << 0
KVM_MEM_READONLY = 1 << 1

# kvm_run.exit_reason values.
EXIT_REASON_NAMES: dict[int, str] = {
    0: "UNKNOWN",
    1: "EXCEPTION",
    2: "IO",
    3: "HYPERCALL",
    4: "DEBUG",
    5: "HLT",
    6: "MMIO",
    7: "IRQ_WINDOW_OPEN",
    8: "SHUTDOWN",
    9: "FAIL_ENTRY",
    10: "INTR",
    11: "SET_TPR",
    12: "TPR_ACCESS",
    13: "S390_SIEIC",
    14: "S390_RESET",
    15: "DCR",
    16: "NMI",
    17: "INTERNAL_ERROR",
    18: "OSI",
    19: "PAPR_HCALL",
    20: "S390_UCONTROL",
    21: "WATCHDOG",
    22: "S390_TSCH",
    23: "EPR",
    24: "SYSTEM_EVENT",
    25: "S390_STSI",
    26: "IOAPIC_EOI",
    27: "HYPERV",
    28: "ARM_NISV",
    29: "X86_RDMSR",
    30: "X86_WRMSR",
    31: "DIRTY_RING_FULL",
    32: "AP_RESET_HOLD",
    33: "X86_BUS_LOCK",
    34: "XEN",
    35: "RISCV_SBI",
    36: "RISCV_CSR",
    37: "NOTIFY",
}
KVM_EXIT_UNKNOWN = 0
KVM_EXIT_EXCEPTION = 1
KVM_EXIT_IO = 2
KVM_EXIT_DEBUG = 4
KVM_EXIT_HLT = 5
KVM_EXIT_MMIO = 6
KVM_EXIT_IRQ_WINDOW_OPEN = 7
KVM_EXIT_SHUTDOWN = 8
KVM_EXIT_FAIL_ENTRY = 9
KVM_EXIT_INTR = 10
KVM_EXIT_NMI = 16
KVM_EXIT_INTERNAL_ERROR = 17
KVM_EXIT_SYSTEM_EVENT = 24

KVM_EXIT_IO_IN = 0
KVM_EXIT_IO_OUT = 1

INTERNAL_ERROR_NAMES: dict[int, str] = {
    1: "EMULATION (KVM could not emulate an instruction)",
    2: "SIMUL_EX (simultaneous exceptions)",
    3: "DELIVERY_EV (unexpected exit while delivering an event)",
    4: "UNEXPECTED_EXIT_REASON",
}
KVM_INTERNAL_ERROR_EMULATION = 1
KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES = 1 << 0

SYSTEM_EVENT_NAMES: dict[int, str] = {
    1: "SHUTDOWN",
    2: "RESET",
    3: "CRASH",
    4: "WAKEUP",
    5: "SUSPEND",
    6: "SEV_TERM",
}

# x86 model-specific registers set through KVM_SET_MSRS.
MSR_EFER = 0xC0000080
MSR_STAR = 0xC0000081
MSR_LSTAR = 0xC0000082
MSR_CSTAR = 0xC0000083
MSR_SYSCALL_MASK = 0xC0000084  # FMASK
MSR_FS_BASE = 0xC0000100
MSR_GS_BASE = 0xC0000101
MSR_KERNEL_GS_BASE = 0xC0000102
MSR_TSC_AUX = 0xC0000103
MSR_IA32_TSC = 0x10
MSR_IA32_SYSENTER_CS = 0x174
MSR_IA32_SYSENTER_ESP = 0x175
MSR_IA32_SYSENTER_EIP = 0x176
MSR_IA32_MISC_ENABLE = 0x1A0
MSR_IA32_CR_PAT = 0x277
