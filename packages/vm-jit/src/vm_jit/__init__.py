"""vm-jit: see README.md of this package."""
