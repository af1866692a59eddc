"""vm-gc installs and loads as a plugin, and claims nothing it does not implement.

The collector itself is not written yet (see README's status table); until it
is, vm-gc must register no part at all rather than a placeholder.
"""

from __future__ import annotations

from vm_core.plugins import collect_registry, make_plugin_manager


def test_entry_point_loads_and_registers_nothing() -> None:
    pm = make_plugin_manager(environ={"VM_PLUGINS": "gc"})
    assert [name for name, _ in pm.list_name_plugin()] == ["gc"]
    registry = collect_registry(pm)
    assert registry.isas == {} and registry.engines == {} and registry.accelerators == {}
    assert registry.devices == {} and registry.syscall_tables == {} and registry.loaders == {}
