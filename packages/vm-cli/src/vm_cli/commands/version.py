"""``vm version``: the installed vm distributions and their versions."""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version

DISTRIBUTIONS = ["vm-core", "vm-mem", "vm-translate", "vm-jit", "vm-gc", "vm-accel", "vm-linux", "vm-cli"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("version", help="print the versions of the installed vm packages")
    p.set_defaults(func=run)


def installed_versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for dist in DISTRIBUTIONS:
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return found


def run(args: argparse.Namespace) -> int:
    versions = installed_versions()
    print(f"vm {versions.get('vm-cli', '?')}")
    for dist, ver in versions.items():
        print(f"  {dist} {ver}")
    return 0
