"""Putting a KVM vCPU straight into 64-bit long mode, with a tiny CPL 0 kernel for CPL 3 code.

:func:`setup_long_mode` writes into guest memory, inside one 64 KiB
"system area" (:class:`LongModeLayout`):

* identity-mapped 4-level page tables (2 MiB pages, user-accessible),
* a GDT with Linux's selector layout (kernel CS 0x10 / DS 0x18, user CS32
  0x23, DS 0x2b, CS 0x33, TSS 0x40), a 64-bit TSS whose RSP0 is the kernel
  stack, and an IDT whose 32 exception vectors go to stubs that report
  through ``out`` to :attr:`LongModeLayout.exception_port`,
* the CPL 0 stubs of :mod:`vm_accel.kvm.kernel_stubs`: ``enter_user``
  (``sysretq``) and the ``syscall`` entry (``out`` to
  :attr:`LongModeLayout.hypercall_port`, then ``sysretq``),

and sets CR0/CR3/CR4/EFER, the segment registers (64-bit CPL 0 code) and
the SYSCALL MSRs (STAR, LSTAR, FMASK). The returned :class:`LongModeSystem`
then starts CPL 0 code (:meth:`LongModeSystem.start_kernel`) or CPL 3 code
through ``sysretq`` (:meth:`LongModeSystem.start_user`).
"""

from __future__ import annotations

import struct

import attrs
from vm_core.errors import ConfigurationError

from vm_accel.kvm import ioctl_numbers as nr
from vm_accel.kvm import kernel_stubs
from vm_accel.kvm.memory import GuestPhysicalMemory
from vm_accel.kvm.page_tables import PageTableBuilder, identity_map
from vm_accel.kvm.state import DescriptorTable, Registers, Segment, SpecialRegisters
from vm_accel.kvm.vcpu import KvmVcpu

# Selectors, as in Linux's x86-64 GDT.
KERNEL_CS = 0x10
KERNEL_DS = 0x18
USER_CS32 = 0x23
USER_DS = 0x2B
USER_CS = 0x33
TSS_SELECTOR = 0x40
GDT_ENTRIES = 10  # 0x00..0x38 plus the 16-byte TSS descriptor at 0x40

CR0_PE = 1 << 0
CR0_MP = 1 << 1
CR0_ET = 1 << 4
CR0_NE = 1 << 5
CR0_WP = 1 << 16
CR0_PG = 1 << 31
CR4_PAE = 1 << 5
CR4_OSFXSR = 1 << 9
CR4_OSXMMEXCPT = 1 << 10
EFER_SCE = 1 << 0
EFER_LME = 1 << 8
EFER_LMA = 1 << 10
EFER_NXE = 1 << 11
RFLAGS_RESERVED = 1 << 1
RFLAGS_IF = 1 << 9
RFLAGS_DF = 1 << 10
RFLAGS_TF = 1 << 8
RFLAGS_AC = 1 << 18
TSS_SIZE = 104



@attrs.frozen
class LongModeLayout:
    """Where the system structures live (guest-physical == virtual, inside ``[base, base+0x10000)``)."""

    base: int = 0
    identity_map_size: int = 1 << 30
    hypercall_port: int = 0xF0
    exception_port: int = 0xF1

    @property
    def page_table_pool(self) -> int:
        return self.base + 0x1000

    @property
    def page_table_pool_size(self) -> int:
        return 0x8000

    @property
    def gdt(self) -> int:
        return self.base + 0x9000

    @property
    def tss(self) -> int:
        return self.base + 0x9100

    @property
    def idt(self) -> int:
        return self.base + 0xA000

    @property
    def code(self) -> int:
        return self.base + 0xB000

    @property
    def kernel_stack_top(self) -> int:
        return self.base + 0x10000

    @property
    def end(self) -> int:
        return self.base + 0x10000


@attrs.frozen
class ExceptionFrame:
    """What a CPU exception pushed, as reported through the exception port."""

    vector: int
    error_code: int
    rip: int
    cs: int
    rflags: int
    rsp: int
    ss: int
    cr2: int

    @property
    def from_user(self) -> bool:
        return self.cs & 3 == 3

    def describe(self) -> str:
        return (
            f"exception {self.vector} error code {self.error_code:#x} at rip {self.rip:#x} "
            f"(cs {self.cs:#x}, rsp {self.rsp:#x}, rflags {self.rflags:#x}, cr2 {self.cr2:#x})"
        )


