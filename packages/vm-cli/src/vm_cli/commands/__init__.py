"""The ``vm`` subcommands, one module each, in the order ``vm --help`` lists them."""

from types import ModuleType

from vm_cli.commands import aot, boot, machines, plugins, prune, resume, run, stop, version

COMMAND_MODULES: list[ModuleType] = [run, aot, resume, boot, machines, stop, prune, version, plugins]
