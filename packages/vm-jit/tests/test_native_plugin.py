"""vm-jit's plugin: the ``llvm`` engine is registered, ``auto`` picks it, ``VM_JIT_SETTINGS`` overrides settings."""

from __future__ import annotations

import pytest
from vm_core.errors import ConfigurationError
from vm_core.plugins import collect_registry, make_plugin_manager
from vm_jit.native.tier import NativeTier
from vm_jit.plugin import SETTINGS_ENV, llvmlite_installed, settings_from_text
from vm_jit.settings import JitSettings
from vm_translate.riscv import RiscvFrontEnd


def test_llvm_engine_is_registered_and_chosen_by_auto() -> None:
    pm = make_plugin_manager()
    registry = collect_registry(pm)
    assert "llvm" in registry.engines and "python" in registry.engines
    assert llvmlite_installed()
    chosen = pm.hook.vm_select_engine(isa="riscv64", requested="auto", available=sorted(registry.engines))
    assert chosen == "llvm"
    engine = registry.engine("llvm").factory(RiscvFrontEnd(), JitSettings(aot_cache=False))
    tier = engine.tier("native")
    assert engine.name == "llvm" and isinstance(tier, NativeTier) and tier.aot_cache is None


def test_settings_text_overrides_fields() -> None:
    s = settings_from_text(" native_threshold=0x100, native_background=false ,aot_cache=on")
    assert (s.native_threshold, s.native_background, s.aot_cache) == (256, False, True)
    assert settings_from_text("") == JitSettings()


@pytest.mark.parametrize(
    "text", ["nonsense=1", "native_threshold", "native_threshold=x", "native_threshold=-1", "aot_cache=maybe"]
)
def test_bad_settings_text_is_a_configuration_error(text: str) -> None:
    with pytest.raises(ConfigurationError, match=SETTINGS_ENV):
        settings_from_text(text)


def test_environment_reaches_the_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTINGS_ENV, "native_threshold=7,aot_cache=false")
    registry = collect_registry(make_plugin_manager())
    engine = registry.engine("llvm").factory(RiscvFrontEnd(), None)
    assert engine.settings.native_threshold == 7 and engine.tier("native").aot_cache is None
