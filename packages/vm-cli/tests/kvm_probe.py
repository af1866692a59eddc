"""Whether this host's KVM is usable, for the vm-cli tests that run guests through it."""

from __future__ import annotations

from vm_accel.kvm import probe_kvm
from vm_core.errors import AcceleratorUnavailable


def kvm_unavailable_reason() -> str | None:
    """None when KVM is usable here, else the check that failed."""
    try:
        probe_kvm()
    except AcceleratorUnavailable as exc:
        return str(exc)
    return None


KVM_UNAVAILABLE = kvm_unavailable_reason()
