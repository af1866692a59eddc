"""Build the project's boot-protocol test kernel (``guest/kernel/``) into a bzImage.

The kernel is ``setup.S`` (the real-mode sectors with the Linux x86 setup
header, protocol 2.15), ``head64.S`` (``startup_32`` at +0, ``startup_64``
at +0x200) and ``kmain.c`` (freestanding C that prints ``struct
boot_params`` on COM1 and powers off), linked by ``kernel.ld`` in one ``ld``
run and flattened with ``objcopy -O binary``: the flat file *is* the
bzImage. Host tools: ``gcc``, ``ld`` and ``objcopy`` (Debian: ``apt-get
install gcc binutils``).

Importable (the vm-accel boot tests load it by path) and a command line tool::

    python guest/kernel/build.py [--out DIR]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

KERNEL_DIR = Path(__file__).resolve().parent
REPO_ROOT = KERNEL_DIR.parent.parent
DEFAULT_OUT_DIR = REPO_ROOT / "build" / "guest" / "kernel"
SOURCES = ("setup.S", "head64.S", "kmain.c")
LINKER_SCRIPT = "kernel.ld"
TOOLS = ("gcc", "ld", "objcopy")
DEBIAN_PACKAGES = "gcc binutils"
IMAGE_NAME = "vmkernel.bzImage"
CFLAGS = (
    "-m64",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-std=gnu11",
    "-ffreestanding",
    "-fno-builtin",
    "-fno-pic",
    "-fno-pie",
    "-fno-stack-protector",
    "-fno-asynchronous-unwind-tables",
    "-fcf-protection=none",
    "-mno-red-zone",
    "-mgeneral-regs-only",
    "-mcmodel=small",
    "-nostdlib",
    "-nostdinc",
    "-isystem",
)


class KernelBuildError(Exception):
    """The test kernel could not be built; the message holds the failing command's output."""


def missing_tools() -> list[str]:
    """The host tools this build needs that are not on PATH."""
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def _compiler_include_dir() -> str:
    """gcc's own header directory (stdint.h for freestanding code), without the C library's."""
    out = subprocess.run(["gcc", "-print-file-name=include"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise KernelBuildError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}{done.stdout}")


def build_kernel(out_dir: Path = DEFAULT_OUT_DIR) -> Path:
    """Compile, link and flatten the test kernel into ``out_dir``; returns the bzImage's path."""
    missing = missing_tools()
    if missing:
        raise KernelBuildError(f"missing host tools: {', '.join(missing)} (apt-get install {DEBIAN_PACKAGES})")
    out_dir.mkdir(parents=True, exist_ok=True)
    flags = [*CFLAGS, _compiler_include_dir()]
    objects: list[str] = []
    for source in SOURCES:
        obj = out_dir / (Path(source).stem + ".o")
        _run(["gcc", *flags, "-c", str(KERNEL_DIR / source), "-o", str(obj)])
        objects.append(str(obj))
    elf = out_dir / "vmkernel.elf"
    _run(["ld", "-nostdlib", "-static", "--no-dynamic-linker", "-z", "noexecstack", "--build-id=none",
          "-T", str(KERNEL_DIR / LINKER_SCRIPT), "-o", str(elf), *objects])
    image = out_dir / IMAGE_NAME
    _run(["objcopy", "-O", "binary", str(elf), str(image)])
    return image


def report_values(output: str, key: str) -> list[str]:
    """The values of every ``key: value`` line the test kernel printed (see kmain.c)."""
    return [line.split(": ", 1)[1] for line in output.splitlines() if line.startswith(key + ": ")]


def check_report(
    output: str, *, command_line: str, e820: list[tuple[int, int, int]], initrd: bytes, initrd_address: int
) -> None:
    """Assert the test kernel's report matches what its loader was given (``e820``: address, size, type)."""
    assert report_values(output, "protocol") == ["0x020f loader: 0xff"]
    assert report_values(output, "cmdline") == [f"[{command_line}]"]
    seen = report_values(output, "e820")
    assert seen[0] == f"{len(e820)} entries"
    assert seen[1:] == [f"{address:#018x} {size:#018x} type {kind}" for address, size, kind in e820]
    assert report_values(output, "initrd") == [f"{initrd_address:#018x} size {len(initrd):#018x}"]
    if initrd:
        assert report_values(output, "initrd head") == [" ".join(f"{b:02x}" for b in initrd[:16])]
    assert output.rstrip().endswith("vmkernel: powering off")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR, help=f"output directory ({DEFAULT_OUT_DIR})")
    args = parser.parse_args(argv)
    try:
        image = build_kernel(args.out)
    except KernelBuildError as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 1
    print(image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
