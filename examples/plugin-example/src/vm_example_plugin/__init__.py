"""vm-example-plugin: a third-party vm plugin, written from docs/plugins.md and vm_core/hookspecs.py only.

It registers (see :mod:`vm_example_plugin.plugin`):

* a toy ISA, ``toy64`` (ELF machine :data:`~vm_example_plugin.toy.EM_TOY64`),
  with a front end lifting its three instructions into vm's IR and its
  :class:`~vm_core.arch.ArchInfo` (:mod:`vm_example_plugin.toy`), and a Linux
  ABI built from that ArchInfo
  (:mod:`vm_example_plugin.toy_linux`), so ``vm run`` runs toy64 ELF programs;
* an override of riscv64's ``getpid`` system call (it answers
  :data:`~vm_example_plugin.plugin.EXAMPLE_PID`);
* an observer of machine events that appends each as one JSON line to the
  file named by ``$VM_EXAMPLE_EVENTS`` (nothing when unset).
"""
