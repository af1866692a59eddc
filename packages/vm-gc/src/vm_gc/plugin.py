"""vm-gc's plugin: what this package registers with vm through vm_core's hooks.

Loaded through the entry point `gc` of the group `vm_core.plugins`. The
collector is a library the translating engines build into their code cache
(vm-jit's ``TranslationCache.code_cache``); it adds no ISA, engine or device, so
this plugin registers nothing.
"""
