"""KvmUserMode (vm-accel's x86-64 user-mode backend) refuses a missing device with AcceleratorUnavailable.

Running ``guest/x86_64``'s programs under ``vm run --accel kvm`` and through
vm_cli.compose is tested in vm-cli's ``test_accel_kvm_programs.py``.
"""

from __future__ import annotations

import pytest
from vm_core.errors import AcceleratorUnavailable


def test_unavailable_device_raises_accelerator_unavailable() -> None:
    from vm_accel.usermode import KvmUserMode
    from vm_translate.x86_64.archinfo import X86_64

    with pytest.raises(AcceleratorUnavailable, match="does not exist"):
        KvmUserMode(X86_64, device_path="/nonexistent/kvm")
