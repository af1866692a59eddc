"""Tier 2: hot guest regions compiled to host machine code with LLVM (llvmlite), and the AOT cache.

* :mod:`vm_jit.native.llvm_ir`: vm IR regions -> LLVM IR text;
* :mod:`vm_jit.native.compiler`: LLVM IR -> object code -> callable functions;
* :mod:`vm_jit.native.pagetable`: host page tables mirroring guest memory;
* :mod:`vm_jit.native.cache`: the on-disk AOT cache;
* :mod:`vm_jit.native.region`: a native region's name and loaded code;
* :mod:`vm_jit.native.tier`: :class:`NativeTier` and :func:`make_llvm_engine`, the ``llvm`` engine.
"""

from vm_jit.native.tier import NativeTier, make_llvm_engine

__all__ = ["NativeTier", "make_llvm_engine"]
