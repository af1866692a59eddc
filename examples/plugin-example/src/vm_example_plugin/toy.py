"""The toy64 ISA: eight 64-bit registers and three instructions, lifted into vm's IR.

Encoding (little-endian, variable length):

=========  ===========================  =====  ===========================
opcode     operands                     bytes  meaning
=========  ===========================  =====  ===========================
``0x01``   rd, imm64                    10     ``li rd, imm``: rd = imm
``0x02``   rd, rs1, rs2                 4      ``add rd, rs1, rs2``
``0x03``   (one zero byte)              2      ``syscall``: ask the OS
=========  ===========================  =====  ===========================

Anything else is an illegal instruction (SIGILL). Registers are ``r0`` ..
``r7`` (``r7`` is the stack pointer by the toy Linux ABI's convention).
:data:`TOY64` is the ISA's :class:`~vm_core.arch.ArchInfo`, the one place its
facts live (registers, system-call registers, page size, Linux start state
and layout); the plugin registers it as ``IsaSpec.arch`` and the toy Linux
ABI is built from it.
:func:`assemble` turns ``[("li", 1, 42), ("add", 1, 1, 2), ("syscall",)]``
into bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from vm_core.arch import ArchInfo, RegisterGroup, RegisterInfo, SyscallConvention
from vm_core.errors import MemoryFault
from vm_core.types import IsaSpec
from vm_translate import ir

#: The ELF ``e_machine`` of toy64 programs (unassigned by the ELF registry).
EM_TOY64 = 0x7A64
ISA = "toy64"
REGISTER_COUNT = 8
LAYOUT = ir.RegisterLayout(names=tuple(f"r{i}" for i in range(REGISTER_COUNT)), pc_name="pc")
OP_LI, OP_ADD, OP_SYSCALL = 0x01, 0x02, 0x03
LENGTHS = {OP_LI: 10, OP_ADD: 4, OP_SYSCALL: 2}
PAGE_SIZE = 4096
MASK64 = (1 << 64) - 1

#: toy64's facts. Linux on toy64 (the example's invention): the number in ``r0``, arguments in
#: ``r1`` .. ``r6``, the result in ``r1``, ``r7`` the stack pointer; no ``AT_HWCAP`` bits; an sv39-like
#: 256 GiB user space with the stack at its top and ``mmap`` from 4 GiB below it.
TOY64 = ArchInfo(
    name=ISA,
    elf_machine=EM_TOY64,
    endianness="little",
    word_bits=64,
    page_size=PAGE_SIZE,
    registers=tuple(
        RegisterInfo(f"r{i}", i, 64, RegisterGroup.GENERAL, aliases=("sp",) if i == 7 else ())
        for i in range(REGISTER_COUNT)
    ),
    pc_name="pc",
    stack_pointer="sp",
    syscall=SyscallConvention(number="r0", args=("r1", "r2", "r3", "r4", "r5", "r6"), result="r1"),
    hwcap=0,
    hwcap_bits=(),
    initial_registers=(),
    user_address_limit=1 << 38,
    stack_top=(1 << 38) - PAGE_SIZE,
    mmap_base=0x3F_0000_0000,
    gdb_architecture="toy64",
    gdb_features=(),
)


def assemble(program: Iterable[Sequence[object]]) -> bytes:
    """The bytes of ``program``: tuples ``("li", rd, imm)``, ``("add", rd, rs1, rs2)``, ``("syscall",)``."""
    out = bytearray()
    for insn in program:
        name, *operands = insn
        values = [int(v) for v in operands]  # type: ignore[call-overload]
        if name == "li":
            out += bytes([OP_LI, values[0]]) + (values[1] & MASK64).to_bytes(8, "little")
        elif name == "add":
            out += bytes([OP_ADD, *values])
        elif name == "syscall":
            out += bytes([OP_SYSCALL, 0])
        else:
            raise ValueError(f"toy64 has no instruction {name!r}")
    return bytes(out)


class ToyFrontEnd:
    """Decodes toy64 code and lifts one block into vm's IR (vm-translate's ``FrontEnd`` protocol)."""

    isa = ISA
    layout = LAYOUT

    def lift_block(self, mem: object, pc: int, max_insns: int = 64) -> ir.Block:
        """The block at ``pc``: up to ``max_insns`` instructions, ending at a ``syscall``, a trap or a page end."""
        stmts: list[ir.Stmt] = []
        temps = 0
        addr, count = pc, 0
        while True:
            try:
                opcode = mem.fetch(addr, 1)[0]  # type: ignore[attr-defined]
                length = LENGTHS.get(opcode, 1)
                raw = mem.fetch(addr, length)  # type: ignore[attr-defined]
            except MemoryFault as fault:
                if addr == pc:
                    fault.pc = pc
                    raise
                exit_: ir.Exit = ir.Jump(ir.Const(addr))
                break
            if opcode not in LENGTHS or any(r >= REGISTER_COUNT for r in _registers(opcode, raw)):
                exit_ = ir.TrapExit("illegal", addr, int.from_bytes(raw[:4].ljust(4, b"\0"), "little"), length)
                addr += length  # the block covers the trapping bytes too
                break
            stmts.append(ir.InsnStart(addr, length))
            count += 1
            next_pc = (addr + length) & MASK64
            if opcode == OP_LI:
                stmts.append(ir.PutReg(raw[1], ir.Const(int.from_bytes(raw[2:10], "little"))))
            elif opcode == OP_ADD:
                a, b, total = ir.Temp(temps), ir.Temp(temps + 1), ir.Temp(temps + 2)
                temps += 3
                stmts += [ir.GetReg(a, raw[2]), ir.GetReg(b, raw[3]), ir.BinOp(total, "add", a, b), ir.PutReg(raw[1], total)]
            else:
                exit_ = ir.SyscallExit(addr, next_pc)
                addr = next_pc
                break
            addr = next_pc
            if count >= max_insns or addr // PAGE_SIZE != pc // PAGE_SIZE:
                exit_ = ir.Jump(ir.Const(addr))
                break
        return ir.Block(ISA, pc, tuple(stmts), exit_, count, (addr - pc) & MASK64)


def _registers(opcode: int, raw: bytes) -> tuple[int, ...]:
    if opcode == OP_LI:
        return (raw[1],)
    if opcode == OP_ADD:
        return tuple(raw[1:4])
    return ()


def isa_spec() -> IsaSpec:
    """What the plugin registers through ``vm_register_isas``."""
    return IsaSpec(
        name=ISA,
        factory=ToyFrontEnd,
        elf_machine=EM_TOY64,
        bits=64,
        description="toy64: li, add, syscall (vm-example-plugin)",
        aliases=("toy",),
        arch=TOY64,
    )