@attrs.frozen
class LongModeSystem:
    """A vCPU set up for long mode: the layout, the page tables and the stub addresses."""

    layout: LongModeLayout
    page_tables: PageTableBuilder
    enter_user: int
    syscall_entry: int
    exception_stubs: int

    def start_kernel(self, vcpu: KvmVcpu, rip: int, rsp: int | None = None) -> None:
        """Make ``vcpu`` continue at CPL 0 ``rip`` (stack ``rsp``, default the kernel stack)."""
        stack = self.layout.kernel_stack_top if rsp is None else rsp
        vcpu.set_regs(Registers(rip=rip, rsp=stack, rflags=RFLAGS_RESERVED))

    def start_user(self, vcpu: KvmVcpu, rip: int, rsp: int, registers: Registers | None = None) -> None:
        """Make ``vcpu`` enter CPL 3 at ``rip`` with stack ``rsp`` through the ``sysretq`` stub.

        Other general registers come from ``registers`` (default zero);
        rcx and r11 are consumed by ``sysretq``.
        """
        base = registers if registers is not None else Registers()
        user_flags = (base.rflags | RFLAGS_RESERVED) & ~(RFLAGS_TF | RFLAGS_IF)
        vcpu.set_regs(
            attrs.evolve(base, rip=self.enter_user, rsp=rsp, rcx=rip, r11=user_flags, rflags=RFLAGS_RESERVED)
        )

    def is_user_syscall_trap(self, frame: ExceptionFrame) -> bool:
        """Whether ``frame`` is a ``syscall`` that reached the entry stub still at CPL 3.

        KVM-PVM runs a CPL 3 ``syscall`` by jumping to LSTAR without
        switching to CPL 0, so the stub's ``out`` raises #GP from user mode
        at :attr:`syscall_entry`. Such a trap is a system call: rax and the
        argument registers are the guest's, rcx/r11 its return rip/rflags.
        """
        return frame.vector == 13 and frame.from_user and frame.rip == self.syscall_entry

    def return_from_user_syscall_trap(self, vcpu: KvmVcpu) -> None:
        """Make the exception stub's ``iretq`` return to the ``syscall``'s caller (rip = rcx, rflags = r11)."""
        regs = vcpu.get_regs()
        frame_at = self._frame_address(vcpu, regs.rsp)
        vcpu.vm.memory.write(frame_at + 16, struct.pack("<Q", regs.rcx))
        vcpu.vm.memory.write(frame_at + 32, struct.pack("<Q", regs.r11 | RFLAGS_RESERVED))

    def _frame_address(self, vcpu: KvmVcpu, rsp: int) -> int:
        physical = self.page_tables.translate(rsp)
        if physical is None:
            raise ConfigurationError(f"exception frame at {rsp:#x} is not mapped")
        return physical

    def read_exception_frame(self, vcpu: KvmVcpu) -> ExceptionFrame:
        """Decode the frame an exception stub reported (call from the exception-port handler)."""
        words = struct.unpack("<7Q", vcpu.vm.memory.read(self._frame_address(vcpu, vcpu.get_regs().rsp), 56))
        vector, error_code, rip, cs, rflags, user_rsp, ss = words
        return ExceptionFrame(vector, error_code, rip, cs, rflags, user_rsp, ss, vcpu.get_sregs().cr2)


def gdt_entry(base: int, limit: int, access: int, flags: int) -> bytes:
    """An 8-byte code/data segment descriptor."""
    return struct.pack(
        "<HHBBBB",
        limit & 0xFFFF,
        base & 0xFFFF,
        (base >> 16) & 0xFF,
        access,
        ((flags & 0xF) << 4) | ((limit >> 16) & 0xF),
        (base >> 24) & 0xFF,
    )


def tss_descriptor(base: int, limit: int) -> bytes:
    """The 16-byte 64-bit TSS descriptor (type 0xB: busy, as TR requires)."""
    return gdt_entry(base, limit, 0x8B, 0) + struct.pack("<II", base >> 32, 0)


def build_gdt(layout: LongModeLayout) -> bytes:
    """Null, unused, kernel CS64/DS, user CS32/DS/CS64, unused, then the TSS descriptor."""
    null = bytes(8)
    return b"".join(
        [
            null,
            null,
            gdt_entry(0, 0xFFFFF, 0x9B, 0xA),  # 0x10 kernel code, 64-bit
            gdt_entry(0, 0xFFFFF, 0x93, 0xC),  # 0x18 kernel data
            gdt_entry(0, 0xFFFFF, 0xFB, 0xC),  # 0x20 user code, 32-bit
            gdt_entry(0, 0xFFFFF, 0xF3, 0xC),  # 0x28 user data
            gdt_entry(0, 0xFFFFF, 0xFB, 0xA),  # 0x30 user code, 64-bit
            null,
            tss_descriptor(layout.tss, TSS_SIZE - 1),  # 0x40
        ]
    )


