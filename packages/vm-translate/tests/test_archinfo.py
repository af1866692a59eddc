"""The ISA facts in vm_translate.*.archinfo, checked against sources not written here.

Oracles: gdb-multiarch's own register lists (``maint print registers``) for
riscv:rv64 and i386:x86-64, capstone's register names for the encodings of
each register number, the kernel's ``struct user_regs_struct`` (glibc's
``<sys/user.h>``), and ``getauxval(AT_HWCAP)`` of a riscv64 program under
qemu-riscv64. Each needs its tool and is skipped, with the reason, without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from vm_core.arch import RegisterGroup, UnknownRegister
from vm_core.plugins import collect_registry, make_plugin_manager
from vm_translate.riscv.archinfo import RV64
from vm_translate.x86_64.archinfo import X86_64

GDB = shutil.which("gdb-multiarch")
RISCV_GCC = shutil.which("riscv64-linux-gnu-gcc")
QEMU_RISCV = shutil.which("qemu-riscv64")
USER_H = Path("/usr/include/x86_64-linux-gnu/sys/user.h")


def _gdb_registers(*commands: str) -> dict[str, int]:
    """gdb's register names and numbers (name -> number), unnamed slots left out."""
    assert GDB is not None
    args = [GDB, "-nx", "-batch"]
    for command in commands:
        args += ["-ex", command]
    out = subprocess.run([*args, "-ex", "maint print registers"], capture_output=True, text=True, check=True).stdout
    rows = re.findall(r"^ (\S+)\s+(\d+)\s+\d+\s+\d+\s+\d+ ", out, re.M)
    return {name: int(number) for name, number in rows if name != "''"}


