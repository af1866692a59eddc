"""The ISA float policies (:mod:`vm_translate.softfloat.policy`) against real instructions.

* Invalid float-to-integer conversions: x86 ``CVTTSD2SI``/``CVTTSS2SI``
  (32- and 64-bit destinations; the integer indefinite) in Unicorn, AArch64
  ``FCVTZS``/``FCVTZU`` (W and X destinations, from S and D; saturation,
  NaN to 0) in Unicorn; softfloat's ``to_int`` with the ISA's
  :class:`IntConversion` must give the same integer, valid or not.
* Flag layouts: AArch64 ``FPSR`` after ``FCVTZS``/``FCVTZU`` and ``FADD``/
  ``FSUB``/``FMUL``/``FDIV`` in Unicorn must be :data:`AARCH64`'s encoding of
  softfloat's flags. Unicorn 2.1 (qemu 5.0) does not accumulate x86 MXCSR
  flags, so :data:`X86_SSE`'s layout is checked on the host CPU itself
  (x86-64 hosts only): a few bytes of machine code load MXCSR, run
  ``ADDSD``/``SUBSD``/``MULSD``/``DIVSD``/``CVTTSD2SI`` and store MXCSR
  (saving and restoring the caller's). MXCSR's DE (denormal operand) has no
  IEEE counterpart and is masked out.
* NaN propagation of ``ADDSD``/``FADD`` with the presets is
  ``test_softfloat_nan_policy.py``'s; here the host's ``ADDSD`` also settles
  the two-NaN case that Unicorn answers with x87's rule.

AArch64 detects tininess before rounding, softfloat after: a result that
rounds to the smallest normal magnitude may differ in UFC only, so such
results are left out of the FPSR comparison.
"""

from __future__ import annotations

import ctypes
import mmap
import platform
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unicorn import Uc
from unicorn import arm64_const as a64
from unicorn import x86_const as x86
from unicorn.unicorn_const import UC_ARCH_ARM64, UC_ARCH_X86, UC_MODE_64, UC_MODE_ARM
from vm_translate import softfloat as sf

CODE = 0x10000
EXAMPLES = settings(max_examples=60, deadline=None)
FORMATS = {32: sf.F32, 64: sf.F64}
GARBAGE = 0x1234_5678_9ABC_DEF0


def values(fmt: sf.Format) -> st.SearchStrategy[int]:
    """NaNs, infinities, zeros, integers near the 32- and 64-bit limits, subnormals and anything, either sign."""
    near = [float(v) for k in (31, 32, 63, 64) for v in (2**k - 1, 2**k, 2**k + 2 ** (k - 20))] + [
        0.5,
        1.5,
        2.5,
    ]
    pack = "<f" if fmt is sf.F32 else "<d"
    unpack = "<I" if fmt is sf.F32 else "<Q"
    special = [struct.unpack(unpack, struct.pack(pack, v))[0] for v in near]
    special += [fmt.infinity, fmt.canonical_nan, fmt.infinity + 1, 1, fmt.hidden_bit, 0]
    magnitude = st.one_of(st.sampled_from(special), st.integers(0, fmt.abs_mask))
    return st.tuples(st.booleans(), magnitude).map(lambda t: (fmt.sign_bit if t[0] else 0) | t[1])


# -- x86-64 in Unicorn ----------------------------------------------------------------------------------


