"""The KVM device (/dev/kvm): opening and checking it, system ioctls, creating VMs.

:class:`Kvm` opens the device and checks what the backend needs (API
version 12, user memory regions); every failure to do so raises
:class:`vm_core.errors.AcceleratorUnavailable` naming the failed check and
what to do about it. :func:`probe_kvm` runs the same checks plus a
throw-away ``KVM_CREATE_VM`` for the plugin's probe. The VM is made here and
knows the device only as a :class:`vm_accel.kvm.protocols.KvmDevice`, so the
modules import downwards only: system, vm, vcpu, run_loop.
"""

from __future__ import annotations

import errno
import fcntl
import os

from vm_core.errors import AcceleratorUnavailable
from vm_core.logging import get_logger

from vm_accel.kvm import ioctl_numbers as nr
from vm_accel.kvm import structures as st
from vm_accel.kvm.errors import KvmIoctlError
from vm_accel.kvm.ioctl import kvm_ioctl
from vm_accel.kvm.state import CpuidEntry
from vm_accel.kvm.vm import KvmVm

DEFAULT_DEVICE_PATH = "/dev/kvm"
ACCELERATOR_NAME = "kvm"

log = get_logger("vm_accel.kvm.system")

_HINT_NO_DEVICE = (
    "load the KVM module (modprobe kvm_intel or kvm_amd), enable virtualization (VT-x/AMD-V) in "
    "firmware, or enable nested virtualization when this host is itself a VM"
)
_HINT_PERMISSION = "add yourself to the kvm group (sudo usermod -aG kvm $USER) and log in again"


class Kvm:
    """An open KVM device."""

    def __init__(self, device_path: str = DEFAULT_DEVICE_PATH) -> None:
        self.device_path = device_path
        self.fd = _open_device(device_path)
        try:
            self.api_version = self._check_api_version()
            if not self.check_extension(nr.KVM_CAP_USER_MEMORY):
                raise AcceleratorUnavailable(
                    ACCELERATOR_NAME,
                    "KVM_CAP_USER_MEMORY is missing",
                    hint="use a Linux kernel with user-space memory regions (2.6.27 or newer)",
                )
            self.vcpu_mmap_size = kvm_ioctl(self.fd, nr.KVM_GET_VCPU_MMAP_SIZE, name="KVM_GET_VCPU_MMAP_SIZE")
        except BaseException:
            os.close(self.fd)
            raise
        self._supported_cpuid: tuple[CpuidEntry, ...] | None = None
        log.debug("kvm_opened", device=device_path, api=self.api_version, mmap_size=self.vcpu_mmap_size)

    def _check_api_version(self) -> int:
        try:
            version = int(fcntl.ioctl(self.fd, nr.KVM_GET_API_VERSION, 0))
        except OSError as exc:
            raise AcceleratorUnavailable(
                ACCELERATOR_NAME,
                f"KVM_GET_API_VERSION on {self.device_path} failed ({os.strerror(exc.errno or 0)}): "
                "not a KVM device",
                hint=f"point the device path at the KVM device ({DEFAULT_DEVICE_PATH})",
            ) from exc
        if version != nr.KVM_API_VERSION:
            raise AcceleratorUnavailable(
                ACCELERATOR_NAME,
                f"KVM API version is {version}, this backend speaks {nr.KVM_API_VERSION}",
                hint="use a Linux kernel with the stable KVM API (2.6.22 or newer)",
            )
        return version

    def check_extension(self, capability: int) -> int:
        """``KVM_CHECK_EXTENSION``: 0 when unsupported, else a capability-specific positive value."""
        return kvm_ioctl(self.fd, nr.KVM_CHECK_EXTENSION, capability, name="KVM_CHECK_EXTENSION")

    def supported_cpuid(self) -> tuple[CpuidEntry, ...]:
        """``KVM_GET_SUPPORTED_CPUID``: the CPUID leaves KVM can expose to a guest."""
        if self._supported_cpuid is None:
            count = 128
            while True:
                table = st.kvm_cpuid2_type(count)(nent=count)
                try:
                    kvm_ioctl(self.fd, nr.KVM_GET_SUPPORTED_CPUID, table, name="KVM_GET_SUPPORTED_CPUID")
                except KvmIoctlError as exc:
                    if exc.errno == errno.E2BIG and count < 4096:
                        count *= 2
                        continue
                    raise
                break
            entries = table.entries
            self._supported_cpuid = tuple(
                CpuidEntry.from_kvm(entries[i])
                for i in range(table.nent)
            )
        return self._supported_cpuid

    def create_vm(self, *, strict_io: bool = True) -> KvmVm:
        """``KVM_CREATE_VM``: a new, empty :class:`vm_accel.kvm.vm.KvmVm`."""
        try:
            vm_fd = int(fcntl.ioctl(self.fd, nr.KVM_CREATE_VM, 0))
        except OSError as exc:
            raise AcceleratorUnavailable(
                ACCELERATOR_NAME,
                f"KVM_CREATE_VM failed ({os.strerror(exc.errno or 0)})",
                hint="enable virtualization (VT-x/AMD-V) in firmware and make sure no other hypervisor "
                "holds it; EBUSY or ENOMEM can also mean too many VMs are running",
            ) from exc
        return KvmVm(self, vm_fd, strict_io=strict_io)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Kvm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_device(device_path: str) -> int:
    try:
        return os.open(device_path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise AcceleratorUnavailable(
            ACCELERATOR_NAME, f"{device_path} does not exist", hint=_HINT_NO_DEVICE
        ) from exc
    except PermissionError as exc:
        raise AcceleratorUnavailable(
            ACCELERATOR_NAME, f"no permission to open {device_path} read-write", hint=_HINT_PERMISSION
        ) from exc
    except OSError as exc:
        raise AcceleratorUnavailable(
            ACCELERATOR_NAME,
            f"cannot open {device_path}: {os.strerror(exc.errno or 0)}",
            hint=_HINT_NO_DEVICE,
        ) from exc


def probe_kvm(device_path: str = DEFAULT_DEVICE_PATH) -> None:
    """Return ``None`` when KVM is usable here, else raise AcceleratorUnavailable naming the failed check."""
    with Kvm(device_path) as kvm:
        vm = kvm.create_vm()
        vm.close()
