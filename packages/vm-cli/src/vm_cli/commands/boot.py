"""``vm boot --kernel bzImage [--initrd FILE] [--append CMDLINE] [--memory SIZE]``: boot Linux on KVM.

Boots an x86-64 Linux bzImage through the 64-bit boot protocol on a
hardware accelerator (KVM; see :mod:`vm_accel.boot`). COM1 is the console:
the guest's output goes to stdout, stdin goes to the guest (a terminal is
put in raw mode; Ctrl-A x quits). When the guest ends, one line on stderr
says how (poweroff, reboot and its cause, ...) and the exit status follows:
0 for poweroff, reboot and Ctrl-A x, 124 when ``--timeout`` ran out, 130
on SIGINT, 1 when the guest crashed or halted for good.

The accelerator comes from the composition root (:func:`vm_cli.compose.open_accelerator`:
``vm_select_accelerator``, then the chosen spec's probe and factory), and
``vm_machine_event`` observers see the machine ``created``, ``started`` and
``exited`` (with how it stopped) or ``stopped`` (an error).
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path

from vm_core.errors import ConfigurationError, UnsupportedError
from vm_core.logging import get_logger

from vm_cli.compose import Plugins, open_accelerator

log = get_logger("vm_cli.boot")

GUEST_ISA = "x86_64"
EXIT_STATUS = {"poweroff": 0, "reboot": 0, "quit": 0, "timeout": 124, "interrupted": 130, "halted": 1, "crashed": 1}
STOP_WORDS = {
    "poweroff": "powered off",
    "reboot": "rebooted (vm boot does not restart it)",
    "quit": "stopped from the console",
    "timeout": "stopped by --timeout",
    "interrupted": "interrupted",
    "halted": "halted",
    "crashed": "crashed",
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
    from vm_accel.boot import BootConfig, HostConsole, boot_linux, parse_memory_size
    from vm_accel.kvm import Kvm

    if args.timeout is not None and args.timeout <= 0:
        raise ConfigurationError(f"--timeout {args.timeout:g} is not a positive number of seconds")
    config = BootConfig(
        kernel=Path(args.kernel),
        memory_size=parse_memory_size(args.memory),
        command_line=args.append,
        initrd=Path(args.initrd) if args.initrd else None,
        timeout=args.timeout,
    )
    plugins = Plugins.load()
    spec, accelerator = open_accelerator(plugins, GUEST_ISA, args.accel)
    if not isinstance(accelerator, Kvm):
        accelerator.close()
        raise UnsupportedError(f"vm boot drives KVM only, not {type(accelerator).__name__}")
    machine = {"vm": uuid.uuid4().hex, "isa": GUEST_ISA}
    plugins.events.emit("created", {**machine, "accelerator": spec.name, "program": args.kernel, "argv": []})
    sys.stdout.flush()
    console = HostConsole(output_fd=sys.stdout.fileno(), input_fd=_input_fd())
    plugins.events.emit("started", {**machine, "instructions": 0})
    try:
        result = boot_linux(accelerator, config, console)
    except BaseException as err:
        plugins.events.emit("stopped", {**machine, "reason": f"{type(err).__name__}: {err}", "instructions": 0})
        raise
    finally:
        accelerator.close()
    plugins.events.emit(
        "exited", {**machine, "exit_status": EXIT_STATUS[result.stop.kind.value], "signal": None, "instructions": 0}
    )
    kind = result.stop.kind.value
    print(f"\nvm: guest {STOP_WORDS[kind]}: {result.stop.detail} ({result.wall_s:.2f} s)", file=sys.stderr)
    return EXIT_STATUS[kind]


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
