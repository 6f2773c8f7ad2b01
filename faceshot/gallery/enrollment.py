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
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image

from faceshot.choice import choose_face, several_faces, turned_face
from faceshot.engine import Engine
from faceshot.errors import ConflictError
from faceshot.gallery.names import name_key
from faceshot.gallery.results import EnrolledFace, Skipped
from faceshot.gallery.store import NewFace, Store
from faceshot.io import ImageInput, read_bytes
from faceshot.quality import Quality, QualityLimits, assess, require
from faceshot.results import Face

__all__ = ["Candidate", "Admitted", "Enrollment", "FORCE_HINT", "THUMBNAIL_QUALITY"]

log = logging.getLogger(__name__)

THUMBNAIL_QUALITY = 85
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


def _jpeg(chip: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(chip).save(buffer, format="JPEG", quality=THUMBNAIL_QUALITY)
    return buffer.getvalue()
