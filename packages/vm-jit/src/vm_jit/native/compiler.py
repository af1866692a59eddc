"""llvmlite: LLVM IR text -> optimised host object code -> callable machine code.

:func:`compile_object` parses a module in a context of its own, runs LLVM's
O2 pipeline for the host CPU and returns the object file's bytes; it touches
no shared LLVM state, so it may run in a background thread (llvmlite
releases the GIL in LLVM calls). :class:`NativeLoader` owns one MCJIT
execution engine and turns object bytes (fresh, or read from the AOT cache)
into function addresses; it is used from one thread only.
:func:`llvm_available` says whether all of this works on this host.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable
from typing import Any

from vm_core.errors import AcceleratorUnavailable, VmError
from vm_core.logging import get_logger

log = get_logger("vm_jit.native.compiler")

NativeFunction = Callable[[int], int]
_FUNCTION_TYPE = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64)
_init_lock = threading.Lock()


@functools.cache
def _llvm() -> Any:
    try:
        import llvmlite.binding as llvm
    except ImportError as err:
        raise AcceleratorUnavailable("llvm", "llvmlite is not installed", hint="pip install llvmlite") from err
    with _init_lock:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
    return llvm


def _target_machine() -> Any:
    llvm = _llvm()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(), opt=2, reloc="pic"
    )


@functools.cache
def host_description() -> str:
    """LLVM version, target triple, CPU and features: part of every AOT cache key."""
    llvm = _llvm()
    version = ".".join(map(str, llvm.llvm_version_info))
    return f"llvm {version} {llvm.get_process_triple()} {llvm.get_host_cpu_name()} {llvm.get_host_cpu_features().flatten()}"


_machines = threading.local()


def compile_object(text: str) -> bytes:
    """Parse, verify and O2-optimise the module ``text``; its host object file (any thread)."""
    llvm = _llvm()
    tm = getattr(_machines, "tm", None)
    if tm is None:
        tm = _machines.tm = _target_machine()
    context = llvm.create_context()
    try:
        module = llvm.parse_assembly(text, context=context)
        module.verify()
    except RuntimeError as err:
        raise VmError(f"native code generation produced invalid LLVM IR: {err}") from err
    module.triple = tm.triple
    module.data_layout = str(tm.target_data)
    tuning = llvm.create_pipeline_tuning_options(speed_level=2)
    builder = llvm.create_pass_builder(tm, tuning)
    builder.getModulePassManager().run(module, builder)
    return bytes(tm.emit_object(module))


@functools.cache
def llvm_available() -> bool:
    """Whether llvmlite can compile and run a trivial function on this host."""
    try:
        loader = NativeLoader()
        obj = compile_object(
            "define i64 @vm_probe(i64 %x) {\nentry:\n  %y = add i64 %x, 1\n  ret i64 %y\n}\n"
        )
        address = loader.load(obj, "vm_probe")
        return int(ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(address)(41)) == 42
    except Exception as err:
        log.info("llvm_unavailable", reason=str(err))
        return False


class NativeLoader:
    """An MCJIT engine that loads object files and hands out their functions."""

    def __init__(self) -> None:
        llvm = _llvm()
        self._llvm = llvm
        self._engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), _target_machine())
        self._keep: list[Any] = []

    def load(self, obj: bytes, name: str) -> int:
        """Load object bytes and return the address of function ``name`` in them."""
        ref = self._llvm.ObjectFileRef.from_data(obj)
        self._engine.add_object_file(ref)
        self._keep.append(ref)
        self._engine.finalize_object()
        address = int(self._engine.get_function_address(name))
        if not address:
            raise VmError(f"native object has no function {name!r}")
        return address

    def function(self, obj: bytes, name: str) -> NativeFunction:
        """Load ``obj`` and return ``name`` as ``f(ctx_address) -> status`` (valid while this loader lives)."""
        fn: NativeFunction = _FUNCTION_TYPE(self.load(obj, name))
        return fn