@pytest.fixture(scope="module")
def rv64_object(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if RISCV_GCC is None:
        pytest.skip("riscv64-linux-gnu-gcc is not installed")
    folder = tmp_path_factory.mktemp("rv64")
    (folder / "empty.c").write_text("int vm_archinfo_probe;\n")
    subprocess.run([RISCV_GCC, "-c", "-o", str(folder / "empty.o"), str(folder / "empty.c")], check=True)
    return folder / "empty.o"


@pytest.mark.skipif(GDB is None, reason="gdb-multiarch is not installed")
def test_rv64_registers_are_gdbs(rv64_object: Path) -> None:
    gdb = _gdb_registers(f"file {rv64_object}")  # an RV64GC object: gdb adds the D registers
    assert gdb["pc"] == RV64.pc_gdb_number
    checked = 0
    for name, number in gdb.items():
        if number <= 64 and name != "pc":
            assert RV64.register(name).gdb_number == number, name
            checked += 1
    assert checked == 64  # x0..x31 and f0..f31, by their ABI names (gdb calls x8 "fp")
    # CSRs are numbered 65 + the CSR number: fcsr (0x003) pins the base that fflags (0x001) and frm (0x002) use.
    assert gdb["fcsr"] == 65 + 3
    assert (RV64.register("fflags").gdb_number, RV64.register("frm").gdb_number) == (65 + 1, 65 + 2)


@pytest.mark.skipif(GDB is None, reason="gdb-multiarch is not installed")
def test_x86_64_registers_are_gdbs() -> None:
    gdb = _gdb_registers("set architecture i386:x86-64")
    assert gdb["rip"] == X86_64.pc_gdb_number
    for register in X86_64.registers:
        if register.gdb_number is not None:
            assert gdb[register.name if register.name in gdb else register.aliases[0]] == register.gdb_number


def test_rv64_register_numbers_name_what_capstone_decodes() -> None:
    capstone = pytest.importorskip("capstone")
    md = capstone.Cs(capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV64)
    for n in range(32):
        addi = (1 << 20) | (n << 15) | (n << 7) | 0x13  # addi xN, xN, 1
        fsgnj = (0x11 << 25) | (1 << 20) | (2 << 15) | (n << 7) | 0x53  # fsgnj.d fN, f2, f1
        for word, register in ((addi, RV64.register(f"x{n}")), (fsgnj, RV64.register(f"f{n}"))):
            (insn,) = md.disasm(word.to_bytes(4, "little"), 0)
            decoded = insn.op_str.split(",")[0]
            assert RV64.register(decoded) == register, (hex(word), insn.mnemonic, insn.op_str)


def test_x86_64_register_indices_are_the_hardware_encoding() -> None:
    capstone = pytest.importorskip("capstone")
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    for register in X86_64.group(RegisterGroup.GENERAL):
        code = bytes([0x50 + register.index]) if register.index < 8 else bytes([0x41, 0x50 + register.index - 8])
        (insn,) = md.disasm(code, 0)  # push r<index>
        assert insn.op_str == register.name


@pytest.mark.skipif(not USER_H.exists(), reason="glibc's x86-64 <sys/user.h> is not installed")
def test_x86_64_registers_are_fields_of_the_kernels_user_regs_struct() -> None:
    body = re.search(r"struct user_regs_struct\s*\{(.*?)\};", USER_H.read_text(), re.S)
    assert body is not None
    fields = set(re.findall(r"(\w+);", body.group(1)))
    for register in X86_64.registers:
        assert {register.name, *register.aliases} & fields, register.name
    assert X86_64.pc_name in fields


@pytest.mark.skipif(RISCV_GCC is None or QEMU_RISCV is None, reason="needs riscv64-linux-gnu-gcc and qemu-riscv64")
def test_rv64_hwcap_is_what_qemu_riscv64_reports(tmp_path: Path) -> None:
    assert RISCV_GCC is not None and QEMU_RISCV is not None
    source = tmp_path / "hwcap.c"
    source.write_text(
        '#include <stdio.h>\n#include <sys/auxv.h>\n'
        'int main(void) { printf("%lu\\n", getauxval(AT_HWCAP)); return 0; }\n'
    )
    subprocess.run([RISCV_GCC, "-static", "-O2", "-o", str(tmp_path / "hwcap"), str(source)], check=True)
    reported = subprocess.run([QEMU_RISCV, str(tmp_path / "hwcap")], capture_output=True, text=True, check=True)
    assert int(reported.stdout) == RV64.hwcap


@pytest.mark.parametrize("arch", [RV64, X86_64], ids=lambda a: a.name)
def test_hwcap_bits_name_every_set_bit(arch) -> None:  # type: ignore[no-untyped-def]
    assert sum(1 << bit.bit for bit in arch.hwcap_bits) == arch.hwcap


def test_the_plugin_registers_each_isa_with_its_archinfo() -> None:
    registry = collect_registry(make_plugin_manager())
    assert registry.isa("riscv64").arch is RV64 and registry.isa("rv64").arch is RV64
    assert registry.isa("x86_64").arch is X86_64 and not registry.isa("x86_64").emulated
    assert registry.isa_for_elf_machine(243).arch is RV64


def test_the_front_end_layout_is_the_archinfo() -> None:
    from vm_translate.riscv import LAYOUT, NREGS

    assert NREGS == RV64.register_count
    for register in RV64.registers:
        assert LAYOUT.index(register.name) == register.index


def test_linux_facts() -> None:
    assert RV64.indices(RV64.syscall.number, *RV64.syscall.args) == (17, 10, 11, 12, 13, 14, 15)
    assert X86_64.indices(X86_64.syscall.number, *X86_64.syscall.args) == (0, 7, 6, 2, 10, 8, 9)
    regs = [7] * X86_64.register_count
    X86_64.reset_registers(regs, sp=0x7FFF_0000)
    assert regs[X86_64.index("rsp")] == 0x7FFF_0000 and regs[X86_64.index("eflags")] == 0x202
    assert sum(regs) == 0x7FFF_0000 + 0x202
    with pytest.raises(UnknownRegister):
        RV64.register("eax")
