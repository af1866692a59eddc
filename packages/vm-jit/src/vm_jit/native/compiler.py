"""llvmlite: LLVM IR text -> optimised host object code -> callable machine code that can be freed.

:func:`compile_object` parses a module in a context of its own, runs LLVM's
O2 pipeline for the host CPU and returns the object file's bytes; it touches
no shared LLVM state, so it may run in a background thread (llvmlite
releases the GIL in LLVM calls). :class:`NativeLoader` turns object bytes
(fresh, or read from the AOT cache) into :class:`NativeCode`: the function,
in an MCJIT execution engine of its own, which :meth:`NativeCode.free`
disposes of with its machine code. :func:`llvm_available` says whether all
of this works on this host.

Why one engine per region
    MCJIT cannot remove one object file from an engine, and the code cache
    (:mod:`vm_gc`) frees native regions one at a time. Measured with
    ``python bench/native_code.py`` (shared 2-core host; the 113 regions four
    guest programs promote, 11.9 KB of object code on average, 0.8-63 KB):
    loading a region into an engine of its own takes 0.29-0.34 ms against
    0.15-0.27 ms for adding it to one shared engine (compiling one took
    24-85 ms), freeing it 0.02-0.03 ms; it holds 43 KB plus 2.48 bytes per
    object byte (75 KB for the average region) against 41 KB in a shared
    engine, which never gives anything back: loading 5,000 regions while
    keeping 100 alive grows a shared engine by 171 MiB and per-region
    engines by 11 MiB, flat after the first hundred. Batches of regions per
    engine would save part of the 43 KB but keep a whole batch alive for
    one hot region. The engine is created without a module (an empty one
    would be code-generated at the first finalize: 0.9 ms) and with a
    generic target machine (it only links ready object code: 0.02 ms to
    create instead of 0.13 ms for the host CPU's).
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


def host_cpu_features() -> dict[str, bool]:
    """The host CPU's features as LLVM names them (``cx16``: True...)."""
    return dict(_llvm().get_host_cpu_features())


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
        code = loader.load(obj, "vm_probe")
        try:
            return int(ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)(code.address)(41)) == 42
        finally:
            code.free()
    except Exception as err:
        log.info("llvm_unavailable", reason=str(err))
        return False


#: Resident bytes of a region's own MCJIT engine (execution engine, dynamic linker, memory manager,
#: page-aligned sections), measured with bench/native_code.py; see the module docstring.
ENGINE_BYTES = 43_200
#: Resident bytes per byte of object file once loaded (the engine keeps the object and its loaded copy).
LOADED_BYTES_PER_OBJECT_BYTE = 2.48


def estimate_loaded_bytes(object_size: int) -> int:
    """Estimated resident bytes of an object file of ``object_size`` bytes loaded by :class:`NativeLoader`."""
    return ENGINE_BYTES + int(LOADED_BYTES_PER_OBJECT_BYTE * object_size)


class NativeCode:
    """One object file loaded into an MCJIT engine of its own: ``function`` until :meth:`free`."""

    __slots__ = ("_engine", "address", "function", "name", "object_size")

    def __init__(self, engine: Any, name: str, address: int, object_size: int) -> None:
        self._engine = engine
        self.name = name
        self.address = address
        self.object_size = object_size
        self.function: NativeFunction | None = _FUNCTION_TYPE(address)

    @property
    def freed(self) -> bool:
        return self._engine is None

    def free(self) -> None:
        """Dispose of the engine and its machine code; the caller guarantees nothing runs or calls it again."""
        engine, self._engine = self._engine, None
        self.function = None
        if engine is not None:
            engine.close()
            log.debug("native_code_freed", function=self.name, object_bytes=self.object_size)


class NativeLoader:
    """Loads object files, each into an MCJIT engine of its own (see the module docstring)."""

    def __init__(self) -> None:
        llvm = _llvm()
        self._llvm = llvm
        self._target = llvm.Target.from_triple(llvm.get_process_triple())

    def load(self, obj: bytes, name: str) -> NativeCode:
        """Load object bytes into a new engine; the code of function ``name`` in them."""
        llvm = self._llvm
        module = llvm.parse_assembly("")
        engine = llvm.create_mcjit_compiler(module, self._target.create_target_machine(opt=0, reloc="pic"))
        engine.remove_module(module)  # nothing to code-generate: the engine only links object code
        ref = llvm.ObjectFileRef.from_data(obj)
        engine.add_object_file(ref)  # the engine takes the object's buffer; the empty wrapper can go
        ref.close()
        engine.finalize_object()
        address = int(engine.get_function_address(name))
        if not address:
            engine.close()
            raise VmError(f"native object has no function {name!r}")
        return NativeCode(engine, name, address, len(obj))
