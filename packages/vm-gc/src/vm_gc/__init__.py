"""vm-gc: see README.md of this package."""
