"""Where a collection's clusters are kept: three tables of the gallery's records, in the same SQLite file.

The records layer (:mod:`faceshot.gallery.database`) creates them with the rest of the schema::

    cluster_photos(id, sha256 UNIQUE, source, faces, created)     every photo looked at
    clusters(id, name NULL, created)                              a group of faces; name once named
    cluster_faces(id, photo → cluster_photos, cluster → clusters NULL, embedding BLOB float32,
                  face JSON (box, detector score, landmarks), created, thumbnail BLOB NULL)

A face with ``cluster`` NULL is unclustered (alone, or in a group smaller than the minimum size).
Photos are known by the SHA-256 of their bytes, which is how a rerun skips what it has seen. As in
the gallery, no image is stored unless the user asks for thumbnails. Writes run in the database's
transactions; they add nothing to the change log, since no index is derived from them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from faceshot.errors import NotFound
from faceshot.gallery.database import Database, from_blob, now, to_blob
from faceshot.gallery.location import Location
from faceshot.results import Box, Face

__all__ = ["ClusterStore", "StoredFace"]

@dataclass(frozen=True, eq=False)
class StoredFace:
    """One face of the collection as stored: where it came from, its cluster, its vector."""

    id: int
    cluster: int | None
    source: str
    sha256: str
    face: Face
    embedding: np.ndarray


def _face_json(face: Face) -> str:
    return json.dumps({"box": face.box.to_dict(), "score": face.score, "landmarks": [list(p) for p in face.landmarks]})


def _face_from_json(text: str) -> Face:
    data = json.loads(text)
    return Face(Box(**data["box"]), float(data["score"]), tuple((float(x), float(y)) for x, y in data["landmarks"]))


class ClusterStore:
    """The cluster tables of one gallery: a file (``":memory:"`` for a one-shot run that keeps
    nothing) or a URL (:mod:`faceshot.gallery.location`).

    ``embedder``/``dim``: the vectors' space; a gallery file made with another embedder is refused
    (:class:`~faceshot.errors.EmbedderMismatchError`), as the gallery itself refuses it.
    """

    def __init__(self, path: "str | Path | Location", *, embedder: str, dim: int) -> None:
        self.path = path
        self.dim = dim
        self.db = Database(path, embedder=embedder, dim=dim)

    def close(self) -> None:
        self.db.close()

    def transaction(self) -> Any:
        return self.db.transaction()

    @property
    def _conn(self) -> sqlite3.Connection:
        return self.db.conn

    # -- reading ----------------------------------------------------------------------------
    def known_photos(self, sha256s: Iterable[str]) -> set[str]:
        """Which of these photo hashes were looked at before."""
        wanted = list(dict.fromkeys(sha256s))
        found: set[str] = set()
        for start in range(0, len(wanted), 500):  # SQLite limits the number of bound parameters
            chunk = wanted[start : start + 500]
            rows = self._conn.execute(
                f"SELECT sha256 FROM cluster_photos WHERE sha256 IN ({','.join('?' * len(chunk))})", chunk
            )
            found.update(row[0] for row in rows)
        return found

    def faces(self, *, clustered: bool | None = None, cluster: int | None = None) -> list[StoredFace]:
        """Faces in id order: all, only clustered / only unclustered ones, or those of one cluster."""
        query = (
            "SELECT cluster_faces.id, cluster, source, sha256, face, embedding FROM cluster_faces "
            "JOIN cluster_photos ON cluster_photos.id = cluster_faces.photo"
        )
        arguments: tuple[Any, ...] = ()
        if cluster is not None:
            query += " WHERE cluster = ?"
            arguments = (cluster,)
        elif clustered is not None:
            query += " WHERE cluster IS NOT NULL" if clustered else " WHERE cluster IS NULL"
        rows = self._conn.execute(query + " ORDER BY cluster_faces.id", arguments).fetchall()
        return [
            StoredFace(int(row[0]), None if row[1] is None else int(row[1]), row[2], row[3],
                       _face_from_json(row[4]), from_blob(row[5], self.dim))
            for row in rows
        ]

    def cluster_names(self) -> dict[int, str | None]:
        """Every cluster id with its name (``None`` until named)."""
        return {int(row[0]): row[1] for row in self._conn.execute("SELECT id, name FROM clusters ORDER BY id")}

    def require_cluster(self, cluster: int) -> str | None:
        row = self._conn.execute("SELECT name FROM clusters WHERE id = ?", (cluster,)).fetchone()
        if row is None:
            raise NotFound(f"no cluster {cluster} in the collection; `faceshot cluster list` shows them")
        return row[0]

    def photo_counts(self) -> tuple[int, int]:
        """``(photos looked at, photos in which no face was found)``."""
        row = self._conn.execute("SELECT COUNT(*), COALESCE(SUM(CASE WHEN faces = 0 THEN 1 ELSE 0 END), 0) FROM cluster_photos").fetchone()
        return int(row[0]), int(row[1])

    def thumbnail(self, face_id: int) -> bytes | None:
        row = self._conn.execute("SELECT thumbnail FROM cluster_faces WHERE id = ?", (face_id,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    # -- writing (inside ``transaction()``) -------------------------------------------------
    def add_photo(self, sha256: str, source: str, faces: int) -> int:
        cursor = self._conn.execute(
            "INSERT INTO cluster_photos (sha256, source, faces, created) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(sha256) DO UPDATE SET source = excluded.source RETURNING id",
            (sha256, source, faces, now()),
        )
        return int(cursor.fetchone()[0])

    def add_face(self, photo: int, face: Face, embedding: np.ndarray, thumbnail: bytes | None) -> int:
        cursor = self._conn.execute(
            "INSERT INTO cluster_faces (photo, cluster, embedding, face, created, thumbnail) VALUES (?, NULL, ?, ?, ?, ?) "
            "RETURNING id",
            (photo, to_blob(embedding), _face_json(face), now(), thumbnail),
        )
        return int(cursor.fetchone()[0])

    def new_cluster(self, name: str | None = None) -> int:
        cursor = self._conn.execute("INSERT INTO clusters (name, created) VALUES (?, ?) RETURNING id", (name, now()))
        return int(cursor.fetchone()[0])

    def assign(self, face_ids: Iterable[int], cluster: int | None) -> None:
        self._conn.executemany(
            "UPDATE cluster_faces SET cluster = ? WHERE id = ?", [(cluster, int(face)) for face in face_ids]
        )

    def set_name(self, cluster: int, name: str | None) -> None:
        self._conn.execute("UPDATE clusters SET name = ? WHERE id = ?", (name, cluster))

    def delete_cluster(self, cluster: int) -> None:
        self._conn.execute("UPDATE cluster_faces SET cluster = NULL WHERE cluster = ?", (cluster,))
        self._conn.execute("DELETE FROM clusters WHERE id = ?", (cluster,))
