"""Preparing a long-mode vCPU for user-mode Linux programs: paging, segments, SSE/AVX state, FPU images.

:func:`configure_user_vcpu` takes a vCPU that
:func:`vm_accel.kvm.setup_long_mode` put in 64-bit mode and

* maps the CPL 0 system area (GDT, TSS, IDT, kernel stack: supervisor only;
  the stub code page: user read-execute, because KVM-PVM runs a CPL 3
  ``syscall`` at LSTAR still in user mode) into the process's page tables and
  loads their root into CR3;
* loads DS/ES/FS/GS with the user data selector, so ``iretq`` to CPL 3
  keeps them (and the FS base glibc's TLS uses);
* enables SSE (CR4.OSFXSR/OSXMMEXCPT, set by ``setup_long_mode``) and, when
  the CPU has XSAVE, CR4.OSXSAVE with XCR0 = x87|SSE|AVX (and the AVX-512
  state when supported) through ``KVM_SET_XCRS``, as Linux does for its
  processes; CPUID is KVM's supported set (``KvmVcpu`` sets it).

:func:`fxsave_image` / :func:`fpu_from_fxsave` convert between KVM's
``kvm_fpu`` and the 512-byte FXSAVE image of an x86-64 signal frame.
"""

from __future__ import annotations

import ctypes
import struct

import attrs
from vm_core.logging import get_logger

from vm_accel.kvm import ioctl_numbers as nr
from vm_accel.kvm.ioctl import kvm_ioctl
from vm_accel.kvm.long_mode import USER_DS, LongModeLayout
from vm_accel.kvm.page_tables import (
    PTE_ACCESSED,
    PTE_DIRTY,
    PTE_NO_EXECUTE,
    PTE_PRESENT,
    PTE_USER,
    PTE_WRITABLE,
)
from vm_accel.kvm.state import CpuidEntry, FpuState, Segment
from vm_accel.kvm.vcpu import KvmVcpu
from vm_accel.usermode.page_tables import UserPageTables

log = get_logger("vm_accel.usermode.cpu_setup")

CR4_OSXSAVE = 1 << 18
CPUID1_ECX_XSAVE = 1 << 26
XCR0_X87, XCR0_SSE, XCR0_AVX = 1 << 0, 1 << 1, 1 << 2
XCR0_AVX512 = (1 << 5) | (1 << 6) | (1 << 7)  # opmask, ZMM_Hi256, Hi16_ZMM: all or none
KVM_CAP_XCRS = 56
MXCSR_MASK = 0xFFFF
FXSAVE_SIZE = 512
_FXSAVE_HEAD = struct.Struct("<HHBBHQQII")  # fcw fsw ftw(abridged) pad fop fip fdp mxcsr mxcsr_mask


class KvmXcr(ctypes.Structure):
    """``struct kvm_xcr``."""

    _fields_ = [("xcr", ctypes.c_uint32), ("reserved", ctypes.c_uint32), ("value", ctypes.c_uint64)]


