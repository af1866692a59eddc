"""The IR's operands: constants and SSA temporaries (re-exported by :mod:`vm_translate.ir`)."""

from __future__ import annotations

import attrs

WIDTHS = (1, 8, 16, 32, 64, 128)


def mask(width: int) -> int:
    """All ones of ``width`` bits."""
    return (1 << width) - 1


def to_signed(value: int, width: int) -> int:
    """Interpret an unsigned ``width``-bit value as two's complement."""
    return value - (1 << width) if value >> (width - 1) & 1 else value


@attrs.frozen
class Const:
    """A constant operand, already reduced to ``width`` bits."""

    value: int
    width: int = 64

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.value <= mask(self.width):
            raise ValueError(f"constant {self.value:#x} does not fit {self.width} bits")

    def __str__(self) -> str:
        return f"{self.value:#x}:{self.width}"


@attrs.frozen
class Temp:
    """An SSA temporary: numbered per block, assigned once."""

    id: int
    width: int = 64

    def __str__(self) -> str:
        return f"t{self.id}:{self.width}"


Operand = Const | Temp
