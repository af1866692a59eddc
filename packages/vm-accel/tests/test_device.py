"""Opening /dev/kvm: the checks and their AcceleratorUnavailable errors, capabilities, CPUID."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from vm_accel.kvm import Kvm, probe_kvm
from vm_accel.kvm import ioctl_numbers as nr
from vm_core.errors import AcceleratorUnavailable, ConfigurationError

from .conftest import needs_kvm


def test_missing_device_is_unavailable(tmp_path: Path) -> None:
    path = str(tmp_path / "no-such-kvm")
    with pytest.raises(AcceleratorUnavailable) as info:
        Kvm(path)
    assert info.value.accelerator == "kvm"
    assert f"{path} does not exist" in info.value.check
    assert info.value.hint and "virtualization" in info.value.hint
    with pytest.raises(AcceleratorUnavailable):
        probe_kvm(path)


def test_a_device_that_is_not_kvm_is_unavailable() -> None:
    with pytest.raises(AcceleratorUnavailable) as info:
        Kvm("/dev/null")
    assert "KVM_GET_API_VERSION" in info.value.check


@pytest.mark.skipif(os.geteuid() == 0, reason="root opens any file")
def test_unreadable_device_says_to_join_the_kvm_group(tmp_path: Path) -> None:
    path = tmp_path / "kvm"
    path.write_bytes(b"")
    path.chmod(0)
    with pytest.raises(AcceleratorUnavailable) as info:
        Kvm(str(path))
    assert info.value.hint and "kvm group" in info.value.hint


@needs_kvm
def test_real_device_api_and_capabilities(kvm: Kvm) -> None:
    assert kvm.api_version == 12
    assert kvm.check_extension(nr.KVM_CAP_USER_MEMORY) > 0
    assert kvm.vcpu_mmap_size >= 4096
    assert kvm.check_extension(0xFFFF) == 0  # a capability number no kernel has
    probe_kvm()


@needs_kvm
def test_supported_cpuid_reports_the_host_vendor(kvm: Kvm) -> None:
    leaf0 = next(e for e in kvm.supported_cpuid() if e.function == 0)
    vendor = b"".join(v.to_bytes(4, "little") for v in (leaf0.ebx, leaf0.edx, leaf0.ecx)).decode()
    host_vendor = next(
        line.split(":")[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("vendor_id")
    )
    assert vendor == host_vendor
    ext = next(e for e in kvm.supported_cpuid() if e.function == 0x8000_0001)
    assert ext.edx & (1 << 29)  # long mode


@needs_kvm
def test_overlapping_memory_is_rejected(kvm: Kvm) -> None:
    with kvm.create_vm() as vm:
        vm.add_memory(0, 0x10000)
        with pytest.raises(ConfigurationError):
            vm.add_memory(0x8000, 0x10000)
        region = vm.add_memory(0x10000, 0x1000)
        assert len(vm.memory) == 2 and region.slot == 1