def run_x86(code: str, a: int) -> int:
    uc = Uc(UC_ARCH_X86, UC_MODE_64)
    uc.mem_map(CODE, 0x1000)
    uc.mem_write(CODE, bytes.fromhex(code))
    uc.reg_write(x86.UC_X86_REG_XMM0, a)
    uc.reg_write(x86.UC_X86_REG_RAX, GARBAGE)
    uc.emu_start(CODE, CODE + len(code) // 2)
    return int(uc.reg_read(x86.UC_X86_REG_RAX))


#: CVTTSx2SI rax/eax, xmm0 by (source width, destination width); a 32-bit destination zero-extends.
_CVTT = {(64, 64): "f2480f2cc0", (64, 32): "f20f2cc0", (32, 64): "f3480f2cc0", (32, 32): "f30f2cc0"}


@pytest.mark.parametrize(("width", "bits"), sorted(_CVTT))
@EXAMPLES
@given(data=st.data())
def test_x86_cvtt_gives_the_integer_indefinite(width: int, bits: int, data: st.DataObject) -> None:
    fmt = FORMATS[width]
    a = data.draw(values(fmt))
    value, _ = sf.to_int(fmt, a, sf.RTZ, bits, True, sf.X86_SSE.conversion)
    assert value == run_x86(_CVTT[(width, bits)], a)


# -- AArch64 in Unicorn ---------------------------------------------------------------------------------


def run_arm(word: int, d1: int, d2: int = 0) -> tuple[int, int, int]:
    """``word`` with d1/s1 = ``d1``, d2 = ``d2``; returns (x0, d0, FPSR)."""
    uc = Uc(UC_ARCH_ARM64, UC_MODE_ARM)
    uc.mem_map(CODE, 0x1000)
    uc.mem_write(CODE, word.to_bytes(4, "little"))
    uc.reg_write(a64.UC_ARM64_REG_CPACR_EL1, 3 << 20)  # floating point enabled
    uc.reg_write(a64.UC_ARM64_REG_D1, d1)
    uc.reg_write(a64.UC_ARM64_REG_D2, d2)
    uc.reg_write(a64.UC_ARM64_REG_X0, GARBAGE)
    uc.emu_start(CODE, CODE + 4)
    return (int(uc.reg_read(a64.UC_ARM64_REG_X0)), int(uc.reg_read(a64.UC_ARM64_REG_D0)),
            int(uc.reg_read(a64.UC_ARM64_REG_FPSR)))  # fmt: skip


def fcvtz(width: int, bits: int, signed: bool) -> int:
    """``FCVTZS``/``FCVTZU`` Wd/Xd (d = x0), Sn/Dn (n = 1)."""
    sf_bit = 1 << 31 if bits == 64 else 0
    ftype = (1 if width == 64 else 0) << 22
    return sf_bit | 0x1E380000 | ftype | (0 if signed else 1 << 16) | 1 << 5


@pytest.mark.parametrize("signed", (True, False), ids=("fcvtzs", "fcvtzu"))
@pytest.mark.parametrize("bits", (32, 64))
@pytest.mark.parametrize("width", (32, 64))
@EXAMPLES
@given(data=st.data())
def test_aarch64_fcvtz_saturates_and_flags_in_fpsr(
    width: int, bits: int, signed: bool, data: st.DataObject
) -> None:
    fmt = FORMATS[width]
    a = data.draw(values(fmt))
    value, flags = sf.to_int(fmt, a, sf.RTZ, bits, signed, sf.AARCH64.conversion)
    x0, _, fpsr = run_arm(fcvtz(width, bits, signed), a)
    assert (value, sf.AARCH64.flags.encode(flags)) == (x0, fpsr & 0x1F)


_ARM_ARITH = {"add": (sf.add, 0x1E622820), "sub": (sf.sub, 0x1E623820), "mul": (sf.mul, 0x1E620820),
              "div": (sf.div, 0x1E621820)}  # fmt: skip


@pytest.mark.parametrize("op", sorted(_ARM_ARITH))
@EXAMPLES
@given(a=values(sf.F64), b=values(sf.F64))
def test_aarch64_arithmetic_flags_and_nans(op: str, a: int, b: int) -> None:
    fn, word = _ARM_ARITH[op]
    value, flags = fn(sf.F64, a, b, sf.RNE, nan=sf.AARCH64.nan)
    _, d0, fpsr = run_arm(word, a, b)
    assert value == d0
    if value & sf.F64.abs_mask != sf.F64.hidden_bit:  # tininess: before rounding on AArch64
        assert sf.AARCH64.flags.encode(flags) == fpsr & 0x1F


# -- x86-64 MXCSR on the host ---------------------------------------------------------------------------

HOST_IS_X86_64 = platform.machine().lower() in ("x86_64", "amd64")
host_only = pytest.mark.skipif(not HOST_IS_X86_64, reason="runs SSE instructions on the host CPU")
#: f(mxcsr*, a*, b*): save MXCSR; load *mxcsr; xmm0 = *a; <op> xmm0, [b]; *a = xmm0; *mxcsr = MXCSR; restore.
_PROLOGUE = "".join(("0fae5c24f8", "0fae17", "f20f1006"))  # stmxcsr [rsp-8]; ldmxcsr [rdi]; movsd xmm0, [rsi]
_EPILOGUE = "".join(
    ("f20f1106", "0fae1f", "0fae5424f8", "c3")
)  # movsd [rsi], xmm0; stmxcsr [rdi]; ldmxcsr [rsp-8]
_HOST_OPS = {"add": "f20f5802", "sub": "f20f5c02", "mul": "f20f5902", "div": "f20f5e02"}
#: f(mxcsr*, a*, out*): save MXCSR; load *mxcsr; rax = CVTTSD2SI [a]; *out = rax; *mxcsr = MXCSR; restore.
_HOST_CVTT = "".join(("0fae5c24f8", "0fae17", "f2480f2c06", "488902", "0fae1f", "0fae5424f8", "c3"))
_FUNCTION = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
_pages: list[mmap.mmap] = []


def host_function(code: str) -> ctypes._CFuncPtr:
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(bytes.fromhex(code))
    _pages.append(page)  # kept alive with the function
    return _FUNCTION(ctypes.addressof(ctypes.c_char.from_buffer(page)))


def run_host(code: str, a: int, b: int) -> tuple[int, int]:
    """(the 64-bit result, MXCSR's exception flags) of ``code`` on the host, from MXCSR 0x1F80."""
    mxcsr, first, second = ctypes.c_uint32(0x1F80), ctypes.c_uint64(a), ctypes.c_uint64(b)
    host_function(code)(ctypes.addressof(mxcsr), ctypes.addressof(first), ctypes.addressof(second))
    result = second.value if code == _HOST_CVTT else first.value
    return result, mxcsr.value & 0x3F


@host_only
@pytest.mark.parametrize("op", sorted(_HOST_OPS))
@EXAMPLES
@given(a=values(sf.F64), b=values(sf.F64))
def test_x86_sse_arithmetic_on_the_host(op: str, a: int, b: int) -> None:
    """Value (NaN propagation included, two NaNs too) and MXCSR flags (DE masked out) of the host's SSE."""
    value, flags = _ARM_ARITH[op][0](sf.F64, a, b, sf.RNE, nan=sf.X86_SSE.nan)
    result, mxcsr = run_host(_PROLOGUE + _HOST_OPS[op] + _EPILOGUE, a, b)
    assert (value, sf.X86_SSE.flags.encode(flags)) == (result, mxcsr & ~0x02)


@host_only
@EXAMPLES
@given(a=values(sf.F64))
def test_x86_cvttsd2si_on_the_host(a: int) -> None:
    value, flags = sf.to_int(sf.F64, a, sf.RTZ, 64, True, sf.X86_SSE.conversion)
    assert (value, sf.X86_SSE.flags.encode(flags)) == run_host(_HOST_CVTT, a, 0)


def test_riscv_fflags_layout_is_softfloats_own() -> None:
    """The RISC-V helpers return softfloat's flags unencoded: that is only right while the layouts agree."""
    from vm_translate.riscv.rv64f import FLOAT_POLICY

    assert FLOAT_POLICY is sf.RISCV
    assert [sf.RISCV.flags.encode(bits) for bits in range(32)] == list(range(32))
    assert (sf.NV, sf.DZ, sf.OF, sf.UF, sf.NX) == (0x10, 0x08, 0x04, 0x02, 0x01)  # fflags, RISC-V manual
