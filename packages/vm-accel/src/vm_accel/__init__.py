"""vm-accel: see README.md of this package."""
