"""vm-cli's plugin: what this package registers with vm through vm_core's hooks.

Loaded through the entry point `cli` of the group `vm_core.plugins`.
"""
