"""The gallery: people enrolled from a few photos each, found again in new photos.

    from faceshot.gallery import Gallery

    with Gallery("people.db") as gallery:
        gallery.enroll("Barack Obama", "obama.jpg")
        for found in gallery.identify("crowd.jpg"):
            print(found.identity or "unknown", found.score)

Identification is open-set: a face whose best match scores below the threshold is reported as
unknown, never forced onto the nearest person.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from faceshot.bulk import represent_files
from faceshot.engine import Engine
from faceshot.errors import ConfigError, FaceshotError, MultipleFacesError, NoFaceError, NotFound
from faceshot.gallery.exchange import read_export, write_export
from faceshot.gallery.local import LocalStore
from faceshot.gallery.ranking import Aggregation, check_aggregation, rank_max, rank_mean
from faceshot.gallery.results import (
    CheckReport,
    DirProgress,
    DirSummary,
    EnrolledFace,
    EnrollResult,
    ExportSummary,
    GroupSummary,
    Identification,
    ImportSummary,
    PersonDetails,
    PersonSummary,
    Rejected,
    Skipped,
)
from faceshot.gallery.settings import GallerySettings
from faceshot.gallery.store import NewFace, Store
from faceshot.io import ImageInput, describe
from faceshot.match import OperatingPoint
from faceshot.quality import DEFAULT_LIMITS, Quality, QualityLimits, assess, require
from faceshot.results import Face
from faceshot.spec import open_engine, record_engine

__all__ = ["Gallery", "FoundFace", "DEFAULT_PATH", "ENVIRONMENT_VARIABLE"]

log = logging.getLogger(__name__)

DEFAULT_PATH = "faceshot.db"
#: Identification's default operating point: at most 1% of strangers are named as someone.
DEFAULT_FPIR = 0.01
ENVIRONMENT_VARIABLE = "FACESHOT_DB"
#: The most neighbours one search asks for; beyond it, people with many faces may hide others.
MAX_NEIGHBOURS = 4096
#: Faces written per transaction by ``enroll_dir``: what a crash can lose and a rerun redoes.
DIR_BATCH = 64
THUMBNAIL_QUALITY = 85


@dataclass(frozen=True, eq=False)
class FoundFace:
    """A face found earlier (by clustering, say), to enroll without detecting it again.

    ``image``: the loaded photo (RGB array); ``face``: its box and landmarks in that photo;
    ``embedding``: its vector from this gallery's embedder, or ``None`` to compute it;
    ``source``/``sha256``: the photo's name and the hash of its bytes, as :meth:`Gallery.enroll` records them.
    """

    image: np.ndarray
    face: Face
    embedding: np.ndarray | None
    source: str
    sha256: str


class Gallery:
    """Enrolled people and their face vectors, kept in a database file, searchable by photo.

    ``path``: the gallery file (created if missing); by default ``$FACESHOT_DB`` or ``./faceshot.db``.
    Beside it, ``<path>.faiss`` holds the search index, rebuilt automatically when lost or damaged.
    ``engine``: the detector/embedder to use; by default an engine with the embedder the gallery was
    made with. A gallery never mixes embedders: opening one with an engine of another embedder
    raises :class:`~faceshot.errors.EmbedderMismatchError`.
    ``quality``: the limits of the enrollment gate (:mod:`faceshot.quality`).
    ``aggregation``: how a person's several faces are scored, ``"mean"`` (their mean template,
    renormalised) or ``"max"`` (their best face); by default the gallery's setting, else ``"mean"``,
    which named more of the right people at the same FPIR on LFW (BENCHMARKS.md).
    ``store``: another :class:`~faceshot.gallery.store.Store` backend instead of the local file.
    Several processes may open the same gallery at once; each sees the others' writes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        engine: Engine | None = None,
        *,
        index: str = "flat",
        quality: QualityLimits = DEFAULT_LIMITS,
        aggregation: Aggregation | None = None,
        store: Store | None = None,
    ) -> None:
        if path is None:
            path = os.environ.get(ENVIRONMENT_VARIABLE) or DEFAULT_PATH
        self.path = Path(path)
        # The engine given, else the one resolved from the environment and the gallery's own settings
        # (its vector space pinned); one function for galleries, collections and the command line.
        self.engine = engine = open_engine(self.path if store is None else store, engine=engine)
        embedder = engine.embedder
        # A gallery records the vector space, not the program that computed it: dlib-resnet and
        # dlib-resnet-onnx give the same vectors and may share a gallery.
        self.store: Store = store or LocalStore(self.path, embedder=embedder.space, dim=embedder.dim, index=index)
        record_engine(self.store, engine)
        self.quality = quality
        self.settings = GallerySettings(self.store)
        self._aggregation = None if aggregation is None else check_aggregation(aggregation)

    def __repr__(self) -> str:
        return f"Gallery({str(self.path)!r}, embedder={self.store.embedder!r})"

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the database; the gallery object cannot be used afterwards."""
        self.store.close()

    @property
    def aggregation(self) -> Aggregation:
        """The aggregation rule in force: the one given when opening, else the gallery's setting, else max."""
        return self._aggregation or self.settings.aggregation or "mean"

    # -- enrollment -------------------------------------------------------------------------
    def enroll(
        self,
        name: str,
        images: ImageInput | Sequence[ImageInput],
        *,
        groups: Iterable[str] = (),
        metadata: dict[str, Any] | None = None,
        force: bool = False,
        keep_thumbnail: bool = False,
    ) -> EnrollResult:
        """Enroll ``name`` from one photo or several (added to them if already enrolled).

        Each photo must show exactly one face that passes the quality gate (big enough, sharp,
        roughly frontal); photos that do not are listed in ``rejected`` with the reason, and the
        others are still enrolled. ``force=True`` takes the largest face of a group photo and
        skips the quality gate. A photo already enrolled for this person (same file content) is
        listed in ``skipped`` and not added twice. ``groups``: tags the person joins (for
        ``identify(group=...)``); ``metadata``: JSON values merged into the person's.
        ``keep_thumbnail``: also keep a small JPEG of each face (by default no image is stored).
        The faces are stored in one transaction: when this returns they are durable.
        """
        return self._enroll(name, images, create=True, groups=groups, metadata=metadata, force=force,
                            keep_thumbnail=keep_thumbnail)

    def add_faces(
        self,
        name: str,
        images: ImageInput | Sequence[ImageInput],
        *,
        force: bool = False,
        keep_thumbnail: bool = False,
    ) -> EnrollResult:
        """Like :meth:`enroll`, for someone already enrolled (:class:`NotFound` otherwise)."""
        if not self.store.has_person(name):
            raise NotFound(f"no person named {name!r} in the gallery; enroll them first")
        return self._enroll(name, images, create=False, force=force, keep_thumbnail=keep_thumbnail)

    def _enroll(
        self,
        name: str,
        images: ImageInput | Sequence[ImageInput],
        *,
        create: bool,
        groups: Iterable[str] = (),
        metadata: dict[str, Any] | None = None,
        force: bool,
        keep_thumbnail: bool,
    ) -> EnrollResult:
        groups = tuple(groups)
        existed = self.store.has_person(name)
        sources = _as_list(images)
        rejected: list[Rejected] = []
        digests: list[tuple[str, str, ImageInput]] = []
        for source in sources:
            label = describe(source)
            try:
                digest, data = self._digest(source)
            except FaceshotError as exc:
                rejected.append(Rejected(label, type(exc).__name__, str(exc)))
                continue
            digests.append((label, digest, data))
        known = self.store.known_files(name, [digest for _, digest, _ in digests])
        skipped = [Skipped(label, known[digest]) for label, digest, _ in digests if digest in known]
        pending: list[tuple[NewFace, Face, Quality]] = []
        for label, digest, data in digests:
            if digest in known:
                continue
            try:
                pending.append(self._prepare(self.engine.load(data), label, digest, force, keep_thumbnail))
            except FaceshotError as exc:
                rejected.append(Rejected(label, type(exc).__name__, str(exc)))
        if not pending and not (existed and (groups or metadata)):
            return EnrollResult(name, False, (), tuple(skipped), tuple(rejected))
        outcomes = self.store.add_faces(
            name, [face for face, _, _ in pending], create=create, metadata=metadata, groups=groups
        )
        added = []
        for (face, found, quality), outcome in zip(pending, outcomes):
            source = face.source or ""
            if outcome.new:
                added.append(EnrolledFace(outcome.face_id, source, face.sha256 or "", found.box, quality))
            else:  # the same file given twice, or enrolled by another process meanwhile
                skipped.append(Skipped(source, outcome.face_id))
        if added:
            log.info("enrolled %d face(s) of %r", len(added), name)
        return EnrollResult(name, create and not existed, tuple(added), tuple(skipped), tuple(rejected))

    def enroll_found(
        self, name: str, found: Sequence[FoundFace], *, force: bool = False, keep_thumbnail: bool = False
    ) -> EnrollResult:
        """Enroll ``name`` (created if new) from faces already found, such as a named cluster's.

        Each face passes the quality gate as in :meth:`enroll` (``force=True`` skips it); refused
        faces are listed in ``rejected``, a photo already enrolled for this person in ``skipped``.
        One transaction: when this returns the faces are durable.
        """
        existed = self.store.has_person(name)
        rejected: list[Rejected] = []
        pending: list[tuple[NewFace, Face, Quality]] = []
        for item in found:
            try:
                pending.append(self._gate(item.image, item.face, item.embedding, item.source, item.sha256,
                                          force, keep_thumbnail))
            except FaceshotError as exc:
                rejected.append(Rejected(item.source, type(exc).__name__, str(exc)))
        if not pending:
            return EnrollResult(name, False, (), (), tuple(rejected))
        outcomes = self.store.add_faces(name, [face for face, _, _ in pending], create=True)
        added, skipped = [], []
        for (face, detected, quality), outcome in zip(pending, outcomes):
            if outcome.new:
                added.append(EnrolledFace(outcome.face_id, face.source or "", face.sha256 or "", detected.box, quality))
            else:  # a second face of one photo, or a photo enrolled for this person before
                skipped.append(Skipped(face.source or "", outcome.face_id))
        log.info("enrolled %d found face(s) of %r", len(added), name)
        return EnrollResult(name, not existed, tuple(added), tuple(skipped), tuple(rejected))

    def _digest(self, source: ImageInput) -> tuple[str, ImageInput]:
        """The SHA-256 that identifies a photo, and the input to load it from (a stream is read once)."""
        if isinstance(source, (str, os.PathLike)):
            try:
                data = Path(source).read_bytes()
            except OSError:
                self.engine.load(source)  # raises the ImageError that says what is wrong
                raise
            return hashlib.sha256(data).hexdigest(), source
        if isinstance(source, (bytes, bytearray, memoryview)):
            return hashlib.sha256(bytes(source)).hexdigest(), source
        if isinstance(source, np.ndarray):
            array = np.ascontiguousarray(source)
            header = f"{array.shape}{array.dtype}".encode()
            return hashlib.sha256(header + array.tobytes()).hexdigest(), array
        if isinstance(source, Image.Image):
            header = f"{source.size}{source.mode}".encode()
            return hashlib.sha256(header + source.tobytes()).hexdigest(), source
        if hasattr(source, "read"):
            data = source.read()
            if isinstance(data, bytes):
                return hashlib.sha256(data).hexdigest(), data
        return "", self.engine.load(source)  # raises: not something faceshot can read

    def _prepare(
        self, image: np.ndarray, label: str, digest: str, force: bool, keep_thumbnail: bool
    ) -> tuple[NewFace, Face, Quality]:
        """Detect, gate and embed the one face of a photo."""
        faces = self.engine.detector.detect(image)
        if not faces:
            raise NoFaceError(
                f"{label}: no face found; use a photo where the face is at least about "
                f"{self.quality.min_width} pixels wide and roughly frontal"
            )
        if len(faces) > 1 and not force:
            raise _several_faces(label, len(faces))
        # Detectors return the largest face first.
        chips = self.engine.aligner.align(image, faces[:1])
        return self._gate(chips, faces[0], None, label, digest, force, keep_thumbnail)

    def _gate(
        self,
        chips: np.ndarray,
        face: Face,
        vector: np.ndarray | None,
        label: str,
        digest: str,
        force: bool,
        keep_thumbnail: bool,
    ) -> tuple[NewFace, Face, Quality]:
        """Measure the face against the quality gate, embed it unless ``vector`` is given, package it.

        ``chips``: the face's aligned chip, shape ``(1, size, size, 3)``.
        """
        quality = assess(face, chips[0], self.quality)
        if not force:
            require(quality, label)
        if vector is None:
            vector = self.engine.embedder.embed(chips)[0]
        new = NewFace(
            embedding=vector,
            sha256=digest,
            source=label,
            box=face.box,
            quality=quality.to_dict(),
            thumbnail=_jpeg(chips[0]) if keep_thumbnail else None,
        )
        return new, face, quality

    def enroll_dir(
        self,
        root: str | os.PathLike[str],
        *,
        groups: Iterable[str] = (),
        force: bool = False,
        keep_thumbnail: bool = False,
        workers: int | None = None,
        progress: Callable[[DirProgress], None] | None = None,
    ) -> DirSummary:
        """Enroll a folder holding one sub-folder per person (the folder name is the person's name).

        Photos already enrolled for that person (same file content) are skipped before any work,
        so an interrupted run can simply be started again. A bad photo is reported in ``failed``
        and does not stop the run. Detection and embedding run in ``workers`` processes (default:
        one per core). Faces are committed in batches of up to 64: an interruption loses at most
        the batch in hand. ``progress`` is called after each photo.
        """
        folder = Path(root)
        if not folder.is_dir():
            raise NotFound(f"{folder}: no such folder")
        groups = tuple(groups)
        failed: list[Rejected] = []
        plan: list[tuple[str, Path]] = []
        for entry in sorted(folder.iterdir()):
            if entry.name.startswith("."):
                continue
            if not entry.is_dir():
                failed.append(Rejected(str(entry), "GalleryError", f"{entry}: not in a person's folder; skipped"))
                continue
            for photo in sorted(entry.iterdir()):
                if photo.is_file() and not photo.name.startswith("."):
                    plan.append((entry.name, photo))
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

        # Skip what is already enrolled before any detection: this is what makes reruns cheap.
        todo: list[tuple[str, Path, str]] = []
        by_person: dict[str, list[tuple[Path, str]]] = {}
        for person, photo in plan:
            try:
                digest = hashlib.sha256(photo.read_bytes()).hexdigest()
            except OSError as exc:
                rejection = Rejected(str(photo), "ImageNotFoundError", f"{photo}: cannot be read ({exc.strerror})")
                tally(person)["rejected"].append(rejection)
                failed.append(rejection)
                report(person, str(photo), "failed")
                continue
            by_person.setdefault(person, []).append((photo, digest))
        for person, photos in by_person.items():
            known = self.store.known_files(person, [digest for _, digest in photos])
            for photo, digest in photos:
                if digest in known:
                    tally(person)["skipped"].append(Skipped(str(photo), known[digest]))
                    report(person, str(photo), "skipped")
                else:
                    # Two copies of one file in a folder are both embedded; the store keeps one.
                    todo.append((person, photo, digest))

        batch: list[tuple[NewFace, Face, Quality]] = []
        batch_person: str | None = None

        def flush() -> None:
            nonlocal batch
            if batch_person is None or not batch:
                return
            outcomes = self.store.add_faces(batch_person, [item[0] for item in batch], create=True, groups=groups)
            for (face, found, quality), outcome in zip(batch, outcomes):
                if outcome.new:
                    tally(batch_person)["added"].append(
                        EnrolledFace(outcome.face_id, face.source or "", face.sha256 or "", found.box, quality)
                    )
                else:
                    tally(batch_person)["skipped"].append(Skipped(face.source or "", outcome.face_id))
            batch = []

        results = represent_files(
            [photo for _, photo, _ in todo],
            engine=self.engine,
            one_face="largest",
            workers=workers,
            keep_chips=True,
        )
        for (person, photo, digest), result in zip(todo, results):
            if person != batch_person:
                flush()
                batch_person = person
            label = str(photo)
            try:
                if result.error is not None:
                    raise result.error
                found = result.faces[0].face
                if result.found > 1 and not force:
                    raise _several_faces(label, result.found)
                item = self._gate(result.chips, found, result.faces[0].embedding, label, digest,
                                  force, keep_thumbnail)
            except FaceshotError as exc:
                rejection = Rejected(label, type(exc).__name__, str(exc))
                tally(person)["rejected"].append(rejection)
                failed.append(rejection)
                report(person, label, "failed")
                continue
            batch.append(item)
            if len(batch) >= DIR_BATCH:
                flush()
            report(person, label, "enrolled")
        flush()

        people = tuple(
            EnrollResult(person, False, tuple(t["added"]), tuple(t["skipped"]), tuple(t["rejected"]))
            for person, t in sorted(per_person.items())
        )
        enrolled = sum(len(result.added) for result in people)
        skipped = sum(len(result.skipped) for result in people)
        log.info("%s: %d face(s) enrolled, %d skipped, %d failed", folder, enrolled, skipped, len(failed))
        return DirSummary(enrolled, skipped, tuple(failed), people)

    # -- identification ---------------------------------------------------------------------
    def identify(
        self,
        image: ImageInput,
        *,
        top_k: int = 5,
        threshold: float | None = None,
        far: float | None = None,
        group: str | None = None,
        aggregation: Aggregation | None = None,
        fpir: float | None = None,
    ) -> list[Identification]:
        """Who is in this photo? One :class:`Identification` per face, largest face first.

        A face is named after the best-scoring enrolled person if that score reaches the
        threshold, and is unknown otherwise. How sure that must be, first given first used:
        ``threshold`` (a score); ``far`` (a per-comparison false-accept rate, e.g. ``1e-3``);
        ``fpir`` (the share of strangers who may be named, e.g. ``0.01``); the gallery's
        ``settings.threshold`` (saved by ``faceshot calibrate --db``); else FPIR 1%. A stranger is
        compared with every face searched, so an FPIR threshold rises with the faces searched (the
        whole gallery, or the group): see :meth:`operating_point`. ``top_k``: how many
        candidate people to list per face. ``group``: compare only with members of this group.
        ``aggregation``: see :class:`Gallery`.
        """
        if top_k < 1:
            raise ValueError("top_k must be at least 1")
        how = check_aggregation(aggregation) if aggregation is not None else self.aggregation
        faces_in_scope, most, _ = self.store.scope(group)  # an unknown group fails here, before any work
        point = self.operating_point(threshold, far, fpir=fpir, faces=faces_in_scope)
        loaded = self.engine.load(image)
        faces = self.engine.detector.detect(loaded)
        if not faces:
            return []
        vectors = self.engine.embed_faces(loaded, faces)
        if faces_in_scope == 0:
            return [Identification(face, None, None, point.threshold, ()) for face in faces]
        # Enough neighbours that top_k people survive even if each has the most faces anyone has.
        k = min(faces_in_scope, max(top_k, top_k * most), MAX_NEIGHBOURS)
        hits = self.store.search(vectors, k, group=group)
        found = []
        for face, vector, face_hits in zip(faces, vectors, hits):
            if how == "max":
                ranking = rank_max(face_hits)
            else:
                ranking = rank_mean(vector, face_hits, self.store.embeddings)
            candidates = tuple((name, score) for name, score in ranking[:top_k])
            best = candidates[0] if candidates else None
            identity = best[0] if best is not None and best[1] >= point.threshold else None
            found.append(
                Identification(face, identity, None if best is None else best[1], point.threshold, candidates)
            )
        return found

    def operating_point(
        self,
        threshold: float | None = None,
        far: float | None = None,
        *,
        fpir: float | None = None,
        faces: int | None = None,
    ) -> OperatingPoint:
        """The identification threshold: the one given, the one for ``far``, for ``fpir``, the gallery's, or FPIR 1%.

        For a false-positive identification rate, a stranger is compared with ``faces`` enrolled
        faces, so each comparison may falsely accept with probability ``1 - (1 - fpir)^(1/faces)``
        (about ``fpir / faces``): the threshold is the embedder's 1:1 calibration at that rate.
        On LFW (BENCHMARKS.md) this predicted the measured FPIR-1% thresholds within 0.0021 for
        one-shot galleries of 10 to 1,680 people; with mean templates of several faces per person,
        counting faces (not people) kept the measured FPIR at 1.1–1.35%. ``faces`` defaults to
        every face in the gallery (``identify`` passes those of the group it searches).
        """
        if threshold is not None or far is not None:
            if fpir is not None:
                raise ConfigError("give one of threshold, far and fpir")
            return self.engine.operating_point(threshold, far)
        if fpir is None:
            stored = self.settings.threshold
            if stored is not None:
                return self.engine.operating_point(stored)
            fpir = DEFAULT_FPIR
        if not 0.0 < fpir < 1.0:
            raise ConfigError(f"a false-positive identification rate is a fraction between 0 and 1, got {fpir}")
        if faces is None:
            faces = self.store.scope(None)[0]
        calibration = self.engine.embedder.calibration
        if calibration is None:
            raise ConfigError(f"embedder {self.engine.embedder.name!r} has no calibration; pass a threshold")
        per_comparison = -math.expm1(math.log1p(-fpir) / max(faces, 1))  # 1 - (1 - fpir)^(1/faces)
        lowest = calibration.far_table[-1][1]
        if per_comparison < lowest:
            log.warning(
                "FPIR %g over %d faces needs a false-accept rate of %.2g, below what the calibration measured "
                "(%.2g); using its strictest threshold", fpir, faces, per_comparison, lowest,
            )
            per_comparison = lowest
        return OperatingPoint(calibration.threshold_for(per_comparison), per_comparison)

    # -- people and groups ------------------------------------------------------------------
    def people(self) -> list[PersonSummary]:
        """Everyone enrolled, by name, with their face count and groups."""
        return self.store.people()

    def person(self, name: str) -> PersonDetails:
        """One person's metadata, groups and faces (no embeddings); :class:`NotFound` if unknown."""
        return self.store.person(name)

    def groups(self) -> list[GroupSummary]:
        """Every group with its members."""
        return self.store.groups()

    def rename(self, old: str, new: str) -> None:
        """Rename a person (their faces and groups follow). Refused if ``new`` is taken: use :meth:`merge`."""
        self.store.rename_person(old, new)

    def remove_face(self, face_id: int) -> str:
        """Remove one enrolled face (from the database and the index); returns whose it was."""
        return self.store.remove_face(face_id)

    def merge(self, source: str, target: str) -> int:
        """Move every face and group of ``source`` to ``target``, then delete ``source``.

        A photo enrolled for both is kept once. Returns how many faces moved.
        """
        return self.store.merge_people(source, target)

    def delete(self, name: str) -> int:
        """Delete a person and every vector of theirs, from the database and the index; returns faces removed."""
        removed = self.store.delete_person(name)
        log.info("deleted %r and %d face(s)", name, removed)
        return removed

    def add_to_group(self, name: str, group: str) -> None:
        """Put a person in a group (created on first use)."""
        self.store.add_to_group(name, group)

    def remove_from_group(self, name: str, group: str) -> bool:
        """Take a person out of a group; False if they were not in it. A group left empty disappears."""
        return self.store.remove_from_group(name, group)

    def thumbnail(self, face_id: int) -> bytes | None:
        """The JPEG kept for a face enrolled with ``keep_thumbnail=True``, else ``None``."""
        return self.store.thumbnail(face_id)

    # -- exchange and upkeep ----------------------------------------------------------------
    def export(self, path: str | os.PathLike[str]) -> ExportSummary:
        """Write every person, face vector and group to a JSON Lines file (see :mod:`faceshot.gallery.exchange`)."""
        people, faces = write_export(
            path, self.store.export_people(), embedder=self.store.embedder, dim=self.store.dim
        )
        return ExportSummary(os.fspath(path), people, faces)

    def import_(self, path: str | os.PathLike[str]) -> ImportSummary:
        """Add the people of an export file; people already here get the faces they lack.

        The whole file is checked first and imported in one transaction: all of it or nothing.
        """
        records = read_export(path, embedder=self.store.embedder, dim=self.store.dim)
        return self.store.import_people(records)

    def check(self) -> CheckReport:
        """Compare the database with the saved index, changing nothing."""
        return self.store.check()

    def rebuild(self) -> CheckReport:
        """Rebuild the search index from the database, and report."""
        return self.store.rebuild()


def _several_faces(label: str, count: int) -> MultipleFacesError:
    return MultipleFacesError(
        f"{label}: {count} faces found where one was required; crop the photo, "
        f"or pass force=True to enroll the largest"
    )


def _as_list(images: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    if isinstance(images, (list, tuple)):
        return list(images)
    return [images]  # type: ignore[list-item]


def _jpeg(chip: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(chip).save(buffer, format="JPEG", quality=THUMBNAIL_QUALITY)
    return buffer.getvalue()
