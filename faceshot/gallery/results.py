"""What the gallery returns: frozen dataclasses with ``to_dict()`` for JSON. Lists are always tuples."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from faceshot.errors import FaceshotError
from faceshot.quality import Quality
from faceshot.results import Box, Face
from faceshot.walk import SkippedFile

__all__ = [
    "FaceInfo",
    "PersonSummary",
    "PersonDetails",
    "GroupSummary",
    "EnrolledFace",
    "Skipped",
    "Rejected",
    "EnrollResult",
    "DirProgress",
    "DirSummary",
    "Identification",
    "ImportSummary",
    "ExportSummary",
    "CheckReport",
]


def _box(box: Box | None) -> dict[str, int] | None:
    return None if box is None else box.to_dict()


@dataclass(frozen=True)
class FaceInfo:
    """One enrolled face, without its embedding.

    ``source`` is the name of the photo it came from as given at enrollment (photos themselves are
    not kept); ``sha256`` the hash of that file's bytes; ``thumbnail`` whether a small JPEG of the
    face was kept (``keep_thumbnail=True``).
    """

    id: int
    person: str
    source: str | None
    sha256: str | None
    box: Box | None
    quality: Quality | None
    embedder: str
    created: str
    thumbnail: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "person": self.person,
            "source": self.source,
            "sha256": self.sha256,
            "box": _box(self.box),
            "quality": None if self.quality is None else self.quality.to_dict(),
            "embedder": self.embedder,
            "created": self.created,
            "thumbnail": self.thumbnail,
        }


@dataclass(frozen=True)
class PersonSummary:
    """One enrolled person: how many faces, in which groups."""

    name: str
    faces: int
    groups: tuple[str, ...]
    created: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "faces": self.faces, "groups": list(self.groups), "created": self.created}


@dataclass(frozen=True)
class PersonDetails:
    """One enrolled person with their metadata and every face (embeddings left out)."""

    name: str
    metadata: dict[str, Any]
    groups: tuple[str, ...]
    created: str
    faces: tuple[FaceInfo, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metadata": dict(self.metadata),
            "groups": list(self.groups),
            "created": self.created,
            "faces": [face.to_dict() for face in self.faces],
        }


@dataclass(frozen=True)
class GroupSummary:
    """A group (tag) and its members, by name."""

    name: str
    people: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "people": list(self.people)}


@dataclass(frozen=True)
class EnrolledFace:
    """A face that was added: its id in the gallery, the photo and the figures of the quality gate.

    ``box`` and ``quality`` are ``None`` for a vector added as it is
    (:meth:`~faceshot.gallery.Gallery.add_embeddings`): no photo was looked at.
    """

    id: int
    source: str
    sha256: str
    box: Box | None
    quality: Quality | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "sha256": self.sha256,
            "box": _box(self.box),
            "quality": None if self.quality is None else self.quality.to_dict(),
        }


@dataclass(frozen=True)
class Skipped:
    """A photo not added because the same file is already enrolled for this person (face ``id``)."""

    source: str
    id: int
    reason: str = "already enrolled"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "id": self.id, "reason": self.reason}


@dataclass(frozen=True)
class Rejected:
    """A photo that could not be enrolled. ``error`` is the faceshot error class name, ``reason`` its message."""

    source: str
    error: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "error": self.error, "reason": self.reason}


@dataclass(frozen=True)
class EnrollResult:
    """What enrolling photos of one person did. ``created``: the person was new to the gallery."""

    person: str
    created: bool
    added: tuple[EnrolledFace, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    rejected: tuple[Rejected, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no photo was rejected."""
        return not self.rejected

    def to_dict(self) -> dict[str, Any]:
        return {
            "person": self.person,
            "created": self.created,
            "added": [face.to_dict() for face in self.added],
            "skipped": [skip.to_dict() for skip in self.skipped],
            "rejected": [reject.to_dict() for reject in self.rejected],
        }


@dataclass(frozen=True)
class DirProgress:
    """Passed to the progress callback of ``enroll_dir`` after each file: ``done`` of ``total``."""

    done: int
    total: int
    person: str
    source: str
    outcome: str  # "enrolled", "skipped" or "failed"


