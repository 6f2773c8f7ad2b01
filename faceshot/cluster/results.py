"""What clustering returns: frozen dataclasses with ``to_dict()`` for JSON. Lists are always tuples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faceshot.gallery.results import EnrollResult, Rejected
from faceshot.results import Face

__all__ = ["ClusteredFace", "Cluster", "Clustering", "Naming"]


@dataclass(frozen=True)
class ClusteredFace:
    """One face of the collection: which photo, where in it, and its cluster (``None``: unclustered).

    ``id`` is stable: the same face keeps it across runs of a saved collection, and it is what
    ``split`` takes.
    """

    id: int
    source: str
    face: Face
    cluster: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "image": self.source, "box": self.face.box.to_dict(),
                "score": round(self.face.score, 4), "cluster": self.cluster}


@dataclass(frozen=True)
class Cluster:
    """A group of faces taken to be one person, largest clusters first; ``name`` once named."""

    id: int
    name: str | None
    faces: tuple[ClusteredFace, ...]

    @property
    def size(self) -> int:
        return len(self.faces)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "size": self.size, "faces": [f.to_dict() for f in self.faces]}


@dataclass(frozen=True)
class Clustering:
    """The collection after a run: its clusters and unclustered faces, and what this run did.

    ``photos``: files looked at in this run; ``skipped``: of those, files seen by an earlier run
    (same bytes), not embedded again; ``no_face``: files in which no face was found; ``failed``:
    files that could not be read, with the reason. ``added``: faces found in this run, of which
    ``joined`` went into clusters that already existed. ``threshold``/``algorithm``/``min_size``:
    the settings used (``threshold`` is ``None`` for a collection never clustered whose embedder
    has no calibration).
    """

    clusters: tuple[Cluster, ...]
    unclustered: tuple[ClusteredFace, ...]
    photos: int
    skipped: int
    no_face: tuple[str, ...]
    failed: tuple[Rejected, ...]
    added: int
    joined: int
    algorithm: str
    threshold: float | None
    min_size: int

    @property
    def faces(self) -> int:
        return sum(c.size for c in self.clusters) + len(self.unclustered)

    def to_dict(self) -> dict[str, Any]:
        return {
            "clusters": [c.to_dict() for c in self.clusters],
            "unclustered": [f.to_dict() for f in self.unclustered],
            "photos": self.photos,
            "skipped": self.skipped,
            "no_face": list(self.no_face),
            "failed": [f.to_dict() for f in self.failed],
            "added": self.added,
            "joined": self.joined,
            "algorithm": self.algorithm,
            "threshold": None if self.threshold is None else round(self.threshold, 6),
            "min_size": self.min_size,
        }


@dataclass(frozen=True)
class Naming:
    """The outcome of naming a cluster: the gallery's enrollment result for its faces."""

    cluster: int
    enrollment: EnrollResult

    def to_dict(self) -> dict[str, Any]:
        return {"cluster": self.cluster, **self.enrollment.to_dict()}
