"""The ``vm`` subcommands, one module each, in the order ``vm --help`` lists them."""

from types import ModuleType

from vm_cli.commands import aot, boot, machines, plugins, resume, run, version

COMMAND_MODULES: list[ModuleType] = [run, aot, resume, boot, machines, version, plugins]