@dataclass(frozen=True)
class DirSummary:
    """What ``enroll_dir`` did: counts, each failure with its reason, and each person's result.

    ``skipped`` counts photos already enrolled; ``left_out`` lists files that are not photos of a
    person (not an image file, or not in a person's folder), which are not failures.
    """

    enrolled: int
    skipped: int
    failed: tuple[Rejected, ...]
    people: tuple[EnrollResult, ...]
    left_out: tuple[SkippedFile, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "enrolled": self.enrolled,
            "skipped": self.skipped,
            "failed": [failure.to_dict() for failure in self.failed],
            "left_out": [item.to_dict() for item in self.left_out],
            "people": [person.to_dict() for person in self.people],
        }


@dataclass(frozen=True)
class PersonVerification:
    """Is the face in a photo this enrolled person? (:meth:`~faceshot.gallery.Gallery.verify_person`)

    ``score``: cosine similarity of the photo's face with the person (their mean template or best
    face, by the gallery's aggregation); ``same`` is ``score >= threshold``. ``threshold``/``far``/
    ``clamped``: the 1:1 operating point, as in :class:`~faceshot.results.Verification`.
    ``face``: the face compared; ``faces_in_photo``: how many were found.
    """

    person: str
    same: bool
    score: float
    threshold: float
    far: float | None
    face: Face
    faces_in_photo: int
    clamped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "person": self.person,
            "same": self.same,
            "score": round(self.score, 6),
            "threshold": round(self.threshold, 6),
            "far": self.far,
            "clamped": self.clamped,
            "box": self.face.box.to_dict(),
            "faces_in_photo": self.faces_in_photo,
        }


@dataclass(frozen=True)
class Identification:
    """Who one face in a photo is.

    ``face``: where it is in the photo (``None`` when a vector was identified,
    :meth:`~faceshot.gallery.Gallery.identify_embeddings`). ``identity`` is the best-scoring
    enrolled person when their score reaches ``threshold``, else ``None`` (unknown:
    identification never has to pick someone). ``score`` is that best person's score, a cosine
    similarity (``None`` when there was nobody to compare with). ``candidates`` are
    ``(name, score)`` pairs, best first, one per person, whether or not they reach the threshold.

    The operating point used: ``threshold`` (always a number); ``far``, the per-comparison
    false-accept rate it stands for on the calibration set (``None``: not measured there);
    ``fpir``, the share of strangers it lets be named when it was chosen for one (else ``None``);
    ``clamped``, True when the asked rate lies beyond what the calibration measured, so its
    strictest measured threshold was used instead.
    """

    face: Face | None
    identity: str | None
    score: float | None
    threshold: float
    candidates: tuple[tuple[str, float], ...] = field(default=())
    far: float | None = None
    fpir: float | None = None
    clamped: bool = False

    @property
    def known(self) -> bool:
        return self.identity is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": None if self.face is None else self.face.box.to_dict(),
            "identity": self.identity,
            "score": None if self.score is None else round(self.score, 6),
            "threshold": round(self.threshold, 6),
            "far": self.far,
            "fpir": self.fpir,
            "clamped": self.clamped,
            "candidates": [{"name": name, "score": round(score, 6)} for name, score in self.candidates],
        }


@dataclass(frozen=True)
class FileIdentification:
    """Who is in one photo file (:meth:`~faceshot.gallery.Gallery.identify_files`): one
    :class:`Identification` per face, largest first (none when no face was found), or why the file
    could not be used (``error`` is then set)."""

    path: str
    found: list[Identification] = field(default_factory=list)
    error: FaceshotError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ImportSummary:
    """What ``import_`` did: people created or added to, faces added, faces skipped as already present."""

    people: int
    created: int
    faces: int
    skipped: int

    def to_dict(self) -> dict[str, Any]:
        return {"people": self.people, "created": self.created, "faces": self.faces, "skipped": self.skipped}


@dataclass(frozen=True)
class ExportSummary:
    """What ``export`` wrote: the file and how many people and faces it holds."""

    path: str
    people: int
    faces: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "people": self.people, "faces": self.faces}


@dataclass(frozen=True)
class CheckReport:
    """The state of a gallery's database and its derived index.

    ``index_file`` is ``"ok"``, ``"missing"``, ``"stale"`` (made at another generation) or
    ``"corrupt: ..."``; ``problems`` lists every inconsistency found (empty when ``ok``).
    """

    people: int
    faces: int
    indexed: int
    generation: int
    index_generation: int | None
    index_file: str
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "people": self.people,
            "faces": self.faces,
            "indexed": self.indexed,
            "generation": self.generation,
            "index_generation": self.index_generation,
            "index_file": self.index_file,
            "problems": list(self.problems),
        }
