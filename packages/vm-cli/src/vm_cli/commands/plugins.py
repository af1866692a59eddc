"""``vm plugins``: what is installed and what each plugin registered."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table
from vm_core.plugins import collect_registry, make_plugin_manager


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plugins", help="list installed plugins and the parts they register")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def registered_parts() -> tuple[list[str], list[dict[str, str]]]:
    pm = make_plugin_manager()
    registry = collect_registry(pm)
    names = sorted(name for name, _ in pm.list_name_plugin() if name is not None)
    rows: list[dict[str, str]] = []
    for isa in registry.isas.values():
        rows.append({"kind": "isa", "name": isa.name, "description": isa.description})
    for engine in registry.engines.values():
        rows.append({"kind": "engine", "name": engine.name, "description": engine.description})
    for accel in registry.accelerators.values():
        rows.append({"kind": "accelerator", "name": accel.name, "description": accel.description})
    for table in registry.syscall_tables.values():
        rows.append({"kind": "syscalls", "name": f"{table.os}/{table.isa}", "description": table.description})
    for call in registry.syscalls.values():
        name = f"{call.os}/{call.isa}/{call.syscall}"
        rows.append({"kind": "syscall", "name": name, "description": call.description})
    for loader in registry.loaders.values():
        rows.append({"kind": "loader", "name": loader.name, "description": loader.description})
    return names, rows


def run(args: argparse.Namespace) -> int:
    names, rows = registered_parts()
    if args.json:
        print(json.dumps({"plugins": names, "parts": rows}, indent=2))
        return 0
    console = Console()
    console.print(f"plugins loaded: {', '.join(names) if names else 'none'}")
    table = Table("kind", "name", "description", title="registered parts")
    for row in rows:
        table.add_row(row["kind"], row["name"], row["description"])
    console.print(table)
    return 0
