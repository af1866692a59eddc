"""Removing snapshots and the page blobs no remaining snapshot references.

``vm rm`` removes the snapshots of the VMs it removes; ``vm prune`` those of
every removed VM. Either way :func:`remove_snapshots` then collects the page
blobs that no remaining manifest names, and the temporary files of saves
that never finished (a save killed half-way). It works under the store's
exclusive lock, so a save in progress (which holds it shared) never loses a
page it is about to reference.

What cannot be read is never guessed about: a manifest that is damaged is
kept, and while any manifest cannot be read no page is collected (the
damaged one may name it). :class:`PruneReport` says what was removed and
what was kept for that reason.
"""

from __future__ import annotations

import os
from collections.abc import Collection

import attrs
from vm_core.errors import NotFoundError, SnapshotError
from vm_core.logging import get_logger

from vm_cli.snapshot import SnapshotStore

log = get_logger("vm_cli.snapshot_pruning")


@attrs.frozen
class PruneReport:
    """What :func:`remove_snapshots` removed, and the manifests it could not read (so kept every page)."""

    snapshots: tuple[str, ...] = ()
    pages: int = 0
    bytes_freed: int = 0
    unreadable: tuple[str, ...] = ()

    def describe(self) -> str:
        text = f"{len(self.snapshots)} snapshots, {self.pages} pages ({self.bytes_freed} bytes)"
        if self.unreadable:
            text += f"; pages kept: {len(self.unreadable)} snapshots cannot be read ({', '.join(self.unreadable[:3])})"
        return text


def _unlink(path: os.PathLike[str] | str) -> int:
    """Remove ``path``; its size in bytes, or 0 if it was already gone."""
    try:
        size = os.stat(path).st_size
        os.unlink(path)
    except FileNotFoundError:
        return 0
    return size


def remove_snapshots(store: SnapshotStore, vm_ids: Collection[str]) -> PruneReport:
    """Remove the snapshots of the VMs ``vm_ids`` (ids as strings), then every page nothing references.

    :class:`~vm_core.errors.SnapshotError` if the store cannot be changed (a
    read-only home, for instance); what was removed before that stays removed.
    """
    if not store.snapshot_dir.exists() and not store.page_dir.exists():
        return PruneReport()
    doomed = {str(vm_id) for vm_id in vm_ids}
    removed: list[str] = []
    unreadable: list[str] = []
    referenced: set[str] = set()
    freed = 0
    try:
        with store.locked(exclusive=True):
            for snapshot_id in store.snapshot_ids():
                try:
                    body = store.read_manifest(snapshot_id)["body"]
                    vm_id = body.get("vm_id")
                    blobs = body["memory"]["blobs"]
                except NotFoundError:
                    continue
                except (SnapshotError, KeyError, TypeError) as err:
                    unreadable.append(snapshot_id)
                    log.info("snapshot_unreadable", snapshot_id=snapshot_id, reason=str(err))
                    continue
                if vm_id is not None and str(vm_id) in doomed:
                    freed += _unlink(store.manifest_path(snapshot_id))
                    removed.append(snapshot_id)
                else:
                    referenced.update(str(blob) for blob in blobs)
            pages = 0
            if not unreadable:
                pages, page_bytes = _collect_pages(store, referenced)
                freed += page_bytes
            freed += _remove_scratch(store)
    except OSError as err:
        raise SnapshotError(f"cannot remove snapshots under {store.home}: {err.strerror or err}") from None
    report = PruneReport(tuple(removed), pages, freed, tuple(unreadable))
    log.info("snapshots_pruned", snapshots=len(removed), pages=pages, bytes=freed, unreadable=len(unreadable))
    return report


def _collect_pages(store: SnapshotStore, referenced: set[str]) -> tuple[int, int]:
    try:
        entries = list(os.scandir(store.page_dir))
    except FileNotFoundError:
        return 0, 0
    count = freed = 0
    for entry in entries:
        if entry.name.startswith(".") or entry.name in referenced or not entry.is_file(follow_symlinks=False):
            continue
        freed += _unlink(entry.path)
        count += 1
    return count, freed


def _remove_scratch(store: SnapshotStore) -> int:
    """Temporary files of saves that never finished (no save runs while the lock is held exclusively)."""
    freed = 0
    for directory in (store.snapshot_dir, store.page_dir):
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.is_file(follow_symlinks=False):
                freed += _unlink(entry.path)
    return freed
