"""vm-mem: see README.md of this package."""
