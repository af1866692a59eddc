"""Fixtures of the vm-accel tests: a real KVM VM (skipped with the probe's reason when unusable)."""

from __future__ import annotations

from collections.abc import Iterator

import attrs
import pytest
from vm_accel.kvm import Kvm, KvmVcpu, KvmVm, Registers, probe_kvm
from vm_core.errors import AcceleratorUnavailable


def _kvm_unavailable_reason() -> str | None:
    try:
        probe_kvm()
    except AcceleratorUnavailable as exc:
        return str(exc)
    return None


KVM_UNAVAILABLE = _kvm_unavailable_reason()
needs_kvm = pytest.mark.skipif(KVM_UNAVAILABLE is not None, reason=KVM_UNAVAILABLE or "")


@pytest.fixture
def kvm() -> Iterator[Kvm]:
    if KVM_UNAVAILABLE is not None:
        pytest.skip(KVM_UNAVAILABLE)
    with Kvm() as opened:
        yield opened


@pytest.fixture
def vm(kvm: Kvm) -> Iterator[KvmVm]:
    with kvm.create_vm() as created:
        yield created


class RecordingPorts:
    """A port handler that records writes and answers reads from a table."""

    def __init__(self, answers: dict[tuple[int, int], int] | None = None) -> None:
        self.writes: list[tuple[int, int, int]] = []
        self.reads: list[tuple[int, int]] = []
        self.answers = answers or {}

    def port_read(self, vcpu: KvmVcpu, port: int, size: int) -> int:
        self.reads.append((port, size))
        return self.answers.get((port, size), 0)

    def port_write(self, vcpu: KvmVcpu, port: int, size: int, value: int) -> None:
        self.writes.append((port, size, value))


def start_real_mode(vcpu: KvmVcpu, rip: int) -> None:
    """Flat real mode: all segments at 0, execution at ``rip``."""
    special = vcpu.get_sregs()
    zero = {name: attrs.evolve(getattr(special, name), base=0, selector=0) for name in ("cs", "ds", "es", "ss")}
    vcpu.set_sregs(attrs.evolve(special, **zero))
    vcpu.set_regs(Registers(rip=rip, rsp=0x8000))
