"""Snapshots: everything needed to continue a guest later, in another process, exactly where it stopped.

A :class:`Snapshot` holds the CPU (the whole register file, pc, instructions
retired), the memory (the mapped regions, every touched page with its
protection, the program break and the layout limits), the engine-independent facts of the VM (ISA,
engine name, the VM it belongs to) and, for a Linux user-mode guest, the
kernel-side process state (:class:`vm_linux.persist.ProcessImage`).

:class:`SnapshotStore` keeps them under the VM home
(:func:`vm_core.application.vm_home`)::

    snapshots/<id>.json.gz   the manifest: gzip'd JSON {format, digest, body}
    pages/<sha256>           one zlib-compressed page, named by the sha256 of its contents

Pages are content-addressed and shared by every snapshot in the store, so a
second snapshot of the same guest writes only the pages that changed (and
all-zero pages cost one blob). ``digest`` is the sha256 of the canonical JSON
body, which names every page by its hash: it covers the whole snapshot.
Loading checks the format, the digest and every page (decompressed size and
hash) before it returns anything, so a truncated or corrupted snapshot raises
:class:`~vm_core.errors.SnapshotError` and nothing is restored.

Every file is written atomically: to a temporary name (``.NAME.PID.RANDOM.tmp``),
fsync'd, renamed into place, and the directory fsync'd; page blobs before the
manifest that names them. A save killed half-way leaves at most unreferenced
pages and temporary files (never a half snapshot); :mod:`vm_cli.snapshot_pruning`
collects them. A save holds a shared lock on ``snapshots.lock``; removing
snapshots and pages (``vm rm``, ``vm prune``) holds it exclusively, so no
page a save is about to reference is collected under it.

:func:`run_or_snapshot` runs a Linux process until an exact instruction count
and snapshots it there (``vm run --snapshot-at N``); ``vm resume`` continues it.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import secrets
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
from vm_core.errors import ConfigurationError, NotFoundError, SnapshotError, VmError
from vm_core.logging import get_logger
from vm_core.types import StopReason
from vm_mem import PAGE_SIZE, AddressSpace

log = get_logger("vm_cli.snapshot")

FORMAT = "vm-snapshot/1"
MANIFEST_SUFFIX = ".json.gz"
KINDS = ("machine", "linux")
#: zlib level for page blobs: on guest pages level 1 compresses within a few percent of level 6, 5x faster.
PAGE_COMPRESSION = 1
_HEX = frozenset("0123456789abcdef")
#: The longest snapshot reference worth looking up (ids are 16 hex digits).
LONGEST_REFERENCE = 64
LOCK_FILENAME = "snapshots.lock"


@attrs.frozen
class CpuImage:
    """The architectural CPU state: the whole register file, pc and instructions retired."""

    regs: tuple[int, ...]
    pc: int
    icount: int


@attrs.frozen
class MemoryImage:
    """The mapped regions, the pages worth saving, the program break and the layout limits.

    ``regions`` are ``(first page, end page, prot, commit)`` (vm-mem's
    ``dump_regions``); ``pages`` ``(page number, prot, 4096 bytes)`` are the
    touched pages and those holding a file mapping's data (``dump_pages``):
    untouched pages read as zeros and are not saved. Snapshots from before
    sparse memory have no regions (None): each saved page is its own mapping.
    """

    pages: tuple[tuple[int, int, bytes], ...]
    brk_start: int | None
    brk_current: int
    mmap_base: int
    mmap_min_addr: int
    address_limit: int
    regions: tuple[tuple[int, int, int, int], ...] | None = None


@attrs.frozen
class Snapshot:
    """A guest's whole state: ``kind`` is ``"machine"`` (raw CPU + memory) or ``"linux"`` (with ``process``)."""

    kind: str
    isa: str
    engine: str
    cpu: CpuImage
    memory: MemoryImage
    process: Any = None  # a vm_linux.persist.ProcessImage for kind "linux"
    vm_id: str | None = None
    created: float = attrs.field(factory=time.time)


