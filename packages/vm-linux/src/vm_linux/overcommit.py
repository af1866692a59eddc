"""The host kernel's overcommit policy, applied to a guest request as qemu-user lets the host apply it.

qemu-user backs every guest mapping with a host ``mmap`` of the same size and
flags, so a guest ``mmap`` / ``brk`` / ``mprotect`` that would commit memory
(Linux's ``VM_ACCOUNT``: private writable or shared anonymous, without
``MAP_NORESERVE``) gets ``ENOMEM`` exactly when the host kernel would refuse
to commit that much. :func:`host_refuses` answers that question with the
kernel's rules (``__vm_enough_memory`` in mm/util.c) for the host's
``vm.overcommit_memory``:

* 0 (heuristic, the default): one request larger than all RAM plus swap is refused;
* 1 (always): nothing is refused;
* 2 (never overcommit): a request beyond ``CommitLimit - Committed_AS`` is refused.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

PAGE_SIZE = 4096
OVERCOMMIT_GUESS, OVERCOMMIT_ALWAYS, OVERCOMMIT_NEVER = 0, 1, 2


def _meminfo() -> dict[str, int]:
    """``/proc/meminfo`` as name -> bytes (empty where it cannot be read)."""
    values: dict[str, int] = {}
    try:
        text = Path("/proc/meminfo").read_text(encoding="ascii")
    except OSError:
        return values
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            values[name] = int(fields[0]) * (1024 if fields[1:] == ["kB"] else 1)
    return values


@cache
def overcommit_mode() -> int:
    """The host's ``vm.overcommit_memory`` (the heuristic where it cannot be read)."""
    try:
        return int(Path("/proc/sys/vm/overcommit_memory").read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return OVERCOMMIT_GUESS


@cache
def _ram_and_swap() -> int | None:
    info = _meminfo()
    if "MemTotal" not in info:
        return None
    return info["MemTotal"] + info.get("SwapTotal", 0)


def host_refuses(nbytes: int) -> bool:
    """Whether the host kernel would refuse to commit ``nbytes`` more bytes (see the module docstring)."""
    if nbytes <= 0:
        return False
    mode = overcommit_mode()
    if mode == OVERCOMMIT_ALWAYS:
        return False
    if mode == OVERCOMMIT_NEVER:
        info = _meminfo()
        if "CommitLimit" not in info or "Committed_AS" not in info:
            return False
        return nbytes > info["CommitLimit"] - info["Committed_AS"]
    total = _ram_and_swap()
    if total is None:
        return False
    pages = (nbytes + PAGE_SIZE - 1) // PAGE_SIZE
    return pages > total // PAGE_SIZE
