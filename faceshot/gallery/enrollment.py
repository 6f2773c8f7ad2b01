"""One enrollment pipeline: source → content hash → the engine's face choice → quality gate → record.

Three front ends find faces differently and share everything after that:
:meth:`~faceshot.gallery.Gallery.enroll` detects in this process, ``enroll_dir`` in the bulk
worker pool, and naming a cluster hands over faces found earlier. Each makes :class:`Candidate`\\ s;
:meth:`Enrollment.admit` applies the one-face rule and the quality gate and embeds what has no
vector yet; :meth:`Enrollment.record` stores a person's admitted faces in one transaction.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from faceshot.bulk import LocalRunner, Runner
from faceshot.choice import choose_face, several_faces, turned_face
from faceshot.engine import Engine
from faceshot.errors import ConfigError, ConflictError, FaceshotError
from faceshot.gallery.names import name_key
from faceshot.gallery.results import DirProgress, DirSummary, EnrolledFace, EnrollResult, Rejected, Skipped
from faceshot.gallery.store import NewFace, Store
from faceshot.io import ImageInput, describe, read_bytes
from faceshot.walk import by_top_folder, by_top_folder_url, is_url
from faceshot.quality import Quality, QualityLimits, assess, require
from faceshot.results import Face

__all__ = ["Candidate", "Admitted", "Enrollment", "FORCE_HINT", "THUMBNAIL_QUALITY", "DIR_BATCH", "rejection"]

log = logging.getLogger(__name__)

THUMBNAIL_QUALITY = 85
#: Faces written per transaction by a folder's enrollment: what a crash can lose and a rerun redoes.
DIR_BATCH = 64
#: Two boxes of one photo overlapping this much (intersection over union) are the same face.
DUPLICATE_IOU = 0.5
#: What to do about a photo of several people, said wherever enrollment refuses one.
FORCE_HINT = "crop the photo, or pass force=True to enroll the largest"


@dataclass(frozen=True, eq=False)
class Candidate:
    """A face proposed for enrollment.

    ``chip``: its aligned chip, ``(size, size, 3)`` uint8; ``face``: box and landmarks in the photo
    (pixels); ``found``: how many faces the photo had; ``embedding``: its ``(dim,)`` unit vector
    when a worker already computed it, else ``None``; ``source``/``sha256``: the photo's name and
    the SHA-256 of its bytes.
    """

    source: str
    sha256: str
    chip: np.ndarray
    face: Face
    found: int = 1
    embedding: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Admitted:
    """A candidate that passed: the face to store, where it was, and the gate's figures.

    ``face`` and ``quality`` are ``None`` for a vector added as it is (no photo was looked at).
    """

    new: NewFace
    face: Face | None
    quality: Quality | None


class Enrollment:
    """The steps every enrollment path shares, bound to one engine, store and quality gate."""

    def __init__(self, engine: Engine, store: Store, limits: QualityLimits) -> None:
        self.engine = engine
        self.store = store
        self.limits = limits

    # -- the three front ends ---------------------------------------------------------------
    def photos(
        self,
        name: str,
        sources: Sequence[ImageInput],
        *,
        create: bool,
        groups: Iterable[str] = (),
        metadata: dict[str, Any] | None = None,
        force: bool,
        keep_thumbnail: bool,
    ) -> EnrollResult:
        """Photos detected in this process (:meth:`Gallery.enroll <faceshot.gallery.Gallery.enroll>`)."""
        groups = tuple(groups)
        existed = self.store.has_person(name)
        rejected: list[Rejected] = []
        digests: list[tuple[str, str, ImageInput]] = []
        for source in sources:
            label = describe(source)
            try:
                digest, data = self.digest(source)
            except FaceshotError as exc:
                rejected.append(rejection(label, exc))
                continue
            digests.append((label, digest, data))
        known = self.store.known_files(name, [digest for _, digest, _ in digests])
        skipped = [Skipped(label, known[digest]) for label, digest, _ in digests if digest in known]
        admitted: list[Admitted] = []
        for label, digest, data in digests:
            if digest in known:
                continue
            try:
                candidate = self.from_photo(data, label, digest)
                admitted.append(self.admit(name, candidate, force=force, keep_thumbnail=keep_thumbnail))
            except FaceshotError as exc:
                rejected.append(rejection(label, exc))
        if not admitted and not (existed and (groups or metadata)):
            return EnrollResult(name, False, (), tuple(skipped), tuple(rejected))
        added, again = self.record(name, admitted, create=create, groups=groups, metadata=metadata)
        if added:
            log.info("enrolled %d face(s) of %r", len(added), name)
        return EnrollResult(name, create and not existed, tuple(added), tuple(skipped + again), tuple(rejected))

    def found(
        self,
        name: str,
        faces: Sequence[tuple[np.ndarray, Face, np.ndarray | None, str, str]],
        *,
        force: bool,
        keep_thumbnail: bool,
    ) -> EnrollResult:
        """Faces found earlier, as ``(photo, face, embedding or None, source, sha256)`` (a named cluster's)."""
        existed = self.store.has_person(name)
        rejected: list[Rejected] = []
        admitted: list[Admitted] = []
        for image, face, embedding, source, sha256 in faces:
            try:
                chip = self.engine.aligner.align(image, [face])[0]
                candidate = Candidate(source, sha256, chip, face, 1, embedding)
                admitted.append(self.admit(name, candidate, force=force, keep_thumbnail=keep_thumbnail))
            except FaceshotError as exc:
                rejected.append(rejection(source, exc))
        if not admitted:
            return EnrollResult(name, False, (), (), tuple(rejected))
        added, skipped = self.record(name, admitted, create=True)
        log.info("enrolled %d found face(s) of %r", len(added), name)
        return EnrollResult(name, not existed, tuple(added), tuple(skipped), tuple(rejected))

    def folder(
        self,
        folder: str | Path,
        *,
        groups: tuple[str, ...],
        force: bool,
        keep_thumbnail: bool,
        workers: int | None,
        progress: Callable[[DirProgress], None] | None,
        runner: Runner | None = None,
        batch: int = DIR_BATCH,
    ) -> DirSummary:
        """A folder of people (:meth:`Gallery.enroll_dir <faceshot.gallery.Gallery.enroll_dir>`).

        ``runner`` reads, hashes, detects and embeds (default: this machine's worker pool); this
        process plans, skips what is enrolled, applies the gate and records: the records have one writer.
        """
        runner = runner or LocalRunner(workers)
        if is_url(str(folder)):
            if not runner.reads_urls:
                raise ConfigError(f"{folder}: a folder named by a URL is read by the Ray runner (--runner ray), not on this machine's cores")
            people, left = by_top_folder_url(str(folder))
            failed: list[Rejected] = []
            left_out = left
        else:
            local, walked = by_top_folder(folder)  # the one file walker (faceshot.walk)
            people = {person: [str(photo) for photo in photos] for person, photos in local.items()}
            failed = [Rejected(item.path, "ImageNotFoundError", item.reason) for item in walked.skipped if item.kind == "broken"]
            left_out = tuple(item for item in walked.skipped if item.kind == "skipped")
        plan: list[tuple[str, str]] = [(person, photo) for person in sorted(people) for photo in people[person]]
        total = len(plan)
        done = 0

        def report(person: str, source: str, outcome: str) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(DirProgress(done, total, person, source, outcome))

        per_person: dict[str, dict[str, list[Any]]] = {}

        def tally(person: str) -> dict[str, list[Any]]:
            return per_person.setdefault(person, {"added": [], "skipped": [], "rejected": []})

        def refuse(person: str, source: str, exc: FaceshotError) -> None:
            refused = rejection(source, exc)
            tally(person)["rejected"].append(refused)
            failed.append(refused)
            report(person, source, "failed")

        # Skip what is already enrolled before any detection: this is what makes reruns cheap. A
        # runner that hashes as it reads needs no hashing pass over a gallery with nothing in it.
        todo: list[tuple[str, str, str | None]] = []
        if runner.hashes_while_embedding and self.store.head() == 0:
            digests: list[str | FaceshotError | None] = [None] * len(plan)
        else:
            digests = list(runner.digests([photo for _, photo in plan]))
        by_person: dict[str, list[tuple[str, str | None]]] = {}
        for (person, photo), digest in zip(plan, digests):
            if isinstance(digest, FaceshotError):
                refuse(person, photo, digest)
            else:
                by_person.setdefault(person, []).append((photo, digest))
        for person, photos in by_person.items():
            try:
                known = self.store.known_files(person, [digest for _, digest in photos if digest])
            except ConfigError as exc:  # a folder name that cannot be a person's name
                for photo, _ in photos:
                    refuse(person, photo, exc)
                continue
            for photo, digest in photos:
                if digest in known:
                    tally(person)["skipped"].append(Skipped(photo, known[digest]))
                    report(person, photo, "skipped")
                else:
                    # Two copies of one file in a folder are both embedded; the store keeps one.
                    todo.append((person, photo, digest))

        # Admitted faces wait per person; a person's reach the batch size, or all of them together
        # do, and they are committed (one transaction per person): a crash loses at most a batch.
        pending: dict[str, list[Admitted]] = {}

        def flush(person: str) -> None:
            admitted = pending.pop(person, [])
            if admitted:
                added, again = self.record(person, admitted, create=True, groups=groups)
                tally(person)["added"].extend(added)
                tally(person)["skipped"].extend(again)

        waiting = 0
        results = runner.represent(self.engine, [(photo, digest) for _, photo, digest in todo], one_face="largest")
        for index, digest, result in results:
            person, label, _ = todo[index]
            try:
                if result.error is not None:
                    raise result.error
                assert result.chips is not None
                chosen = result.faces[0]
                candidate = Candidate(label, digest, result.chips[0], chosen.face, result.found, chosen.embedding)
                pending.setdefault(person, []).append(
                    self.admit(person, candidate, force=force, keep_thumbnail=keep_thumbnail)
                )
            except FaceshotError as exc:
                refuse(person, label, exc)
                continue
            waiting += 1
            if len(pending[person]) >= batch:
                waiting -= len(pending[person])
                flush(person)
            elif waiting >= batch:
                for someone in list(pending):
                    flush(someone)
                waiting = 0
            report(person, label, "enrolled")
        for someone in list(pending):
            flush(someone)

        people_results = tuple(
            EnrollResult(person, False, tuple(t["added"]), tuple(t["skipped"]), tuple(t["rejected"]))
            for person, t in sorted(per_person.items())
        )
        enrolled = sum(len(result.added) for result in people_results)
        skipped = sum(len(result.skipped) for result in people_results)
        log.info("%s: %d face(s) enrolled, %d skipped, %d failed", folder, enrolled, skipped, len(failed))
        return DirSummary(enrolled, skipped, tuple(failed), people_results, left_out)

    # -- sources ----------------------------------------------------------------------------
    def digest(self, source: ImageInput) -> tuple[str, ImageInput]:
        """The SHA-256 that identifies a photo, and the input to load it from (a stream is read once).

        Raises the :class:`~faceshot.errors.ImageError` that says what is wrong with an unreadable source.
        """
        if isinstance(source, (str, os.PathLike)):
            # A path is loaded again by name (so messages name the file); a data URL by itself.
            return hashlib.sha256(read_bytes(source)).hexdigest(), source
        if isinstance(source, (bytes, bytearray, memoryview)):
            return hashlib.sha256(bytes(source)).hexdigest(), source
        if isinstance(source, np.ndarray):
            array = np.ascontiguousarray(source)
            header = f"{array.shape}{array.dtype}".encode()
            return hashlib.sha256(header + array.tobytes()).hexdigest(), array
        if isinstance(source, Image.Image):
            header = f"{source.size}{source.mode}".encode()
            return hashlib.sha256(header + source.tobytes()).hexdigest(), source
        data = read_bytes(source)  # a binary file object, read once; raises for anything else
        return hashlib.sha256(data).hexdigest(), data

    def from_photo(self, data: ImageInput, label: str, sha256: str) -> Candidate:
        """Detect in this process and propose the largest face (the one-face rule comes in :meth:`admit`)."""
        image = self.engine.load(data)
        faces = self.engine.detector.detect(image)
        face = choose_face(faces, image.shape, label=label, multiple="largest", min_width=self.limits.min_width,
                           turned=lambda: turned_face(self.engine.detector.detect, image))
        chips = self.engine.aligner.align(image, [face])
        return Candidate(label, sha256, chips[0], face, len(faces))

    # -- the gate ---------------------------------------------------------------------------
    def admit(self, name: str, candidate: Candidate, *, force: bool, keep_thumbnail: bool) -> Admitted:
        """Apply the one-face rule, the duplicate rule and the quality gate, and embed if needed.

        Raises, unless ``force`` (which records the face knowingly):
        :class:`~faceshot.errors.MultipleFacesError` for a photo of several faces,
        :class:`~faceshot.errors.ConflictError` when the same face of the same photo is enrolled
        as someone else, :class:`~faceshot.errors.QualityError` for a face below the gate.
        """
        if candidate.found > 1 and not force:
            raise several_faces(candidate.source, candidate.found, FORCE_HINT)
        self._check_duplicate(name, candidate, force)
        quality = assess(candidate.face, candidate.chip, self.limits)
        if not force:
            require(quality, candidate.source)
        vector = candidate.embedding
        if vector is None:
            vector = self.engine.embedder.embed(candidate.chip[None])[0]
        new = NewFace(
            embedding=vector,
            sha256=candidate.sha256,
            source=candidate.source,
            box=candidate.face.box,
            quality=quality.to_dict(),
            thumbnail=_jpeg(candidate.chip) if keep_thumbnail else None,
        )
        return Admitted(new, candidate.face, quality)

    def _check_duplicate(self, name: str, candidate: Candidate, force: bool) -> None:
        """A duplicate is the same photo (file hash) and an overlapping face box (IoU ≥ 0.5).

        Different faces of one group photo may be enrolled as different people; the same face
        under a second person is refused, naming the first.
        """
        if not candidate.sha256:
            return
        key = name_key(name)
        for person, face_id, box in self.store.faces_of_files([candidate.sha256]).get(candidate.sha256, []):
            if name_key(person) == key or box is None or box.iou(candidate.face.box) < DUPLICATE_IOU:
                continue
            if force:
                log.warning("%s: the same face is enrolled as %r (face %d); enrolled as %r too, as forced",
                            candidate.source, person, face_id, name)
                return
            raise ConflictError(
                f"{candidate.source}: this face of this photo is already enrolled as {person!r} (face {face_id}); "
                f"remove it there first, or pass force=True to enroll it as {name!r} too"
            )

    # -- the record -------------------------------------------------------------------------
    def record(
        self,
        name: str,
        admitted: Sequence[Admitted],
        *,
        create: bool,
        groups: Iterable[str] = (),
        metadata: dict[str, Any] | None = None,
    ) -> tuple[list[EnrolledFace], list[Skipped]]:
        """Store a person's admitted faces in one transaction; returns what was added and what was there.

        A face whose photo (SHA-256) the person already has is skipped, not added twice.
        """
        outcomes = self.store.add_faces(name, [item.new for item in admitted], create=create,
                                        metadata=metadata, groups=groups)
        added, skipped = [], []
        for item, outcome in zip(admitted, outcomes):
            source = item.new.source or ""
            if outcome.new:
                box = None if item.face is None else item.face.box
                added.append(EnrolledFace(outcome.face_id, source, item.new.sha256 or "", box, item.quality))
            else:  # the same file given twice, or enrolled by another process meanwhile
                skipped.append(Skipped(source, outcome.face_id))
        return added, skipped


def rejection(label: str, exc: FaceshotError) -> Rejected:
    """A photo refused, for the result: its name, the error's class and its message."""
    return Rejected(label, type(exc).__name__, str(exc))


def _jpeg(chip: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(chip).save(buffer, format="JPEG", quality=THUMBNAIL_QUALITY)
    return buffer.getvalue()
