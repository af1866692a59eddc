"""``vm boot --kernel bzImage [--initrd FILE] [--append CMDLINE] [--memory SIZE]``: boot Linux on KVM.

Boots an x86-64 Linux bzImage through the 64-bit boot protocol on a
hardware accelerator (KVM's ``system_mode``, in vm-accel). COM1 is the console:
the guest's output goes to stdout, stdin goes to the guest (a terminal is
put in raw mode; Ctrl-A x quits). When the guest ends, one line on stderr
says how (poweroff, reboot and its cause, ...) and the exit status follows:
0 for poweroff, reboot and Ctrl-A x, 124 when ``--timeout`` ran out, 130
on SIGINT, 1 when the guest crashed or halted for good.

The accelerator comes from the composition root (:func:`vm_cli.compose.compose_boot`:
``vm_select_accelerator``, then the chosen spec's probe and its
``system_mode(isa, request)`` with the options as a
:class:`vm_core.types.BootRequest`); this module imports no accelerator.
``vm_machine_event`` observers see the machine ``created``, ``started`` and
``exited`` (with the exit status below) or ``stopped`` (an error).
"""

from __future__ import annotations

import argparse
import os
import sys

from vm_core.errors import ConfigurationError
from vm_core.logging import get_logger
from vm_core.types import BootRequest, GuestStopKind

from vm_cli.compose import Plugins, compose_boot

log = get_logger("vm_cli.boot")

GUEST_ISA = "x86_64"
EXIT_STATUS = {
    GuestStopKind.POWEROFF: 0,
    GuestStopKind.REBOOT: 0,
    GuestStopKind.QUIT: 0,
    GuestStopKind.TIMEOUT: 124,
    GuestStopKind.INTERRUPTED: 130,
    GuestStopKind.HALTED: 1,
    GuestStopKind.CRASHED: 1,
}
STOP_WORDS = {
    GuestStopKind.POWEROFF: "powered off",
    GuestStopKind.REBOOT: "rebooted (vm boot does not restart it)",
    GuestStopKind.QUIT: "stopped from the console",
    GuestStopKind.TIMEOUT: "stopped by --timeout",
    GuestStopKind.INTERRUPTED: "interrupted",
    GuestStopKind.HALTED: "halted",
    GuestStopKind.CRASHED: "crashed",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "boot",
        help="boot an x86-64 Linux kernel (bzImage) on KVM, console on stdio",
        description="Boot an x86-64 Linux bzImage through the 64-bit boot protocol; COM1 is stdin/stdout "
        "(Ctrl-A x quits).",
    )
    p.add_argument("--accel", default="auto", help="hardware accelerator: kvm, or auto (default)")
    p.add_argument("--kernel", required=True, metavar="BZIMAGE", help="the kernel (an x86 bzImage)")
    p.add_argument("--initrd", metavar="FILE", help="initial ramdisk (e.g. a cpio initramfs)")
    p.add_argument("--append", default="", metavar="CMDLINE", help='kernel command line, e.g. "console=ttyS0"')
    p.add_argument("--memory", "-m", default="512M", metavar="SIZE", help="guest RAM (default 512M; K/M/G suffixes)")
    p.add_argument("--timeout", type=float, metavar="SECONDS", help="stop the guest after this long (exit 124)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.timeout is not None and args.timeout <= 0:
        raise ConfigurationError(f"--timeout {args.timeout:g} is not a positive number of seconds")
    request = BootRequest(
        kernel=args.kernel,
        memory=args.memory,
        command_line=args.append,
        initrd=args.initrd,
        timeout=args.timeout,
        console_output_fd=sys.stdout.fileno(),
        console_input_fd=_input_fd(),
    )
    with compose_boot(Plugins.load(), GUEST_ISA, args.accel, request) as machine:
        sys.stdout.flush()
        outcome = machine.boot(exit_status=lambda outcome: EXIT_STATUS[outcome.kind])
    print(f"\nvm: guest {STOP_WORDS[outcome.kind]}: {outcome.detail} ({outcome.wall_s:.2f} s)", file=sys.stderr)
    return EXIT_STATUS[outcome.kind]


def _input_fd() -> int | None:
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return None
    try:
        os.fstat(fd)
    except OSError:
        return None
    return fd
