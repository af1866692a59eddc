"""Boot Debian's stock x86-64 kernel with a busybox initramfs under ``vm boot``; time it (``nox -s boot``).

Steps, in a work directory (default ``build/guest/debian-boot``):

1. ``apt-get download linux-image-amd64`` and the versioned ``linux-image-*``
   package it depends on, and ``busybox-static``; unpack them with
   ``dpkg-deb -x``;
2. write an initramfs (cpio "newc", built here) holding ``/bin/busybox``,
   ``/dev/console`` and an ``/init`` script that prints one line and reboots
   (``reboot=k``: the i8042 reset, which ends ``vm boot``);
3. run ``vm boot --kernel vmlinuz --initrd initramfs.cpio --append ...
   --timeout T`` and report the seconds to the first console output and to
   the ``/init`` line, and how the guest ended.

This needs hardware virtualization to finish in reasonable time: where
KVM emulates ring 0 in software (KVM-PVM inside a VM, about 1.5 M
instructions/s), a distribution kernel does not get to ``/init`` before the
timeout, and the script says so (exit status 1).
"""

from __future__ import annotations

import argparse
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

KERNEL_DIR = Path(__file__).resolve().parent
REPO_ROOT = KERNEL_DIR.parent.parent
DEFAULT_WORK_DIR = REPO_ROOT / "build" / "guest" / "debian-boot"
INIT_MARKER = b"vm-init: hello from /init"
INIT_SCRIPT = b"""#!/bin/busybox sh
/bin/busybox echo "vm-init: hello from /init"
/bin/busybox reboot -f
"""
COMMAND_LINE = "console=ttyS0 earlyprintk=serial,ttyS0,115200 reboot=k panic=-1 rdinit=/init"
DEFAULT_TIMEOUT_S = 300.0


class DebianBootError(Exception):
    """A step failed; the message says which and why."""


def _run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise DebianBootError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def download(package: str, work: Path) -> Path:
    """``apt-get download package`` into ``work``; the .deb's path."""
    before = set(work.glob("*.deb"))
    _run(["apt-get", "download", package], work)
    new = sorted(set(work.glob("*.deb")) - before) or sorted(work.glob(f"{package}_*.deb"))
    if not new:
        raise DebianBootError(f"apt-get download {package} left no .deb")
    return new[0]


def versioned_image_package(meta_deb: Path, work: Path) -> str:
    """The ``linux-image-<version>-amd64`` package that the ``linux-image-amd64`` metapackage depends on."""
    depends = _run(["dpkg-deb", "-f", str(meta_deb), "Depends"], work)
    for alternative in depends.replace("|", ",").split(","):
        name = alternative.strip().split(" ")[0]
        if name.startswith("linux-image-") and name != "linux-image-amd64":
            return name
    raise DebianBootError(f"no versioned linux-image package in Depends: {depends.strip()}")


def unpack(deb: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    _run(["dpkg-deb", "-x", str(deb), str(into)], deb.parent)
    return into


def _cpio_entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0), ino: int = 0) -> bytes:
    """One cpio "newc" record (header, NUL-terminated name and data, each padded to 4 bytes)."""
    encoded = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0]
    header = b"070701" + b"".join(f"{field:08x}".encode() for field in fields)
    record = header + encoded
    record += bytes(-len(record) % 4) + data
    return record + bytes(-len(record) % 4)


def build_initramfs(busybox: bytes, path: Path) -> None:
    """A newc cpio archive with /bin/busybox, /dev/console and /init."""
    directory, regular, char_device = 0o040755, 0o100755, 0o020600
    entries = [
        _cpio_entry("bin", directory, ino=1),
        _cpio_entry("dev", directory, ino=2),
        _cpio_entry("proc", directory, ino=3),
        _cpio_entry("sys", directory, ino=4),
        _cpio_entry("dev/console", char_device, rdev=(5, 1), ino=5),
        _cpio_entry("bin/busybox", regular, busybox, ino=6),
        _cpio_entry("init", regular, INIT_SCRIPT, ino=7),
        _cpio_entry("TRAILER!!!", 0),
    ]
    path.write_bytes(b"".join(entries))


def prepare(work: Path) -> tuple[Path, Path]:
    """Download and unpack the kernel and busybox; build the initramfs. (kernel, initramfs)."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise DebianBootError(f"{tool} is missing: this needs a Debian or Ubuntu host")
    work.mkdir(parents=True, exist_ok=True)
    meta = download("linux-image-amd64", work)
    image_deb = download(versioned_image_package(meta, work), work)
    kernel_tree = unpack(image_deb, work / "kernel")
    kernels = sorted((kernel_tree / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise DebianBootError(f"{image_deb.name} holds no boot/vmlinuz-*")
    busybox_tree = unpack(download("busybox-static", work), work / "busybox")
    busybox = busybox_tree / "bin" / "busybox"
    if not busybox.exists():
        raise DebianBootError("busybox-static holds no bin/busybox")
    initramfs = work / "initramfs.cpio"
    build_initramfs(busybox.read_bytes(), initramfs)
    return kernels[0], initramfs


def boot_and_time(kernel: Path, initramfs: Path, memory: str, timeout: float) -> int:
    """Run ``vm boot``, echoing the console; report when output and the /init line appeared."""
    command = [
        sys.executable, "-m", "vm_cli", "boot", "--accel", "kvm", "--kernel", str(kernel), "--initrd",
        str(initramfs), "--append", COMMAND_LINE, "--memory", memory, "--timeout", f"{timeout:g}",
    ]
    print("+", " ".join(command), flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    seen = b""
    first_output: float | None = None
    init_line: float | None = None
    while True:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        now = time.monotonic() - start
        first_output = now if first_output is None else first_output
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        seen += chunk
        if init_line is None and INIT_MARKER in seen:
            init_line = now
    status = proc.wait()
    print(f"\n--- vm boot exit status {status}; first console output: "
          f"{'none' if first_output is None else f'{first_output:.2f} s'}")
    if init_line is None:
        print(f"--- /init never printed within {timeout:g} s: this host is too slow for a distribution kernel "
              "(no hardware virtualization for ring 0?)")
        return 1
    print(f"--- time to the first /init line: {init_line:.2f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK_DIR, help=f"work directory ({DEFAULT_WORK_DIR})")
    parser.add_argument("--memory", default="512M", help="guest RAM (default 512M)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds before giving up")
    args = parser.parse_args(argv)
    try:
        kernel, initramfs = prepare(args.work)
    except DebianBootError as exc:
        print(f"debian_boot.py: {exc}", file=sys.stderr)
        return 2
    return boot_and_time(kernel, initramfs, args.memory, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
