"""Export and import of a gallery: one JSON Lines file, UTF-8, no photos.

Line 1 is a header; every further line is one person::

    {"format": "faceshot-gallery", "version": 1, "embedder": "dlib-resnet", "dim": 128,
     "people": 2, "faces": 3, "exported": "2026-01-01T12:00:00+00:00"}
    {"name": "Barack Obama", "metadata": {...}, "groups": ["friends"], "created": "...",
     "faces": [{"embedding": "<base64 of dim float32 little-endian>", "sha256": "...",
                "source": "obama.jpg", "box": {"left": .., "top": .., "right": .., "bottom": ..},
                "quality": {"width": .., "sharpness": .., "yaw": .., ...}, "created": "..."}]}

Only a gallery of the same embedder and dimension can import a file; vectors are checked to be
finite and are renormalised to unit length on the way in. Thumbnails are never exported.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

import numpy as np

from faceshot.errors import EmbedderMismatchError, GalleryError
from faceshot.gallery.database import now, to_blob
from faceshot.gallery.store import NewFace, PersonRecord
from faceshot.results import Box

__all__ = ["FORMAT", "VERSION", "write_export", "read_export"]

FORMAT = "faceshot-gallery"
VERSION = 1


def write_export(
    path: str | os.PathLike[str], records: Iterable[PersonRecord], *, embedder: str, dim: int
) -> tuple[int, int]:
    """Write ``records`` to ``path`` (replaced atomically); returns ``(people, faces)`` written."""
    records = list(records)
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    faces = sum(len(record.faces) for record in records)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "embedder": embedder,
        "dim": dim,
        "people": len(records),
        "faces": faces,
        "exported": now(),
    }
    try:
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(json.dumps(header) + "\n")
            for record in records:
                file.write(json.dumps(_person_line(record), ensure_ascii=False) + "\n")
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise GalleryError(f"{target}: cannot write the export ({exc.strerror or exc})") from None
    return len(records), faces


def _person_line(record: PersonRecord) -> dict[str, Any]:
    return {
        "name": record.name,
        "metadata": record.metadata,
        "groups": list(record.groups),
        "created": record.created,
        "faces": [
            {
                "embedding": base64.b64encode(to_blob(face.embedding)).decode("ascii"),
                "sha256": face.sha256,
                "source": face.source,
                "box": None if face.box is None else face.box.to_dict(),
                "quality": face.quality,
                "created": face.created,
            }
            for face in record.faces
        ],
    }


def read_export(path: str | os.PathLike[str], *, embedder: str, dim: int) -> list[PersonRecord]:
    """Read and validate a whole export file before anything is imported (so a bad line imports nothing)."""
    source = Path(path)
    try:
        with open(source, encoding="utf-8") as file:
            return list(_records(file, str(source), embedder, dim))
    except FileNotFoundError:
        raise GalleryError(f"{source}: no such export file") from None
    except UnicodeDecodeError:
        raise GalleryError(f"{source}: not a faceshot export (not UTF-8 text)") from None


def _records(file: IO[str], name: str, embedder: str, dim: int) -> Iterator[PersonRecord]:
    first = file.readline()
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise GalleryError(f"{name}: not a faceshot gallery export (no '{FORMAT}' header line)")
    if header.get("version") != VERSION:
        raise GalleryError(f"{name}: export format version {header.get('version')!r}; this faceshot reads {VERSION}")
    if header.get("embedder") != embedder or header.get("dim") != dim:
        raise EmbedderMismatchError(
            f"{name} holds {header.get('dim')}-D vectors of embedder {header.get('embedder')!r}; "
            f"this gallery holds {dim}-D vectors of {embedder!r}: they cannot be mixed"
        )
    for number, line in enumerate(file, start=2):
        if not line.strip():
            continue
        try:
            yield _record(json.loads(line), dim)
        except (ValueError, KeyError, TypeError) as exc:
            raise GalleryError(f"{name}, line {number}: damaged person record ({exc})") from None


def _record(data: dict[str, Any], dim: int) -> PersonRecord:
    return PersonRecord(
        name=str(data["name"]),
        metadata=dict(data.get("metadata") or {}),
        groups=tuple(str(group) for group in data.get("groups") or ()),
        created=data.get("created"),
        faces=tuple(_face(face, dim) for face in data.get("faces") or ()),
    )


def _face(data: dict[str, Any], dim: int) -> NewFace:
    vector = np.frombuffer(base64.b64decode(data["embedding"], validate=True), dtype="<f4").astype(np.float32)
    if vector.size != dim or not np.all(np.isfinite(vector)) or not np.any(vector):
        raise ValueError(f"an embedding must be {dim} finite, not all zero, float32 values")
    box = data.get("box")
    return NewFace(
        embedding=vector / np.linalg.norm(vector),
        sha256=data.get("sha256"),
        source=data.get("source"),
        box=None if box is None else Box(**{key: int(box[key]) for key in ("left", "top", "right", "bottom")}),
        quality=dict(data.get("quality") or {}),
        created=data.get("created"),
    )
