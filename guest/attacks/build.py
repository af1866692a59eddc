"""Build the sandbox attack programs (``guest/attacks/*.c``) for riscv64 and x86-64.

Each program is compiled twice: with Debian's cross compiler
(``riscv64-linux-gnu-gcc -static -O2``) into ``build/guest/attacks/riscv64/``
and with the host's ``gcc -static -O2`` into ``build/guest/attacks/x86_64/``.
A binary is rebuilt only when its source, the shared header, the flags or
the compiler changed (``NAME.buildkey`` next to it holds the digest).

Importable (the vm-cli sandbox tests load it by path) and a command line tool::

    python guest/attacks/build.py [--out DIR] [--arch riscv64|x86_64] [NAME...]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
REPO_ROOT = SOURCE_DIR.parent.parent
DEFAULT_OUT_DIR = REPO_ROOT / "build" / "guest" / "attacks"
COMPILERS = {"riscv64": "riscv64-linux-gnu-gcc", "x86_64": "gcc"}
DEBIAN_PACKAGES = {"riscv64": "gcc-riscv64-linux-gnu", "x86_64": "gcc libc6-dev"}
CFLAGS = ("-static", "-O2", "-Wall", "-Wextra", "-Wno-format-truncation", "-Wno-unused-result")
HEADERS = ("attack.h", "ops.h")


class ToolchainMissing(Exception):
    """The compiler for an architecture is not installed."""


class BuildError(Exception):
    """The compiler refused a program (the message has its output)."""


def sources() -> list[Path]:
    """Every attack program source, sorted by name."""
    return sorted(SOURCE_DIR.glob("*.c"))


def compiler_for(arch: str) -> str:
    """The absolute path of ``arch``'s compiler, or :class:`ToolchainMissing`."""
    name = COMPILERS[arch]
    found = shutil.which(name)
    if found is None:
        raise ToolchainMissing(f"{name} is not installed (apt-get install {DEBIAN_PACKAGES[arch]})")
    return found


def _identity(compiler: str) -> str:
    done = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False)
    return f"{compiler}\n{done.stdout.splitlines()[0] if done.stdout else ''}"


def build_program(source: Path, arch: str, out_dir: Path = DEFAULT_OUT_DIR) -> Path:
    """Compile ``source`` for ``arch`` into ``out_dir/arch`` unless up to date; return the binary."""
    compiler = compiler_for(arch)
    target_dir = out_dir / arch
    target_dir.mkdir(parents=True, exist_ok=True)
    binary = target_dir / source.stem
    key_file = target_dir / f"{source.stem}.buildkey"
    digest = hashlib.sha256()
    digest.update(source.read_bytes())
    for header in HEADERS:
        digest.update((SOURCE_DIR / header).read_bytes())
    digest.update("\0".join([*CFLAGS, _identity(compiler)]).encode())
    key = digest.hexdigest()
    if binary.is_file() and key_file.is_file() and key_file.read_text() == key:
        return binary
    partial = target_dir / f".{source.stem}.{os.getpid()}.partial"
    done = subprocess.run(
        [compiler, *CFLAGS, "-I", str(SOURCE_DIR), "-o", str(partial), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BuildError(f"{compiler} failed on {source.name}:\n{done.stderr}")
    os.replace(partial, binary)
    key_partial = target_dir / f".{source.stem}.{os.getpid()}.key"
    key_partial.write_text(key)
    os.replace(key_partial, key_file)
    return binary


def build_all(arch: str, out_dir: Path = DEFAULT_OUT_DIR, names: list[str] | None = None) -> dict[str, Path]:
    """Build every attack program (or those named) for ``arch``; name -> binary."""
    selected = [source for source in sources() if not names or source.stem in names]
    return {source.stem: build_program(source, arch, out_dir) for source in selected}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR, help=f"output folder ({DEFAULT_OUT_DIR})")
    parser.add_argument("--arch", choices=sorted(COMPILERS), action="append", help="default: both")
    parser.add_argument("names", nargs="*", help="program names (default: all)")
    options = parser.parse_args(argv)
    try:
        for arch in options.arch or sorted(COMPILERS):
            for name, binary in build_all(arch, options.out, options.names).items():
                print(f"{arch}\t{name}\t{binary}")
    except (ToolchainMissing, BuildError) as err:
        print(f"guest/attacks/build.py: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
