"""vm-linux: see README.md of this package."""
