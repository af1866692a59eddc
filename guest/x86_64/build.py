"""Build the x86-64 guest programs (``guest/x86_64/*.c``) with the host's ``gcc -static -O2``.

These static x86-64 Linux programs are the test and benchmark programs of
``vm run --accel kvm`` (vm-accel's user-mode runner): the tests run each one
natively and under vm and compare stdout, stderr, exit status and files.
A program is rebuilt only when its source, the flags or the compiler changed.

Importable (the vm-accel tests load it by path) and a command line tool::

    python guest/x86_64/build.py [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
REPO_ROOT = SOURCE_DIR.parent.parent
DEFAULT_OUT_DIR = REPO_ROOT / "build" / "guest" / "x86_64"
COMPILER = "gcc"
CFLAGS = ("-static", "-O2", "-Wall", "-Wextra")
LIBS = ("-lm",)


class BuildError(Exception):
    """The compiler is missing or refused a program (the message has its output)."""


def compiler_identity() -> str:
    """The compiler's ``--version`` first line (part of every build key)."""
    if shutil.which(COMPILER) is None:
        raise BuildError(f"{COMPILER} is not installed (apt-get install gcc libc6-dev)")
    done = subprocess.run([COMPILER, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.splitlines()[0] if done.stdout else COMPILER


def sources() -> list[Path]:
    """Every program source, sorted by name."""
    return sorted(SOURCE_DIR.glob("*.c"))


def _with_local_includes(source: Path) -> list[str]:
    """The source's text and the text of each file it includes with ``#include "..."`` (part of the build key)."""
    text = source.read_text()
    included = re.findall(r'^#include "([^"]+)"', text, flags=re.MULTILINE)
    return [text, *((source.parent / name).read_text() for name in included)]


def build_program(source: Path, out_dir: Path, identity: str) -> Path:
    """Compile ``source`` into ``out_dir`` unless an up-to-date binary is there; return the binary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / source.stem
    key_file = out_dir / f"{source.stem}.buildkey"
    key = hashlib.sha256("\0".join([*_with_local_includes(source), *CFLAGS, *LIBS, identity]).encode()).hexdigest()
    if binary.exists() and key_file.exists() and key_file.read_text() == key:
        return binary
    partial = out_dir / f".{source.stem}.partial"
    done = subprocess.run(
        [COMPILER, *CFLAGS, "-o", str(partial), str(source), *LIBS], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BuildError(f"{COMPILER} failed on {source.name}:\n{done.stderr}")
    partial.replace(binary)
    key_file.write_text(key)
    return binary


def build_all(out_dir: Path = DEFAULT_OUT_DIR) -> dict[str, Path]:
    """Build every program; return name -> binary path."""
    identity = compiler_identity()
    return {source.stem: build_program(source, out_dir, identity) for source in sources()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the x86-64 guest programs with gcc -static -O2.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR, help=f"output directory ({DEFAULT_OUT_DIR})")
    args = parser.parse_args(argv)
    try:
        built = build_all(args.out)
    except BuildError as err:
        print(f"build.py: {err}", file=sys.stderr)
        return 1
    for name, path in built.items():
        print(f"{name}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