class KvmXcrs(ctypes.Structure):
    """``struct kvm_xcrs``."""

    _fields_ = [
        ("nr_xcrs", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("xcrs", KvmXcr * 16),
        ("padding", ctypes.c_uint64 * 16),
    ]


KVM_SET_XCRS = nr.iow(nr.KVMIO, 0xA7, KvmXcrs)


def _leaf(cpuid: tuple[CpuidEntry, ...], function: int, index: int = 0) -> CpuidEntry | None:
    for entry in cpuid:
        if entry.function == function and entry.index == index:
            return entry
    return None


def guest_xcr0(cpuid: tuple[CpuidEntry, ...]) -> int:
    """XCR0 for the guest: x87|SSE, plus AVX and AVX-512 state when CPUID leaf 0xD offers them (0: no XSAVE)."""
    basic = _leaf(cpuid, 1)
    xstate = _leaf(cpuid, 0xD)
    if basic is None or xstate is None or not basic.ecx & CPUID1_ECX_XSAVE:
        return 0
    supported = xstate.eax | (xstate.edx << 32)
    value = XCR0_X87 | XCR0_SSE
    if supported & XCR0_AVX:
        value |= XCR0_AVX
        if supported & XCR0_AVX512 == XCR0_AVX512:
            value |= XCR0_AVX512
    return value


def guest_hwcap(cpuid: tuple[CpuidEntry, ...]) -> int:
    """``AT_HWCAP`` as x86-64 Linux reports it: CPUID.1:EDX of the (guest) CPU."""
    basic = _leaf(cpuid, 1)
    return basic.edx if basic is not None else 0


def map_system_area(tables: UserPageTables, layout: LongModeLayout) -> None:
    """Identity-map the long-mode system area: supervisor-only, but the stub code page user read-execute."""
    supervisor = PTE_PRESENT | PTE_WRITABLE | PTE_ACCESSED | PTE_DIRTY | PTE_NO_EXECUTE
    stub_code = PTE_PRESENT | PTE_USER | PTE_ACCESSED | PTE_DIRTY
    code_page = layout.code & ~0xFFF
    for page in range(layout.base, layout.end, 0x1000):
        tables.map_page(page, page, stub_code if page == code_page else supervisor)


def configure_user_vcpu(vcpu: KvmVcpu, layout: LongModeLayout, tables: UserPageTables) -> int:
    """Paging, segments and extended state for CPL 3 programs (see the module docstring); returns XCR0."""
    map_system_area(tables, layout)
    cpuid = vcpu.vm.kvm.supported_cpuid()
    xcr0 = guest_xcr0(cpuid) if vcpu.vm.kvm.check_extension(KVM_CAP_XCRS) else 0
    special = vcpu.get_sregs()
    user_data = Segment(
        base=0, limit=0xFFFFFFFF, selector=USER_DS, type=0x3, present=1, dpl=3, db=1, s=1, g=1
    )
    special = attrs.evolve(
        special,
        cr3=tables.root,
        cr4=special.cr4 | (CR4_OSXSAVE if xcr0 else 0),
        ds=user_data,
        es=user_data,
        fs=user_data,
        gs=user_data,
    )
    vcpu.set_sregs(special)
    if xcr0:
        xcrs = KvmXcrs(nr_xcrs=1)
        xcrs.xcrs[0].xcr = 0
        xcrs.xcrs[0].value = xcr0
        kvm_ioctl(vcpu.fd, KVM_SET_XCRS, xcrs, name="KVM_SET_XCRS")
    log.debug("user_vcpu_configured", cr3=hex(tables.root), xcr0=hex(xcr0))
    return xcr0


def fxsave_image(fpu: FpuState) -> bytes:
    """The 512-byte FXSAVE image (64-bit layout) of ``fpu``."""
    head = _FXSAVE_HEAD.pack(
        fpu.fcw, fpu.fsw, fpu.ftwx & 0xFF, 0, fpu.last_opcode, fpu.last_ip, fpu.last_dp, fpu.mxcsr, MXCSR_MASK
    )
    body = b"".join(reg.ljust(16, b"\0")[:16] for reg in fpu.fpr) + b"".join(fpu.xmm)
    return (head + body).ljust(FXSAVE_SIZE, b"\0")


def fpu_from_fxsave(image: bytes) -> FpuState:
    """The inverse of :func:`fxsave_image`; MXCSR's reserved bits are cleared."""
    fcw, fsw, ftw, _pad, fop, fip, fdp, mxcsr, _mask = _FXSAVE_HEAD.unpack_from(image, 0)
    fpr = tuple(bytes(image[32 + 16 * i : 48 + 16 * i]) for i in range(8))
    xmm = tuple(bytes(image[160 + 16 * i : 176 + 16 * i]) for i in range(16))
    return FpuState(
        fpr=fpr, fcw=fcw, fsw=fsw, ftwx=ftw, last_opcode=fop, last_ip=fip, last_dp=fdp, xmm=xmm,
        mxcsr=mxcsr & MXCSR_MASK,
    )  # fmt: skip
