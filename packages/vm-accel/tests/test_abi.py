"""Structure layouts and ioctl numbers agree with the kernel's own header, compiled by the host C compiler."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest
from vm_accel.kvm import ioctl_numbers as nr
from vm_accel.kvm import structures as st

CC = shutil.which("cc") or shutil.which("gcc")
HEADER = Path("/usr/include/linux/kvm.h")
pytestmark = pytest.mark.skipif(
    CC is None or not HEADER.exists(), reason="needs a C compiler and linux/kvm.h (apt-get install linux-libc-dev)"
)

IOCTLS = [
    "KVM_GET_API_VERSION", "KVM_CREATE_VM", "KVM_GET_MSR_INDEX_LIST", "KVM_CHECK_EXTENSION",
    "KVM_GET_VCPU_MMAP_SIZE", "KVM_GET_SUPPORTED_CPUID", "KVM_CREATE_VCPU", "KVM_SET_USER_MEMORY_REGION",
    "KVM_SET_TSS_ADDR", "KVM_SET_IDENTITY_MAP_ADDR", "KVM_RUN", "KVM_GET_REGS", "KVM_SET_REGS",
    "KVM_GET_SREGS", "KVM_SET_SREGS", "KVM_GET_MSRS", "KVM_SET_MSRS", "KVM_SET_SIGNAL_MASK",
    "KVM_GET_FPU", "KVM_SET_FPU", "KVM_SET_CPUID2",
    "KVM_EXIT_IO", "KVM_EXIT_HLT", "KVM_EXIT_MMIO", "KVM_EXIT_SHUTDOWN", "KVM_EXIT_FAIL_ENTRY",
    "KVM_EXIT_INTR", "KVM_EXIT_INTERNAL_ERROR", "KVM_EXIT_SYSTEM_EVENT", "KVM_CAP_IMMEDIATE_EXIT",
    "KVM_CAP_USER_MEMORY", "KVM_CAP_SET_TSS_ADDR", "KVM_CAP_NR_MEMSLOTS", "KVM_MEM_READONLY",
]  # fmt: skip

# (ctypes type, C type, [(python field path, C member path)])
LAYOUTS: list[tuple[type[ctypes.Structure], str, list[str]]] = [
    (st.KvmRegs, "struct kvm_regs", ["rax", "r8", "rip", "rflags"]),
    (st.KvmSegment, "struct kvm_segment", ["limit", "selector", "type", "l", "unusable"]),
    (st.KvmDtable, "struct kvm_dtable", ["limit"]),
    (st.KvmSregs, "struct kvm_sregs", ["ss", "tr", "gdt", "idt", "cr0", "cr8", "efer", "interrupt_bitmap"]),
    (st.KvmFpu, "struct kvm_fpu", ["fcw", "ftwx", "last_ip", "xmm", "mxcsr"]),
    (st.KvmMsrEntry, "struct kvm_msr_entry", ["data"]),
    (st.KvmMsrsHeader, "struct kvm_msrs", []),
    (st.KvmCpuidEntry2, "struct kvm_cpuid_entry2", ["eax", "edx"]),
    (st.KvmCpuid2Header, "struct kvm_cpuid2", []),
    (st.KvmUserspaceMemoryRegion, "struct kvm_userspace_memory_region", ["guest_phys_addr", "userspace_addr"]),
]


def _c_values(tmp_path: Path) -> dict[str, int]:
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include <linux/kvm.h>', "int main(void) {"]
    for name in IOCTLS:
        lines.append(f'printf("{name} %llu\\n", (unsigned long long)({name}));')
    for _, ctype, fields in LAYOUTS:
        key = ctype.replace(" ", "_")
        lines.append(f'printf("sizeof_{key} %zu\\n", sizeof({ctype}));')
        for field in fields:
            lines.append(f'printf("{key}.{field} %zu\\n", offsetof({ctype}, {field}));')
    run_members = ["exit_reason", "immediate_exit", "cr8", "io", "io.data_offset", "mmio.len", "mmio.is_write",
                   "fail_entry.cpu", "internal.data", "emulation_failure.insn_bytes", "system_event.data"]  # fmt: skip
    for member in run_members:
        lines.append(f'printf("kvm_run.{member} %zu\\n", offsetof(struct kvm_run, {member}));')
    lines.append("return 0; }")
    source = tmp_path / "abi.c"
    source.write_text("\n".join(lines))
    binary = tmp_path / "abi"
    subprocess.run([CC, "-o", str(binary), str(source)], check=True, capture_output=True)  # type: ignore[list-item]
    output = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout
    return {key: int(value) for key, value in (line.split() for line in output.splitlines())}


@pytest.fixture(scope="module")
def c_values(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    return _c_values(tmp_path_factory.mktemp("abi"))


@pytest.mark.parametrize("name", IOCTLS)
def test_constant_matches_header(name: str, c_values: dict[str, int]) -> None:
    assert getattr(nr, name) == c_values[name]


@pytest.mark.parametrize(("pytype", "ctype", "fields"), LAYOUTS, ids=[c for _, c, _ in LAYOUTS])
def test_structure_layout_matches_header(
    pytype: type[ctypes.Structure], ctype: str, fields: list[str], c_values: dict[str, int]
) -> None:
    key = ctype.replace(" ", "_")
    assert ctypes.sizeof(pytype) == c_values[f"sizeof_{key}"]
    for field in fields:
        assert getattr(pytype, field).offset == c_values[f"{key}.{field}"], field


def _run_offset(path: str) -> int:
    parts = path.split(".")
    offset = st.KvmRun.exit.offset if parts[0] not in {f[0] for f in st.KvmRun._fields_} else 0
    owner: type = st.KvmRun if offset == 0 else st.KvmRunExit
    for part in parts:
        descriptor = getattr(owner, part)
        offset += descriptor.offset
        owner = dict(owner._fields_)[part]  # type: ignore[attr-defined]
    return offset


@pytest.mark.parametrize(
    "member",
    ["exit_reason", "immediate_exit", "cr8", "io", "io.data_offset", "mmio.len", "mmio.is_write",
     "fail_entry.cpu", "internal.data", "emulation_failure.insn_bytes", "system_event.data"],
)  # fmt: skip
def test_kvm_run_offsets_match_header(member: str, c_values: dict[str, int]) -> None:
    assert _run_offset(member) == c_values[f"kvm_run.{member}"]


def test_ioc_encoding_matches_known_values() -> None:
    # Values from the kernel documentation / strace output on x86-64.
    assert nr.KVM_GET_REGS == 0x8090AE81
    assert nr.KVM_RUN == 0xAE80
    assert nr.iowr(0xAE, 0x05, 8) == 0xC008AE05
    with pytest.raises(ValueError):
        nr.ioc(nr.IOC_READ, 0xAE, 1, 1 << 14)
