"""vm-cli: see README.md of this package."""
