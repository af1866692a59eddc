"""The AOT cache: tier-2 machine code kept on disk, so a second run of a program starts hot.

One file per region, named by a key that hashes the engine's code-generation
version, the settings that shape regions, the region's entry pc and the
guest code bytes of its entry block (:meth:`AotCache.entry_key`); each of
its other blocks gets a small alias file (the same kind of key, for that
block) naming the region's key, so a later run finds the region at whichever
of its blocks it translates first. A region file
holds the region's block pcs and entry pcs, the SHA-256 of the LLVM IR it was compiled
from, the host it was compiled for (LLVM version, triple, CPU and features)
and the object code, all under a SHA-256 checksum. Nothing in it is
trusted: a file that fails the checksum or does not parse is deleted, and
the engine only uses the object after re-lifting the listed blocks from
guest memory and regenerating exactly the same LLVM IR (same hash), so
changed guest code or a changed front end can never run stale code.

Writers write a temporary file in the same directory and ``os.replace`` it,
so concurrent processes never see a partial file; readers treat a missing
file as a miss. The directory is ``$VM_CACHE_DIR`` if set, else
``$XDG_CACHE_HOME/vm/aot``, else ``~/.cache/vm/aot``; a cache that cannot be
created or written is simply not used.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path

import attrs
from vm_core.logging import get_logger

log = get_logger("vm_jit.native.cache")

MAGIC = b"VMAOT1\n"
ALIAS_MAGIC = b"VMAOTALIAS1\n"
_DIGEST = 32
_SUFFIX = ".region"
_ALIAS_SUFFIX = ".alias"
_KEY_CHARS = frozenset("0123456789abcdef")


def default_cache_dir() -> Path:
    """Where the AOT cache lives (see the module docstring)."""
    override = os.environ.get("VM_CACHE_DIR")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "vm" / "aot"


@attrs.frozen
class CachedRegion:
    """One region's compiled code and what is needed to check it still applies."""

    name: str
    block_pcs: tuple[int, ...]
    entries: tuple[int, ...]
    ir_sha256: str
    host: str
    obj: bytes = attrs.field(repr=lambda obj: f"<{len(obj)} bytes>")


def encode_entry(entry: CachedRegion) -> bytes:
    header = json.dumps(
        {"name": entry.name, "blocks": list(entry.block_pcs), "entries": list(entry.entries), "ir": entry.ir_sha256,
         "host": entry.host}
    ).encode()
    payload = len(header).to_bytes(4, "little") + header + entry.obj
    return MAGIC + hashlib.sha256(payload).digest() + payload


def decode_entry(data: bytes) -> CachedRegion | None:
    """The entry in ``data``, or None if it is corrupt in any way."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _DIGEST + 4:
        return None
    digest = data[len(MAGIC) : len(MAGIC) + _DIGEST]
    payload = data[len(MAGIC) + _DIGEST :]
    if hashlib.sha256(payload).digest() != digest:
        return None
    size = int.from_bytes(payload[:4], "little")
    try:
        header = json.loads(payload[4 : 4 + size])
        blocks = tuple(int(pc) for pc in header["blocks"])
        entries = tuple(int(pc) for pc in header["entries"])
        entry = CachedRegion(
            str(header["name"]), blocks, entries, str(header["ir"]), str(header["host"]), payload[4 + size :]
        )
    except (ValueError, KeyError, TypeError):
        return None
    return entry if entry.block_pcs and entry.entries and entry.obj else None


class AotCache:
    """The region files of one namespace (engine version and settings) in one directory."""

    def __init__(self, root: Path, namespace: str) -> None:
        self.namespace = namespace
        tag = hashlib.sha256(f"{namespace} {platform.machine()}".encode()).hexdigest()[:16]
        self.directory = root / tag
        self.usable = True
        self.hits = 0
        self.stores = 0
        self._names: set[str] | None = None

    def _listing(self) -> set[str]:
        if self._names is None:
            try:
                self._names = {name for name in os.listdir(self.directory) if name.endswith((_SUFFIX, _ALIAS_SUFFIX))}
            except OSError:
                self._names = set()
        return self._names

    def entry_key(self, pc: int, code: bytes) -> str:
        """The key of the region entered at ``pc`` whose entry block's code bytes are ``code``."""
        return hashlib.sha256(f"{self.namespace}|{pc:#x}|".encode() + code).hexdigest()

    def might_have(self, key: str) -> bool:
        """Cheap (no system call) pre-check: the directory listed ``key`` (or an alias) when first looked at."""
        names = self._listing()
        return key + _SUFFIX in names or key + _ALIAS_SUFFIX in names

    def get(self, key: str) -> CachedRegion | None:
        """The valid entry stored under ``key`` or found through its alias, or None (a corrupt file is deleted)."""
        if key + _SUFFIX not in self._listing() and key + _ALIAS_SUFFIX in self._listing():
            target = self._read_alias(key)
            if target is None:
                return None
            key = target
        path = self.directory / (key + _SUFFIX)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        entry = decode_entry(data)
        if entry is None:
            self._discard(path, "aot_entry_corrupt")
            return None
        self.hits += 1
        return entry

    def _read_alias(self, alias: str) -> str | None:
        """The region key the alias file ``alias`` names, or None (a malformed alias file is deleted)."""
        path = self.directory / (alias + _ALIAS_SUFFIX)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        key = data[len(ALIAS_MAGIC) :].decode("ascii", "replace")
        if data.startswith(ALIAS_MAGIC) and len(key) == 64 and set(key) <= _KEY_CHARS:
            return key
        self._discard(path, "aot_alias_corrupt")
        return None

    def _discard(self, path: Path, event: str) -> None:
        """Delete a corrupt cache file (never trusted, never read again)."""
        log.warning(event, path=str(path))
        self._listing().discard(path.name)
        try:
            path.unlink()
        except OSError:
            pass

    def put(self, key: str, entry: CachedRegion) -> None:
        """Store ``entry`` under ``key`` atomically; failures only disable the cache."""
        if self._write(key + _SUFFIX, encode_entry(entry)):
            self.stores += 1

    def put_alias(self, alias: str, key: str) -> None:
        """Make ``alias`` lead to the entry stored under ``key`` (atomically; failures only disable the cache)."""
        self._write(alias + _ALIAS_SUFFIX, ALIAS_MAGIC + key.encode("ascii"))

    def _write(self, name: str, data: bytes) -> bool:
        if not self.usable:
            return False
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".tmp-", suffix=_SUFFIX, dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(temp, self.directory / name)
            except BaseException:
                try:
                    os.unlink(temp)
                except OSError:
                    pass
                raise
        except OSError as err:
            log.warning("aot_cache_unusable", directory=str(self.directory), reason=str(err))
            self.usable = False
            return False
        self._listing().add(name)
        return True
