"""The x86-64 architecture facts (:class:`vm_core.arch.ArchInfo`), where the x86-64 front end will live.

Register file (``CpuState.regs`` of an x86-64 guest; KVM user mode keeps the
same list): the 16 general registers in their hardware encoding order
(``rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15``, the order of the
ModRM/REX register fields), then ``rflags`` (also ``eflags``), the FS base and
the GS base; the program counter ``rip`` is ``CpuState.pc``. x87/SSE state is
not in the list (KVM keeps it, as an FXSAVE image).

gdb numbers follow gdb's i386:x86-64 register list (``rax, rbx, rcx, rdx,
rsi, rdi, rbp, rsp, r8..r15`` 0..15, ``rip`` 16, ``eflags`` 17); ``fs_base``
and ``gs_base`` are numbered by the target description, so none is given.
Linux: the number is in ``rax``, the arguments in ``rdi, rsi, rdx, r10, r8,
r9``, the result in ``rax`` (``syscall`` itself clobbers ``rcx`` and ``r11``);
at ``execve`` every register is zero except ``rsp`` and ``rflags`` (IF and
the reserved bit 1: 0x202); ``AT_HWCAP`` is CPUID.1:EDX (here a baseline
x86-64 CPU's; the KVM runner puts its guest CPU's value). The address-space
layout is Linux's with 4-level paging and no randomisation: ``TASK_SIZE``
2^47 - 4 KiB, the stack ending there, ``mmap`` from 128 MiB below it.
"""

from __future__ import annotations

from vm_core.arch import ArchInfo, HwcapBit, RegisterGroup, RegisterInfo, SyscallConvention

EM_X86_64 = 62

#: The general registers in hardware encoding order (their ``regs`` indices).
GPR_NAMES: tuple[str, ...] = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                              "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")  # fmt: skip
#: gdb's order of the same registers (its numbers 0..15).
_GDB_ORDER = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
              "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")  # fmt: skip
RFLAGS_RESERVED = 1 << 1
RFLAGS_IF = 1 << 9
TASK_SIZE_MAX = (1 << 47) - 4096
#: CPUID.1:EDX of a baseline x86-64 CPU: FPU ... SSE2 and HTT.
BASELINE_HWCAP = 0x178BFBFF
_CPUID1_EDX = {
    0: "fpu", 1: "vme", 2: "de", 3: "pse", 4: "tsc", 5: "msr", 6: "pae", 7: "mce", 8: "cx8", 9: "apic",
    11: "sep", 12: "mtrr", 13: "pge", 14: "mca", 15: "cmov", 16: "pat", 17: "pse36", 18: "pn", 19: "clflush",
    21: "ds", 22: "acpi", 23: "mmx", 24: "fxsr", 25: "sse", 26: "sse2", 27: "ss", 28: "ht", 29: "tm",
    30: "ia64", 31: "pbe",
}  # fmt: skip


def _registers() -> tuple[RegisterInfo, ...]:
    gprs = tuple(
        RegisterInfo(name, i, 64, RegisterGroup.GENERAL, gdb_number=_GDB_ORDER.index(name))
        for i, name in enumerate(GPR_NAMES)
    )
    system = (
        RegisterInfo("rflags", 16, 64, RegisterGroup.SYSTEM, ("eflags",), gdb_number=17),
        RegisterInfo("fs_base", 17, 64, RegisterGroup.SYSTEM),
        RegisterInfo("gs_base", 18, 64, RegisterGroup.SYSTEM),
    )
    return gprs + system


X86_64 = ArchInfo(
    name="x86_64",
    elf_machine=EM_X86_64,
    endianness="little",
    word_bits=64,
    page_size=4096,
    registers=_registers(),
    pc_name="rip",
    pc_gdb_number=16,
    stack_pointer="rsp",
    return_address=None,
    syscall=SyscallConvention(number="rax", args=("rdi", "rsi", "rdx", "r10", "r8", "r9"), result="rax"),
    hwcap=BASELINE_HWCAP,
    hwcap_bits=tuple(HwcapBit(bit, name) for bit, name in _CPUID1_EDX.items() if BASELINE_HWCAP >> bit & 1),
    initial_registers=(("rflags", RFLAGS_RESERVED | RFLAGS_IF),),
    user_address_limit=TASK_SIZE_MAX,
    stack_top=TASK_SIZE_MAX,
    mmap_base=TASK_SIZE_MAX - (128 << 20),
    gdb_architecture="i386:x86-64",
    gdb_features=("org.gnu.gdb.i386.core", "org.gnu.gdb.i386.sse", "org.gnu.gdb.i386.linux"),
)
