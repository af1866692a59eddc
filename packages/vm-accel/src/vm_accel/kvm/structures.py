"""ctypes mirrors of the KVM API structures (linux/kvm.h and x86 asm/kvm.h).

Only the x86-64 layouts are described. Structures with a flexible array
member (``kvm_cpuid2``, ``kvm_msrs``, ``kvm_msr_list``,
``kvm_signal_mask``) appear twice: a ``...Header`` type with the fixed part
(its size is what the ioctl number encodes) and a builder that makes a
structure type with room for ``n`` entries.

``KvmRun`` covers the part of the ``kvm_run`` page this package reads: the
fixed header and the 256-byte exit union at offset 32.
"""

from __future__ import annotations

import ctypes
from functools import cache

u8 = ctypes.c_uint8
u16 = ctypes.c_uint16
u32 = ctypes.c_uint32
u64 = ctypes.c_uint64

REGISTER_NAMES: tuple[str, ...] = (
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    "rip", "rflags",
)  # fmt: skip


class KvmRegs(ctypes.Structure):
    """``struct kvm_regs``: the general-purpose registers, rip and rflags."""

    _fields_ = [(name, u64) for name in REGISTER_NAMES]


class KvmSegment(ctypes.Structure):
    """``struct kvm_segment``: a segment register with its hidden descriptor part."""

    _fields_ = [
        ("base", u64),
        ("limit", u32),
        ("selector", u16),
        ("type", u8),
        ("present", u8),
        ("dpl", u8),
        ("db", u8),
        ("s", u8),
        ("l", u8),
        ("g", u8),
        ("avl", u8),
        ("unusable", u8),
        ("padding", u8),
    ]


class KvmDtable(ctypes.Structure):
    """``struct kvm_dtable``: GDTR / IDTR."""

    _fields_ = [("base", u64), ("limit", u16), ("padding", u16 * 3)]


SEGMENT_NAMES: tuple[str, ...] = ("cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt")
KVM_NR_INTERRUPTS = 256


