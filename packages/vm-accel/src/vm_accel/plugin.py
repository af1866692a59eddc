"""vm-accel's plugin: what this package registers with vm through vm_core's hooks.

Loaded through the entry point `accel` of the group `vm_core.plugins`. It
registers the ``kvm`` accelerator (x86-64 guests on an x86-64 Linux host
with /dev/kvm): ``factory()`` opens the device, ``user_mode(isa, arch)``
opens a VM a user-mode process runs on (:class:`~vm_accel.usermode.KvmUserMode`;
the composition root puts vm-linux's process on it, ``vm run``), and
``system_mode(isa, request)`` boots an x86-64 Linux kernel
(:class:`~vm_accel.boot.system_mode.KvmSystemMode`, ``vm boot``). It answers
``vm_select_accelerator`` (``trylast``, so a third-party selector is asked
first): ``kvm`` when the user asked for it (the composition root then
refuses a guest ISA it cannot run), or asked for ``auto`` for an x86-64 guest
on an x86-64 host whose probe passes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vm_core.arch import ArchInfo
from vm_core.errors import AcceleratorUnavailable
from vm_core.hookspecs import hookimpl
from vm_core.logging import get_logger
from vm_core.types import AcceleratorSpec, BootRequest

from vm_accel.kvm.system import ACCELERATOR_NAME, DEFAULT_DEVICE_PATH, Kvm, probe_kvm

log = get_logger("vm_accel.plugin")

KVM_ISAS = ("x86_64",)


def probe(device_path: str = DEFAULT_DEVICE_PATH) -> None:
    """``None`` when KVM is usable here; else AcceleratorUnavailable naming the failed check."""
    probe_kvm(device_path)


def open_kvm(device_path: str = DEFAULT_DEVICE_PATH) -> Kvm:
    """The accelerator factory: an open, checked KVM device."""
    return Kvm(device_path)


def open_system_mode(isa: str, request: BootRequest) -> Any:
    """The accelerator's ``system_mode`` factory: an open KVM device and the kernel ``request`` boots on it."""
    from vm_accel.boot.system_mode import open_system_mode as open_kvm_system_mode

    return open_kvm_system_mode(isa, request)


def open_user_mode(isa: str, arch: ArchInfo) -> Any:
    """The accelerator's ``user_mode`` factory: a KVM VM ready for one ``isa`` user-mode process (``arch``: its ArchInfo)."""
    from vm_accel.usermode.runner import open_user_mode as open_kvm_user_mode

    return open_kvm_user_mode(isa, arch)


KVM_SPEC = AcceleratorSpec(
    name=ACCELERATOR_NAME,
    factory=open_kvm,
    probe=probe,
    isas=KVM_ISAS,
    description="Linux KVM through /dev/kvm (x86-64 guests on x86-64 hosts)",
    user_mode=open_user_mode,
    system_mode=open_system_mode,
)


@hookimpl
def vm_register_accelerators(register: Callable[[AcceleratorSpec], None]) -> None:
    register(KVM_SPEC)


@hookimpl(trylast=True)
def vm_select_accelerator(isa: str, requested: str, host_isa: str) -> str | None:
    if requested == ACCELERATOR_NAME:
        return ACCELERATOR_NAME
    if requested != "auto" or isa not in KVM_ISAS or host_isa != isa:
        return None
    try:
        probe()
    except AcceleratorUnavailable as exc:
        log.info("kvm_not_selected", reason=str(exc))
        return None
    return ACCELERATOR_NAME
