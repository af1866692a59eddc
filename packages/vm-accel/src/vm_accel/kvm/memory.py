"""Guest-physical memory of a KVM virtual machine.

A :class:`GuestMemoryRegion` is an anonymous host mapping that KVM uses as
guest-physical RAM at ``guest_phys``; :class:`GuestPhysicalMemory` is the
set of regions of one VM with byte and little-endian integer access by
guest-physical address. An access that is not wholly inside RAM raises
:class:`vm_core.errors.MemoryFault`.
"""

from __future__ import annotations

import ctypes
import mmap
from collections.abc import Iterator

from vm_core.errors import ConfigurationError, MemoryFault

PAGE_SIZE = 4096


class GuestMemoryRegion:
    """``size`` bytes of guest RAM at guest-physical ``guest_phys``, backed by an anonymous mapping."""

    def __init__(self, slot: int, guest_phys: int, size: int, *, readonly: bool = False) -> None:
        if size <= 0 or size % PAGE_SIZE or guest_phys % PAGE_SIZE or guest_phys < 0:
            raise ConfigurationError(
                f"guest memory region at {guest_phys:#x} of {size:#x} bytes is not page aligned",
                hint=f"use a positive size and an address that are multiples of {PAGE_SIZE:#x}",
            )
        self.slot = slot
        self.guest_phys = guest_phys
        self.size = size
        self.readonly = readonly
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0)
        self._map: mmap.mmap | None = mmap.mmap(-1, size, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self._anchor: ctypes.c_uint8 | None = ctypes.c_uint8.from_buffer(self._map)
        self.host_address = ctypes.addressof(self._anchor)
        self._view: memoryview | None = memoryview(self._map)

    @property
    def end(self) -> int:
        """One past the last guest-physical address of the region."""
        return self.guest_phys + self.size

    @property
    def view(self) -> memoryview:
        """The region's bytes, writable, indexed from ``guest_phys``."""
        if self._view is None:
            raise ConfigurationError(f"guest memory region at {self.guest_phys:#x} is closed")
        return self._view

    def close(self) -> None:
        """Unmap the host memory (only once KVM no longer uses the slot)."""
        if self._view is not None:
            self._view.release()
            self._view = None
        self._anchor = None
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                pass  # someone still holds a view; the memory is unmapped when that is collected
            self._map = None


class GuestPhysicalMemory:
    """Read and write a VM's guest-physical address space (its RAM regions)."""

    def __init__(self) -> None:
        self._regions: list[GuestMemoryRegion] = []

    def __iter__(self) -> Iterator[GuestMemoryRegion]:
        return iter(self._regions)

    def __len__(self) -> int:
        return len(self._regions)

    def add(self, region: GuestMemoryRegion) -> None:
        """Add a region; it must not overlap another one."""
        for other in self._regions:
            if region.guest_phys < other.end and other.guest_phys < region.end:
                raise ConfigurationError(
                    f"guest memory {region.guest_phys:#x}-{region.end:#x} overlaps "
                    f"{other.guest_phys:#x}-{other.end:#x}"
                )
        self._regions.append(region)
        self._regions.sort(key=lambda r: r.guest_phys)

    def remove(self, region: GuestMemoryRegion) -> None:
        self._regions.remove(region)

    def contains(self, address: int, size: int = 1) -> bool:
        """Whether ``[address, address+size)`` is all RAM."""
        try:
            self._chunks(address, size, "read")
        except MemoryFault:
            return False
        return True

    def _chunks(self, address: int, size: int, access: str) -> list[tuple[GuestMemoryRegion, int, int]]:
        """(region, offset in region, length) pieces covering the range, or MemoryFault."""
        if size < 0 or address < 0:
            raise MemoryFault(address, access)
        pieces: list[tuple[GuestMemoryRegion, int, int]] = []
        cursor, left = address, size
        while left > 0:
            region = self._region_at(cursor)
            if region is None:
                raise MemoryFault(cursor, access)
            length = min(left, region.end - cursor)
            pieces.append((region, cursor - region.guest_phys, length))
            cursor += length
            left -= length
        return pieces

    def _region_at(self, address: int) -> GuestMemoryRegion | None:
        for region in self._regions:
            if region.guest_phys <= address < region.end:
                return region
        return None

    def read(self, address: int, size: int) -> bytes:
        """``size`` bytes at guest-physical ``address``."""
        return b"".join(
            bytes(region.view[offset : offset + length])
            for region, offset, length in self._chunks(address, size, "read")
        )

    def write(self, address: int, data: bytes | bytearray | memoryview) -> None:
        """Store ``data`` at guest-physical ``address`` (also into read-only regions: host access)."""
        pieces = self._chunks(address, len(data), "write")
        source = memoryview(data).cast("B")
        done = 0
        for region, offset, length in pieces:
            region.view[offset : offset + length] = source[done : done + length]
            done += length

    def fill(self, address: int, size: int, byte: int = 0) -> None:
        """Set ``size`` bytes at ``address`` to ``byte``."""
        for region, offset, length in self._chunks(address, size, "write"):
            ctypes.memset(region.host_address + offset, byte, length)

    def read_int(self, address: int, size: int) -> int:
        """A little-endian unsigned integer of ``size`` bytes."""
        return int.from_bytes(self.read(address, size), "little")

    def write_int(self, address: int, size: int, value: int) -> None:
        """Store ``value`` (taken modulo 2**(8*size)) little-endian in ``size`` bytes."""
        self.write(address, (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))

    def read_u8(self, address: int) -> int:
        return self.read_int(address, 1)

    def read_u16(self, address: int) -> int:
        return self.read_int(address, 2)

    def read_u32(self, address: int) -> int:
        return self.read_int(address, 4)

    def read_u64(self, address: int) -> int:
        return self.read_int(address, 8)

    def write_u8(self, address: int, value: int) -> None:
        self.write_int(address, 1, value)

    def write_u16(self, address: int, value: int) -> None:
        self.write_int(address, 2, value)

    def write_u32(self, address: int, value: int) -> None:
        self.write_int(address, 4, value)

    def write_u64(self, address: int, value: int) -> None:
        self.write_int(address, 8, value)
