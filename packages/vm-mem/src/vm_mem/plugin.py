"""vm-mem's plugin: what this package registers with vm through vm_core's hooks.

Loaded through the entry point `mem` of the group `vm_core.plugins`.
vm-mem registers no hooks: engines and the Linux layer construct `vm_mem.AddressSpace` directly.
"""
