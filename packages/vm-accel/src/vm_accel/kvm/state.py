"""Frozen value types for vCPU state, and their conversion to and from the KVM structures.

:class:`Registers` mirrors ``kvm_regs``; :class:`Segment`,
:class:`DescriptorTable` and :class:`SpecialRegisters` mirror
``kvm_segment``, ``kvm_dtable`` and ``kvm_sregs``; :class:`FpuState`
mirrors ``kvm_fpu``. Change one field with ``attrs.evolve``.
"""

from __future__ import annotations

import ctypes

import attrs

from vm_accel.kvm import structures as st


def _u64(value: int) -> int:
    return value & 0xFFFF_FFFF_FFFF_FFFF


@attrs.frozen
class Registers:
    """General-purpose registers, ``rip`` and ``rflags`` (``kvm_regs``)."""

    rax: int = attrs.field(default=0, converter=_u64)
    rbx: int = attrs.field(default=0, converter=_u64)
    rcx: int = attrs.field(default=0, converter=_u64)
    rdx: int = attrs.field(default=0, converter=_u64)
    rsi: int = attrs.field(default=0, converter=_u64)
    rdi: int = attrs.field(default=0, converter=_u64)
    rsp: int = attrs.field(default=0, converter=_u64)
    rbp: int = attrs.field(default=0, converter=_u64)
    r8: int = attrs.field(default=0, converter=_u64)
    r9: int = attrs.field(default=0, converter=_u64)
    r10: int = attrs.field(default=0, converter=_u64)
    r11: int = attrs.field(default=0, converter=_u64)
    r12: int = attrs.field(default=0, converter=_u64)
    r13: int = attrs.field(default=0, converter=_u64)
    r14: int = attrs.field(default=0, converter=_u64)
    r15: int = attrs.field(default=0, converter=_u64)
    rip: int = attrs.field(default=0, converter=_u64)
    rflags: int = attrs.field(default=0x2, converter=_u64)  # bit 1 is always set

    @classmethod
    def from_kvm(cls, raw: st.KvmRegs) -> Registers:
        return cls(**{name: getattr(raw, name) for name in st.REGISTER_NAMES})

    def to_kvm(self) -> st.KvmRegs:
        return st.KvmRegs(**{name: getattr(self, name) for name in st.REGISTER_NAMES})

    def describe(self) -> str:
        """One line per four registers, hexadecimal."""
        cells = [f"{name}={getattr(self, name):#018x}" for name in st.REGISTER_NAMES]
        return "\n".join(" ".join(cells[i : i + 4]) for i in range(0, len(cells), 4))


_SEGMENT_FIELDS = ("base", "limit", "selector", "type", "present", "dpl", "db", "s", "l", "g", "avl", "unusable")


@attrs.frozen
class Segment:
    """A segment register with its cached descriptor (``kvm_segment``).

    ``type`` is the 4-bit descriptor type, ``s`` 1 for code/data and 0 for
    system segments, ``l`` the 64-bit code flag, ``db`` the default size.
    """

    base: int = 0
    limit: int = 0
    selector: int = 0
    type: int = 0
    present: int = 0
    dpl: int = 0
    db: int = 0
    s: int = 0
    l: int = 0  # noqa: E741 - the kvm_segment field name
    g: int = 0
    avl: int = 0
    unusable: int = 0

    @classmethod
    def from_kvm(cls, raw: st.KvmSegment) -> Segment:
        return cls(**{name: getattr(raw, name) for name in _SEGMENT_FIELDS})

    def to_kvm(self) -> st.KvmSegment:
        return st.KvmSegment(**{name: getattr(self, name) for name in _SEGMENT_FIELDS})

    def describe(self) -> str:
        return (
            f"sel={self.selector:#06x} base={self.base:#x} limit={self.limit:#x} type={self.type} "
            f"s={self.s} dpl={self.dpl} p={self.present} l={self.l} db={self.db} g={self.g}"
        )


@attrs.frozen
class DescriptorTable:
    """GDTR or IDTR (``kvm_dtable``)."""

    base: int = 0
    limit: int = 0

    @classmethod
    def from_kvm(cls, raw: st.KvmDtable) -> DescriptorTable:
        return cls(base=raw.base, limit=raw.limit)

    def to_kvm(self) -> st.KvmDtable:
        return st.KvmDtable(base=self.base, limit=self.limit)


