"""The ``vm`` subcommands, one module each, in the order ``vm --help`` lists them."""

from types import ModuleType

from vm_cli.commands import boot, machines, plugins, resume, run, version

COMMAND_MODULES: list[ModuleType] = [run, resume, boot, machines, version, plugins]
