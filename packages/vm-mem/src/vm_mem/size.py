"""Memory sizes as people write them on a command line (``vm run --max-memory 512M``)."""

from __future__ import annotations

import re

from vm_mem.errors import InvalidArgument

PAGE_SIZE = 4096
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"(\d+)\s*([KMGT]?)(?:I?B)?", re.IGNORECASE)


def parse_memory_size(text: str) -> int:
    """Bytes in ``text``: a number with an optional binary unit (``4096``, ``64K``, ``512M``, ``2GiB``, ``1T``).

    Raises :class:`~vm_mem.errors.InvalidArgument` for anything else or for
    less than one page.
    """
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise InvalidArgument(f"{text!r} is not a memory size (write e.g. 4096, 64K, 512M, 2G)")
    size = int(match.group(1)) * _UNITS[match.group(2).upper()]
    if size < PAGE_SIZE:
        raise InvalidArgument(f"memory size {text!r} is less than one page ({PAGE_SIZE} bytes)")
    return size
