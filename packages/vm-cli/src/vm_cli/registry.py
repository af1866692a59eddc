"""The store of recorded VMs as the commands open it, and what a record's runner says about the run.

:func:`open_registry` opens the :class:`vm_core.application.VmApplication`
(SQLite under ``$VM_HOME`` unless eventsourcing's ``PERSISTENCE_MODULE``
says otherwise) for one command. A VM recorded ``running`` whose ``vm``
process no longer exists is *lost*: the liveness check compares the recorded
runner identity (pid, start time, boot id) with the live process
(:mod:`vm_core.runner`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from vm_core.application import VmApplication
from vm_core.domainmodel import VirtualMachine, VmState
from vm_core.runner import RunnerLiveness, runner_liveness

#: The state ``vm ls`` shows for a VM recorded running whose process is gone.
LOST = "lost"


@contextmanager
def open_registry() -> Iterator[VmApplication]:
    app = VmApplication()
    try:
        yield app
    finally:
        app.close()


def is_lost(vm: VirtualMachine) -> bool:
    """Whether ``vm`` is recorded running but the process that ran it is gone (see :mod:`vm_core.runner`)."""
    return (
        vm.state is VmState.RUNNING
        and vm.runner is not None
        and runner_liveness(vm.runner) is RunnerLiveness.GONE
    )


def is_live_here(vm: VirtualMachine) -> bool:
    """Whether ``vm`` is running in a live process on this host (one ``vm stop`` can signal)."""
    return (
        vm.state is VmState.RUNNING
        and vm.runner is not None
        and runner_liveness(vm.runner) is RunnerLiveness.ALIVE
    )


def shown_state(vm: VirtualMachine) -> str:
    """The state ``vm ls`` shows: the recorded one, or ``lost`` for a running VM whose process vanished."""
    return LOST if is_lost(vm) else vm.state.value
