"""vm-cli: the ``vm`` command and the Python embedding API (:class:`Machine`)."""

from vm_cli.machine import Machine

__all__ = ["Machine"]
