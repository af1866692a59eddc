"""Which host process runs a VM, and whether that process still exists.

A run records its :class:`RunnerIdentity` when it starts: the host name, the
kernel's boot id, the pid and the process start time (field 22 of
``/proc/PID/stat``, in clock ticks since boot). A pid alone is not an
identity: pids are reused. The start time changes with every new process on
that pid, and the boot id changes with every boot, so a VM whose runner
identity no longer matches a live process was *lost* (its ``vm`` process was
killed with SIGKILL, or the host lost power) even though its last recorded
state says ``running``.

:func:`runner_liveness` answers that question for this host; a runner on
another host (a shared PostgreSQL store) cannot be checked from here.
"""

from __future__ import annotations

import enum
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

_PROC = Path("/proc")
_BOOT_ID = _PROC / "sys" / "kernel" / "random" / "boot_id"


class RunnerLiveness(enum.Enum):
    """What :func:`runner_liveness` found out about a recorded runner."""

    ALIVE = "alive"
    GONE = "gone"
    ELSEWHERE = "elsewhere"  # recorded on another host: not checkable here


@attrs.frozen
class RunnerIdentity:
    """The host process that runs a VM: host, boot id, pid and start time (``None`` where unknown)."""

    host: str
    boot_id: str | None
    pid: int
    start_ticks: int | None

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunnerIdentity:
        return cls(
            host=str(data["host"]),
            boot_id=data.get("boot_id"),
            pid=int(data["pid"]),
            start_ticks=data.get("start_ticks"),
        )

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"


def boot_id() -> str | None:
    """The kernel's boot id (a new one every boot), ``None`` where the host has none."""
    try:
        return _BOOT_ID.read_text().strip() or None
    except OSError:
        return None


def process_start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot; ``None`` if there is no such process."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    # the command name (field 2) is in parentheses and may itself contain spaces or parentheses
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])  # field 22 of the whole line; fields[0] here is field 3
    except (IndexError, ValueError):
        return None


def current_runner() -> RunnerIdentity:
    """The identity of this process."""
    pid = os.getpid()
    return RunnerIdentity(host=socket.gethostname(), boot_id=boot_id(), pid=pid, start_ticks=process_start_ticks(pid))


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError, ValueError):
        return False
    return True


def runner_liveness(runner: RunnerIdentity) -> RunnerLiveness:
    """Whether ``runner`` is still a live process on this host (``ELSEWHERE`` for another host)."""
    here = boot_id()
    if runner.host != socket.gethostname():
        return RunnerLiveness.ELSEWHERE
    if runner.boot_id is not None and here is not None and runner.boot_id != here:
        return RunnerLiveness.GONE  # the host rebooted since (power loss, crash)
    if runner.start_ticks is not None and _PROC.is_dir():
        return RunnerLiveness.ALIVE if process_start_ticks(runner.pid) == runner.start_ticks else RunnerLiveness.GONE
    return RunnerLiveness.ALIVE if _pid_exists(runner.pid) else RunnerLiveness.GONE
