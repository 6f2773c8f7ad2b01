"""Copy a gallery to another place or backend: ``faceshot gallery migrate SRC DST``.

What is copied: every person (name, metadata, groups, when created), every face (vector, photo
hash, source, box, quality, when created, thumbnail when one was kept), the gallery's settings
(calibration, operating points, index kind…, not the store's own bookkeeping) and the API keys
(their digests: the tokens keep working). What is not: the change log and its cursors (the copy
starts its own), the clusters of a photo collection, the FAISS snapshot file (derived; rebuilt).
Face ids are the destination's own.

**Streamed and resumable.** The source is read in one snapshot a page of people at a time
(:meth:`~faceshot.gallery.store.Store.export_people`), so memory holds a batch, not the gallery.
People are copied in batches, each one transaction, and a person is never split across batches; the destination is marked (setting ``migration``) before the first batch with
where it is copied from. A rerun after an interruption skips the people already there, so it
finishes without duplicates; settings and keys are copied idempotently at the end. A destination
that already holds people and is not marked as a copy of this source is refused.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Callable

from faceshot.errors import ConflictError, GalleryError, NotFound
from faceshot.gallery.database import RESERVED_SETTINGS
from faceshot.gallery.location import Location, open_store, parse_location
from faceshot.gallery.store import PersonRecord, Store

__all__ = ["migrate", "MigrateSummary", "MIGRATION_SETTING", "BATCH_PEOPLE"]

log = logging.getLogger(__name__)

#: The destination's setting naming the source it is (being) copied from.
MIGRATION_SETTING = "migration"
#: People per transaction: small enough that an interruption loses little work, large enough that
#: the commits do not dominate.
BATCH_PEOPLE = 200


@dataclass(frozen=True)
class MigrateSummary:
    """What :func:`migrate` did: people and faces copied now, people already there (an earlier run's),
    settings and keys copied."""

    source: str
    destination: str
    people: int
    faces: int
    skipped: int
    settings: int
    keys: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "destination": self.destination, "people": self.people, "faces": self.faces,
            "skipped": self.skipped, "settings": self.settings, "keys": self.keys,
        }


def migrate(
    source: "str | os.PathLike[str] | Location",
    destination: "str | os.PathLike[str] | Location",
    *,
    batch: int = BATCH_PEOPLE,
    progress: Callable[[int, int], None] | None = None,
) -> MigrateSummary:
    """Copy the gallery at ``source`` to ``destination`` (paths or URLs; see the module's text).

    ``progress(people done, people in all)`` is called after each committed batch. Raises
    :class:`~faceshot.errors.NotFound` for a missing source, :class:`~faceshot.errors.ConflictError`
    for a destination holding another gallery's people,
    :class:`~faceshot.errors.EmbedderMismatchError` for one of another embedder.
    """
    src, dst = parse_location(source), parse_location(destination)
    if src.secret_text == dst.secret_text or (
        src.is_file and dst.is_file and src.path.resolve() == dst.path.resolve()  # one file, two spellings
    ):
        raise GalleryError(f"{src}: the source and the destination are the same gallery")
    settings = src.read_settings()
    if settings is None and src.is_file and src.path.exists():
        raise GalleryError(f"{src}: not a faceshot gallery, or a damaged one")
    if settings is None or "embedder" not in settings:
        raise NotFound(f"{src}: no such gallery to migrate")
    embedder, dim = str(settings["embedder"]), int(settings["dim"])
    reading = open_store(src, embedder=embedder, dim=dim, create=False)
    try:
        writing = open_store(dst, embedder=embedder, dim=dim, create=True)
        try:
            return _copy(reading, writing, src, dst, settings, max(1, batch), progress)
        finally:
            writing.close()
    finally:
        reading.close()


def _copy(
    reading: Store, writing: Store, src: Location, dst: Location, settings: dict[str, Any], batch: int,
    progress: Callable[[int, int], None] | None,
) -> MigrateSummary:
    marker = writing.get_setting(MIGRATION_SETTING)
    if marker is None or marker.get("from") != src.shown:
        if writing.scope()[2]:  # people
            raise ConflictError(
                f"{dst} already holds people and is not a copy of {src} in progress: migrate into a new gallery"
            )
        writing.set_setting(MIGRATION_SETTING, {"from": src.shown, "done": False})
    total = reading.scope()[2]  # people in the source, for progress
    copied = faces = skipped = 0
    pending: list[PersonRecord] = []
    # Streamed: the source is read a page at a time (one snapshot), so memory holds a batch or a
    # page, never the whole gallery.
    for record in reading.export_people(thumbnails=True):
        pending.append(record)
        if len(pending) >= batch:
            faces, copied, skipped = _commit(writing, pending, faces, copied, skipped)
            pending = []
            if progress is not None:
                progress(skipped + copied, total)
    if pending:
        faces, copied, skipped = _commit(writing, pending, faces, copied, skipped)
        if progress is not None:
            progress(skipped + copied, total)
    user_settings = {key: value for key, value in settings.items() if key not in RESERVED_SETTINGS | {MIGRATION_SETTING}}
    for key, value in user_settings.items():
        if writing.get_setting(key) != value:
            writing.set_setting(key, value)
    keys = _copy_keys(src, dst)
    writing.set_setting(MIGRATION_SETTING, {"from": src.shown, "done": True})
    log.info("migrated %d people (%d faces) from %s to %s", copied, faces, src, dst)
    return MigrateSummary(src.shown, dst.shown, copied, faces, skipped, len(user_settings), keys)


def _commit(writing: Store, records: list[PersonRecord], faces: int, copied: int, skipped: int) -> tuple[int, int, int]:
    """Write the batch's people an earlier run did not copy, in one transaction (the whole batch or
    none of it); returns the running totals of faces and people copied, and people skipped."""
    there = writing.person_ids(record.name for record in records)  # type: ignore[attr-defined]
    fresh = [record for record in records if record.name not in there]
    if fresh:
        faces += writing.import_people(fresh).faces
    return faces, copied + len(fresh), skipped + len(records) - len(fresh)


def _copy_keys(src: Location, dst: Location) -> int:
    from faceshot.keys import KeyStore

    with KeyStore(src) as source:
        rows = source.stored()
    if not rows:
        return 0
    with KeyStore(dst) as target:
        return target.restore(rows)
