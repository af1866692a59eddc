"""Tier 2: hot guest regions compiled to host machine code with LLVM (llvmlite), and the AOT cache.

* :mod:`vm_jit.native.llvm_ir`: vm IR regions -> LLVM IR text;
* :mod:`vm_jit.native.compiler`: LLVM IR -> object code -> callable functions;
* :mod:`vm_jit.native.pagetable`: host page tables mirroring guest memory;
* :mod:`vm_jit.native.cache`: the on-disk AOT cache;
* :mod:`vm_jit.native.engine`: :class:`TieredEngine`, the ``llvm`` engine.
"""

from vm_jit.native.engine import TieredEngine

__all__ = ["TieredEngine"]
