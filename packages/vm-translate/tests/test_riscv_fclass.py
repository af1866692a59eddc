"""RISC-V ``fclass`` lifted to plain IR (:mod:`vm_translate.riscv.fclass`) against its definition.

:func:`~vm_translate.riscv.fclass.classify` is checked against Unicorn's
``fclass`` in ``test_softfloat_unicorn.py`` and the whole instruction in
``test_riscv_fd.py``; here the lifted IR, run in the reference executor,
must give :func:`classify` for every class (hypothesis picks values near
each class boundary), and single precision must read a register that is
not properly NaN-boxed as the canonical NaN (class bit 9).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vm_translate import ir
from vm_translate import softfloat as sf
from vm_translate.cpu import CpuState
from vm_translate.executor import execute_block
from vm_translate.riscv.builder import Builder
from vm_translate.riscv.fclass import CLASS_QUIET_NAN, classify, lift_fclass

BOX = 0xFFFFFFFF_00000000


def lifted_fclass(fmt: sf.Format, register: int) -> int:
    b = Builder("riscv64", 0x1000)
    b.start_insn(0x1000, 4)
    b.put_x(2, lift_fclass(b, fmt, b.get_reg(1)))
    b.end_block()
    cpu = CpuState("riscv64", 3, None, 0x1000)  # type: ignore[arg-type]
    cpu.regs[1] = register
    execute_block(b.finish(1, 4), cpu)
    return cpu.regs[2]


def patterns(fmt: sf.Format) -> st.SearchStrategy[int]:
    special = [0, 1, fmt.hidden_bit - 1, fmt.hidden_bit, fmt.infinity - 1, fmt.infinity, fmt.infinity + 1,
               fmt.canonical_nan, fmt.canonical_nan - 1, fmt.abs_mask]  # fmt: skip
    magnitude = st.one_of(st.sampled_from(special), st.integers(0, fmt.abs_mask))
    return st.tuples(st.booleans(), magnitude).map(lambda p: (fmt.sign_bit if p[0] else 0) | p[1])


@pytest.mark.parametrize("fmt", (sf.F32, sf.F64), ids=("s", "d"))
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_lifted_fclass_is_classify(fmt: sf.Format, data: st.DataObject) -> None:
    value = data.draw(patterns(fmt))
    register = BOX | value if fmt is sf.F32 else value
    assert lifted_fclass(fmt, register) == classify(fmt, value)


@settings(max_examples=50, deadline=None)
@given(upper=st.integers(0, ir.mask(32) - 1), value=st.integers(0, ir.mask(32)))
def test_lifted_fclass_s_reads_an_unboxed_register_as_the_canonical_nan(upper: int, value: int) -> None:
    assert lifted_fclass(sf.F32, upper << 32 | value) == CLASS_QUIET_NAN
