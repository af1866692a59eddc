"""The RV64GC architecture facts (:class:`vm_core.arch.ArchInfo`), owned by the RISC-V front end.

Register file (``CpuState.regs``), the contract every RISC-V extension
module, engine and the Linux layer rely on:

* ``0..31`` the integer registers ``x0..x31`` (``x0`` hard-wired to zero),
  also named by their ABI names (``zero``, ``ra``, ``sp`` ... ``t6``; ``x8`` is
  both ``s0`` and ``fp``);
* ``32..63`` the floating-point registers ``f0..f31`` as raw 64-bit patterns
  (ABI names ``ft0`` ... ``ft11``);
* ``64`` ``frm`` (3 bits) and ``65`` ``fflags`` (5 bits), the two fields of ``fcsr``;
* ``66`` the LR/SC reservation address (emulator state, all ones when none is held).

gdb numbers follow gdb's riscv target description (``x0..x31`` 0..31, ``pc``
32, ``f0..f31`` 33..64, CSRs at 65 + their CSR number: ``fflags`` 66, ``frm`` 67).
Linux: the system-call number is in ``a7``, the arguments in ``a0..a5``, the
result in ``a0``; at ``execve`` every register is zero except ``sp``
(``start_thread``); ``AT_HWCAP`` has bit ``letter - 'A'`` set per
single-letter extension (``IMAFDC``: 0x112d, as qemu-riscv64 reports).
The address-space layout is vm's sv39 one: Linux's sv39 ``TASK_SIZE``
(2^38), the initial stack ending one page below it, ``mmap`` below that.
"""

from __future__ import annotations

from vm_core.arch import ArchInfo, HwcapBit, RegisterGroup, RegisterInfo, SyscallConvention

EM_RISCV = 243

X_ABI_NAMES: tuple[str, ...] = (
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
    "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
)  # fmt: skip
F_ABI_NAMES: tuple[str, ...] = (
    "ft0", "ft1", "ft2", "ft3", "ft4", "ft5", "ft6", "ft7", "fs0", "fs1", "fa0", "fa1", "fa2", "fa3",
    "fa4", "fa5", "fa6", "fa7", "fs2", "fs3", "fs4", "fs5", "fs6", "fs7", "fs8", "fs9", "fs10", "fs11",
    "ft8", "ft9", "ft10", "ft11",
)  # fmt: skip

#: The single-letter extensions vm implements, as ``AT_HWCAP`` announces them.
EXTENSIONS = "IMAFDC"
_EXTENSION_NAMES = {
    "I": "base integer ISA", "M": "integer multiply/divide", "A": "atomics",
    "F": "single-precision floating point", "D": "double-precision floating point", "C": "compressed instructions",
}  # fmt: skip
_GDB_FIRST_FP = 33
_GDB_FIRST_CSR = 65
_CSR_FFLAGS, _CSR_FRM = 0x001, 0x002


def _registers() -> tuple[RegisterInfo, ...]:
    x = tuple(
        RegisterInfo(f"x{i}", i, 64, RegisterGroup.GENERAL, (X_ABI_NAMES[i],) + (("fp",) if i == 8 else ()),
                     gdb_number=i, hardwired_zero=i == 0)
        for i in range(32)
    )  # fmt: skip
    f = tuple(
        RegisterInfo(f"f{i}", 32 + i, 64, RegisterGroup.FLOAT, (F_ABI_NAMES[i],), gdb_number=_GDB_FIRST_FP + i)
        for i in range(32)
    )
    system = (
        RegisterInfo("frm", 64, 3, RegisterGroup.SYSTEM, gdb_number=_GDB_FIRST_CSR + _CSR_FRM),
        RegisterInfo("fflags", 65, 5, RegisterGroup.SYSTEM, gdb_number=_GDB_FIRST_CSR + _CSR_FFLAGS),
        RegisterInfo("reservation", 66, 64, RegisterGroup.INTERNAL),
    )
    return x + f + system


def riscv_hwcap(extensions: str) -> int:
    """``AT_HWCAP`` for RISC-V single-letter extensions: bit ``letter - 'A'`` per letter."""
    return sum(1 << (ord(letter) - ord("A")) for letter in set(extensions.upper()))


RV64 = ArchInfo(
    name="riscv64",
    elf_machine=EM_RISCV,
    endianness="little",
    word_bits=64,
    page_size=4096,
    registers=_registers(),
    pc_name="pc",
    pc_gdb_number=32,
    stack_pointer="sp",
    return_address="ra",
    syscall=SyscallConvention(number="a7", args=("a0", "a1", "a2", "a3", "a4", "a5"), result="a0"),
    hwcap=riscv_hwcap(EXTENSIONS),
    hwcap_bits=tuple(HwcapBit(ord(e) - ord("A"), f"{e}: {_EXTENSION_NAMES[e]}") for e in EXTENSIONS),
    initial_registers=(),
    user_address_limit=1 << 38,
    stack_top=(1 << 38) - 4096,
    mmap_base=0x3F_0000_0000,
    gdb_architecture="riscv:rv64",
    gdb_features=("org.gnu.gdb.riscv.cpu", "org.gnu.gdb.riscv.fpu"),
)