class KvmSregs(ctypes.Structure):
    """``struct kvm_sregs``: segment, descriptor-table and control registers, EFER."""

    _fields_ = [
        *[(name, KvmSegment) for name in SEGMENT_NAMES],
        ("gdt", KvmDtable),
        ("idt", KvmDtable),
        ("cr0", u64),
        ("cr2", u64),
        ("cr3", u64),
        ("cr4", u64),
        ("cr8", u64),
        ("efer", u64),
        ("apic_base", u64),
        ("interrupt_bitmap", u64 * ((KVM_NR_INTERRUPTS + 63) // 64)),
    ]


class KvmFpu(ctypes.Structure):
    """``struct kvm_fpu``: x87 and SSE state in FXSAVE form."""

    _fields_ = [
        ("fpr", (u8 * 16) * 8),
        ("fcw", u16),
        ("fsw", u16),
        ("ftwx", u8),
        ("pad1", u8),
        ("last_opcode", u16),
        ("last_ip", u64),
        ("last_dp", u64),
        ("xmm", (u8 * 16) * 16),
        ("mxcsr", u32),
        ("pad2", u32),
    ]


class KvmMsrEntry(ctypes.Structure):
    """``struct kvm_msr_entry``."""

    _fields_ = [("index", u32), ("reserved", u32), ("data", u64)]


class KvmMsrsHeader(ctypes.Structure):
    """The fixed part of ``struct kvm_msrs``."""

    _fields_ = [("nmsrs", u32), ("pad", u32)]


@cache
def kvm_msrs_type(count: int) -> type[ctypes.Structure]:
    """``struct kvm_msrs`` with room for ``count`` entries."""
    return type(
        f"KvmMsrs{count}",
        (ctypes.Structure,),
        {"_fields_": [("nmsrs", u32), ("pad", u32), ("entries", KvmMsrEntry * count)]},
    )


class KvmMsrList(ctypes.Structure):
    """The fixed part of ``struct kvm_msr_list``."""

    _fields_ = [("nmsrs", u32)]


class KvmCpuidEntry2(ctypes.Structure):
    """``struct kvm_cpuid_entry2``."""

    _fields_ = [
        ("function", u32),
        ("index", u32),
        ("flags", u32),
        ("eax", u32),
        ("ebx", u32),
        ("ecx", u32),
        ("edx", u32),
        ("padding", u32 * 3),
    ]


class KvmCpuid2Header(ctypes.Structure):
    """The fixed part of ``struct kvm_cpuid2``."""

    _fields_ = [("nent", u32), ("padding", u32)]


@cache
def kvm_cpuid2_type(count: int) -> type[ctypes.Structure]:
    """``struct kvm_cpuid2`` with room for ``count`` entries."""
    return type(
        f"KvmCpuid2_{count}",
        (ctypes.Structure,),
        {"_fields_": [("nent", u32), ("padding", u32), ("entries", KvmCpuidEntry2 * count)]},
    )


class KvmSignalMaskHeader(ctypes.Structure):
    """The fixed part of ``struct kvm_signal_mask``."""

    _fields_ = [("len", u32)]


KERNEL_SIGSET_BYTES = 8  # sizeof(sigset_t) inside the x86-64 kernel: 64 signals


class KvmSignalMask(ctypes.Structure):
    """``struct kvm_signal_mask`` carrying a kernel ``sigset_t``."""

    _fields_ = [("len", u32), ("sigset", u8 * KERNEL_SIGSET_BYTES)]


class KvmUserspaceMemoryRegion(ctypes.Structure):
    """``struct kvm_userspace_memory_region``."""

    _fields_ = [
        ("slot", u32),
        ("flags", u32),
        ("guest_phys_addr", u64),
        ("memory_size", u64),
        ("userspace_addr", u64),
    ]


class KvmRunIo(ctypes.Structure):
    """``kvm_run.io`` (KVM_EXIT_IO)."""

    _fields_ = [("direction", u8), ("size", u8), ("port", u16), ("count", u32), ("data_offset", u64)]


class KvmRunMmio(ctypes.Structure):
    """``kvm_run.mmio`` (KVM_EXIT_MMIO)."""

    _fields_ = [("phys_addr", u64), ("data", u8 * 8), ("len", u32), ("is_write", u8)]


class KvmRunFailEntry(ctypes.Structure):
    """``kvm_run.fail_entry`` (KVM_EXIT_FAIL_ENTRY)."""

    _fields_ = [("hardware_entry_failure_reason", u64), ("cpu", u32)]


class KvmRunHw(ctypes.Structure):
    """``kvm_run.hw`` (KVM_EXIT_UNKNOWN)."""

    _fields_ = [("hardware_exit_reason", u64)]


class KvmRunException(ctypes.Structure):
    """``kvm_run.ex`` (KVM_EXIT_EXCEPTION)."""

    _fields_ = [("exception", u32), ("error_code", u32)]


class KvmRunInternal(ctypes.Structure):
    """``kvm_run.internal`` (KVM_EXIT_INTERNAL_ERROR)."""

    _fields_ = [("suberror", u32), ("ndata", u32), ("data", u64 * 16)]


class KvmRunEmulationFailure(ctypes.Structure):
    """``kvm_run.emulation_failure``, the KVM_INTERNAL_ERROR_EMULATION overlay of ``internal``."""

    _fields_ = [
        ("suberror", u32),
        ("ndata", u32),
        ("flags", u64),
        ("insn_size", u8),
        ("insn_bytes", u8 * 15),
    ]


class KvmRunSystemEvent(ctypes.Structure):
    """``kvm_run.system_event`` (KVM_EXIT_SYSTEM_EVENT)."""

    _fields_ = [("type", u32), ("ndata", u32), ("data", u64 * 16)]


class KvmRunExit(ctypes.Union):
    """The exit-information union of ``kvm_run`` (256 bytes)."""

    _fields_ = [
        ("hw", KvmRunHw),
        ("fail_entry", KvmRunFailEntry),
        ("ex", KvmRunException),
        ("io", KvmRunIo),
        ("mmio", KvmRunMmio),
        ("internal", KvmRunInternal),
        ("emulation_failure", KvmRunEmulationFailure),
        ("system_event", KvmRunSystemEvent),
        ("padding", u8 * 256),
    ]


class KvmRun(ctypes.Structure):
    """The start of ``struct kvm_run``, the page shared with the kernel through the vCPU mmap."""

    _fields_ = [
        ("request_interrupt_window", u8),
        ("immediate_exit", u8),
        ("padding1", u8 * 6),
        ("exit_reason", u32),
        ("ready_for_interrupt_injection", u8),
        ("if_flag", u8),
        ("flags", u16),
        ("cr8", u64),
        ("apic_base", u64),
        ("exit", KvmRunExit),
    ]