@attrs.frozen
class SavedSnapshot:
    """A snapshot in the store: its id, digest, total size on disk and the bytes this save added."""

    snapshot_id: str
    digest: str
    size: int
    new_bytes: int


@attrs.frozen
class LoadedSnapshot:
    """A verified snapshot read from the store, with its id and digest."""

    snapshot_id: str
    digest: str
    snapshot: Snapshot


# ---------------------------------------------------------------------------------- capture / apply


def capture_cpu(cpu: Any) -> CpuImage:
    """The :class:`CpuImage` of a :class:`~vm_translate.cpu.CpuState`."""
    return CpuImage(regs=tuple(cpu.regs), pc=cpu.pc, icount=cpu.icount)


def restore_cpu(cpu: Any, image: CpuImage) -> None:
    """Put ``image`` into ``cpu`` (its register file must have the snapshot's size)."""
    if len(cpu.regs) != len(image.regs):
        raise SnapshotError(
            f"snapshot: {len(image.regs)} registers saved, but this ISA's register file has {len(cpu.regs)}"
        )
    cpu.regs[:] = image.regs
    cpu.pc = image.pc
    cpu.icount = image.icount


def capture_memory(mem: AddressSpace) -> MemoryImage:
    """The :class:`MemoryImage` of an address space."""
    return MemoryImage(
        pages=tuple(mem.dump_pages()),
        brk_start=mem.brk_start,
        brk_current=mem.brk_current,
        mmap_base=mem.mmap_base,
        mmap_min_addr=mem.mmap_min_addr,
        address_limit=mem.address_limit,
        regions=tuple(mem.dump_regions()),
    )


def build_address_space(image: MemoryImage) -> AddressSpace:
    """A new address space holding ``image``."""
    try:
        mem = AddressSpace(
            mmap_base=image.mmap_base, mmap_min_addr=image.mmap_min_addr, address_limit=image.address_limit
        )
        mem.restore_pages(image.pages, image.regions)
        if image.brk_start is not None:
            mem.restore_brk(image.brk_start, image.brk_current)
    except VmError as err:
        raise SnapshotError(f"snapshot: invalid memory image: {err}") from None
    return mem


# ---------------------------------------------------------------------------------- JSON body


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _memory_body(image: MemoryImage, blob_of: Callable[[bytes], str]) -> dict[str, Any]:
    """Pages as runs ``[first page, prot, [blob index...]]`` of consecutive pages with one prot."""
    blobs: list[str] = []
    index: dict[str, int] = {}
    runs: list[list[Any]] = []
    for pn, prot, data in image.pages:
        key = blob_of(data)
        if key not in index:
            index[key] = len(blobs)
            blobs.append(key)
        last = runs[-1] if runs else None
        if last is not None and last[1] == prot and last[0] + len(last[2]) == pn:
            last[2].append(index[key])
        else:
            runs.append([pn, prot, [index[key]]])
    return {
        "blobs": blobs,
        "runs": runs,
        "brk_start": image.brk_start,
        "brk_current": image.brk_current,
        "mmap_base": image.mmap_base,
        "mmap_min_addr": image.mmap_min_addr,
        "address_limit": image.address_limit,
        **({} if image.regions is None else {"regions": [list(region) for region in image.regions]}),
    }


def _snapshot_body(snapshot: Snapshot, blob_of: Callable[[bytes], str]) -> dict[str, Any]:
    return {
        "kind": snapshot.kind,
        "isa": snapshot.isa,
        "engine": snapshot.engine,
        "vm_id": snapshot.vm_id,
        "created": snapshot.created,
        "cpu": {"regs": list(snapshot.cpu.regs), "pc": snapshot.cpu.pc, "icount": snapshot.cpu.icount},
        "memory": _memory_body(snapshot.memory, blob_of),
        "process": None if snapshot.process is None else snapshot.process.to_json(),
    }