@attrs.frozen
class SpecialRegisters:
    """Segment, descriptor-table and control registers and EFER (``kvm_sregs``)."""

    cs: Segment = Segment()
    ds: Segment = Segment()
    es: Segment = Segment()
    fs: Segment = Segment()
    gs: Segment = Segment()
    ss: Segment = Segment()
    tr: Segment = Segment()
    ldt: Segment = Segment()
    gdt: DescriptorTable = DescriptorTable()
    idt: DescriptorTable = DescriptorTable()
    cr0: int = 0
    cr2: int = 0
    cr3: int = 0
    cr4: int = 0
    cr8: int = 0
    efer: int = 0
    apic_base: int = 0
    interrupt_bitmap: tuple[int, int, int, int] = (0, 0, 0, 0)

    @classmethod
    def from_kvm(cls, raw: st.KvmSregs) -> SpecialRegisters:
        bitmap = tuple(raw.interrupt_bitmap)
        return cls(
            **{name: Segment.from_kvm(getattr(raw, name)) for name in st.SEGMENT_NAMES},
            gdt=DescriptorTable.from_kvm(raw.gdt),
            idt=DescriptorTable.from_kvm(raw.idt),
            cr0=raw.cr0,
            cr2=raw.cr2,
            cr3=raw.cr3,
            cr4=raw.cr4,
            cr8=raw.cr8,
            efer=raw.efer,
            apic_base=raw.apic_base,
            interrupt_bitmap=(bitmap[0], bitmap[1], bitmap[2], bitmap[3]),
        )

    def to_kvm(self) -> st.KvmSregs:
        raw = st.KvmSregs()
        for name in st.SEGMENT_NAMES:
            setattr(raw, name, getattr(self, name).to_kvm())
        raw.gdt = self.gdt.to_kvm()
        raw.idt = self.idt.to_kvm()
        for name in ("cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apic_base"):
            setattr(raw, name, getattr(self, name))
        for i, word in enumerate(self.interrupt_bitmap):
            raw.interrupt_bitmap[i] = word
        return raw

    def describe(self) -> str:
        lines = [f"{name}: {getattr(self, name).describe()}" for name in st.SEGMENT_NAMES]
        lines.append(f"gdt: base={self.gdt.base:#x} limit={self.gdt.limit:#x}")
        lines.append(f"idt: base={self.idt.base:#x} limit={self.idt.limit:#x}")
        lines.append(
            f"cr0={self.cr0:#x} cr2={self.cr2:#x} cr3={self.cr3:#x} cr4={self.cr4:#x} "
            f"cr8={self.cr8:#x} efer={self.efer:#x}"
        )
        return "\n".join(lines)


@attrs.frozen
class FpuState:
    """x87/SSE state (``kvm_fpu``): ``fpr`` 8 and ``xmm`` 16 registers of 16 bytes each."""

    fpr: tuple[bytes, ...] = (bytes(16),) * 8
    fcw: int = 0x37F
    fsw: int = 0
    ftwx: int = 0
    last_opcode: int = 0
    last_ip: int = 0
    last_dp: int = 0
    xmm: tuple[bytes, ...] = (bytes(16),) * 16
    mxcsr: int = 0x1F80

    @classmethod
    def from_kvm(cls, raw: st.KvmFpu) -> FpuState:
        return cls(
            fpr=tuple(bytes(reg) for reg in raw.fpr),
            fcw=raw.fcw,
            fsw=raw.fsw,
            ftwx=raw.ftwx,
            last_opcode=raw.last_opcode,
            last_ip=raw.last_ip,
            last_dp=raw.last_dp,
            xmm=tuple(bytes(reg) for reg in raw.xmm),
            mxcsr=raw.mxcsr,
        )

    def to_kvm(self) -> st.KvmFpu:
        raw = st.KvmFpu(
            fcw=self.fcw,
            fsw=self.fsw,
            ftwx=self.ftwx,
            last_opcode=self.last_opcode,
            last_ip=self.last_ip,
            last_dp=self.last_dp,
            mxcsr=self.mxcsr,
        )
        for i, value in enumerate(self.fpr):
            ctypes.memmove(ctypes.addressof(raw.fpr[i]), value, 16)
        for i, value in enumerate(self.xmm):
            ctypes.memmove(ctypes.addressof(raw.xmm[i]), value, 16)
        return raw


@attrs.frozen
class CpuidEntry:
    """One CPUID leaf/subleaf answer (``kvm_cpuid_entry2``)."""

    function: int
    index: int
    flags: int
    eax: int
    ebx: int
    ecx: int
    edx: int

    @classmethod
    def from_kvm(cls, raw: st.KvmCpuidEntry2) -> CpuidEntry:
        return cls(raw.function, raw.index, raw.flags, raw.eax, raw.ebx, raw.ecx, raw.edx)

    def to_kvm(self) -> st.KvmCpuidEntry2:
        return st.KvmCpuidEntry2(
            function=self.function,
            index=self.index,
            flags=self.flags,
            eax=self.eax,
            ebx=self.ebx,
            ecx=self.ecx,
            edx=self.edx,
        )
