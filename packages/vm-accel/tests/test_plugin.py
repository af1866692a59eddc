"""The accel plugin: registration through vm_core's hooks and the accelerator selection rule."""

from __future__ import annotations

import pytest
from vm_accel import plugin
from vm_accel.kvm import Kvm
from vm_core.errors import AcceleratorUnavailable
from vm_core.plugins import collect_registry, make_plugin_manager

from .conftest import KVM_UNAVAILABLE


def test_registers_kvm_for_x86_64() -> None:
    registry = collect_registry(make_plugin_manager(load_entry_points=False, plugins=[plugin]))
    spec = registry.accelerators["kvm"]
    assert spec.isas == ("x86_64",)
    assert spec.probe is plugin.probe and spec.factory is plugin.open_kvm


def test_installed_entry_point_loads_the_plugin() -> None:
    pm = make_plugin_manager(environ={"VM_PLUGINS": "accel"})
    assert "kvm" in collect_registry(pm).accelerators


def _select(isa: str, requested: str, host_isa: str) -> str | None:
    pm = make_plugin_manager(load_entry_points=False, plugins=[plugin])
    result: str | None = pm.hook.vm_select_accelerator(isa=isa, requested=requested, host_isa=host_isa)
    return result


def test_explicit_request_selects_kvm_whatever_the_host() -> None:
    assert _select("riscv64", "kvm", "aarch64") == "kvm"


@pytest.mark.parametrize(
    ("isa", "requested", "host"),
    [("riscv64", "auto", "x86_64"), ("x86_64", "auto", "aarch64"), ("x86_64", "none", "x86_64"),
     ("x86_64", "hvf", "x86_64")],
)  # fmt: skip
def test_auto_declines_other_isas_hosts_and_requests(isa: str, requested: str, host: str) -> None:
    assert _select(isa, requested, host) is None


def test_auto_follows_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugin, "probe", lambda: None)
    assert _select("x86_64", "auto", "x86_64") == "kvm"

    def failing() -> None:
        raise AcceleratorUnavailable("kvm", "/dev/kvm does not exist")

    monkeypatch.setattr(plugin, "probe", failing)
    assert _select("x86_64", "auto", "x86_64") is None


def test_auto_on_this_host_agrees_with_the_real_probe() -> None:
    expected = "kvm" if KVM_UNAVAILABLE is None else None
    assert _select("x86_64", "auto", "x86_64") == expected


def test_probe_and_factory_use_the_device_path(tmp_path) -> None:
    with pytest.raises(AcceleratorUnavailable, match="does not exist"):
        plugin.probe(str(tmp_path / "kvm"))
    with pytest.raises(AcceleratorUnavailable):
        plugin.open_kvm(str(tmp_path / "kvm"))
    if KVM_UNAVAILABLE is None:
        with plugin.open_kvm() as kvm:
            assert isinstance(kvm, Kvm) and kvm.api_version == 12
