"""Restoring a :class:`~vm_linux.process.LinuxProcess` from a :class:`~vm_linux.persist.ProcessImage`.

:func:`restore_process` builds a fresh process on an address space that
already holds the snapshot's memory, returns to the guest's working
directory, reopens its descriptors (:func:`vm_linux.persist.reopen_files`)
and puts back the rest of what the kernel keeps for it (pid, limits, signal
state, umask). It sits above both :mod:`vm_linux.process` and
:mod:`vm_linux.persist`, which know nothing of each other.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from vm_core.errors import SnapshotError
from vm_core.logging import get_logger

from vm_linux.guest_errno import GuestErrno
from vm_linux.persist import ProcessImage, errno_of, reopen_files
from vm_linux.process import LinuxProcess

log = get_logger("vm_linux.restore")


def restore_process(
    image: ProcessImage,
    mem: Any,
    *,
    std_streams: Sequence[int] = (0, 1, 2),
    abi: Any = None,
    syscall_overrides: Any = None,
) -> LinuxProcess:
    """A :class:`~vm_linux.process.LinuxProcess` in the state of ``image``, on address space ``mem``.

    ``mem`` must already hold the snapshot's memory (the process does not
    load its program again). ``abi`` and ``syscall_overrides`` are the
    registered ones, as for a new process (default: vm-linux's table of the
    image's ISA). Sets this host process's umask to the guest's.
    """
    if image.root is not None and not os.path.isdir(image.root):
        raise SnapshotError(f"snapshot: the guest root {image.root} is no longer a directory")
    process = LinuxProcess(
        abi if abi is not None else image.isa,
        mem,
        image.program,
        list(image.argv),
        list(image.envp),
        root=image.root,
        syscall_overrides=syscall_overrides,
    )
    state = process.state
    fs = state.fs
    try:
        try:
            fs.chdir(fs.root_node, image.cwd)
        except (OSError, GuestErrno) as err:
            raise SnapshotError(
                f"snapshot: cannot return to the guest's working directory {image.cwd}: {os.strerror(errno_of(err))}"
            ) from None
        fds = reopen_files(image, fs, std_streams)
    except BaseException:
        process.close()
        raise
    state.fds.close_all()
    state.fds = fds
    state.pid = image.pid
    state.clear_child_tid = image.clear_child_tid
    state.rlimits = {res: (soft, hard) for res, soft, hard in image.rlimits}
    state.shared_file_ranges = [(start, end) for start, end in image.shared_file_ranges]
    state.sigreturn_trampoline = image.sigreturn_trampoline
    signals = state.signals
    signals.actions = dict(image.signals.actions)
    signals.set_blocked(image.signals.blocked)
    signals.pending = dict(image.signals.pending)
    signals.altstack = image.signals.altstack
    state.inet_allowed = image.inet_allowed
    os.umask(image.umask)
    log.debug("process_restored", program=image.program, files=len(image.files), pid=image.pid)
    return process
