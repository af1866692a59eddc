"""vm-translate: see README.md of this package."""