def build_tss(rsp0: int) -> bytes:
    """A 64-bit TSS with RSP0 (the stack exceptions from CPL 3 switch to) and no I/O bitmap."""
    tss = bytearray(TSS_SIZE)
    struct.pack_into("<Q", tss, 4, rsp0)
    struct.pack_into("<H", tss, 102, TSS_SIZE)  # I/O map base beyond the limit: no port access at CPL 3
    return bytes(tss)


def idt_gate(handler: int, selector: int = KERNEL_CS, dpl: int = 0) -> bytes:
    """A 16-byte 64-bit interrupt gate."""
    return struct.pack(
        "<HHBBHII",
        handler & 0xFFFF,
        selector,
        0,
        0x8E | (dpl << 5),
        (handler >> 16) & 0xFFFF,
        handler >> 32,
        0,
    )


def _segment(selector: int, *, code: bool, dpl: int, long: bool = True) -> Segment:
    return Segment(
        base=0,
        limit=0xFFFFFFFF,
        selector=selector,
        type=0xB if code else 0x3,
        present=1,
        dpl=dpl,
        db=0 if code and long else 1,
        s=1,
        l=1 if code and long else 0,
        g=1,
    )


def long_mode_special_registers(current: SpecialRegisters, layout: LongModeLayout, cr3: int) -> SpecialRegisters:
    """``current`` changed to 64-bit CPL 0 with paging, our GDT/IDT/TSS and long mode enabled."""
    data = _segment(KERNEL_DS, code=False, dpl=0)
    return attrs.evolve(
        current,
        cs=_segment(KERNEL_CS, code=True, dpl=0),
        ds=data,
        es=data,
        fs=data,
        gs=data,
        ss=data,
        tr=Segment(base=layout.tss, limit=TSS_SIZE - 1, selector=TSS_SELECTOR, type=0xB, present=1),
        ldt=Segment(type=0x2, present=1, unusable=1),
        gdt=DescriptorTable(base=layout.gdt, limit=8 * GDT_ENTRIES + 8 - 1),
        idt=DescriptorTable(base=layout.idt, limit=16 * kernel_stubs.EXCEPTION_VECTORS - 1),
        cr0=CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG,
        cr3=cr3,
        cr4=CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT,
        efer=EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE,
    )


def syscall_msrs(syscall_entry: int) -> dict[int, int]:
    """STAR/LSTAR/FMASK so that ``syscall`` enters ``syscall_entry`` at CPL 0 and ``sysretq`` returns to CS 0x33."""
    star = ((USER_CS32 & ~3) << 48) | (KERNEL_CS << 32)
    fmask = RFLAGS_IF | RFLAGS_TF | RFLAGS_DF | RFLAGS_AC
    return {nr.MSR_STAR: star, nr.MSR_LSTAR: syscall_entry, nr.MSR_CSTAR: 0, nr.MSR_SYSCALL_MASK: fmask}


def setup_long_mode(vcpu: KvmVcpu, layout: LongModeLayout | None = None) -> LongModeSystem:
    """Write the system structures into the VM's memory and put ``vcpu`` in 64-bit mode at CPL 0."""
    chosen = layout if layout is not None else LongModeLayout()
    memory: GuestPhysicalMemory = vcpu.vm.memory
    if not memory.contains(chosen.base, chosen.end - chosen.base):
        raise ConfigurationError(
            f"long-mode system area {chosen.base:#x}-{chosen.end:#x} is not guest RAM",
            hint="add guest memory covering it first",
        )
    for port in (chosen.hypercall_port, chosen.exception_port):
        if not 0 <= port <= 0xFF:
            raise ConfigurationError(f"port {port:#x} does not fit the 8-bit immediate of `out imm8, al`")
    memory.fill(chosen.base, chosen.end - chosen.base, 0)
    tables = identity_map(memory, chosen.page_table_pool, chosen.page_table_pool_size, chosen.identity_map_size)
    memory.write(chosen.gdt, build_gdt(chosen))
    memory.write(chosen.tss, build_tss(chosen.kernel_stack_top))
    code = kernel_stubs.assemble(chosen.code, chosen.hypercall_port, chosen.exception_port)
    memory.write(chosen.code, code.image)
    memory.write(chosen.idt, b"".join(idt_gate(address) for address in code.vector_entries))
    vcpu.set_sregs(long_mode_special_registers(vcpu.get_sregs(), chosen, tables.root))
    vcpu.set_msrs(syscall_msrs(code.syscall_entry))
    system = LongModeSystem(
        layout=chosen,
        page_tables=tables,
        enter_user=code.enter_user,
        syscall_entry=code.syscall_entry,
        exception_stubs=code.exception_stubs,
    )
    return system