def _int(value: Any, what: str, *, optional: bool = False) -> Any:
    if optional and value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise SnapshotError(f"snapshot: malformed manifest: {what} must be a non-negative integer")
    return value


def _str(value: Any, what: str, *, optional: bool = False) -> Any:
    if optional and value is None:
        return None
    if not isinstance(value, str):
        raise SnapshotError(f"snapshot: malformed manifest: {what} must be a string")
    return value


def _regions(value: Any) -> tuple[tuple[int, int, int, int], ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, list) and len(item) == 4 for item in value):
        raise SnapshotError("snapshot: malformed manifest: regions must be [first, end, prot, commit] lists")
    return tuple((_int(a, "a region"), _int(b, "a region"), _int(c, "a region"), _int(d, "a region"))
                 for a, b, c, d in value)


def _body_to_snapshot(body: Any, pages_of: Callable[[list[str]], list[bytes]]) -> Snapshot:
    if not isinstance(body, dict):
        raise SnapshotError("snapshot: malformed manifest: the body is not an object")
    try:
        cpu, memory = body["cpu"], body["memory"]
        kind = _str(body["kind"], "kind")
        if kind not in KINDS:
            raise SnapshotError(f"snapshot: unknown kind {kind!r}")
        regs = tuple(_int(value, "a register") for value in cpu["regs"])
        blobs = [_str(key, "a page blob") for key in memory["blobs"]]
        page_data = pages_of(blobs)
        pages: list[tuple[int, int, bytes]] = []
        for first, prot, indices in memory["runs"]:
            for offset, blob_index in enumerate(indices):
                if not isinstance(blob_index, int) or not 0 <= blob_index < len(page_data):
                    raise SnapshotError("snapshot: malformed manifest: a page names no blob")
                pages.append((_int(first, "a page number") + offset, _int(prot, "a protection"), page_data[blob_index]))
        process = body["process"]
        if (process is None) != (kind == "machine"):
            raise SnapshotError(f"snapshot: malformed manifest: a {kind} snapshot with process state {process!r:.20}")
        if process is not None:
            from vm_linux.persist import ProcessImage

            process = ProcessImage.from_json(process)
        return Snapshot(
            kind=kind,
            isa=_str(body["isa"], "isa"),
            engine=_str(body["engine"], "engine"),
            cpu=CpuImage(regs=regs, pc=_int(cpu["pc"], "pc"), icount=_int(cpu["icount"], "icount")),
            memory=MemoryImage(
                pages=tuple(pages),
                brk_start=_int(memory["brk_start"], "brk_start", optional=True),
                brk_current=_int(memory["brk_current"], "brk_current"),
                mmap_base=_int(memory["mmap_base"], "mmap_base"),
                mmap_min_addr=_int(memory["mmap_min_addr"], "mmap_min_addr"),
                address_limit=_int(memory["address_limit"], "address_limit"),
                regions=_regions(memory.get("regions")),
            ),
            process=process,
            vm_id=_str(body["vm_id"], "vm_id", optional=True),
            created=float(body["created"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise SnapshotError(f"snapshot: malformed manifest ({type(err).__name__}: {err})") from None


# ---------------------------------------------------------------------------------- the store


class SnapshotStore:
    """Snapshot manifests and shared page blobs under ``home`` (default: the VM home)."""

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        if home is None:
            from vm_core.application import vm_home

            home = vm_home()
        self.home = Path(home)
        self.snapshot_dir = self.home / "snapshots"
        self.page_dir = self.home / "pages"

    def manifest_path(self, snapshot_id: str) -> Path:
        return self.snapshot_dir / (snapshot_id + MANIFEST_SUFFIX)

    def page_path(self, key: str) -> Path:
        return self.page_dir / key

    @contextmanager
    def locked(self, *, exclusive: bool) -> Iterator[None]:
        """Hold the store's lock: shared while saving, exclusive while removing snapshots or pages."""
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.home / LOCK_FILENAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    @staticmethod
    def _write_atomically(path: Path, data: bytes) -> None:
        """Write ``data`` to ``path`` through a temporary name: fsync'd, then renamed over it."""
        scratch = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(scratch, path)
        except BaseException:
            scratch.unlink(missing_ok=True)
            raise

    @staticmethod
    def _sync_directory(path: Path) -> None:
        """Make the renames in directory ``path`` durable."""
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def save(self, snapshot: Snapshot) -> SavedSnapshot:
        """Write ``snapshot`` (new page blobs first, the manifest last) and return its id and digest."""
        if snapshot.kind not in KINDS:
            raise ConfigurationError(f"unknown snapshot kind {snapshot.kind!r}")
        try:
            with self.locked(exclusive=False):
                saved = self._save_locked(snapshot)
        except OSError as err:
            raise SnapshotError(f"cannot write a snapshot under {self.home}: {err}") from err
        log.info("snapshot_saved", snapshot_id=saved.snapshot_id, pages=len(snapshot.memory.pages), size=saved.size,
                 new_bytes=saved.new_bytes)
        return saved

    def _save_locked(self, snapshot: Snapshot) -> SavedSnapshot:
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        self.page_dir.mkdir(parents=True, exist_ok=True)
        sizes: dict[str, int] = {}
        new_bytes = 0

        def blob_of(data: bytes) -> str:
            nonlocal new_bytes
            key = hashlib.sha256(data).hexdigest()
            if key in sizes:
                return key
            path = self.page_path(key)
            try:
                sizes[key] = path.stat().st_size
            except FileNotFoundError:
                blob = zlib.compress(data, PAGE_COMPRESSION)
                self._write_atomically(path, blob)
                sizes[key] = len(blob)
                new_bytes += len(blob)
            return key

        body = _snapshot_body(snapshot, blob_of)
        digest = hashlib.sha256(_canonical(body)).hexdigest()
        manifest = gzip.compress(
            json.dumps({"format": FORMAT, "digest": digest, "body": body}).encode(), mtime=0
        )
        if new_bytes:
            self._sync_directory(self.page_dir)
        snapshot_id = secrets.token_hex(8)
        self._write_atomically(self.manifest_path(snapshot_id), manifest)
        self._sync_directory(self.snapshot_dir)
        return SavedSnapshot(snapshot_id, digest, len(manifest) + sum(sizes.values()), len(manifest) + new_bytes)

    def resolve(self, ref: str) -> str:
        """The id of the snapshot ``ref`` names: its id or a unique prefix of it."""
        text = ref.strip().lower()
        if len(text) > LONGEST_REFERENCE:
            raise NotFoundError(
                f"no snapshot {ref[:20]!r}... ({len(ref)} characters)", hint="snapshot ids are 16 hex digits"
            )
        if not text or not set(text) <= _HEX:
            raise NotFoundError(f"no snapshot {ref!r}", hint="snapshot ids are hex digits, as `vm run` printed")
        if self.manifest_path(text).is_file():
            return text
        try:
            names = [p.name[: -len(MANIFEST_SUFFIX)] for p in self.snapshot_dir.iterdir()
                     if p.name.endswith(MANIFEST_SUFFIX) and not p.name.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            names = []
        except OSError as err:
            raise SnapshotError(f"cannot read the snapshots in {self.snapshot_dir}: {err.strerror or err}") from None
        matches = sorted(name for name in names if name.startswith(text))
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise NotFoundError(f"snapshot prefix {ref!r} matches {len(matches)} snapshots", hint="give more digits")
        raise NotFoundError(f"no snapshot {ref!r} in {self.snapshot_dir}")

    def _read_pages(self, keys: list[str]) -> list[bytes]:
        pages: list[bytes] = []
        for key in keys:
            if len(key) != 64 or not set(key) <= _HEX:
                raise SnapshotError(f"snapshot: malformed manifest: bad page key {key!r:.80}")
            try:
                blob = self.page_path(key).read_bytes()
                inflater = zlib.decompressobj()
                data = inflater.decompress(blob, PAGE_SIZE + 1)
            except FileNotFoundError:
                raise SnapshotError(f"snapshot: page blob {key} is missing from {self.page_dir}") from None
            except (OSError, zlib.error) as err:
                raise SnapshotError(f"snapshot: page blob {key} is corrupted ({err})") from None
            if len(data) != PAGE_SIZE or not inflater.eof or hashlib.sha256(data).hexdigest() != key:
                raise SnapshotError(f"snapshot: page blob {key} is corrupted (its contents do not match its hash)")
            pages.append(data)
        return pages

    def snapshot_ids(self) -> list[str]:
        """The ids of every snapshot in the store (a missing store has none)."""
        try:
            entries = list(self.snapshot_dir.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(
            p.name[: -len(MANIFEST_SUFFIX)]
            for p in entries
            if p.name.endswith(MANIFEST_SUFFIX) and not p.name.startswith(".")
        )

    def read_manifest(self, snapshot_id: str) -> dict[str, Any]:
        """The verified body of snapshot ``snapshot_id``'s manifest (its pages are not read)."""
        path = self.manifest_path(snapshot_id)
        try:
            document = json.loads(gzip.decompress(path.read_bytes()))
        except FileNotFoundError:
            raise NotFoundError(f"no snapshot {snapshot_id!r} in {self.snapshot_dir}") from None
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile, UnicodeDecodeError, ValueError) as err:
            raise SnapshotError(
                f"snapshot {snapshot_id}: the manifest {path} is truncated or corrupted ({err})"
            ) from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise SnapshotError(f"snapshot {snapshot_id}: not a {FORMAT} manifest")
        body = document.get("body")
        digest = document.get("digest")
        if not isinstance(body, dict) or hashlib.sha256(_canonical(body)).hexdigest() != digest:
            raise SnapshotError(f"snapshot {snapshot_id}: the manifest does not match its digest (corrupted)")
        return {"digest": digest, "body": body}

    def load(self, ref: str) -> LoadedSnapshot:
        """Read and verify a snapshot completely (digest, every page); :class:`SnapshotError` if anything is off."""
        snapshot_id = self.resolve(ref)
        manifest = self.read_manifest(snapshot_id)
        digest, body = manifest["digest"], manifest["body"]
        snapshot = _body_to_snapshot(body, self._read_pages)
        log.info("snapshot_loaded", snapshot_id=snapshot_id, pages=len(snapshot.memory.pages))
        return LoadedSnapshot(snapshot_id, str(digest), snapshot)


# ---------------------------------------------------------------------------------- Linux processes


def capture_linux(process: Any, cpu: Any, *, engine: str, vm_id: str | None = None) -> Snapshot:
    """A ``"linux"`` snapshot of a running :class:`~vm_linux.process.LinuxProcess` and its CPU."""
    from vm_linux.persist import capture_process

    return Snapshot(
        kind="linux",
        isa=cpu.isa,
        engine=engine,
        cpu=capture_cpu(cpu),
        memory=capture_memory(process.mem),
        process=capture_process(process),
        vm_id=vm_id,
    )


def restore_linux(
    snapshot: Snapshot, nregs: int, *, abi: Any = None, syscall_overrides: Any = None
) -> tuple[Any, Any]:
    """A :class:`~vm_linux.process.LinuxProcess` and its :class:`~vm_translate.cpu.CpuState` from ``snapshot``.

    ``nregs`` is the register-file size of the ISA's front end; ``abi`` and
    ``syscall_overrides`` the registered ones (the composition root passes
    them). Files are reopened; everything else is checked first.
    """
    from vm_linux.restore import restore_process
    from vm_translate.cpu import CpuState

    if snapshot.kind != "linux" or snapshot.process is None:
        raise ConfigurationError(
            "this is a raw machine snapshot, not a Linux process", hint="restore it with vm_cli.Machine.restore"
        )
    if len(snapshot.cpu.regs) != nregs:
        raise SnapshotError(f"snapshot: {len(snapshot.cpu.regs)} registers saved, but {snapshot.isa} has {nregs}")
    mem = build_address_space(snapshot.memory)
    cpu = CpuState(snapshot.isa, nregs, mem)
    restore_cpu(cpu, snapshot.cpu)
    process = restore_process(snapshot.process, mem, abi=abi, syscall_overrides=syscall_overrides)
    return process, cpu


class _SnapshotPoint(Exception):
    """Raised through ``LinuxProcess.run`` once the snapshot is taken (not a guest event)."""


class PausingEngine:
    """Wraps an engine so a Linux process stops exactly after ``at`` guest instructions.

    Slices are cut so the inner engine never runs past ``at``. When the
    process asks for more at ``icount == at`` (after it handled whatever ended
    the last slice: a system call, a signal), ``capture`` is called and the
    run is abandoned: the same point ``LinuxProcess.run(instruction_limit=at)``
    returns at, with the descriptor table still open.
    """

    def __init__(self, engine: Any, at: int, capture: Callable[[], Snapshot]) -> None:
        self.inner = engine
        self.at = at
        self.capture = capture
        self.captured: Snapshot | None = None

    def run(self, cpu: Any, budget: int) -> StopReason:
        left = self.at - cpu.icount
        if left <= 0:
            self.captured = self.capture()
            raise _SnapshotPoint
        return self.inner.run(cpu, min(budget, left))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def record_snapshot(app: Any, vm_id: Any, saved: SavedSnapshot) -> None:
    """Record ``saved`` on the VM aggregate and pause the VM there, in one write (one warning line if the
    store fails: the snapshot is saved all the same, and resumable)."""
    if app is None or vm_id is None:
        return
    from vm_cli.messages import warning_line
    from vm_cli.recording import GUARD

    with GUARD.deferred():
        try:
            vm = app.get(vm_id)
            vm.record_snapshot(saved.snapshot_id, saved.digest, saved.size)
            vm.pause()
            app.save(vm)
        except VmError as err:
            warning_line(f"snapshot {saved.snapshot_id} is saved but not recorded on its VM: {err}")
            log.info("snapshot_not_recorded", snapshot_id=saved.snapshot_id, reason=str(err))


def run_or_snapshot(
    process: Any,
    engine: Any,
    cpu: Any,
    snapshot_at: int,
    *,
    engine_name: str,
    app: Any = None,
    vm_id: Any = None,
    store: SnapshotStore | None = None,
) -> Any:
    """Run ``process`` to its end (a ``ProcessResult``), or snapshot it after ``snapshot_at`` instructions.

    ``snapshot_at`` counts every instruction the guest retired since it
    started. The snapshot is saved in ``store`` and, when ``app`` and
    ``vm_id`` are given, recorded on the VM, which is then paused.
    """
    if isinstance(snapshot_at, bool) or not isinstance(snapshot_at, int) or snapshot_at <= cpu.icount:
        raise ConfigurationError(
            f"--snapshot-at {snapshot_at}: must be more than the {cpu.icount} instructions already retired"
        )
    pausing = PausingEngine(
        engine, snapshot_at,
        lambda: capture_linux(process, cpu, engine=engine_name, vm_id=None if vm_id is None else str(vm_id)),
    )
    try:
        return process.run(pausing, cpu)
    except _SnapshotPoint:
        assert pausing.captured is not None
        saved = (store or SnapshotStore()).save(pausing.captured)
    record_snapshot(app, vm_id, saved)
    return saved
