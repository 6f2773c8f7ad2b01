"""A photo collection grouped by person: cluster once, add photos later, name a cluster to enroll it.

    from faceshot.cluster import Collection

    with Collection("photos.db") as photos:          # or Collection() to keep nothing
        result = photos.add(["holiday/", "party/"])
        for cluster in result.clusters:
            print(cluster.id, cluster.size, [face.source for face in cluster.faces][:3])
        photos.name(result.clusters[0].id, "Ada", gallery=Gallery("photos.db"))

Adding photos to a saved collection does not redo the work: files seen before (same bytes) are
skipped; an unclustered face (new, or left alone before) joins the existing cluster with which it
has the most faces scoring at least the threshold; the faces that join none are clustered among
themselves to form new clusters (:mod:`faceshot.cluster.assign`). Faces are committed every 64
photos, so an interrupted run loses little: run it again and it picks up where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from faceshot.bulk import FileResult, LocalRunner, Runner
from faceshot.cluster.algorithms import DEFAULT_ALGORITHM, create_clusterer
from faceshot.cluster.assign import grow
from faceshot.cluster.crops import face_crop, jpeg
from faceshot.cluster.results import Cluster, ClusteredFace, Clustering, Naming
from faceshot.cluster.store import ClusterStore, StoredFace
from faceshot.detect import Detector
from faceshot.engine import Engine
from faceshot.errors import ConfigError, FaceshotError, GalleryError, ImageNotFoundError, NotFound
from faceshot.gallery import FoundFace, Gallery, Rejected
from faceshot.gallery.location import parse_location
from faceshot.walk import walk_images
from faceshot.spec import EngineSpec, open_engine, record_engine

__all__ = ["Collection", "cluster", "DEFAULT_FAR", "DEFAULT_MIN_SIZE", "default_threshold", "image_files"]

log = logging.getLogger(__name__)

#: The default threshold is the embedder's score at this false-accept rate on its reference pairs
#: (0.945 for dlib-resnet): chosen on a development set of LFW people with 3-9 images, where it
#: gave chinese-whispers its best BCubed F (BENCHMARKS.md, "Clustering"). Verification's default
#: (FAR ~0.8%) is far too loose here: among thousands of faces, one false edge in a hundred joins
#: everybody into one cluster.
DEFAULT_FAR = 7.4e-5
#: Groups with fewer faces are left unclustered.
DEFAULT_MIN_SIZE = 2
#: Photos whose faces are committed together: what an interruption can lose, and a rerun redoes.
BATCH = 64
_SETTING = "clustering"  # the settings row a saved collection keeps its algorithm and threshold in


def default_threshold(engine: Engine) -> float:
    """The clustering threshold for this engine's embedder (see :data:`DEFAULT_FAR`)."""
    calibration = engine.embedder.calibration
    if calibration is None:
        raise ConfigError(f"embedder {engine.embedder.name!r} has no calibration; pass a clustering threshold")
    point = calibration.point_for(DEFAULT_FAR)
    if point.clamped:
        log.warning("the clustering threshold for FAR %g is beyond %s's calibration; using %.4f (FAR %s)",
                    DEFAULT_FAR, engine.embedder.name, point.threshold, point.far)
    return point.threshold


def image_files(inputs: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[Rejected]]:
    """The image files named or found in ``inputs`` (folders read by :mod:`faceshot.walk`), and the
    inputs that could not be used: missing paths and broken links.

    A folder that holds no image file, or inputs that give no file at all, raise
    :class:`ImageNotFoundError` (exit 2), since the user most likely named the wrong one.
    """
    files: list[Path] = []
    missing: list[Rejected] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            walked = walk_images(path)
            files.extend(walked.files)
            missing.extend(Rejected(entry.path, "ImageNotFoundError", entry.reason) for entry in walked.broken)
        elif path.is_file():
            files.append(path)
        else:
            missing.append(Rejected(str(path), "ImageNotFoundError", f"{path}: no such file or folder"))
    if not files:
        raise ImageNotFoundError("; ".join(m.reason for m in missing) or "no photos given")
    return list(dict.fromkeys(files)), missing


class Collection:
    """Faces of unlabeled photos, grouped by person, optionally kept in a gallery file.

    ``db``: the gallery file to keep the clusters in (created if missing; the same file a
    :class:`~faceshot.gallery.Gallery` uses), or ``None`` to keep nothing (one-shot).
    ``engine``: detector, embedder and pixel limit (by default resolved as a gallery's is, by
    :func:`faceshot.spec.open_engine`: the environment, then a saved collection's settings, its
    vector space pinned). ``algorithm``: see :mod:`faceshot.cluster.algorithms`.
    ``threshold``: the score two faces need to be linked (cosine, as ``verify``); by default the
    one a saved collection used last, else :func:`default_threshold`. Higher: purer clusters, more
    of them, more faces left alone. ``far``: the threshold at this false-accept rate instead.
    ``min_size``: groups with fewer faces stay unclustered. ``options``: the algorithm's own
    settings (e.g. ``{"min_samples": 3}`` for DBSCAN).
    ``keep_thumbnails``: store a small JPEG of each face (off: no image is stored).
    ``workers``: processes for detection and embedding (default: one per core). ``runner``: where
    photos are read, detected and embedded instead (a :class:`faceshot.bulk_ray.RayRunner` uses a
    Ray cluster); grouping the faces stays in this process, over every face of the collection.
    """

    def __init__(
        self,
        db: str | os.PathLike[str] | None = None,
        engine: Engine | None = None,
        *,
        algorithm: str | None = None,
        threshold: float | None = None,
        far: float | None = None,
        min_size: int | None = None,
        options: dict[str, Any] | None = None,
        keep_thumbnails: bool = False,
        workers: int | None = None,
        runner: Runner | None = None,
    ) -> None:
        # Resolved as a gallery resolves it: the saved collection's vector space, pinned.
        self.engine = engine = open_engine(db, engine=engine)
        self.db = None if db is None else parse_location(db)  # a file, or a URL (a PostgreSQL gallery)
        self.store = ClusterStore(":memory:" if self.db is None else self.db,
                                  embedder=engine.embedder.space, dim=engine.embedder.dim)
        if db is not None:
            record_engine(self.store.db, engine, self.store.transaction)
        try:
            self._configure(engine, algorithm, threshold, far, min_size, options)
        except BaseException:
            self.store.close()
            raise
        self.keep_thumbnails = keep_thumbnails
        self.workers = workers
        self.runner = runner

    def _configure(
        self,
        engine: Engine,
        algorithm: str | None,
        threshold: float | None,
        far: float | None,
        min_size: int | None,
        options: dict[str, Any] | None,
    ) -> None:
        """Settings given, else those a saved collection used last, else the defaults; checked."""
        saved = self.store.db.get_setting(_SETTING) or {}
        self.algorithm = algorithm or saved.get("algorithm") or DEFAULT_ALGORITHM
        if options is None:
            options = saved.get("options", {}) if self.algorithm == saved.get("algorithm") else {}
        self.options = dict(options)
        self.clusterer = create_clusterer(self.algorithm, **self.options)  # an unknown name fails here
        if threshold is not None and far is not None:
            raise ConfigError("give a threshold or a false-accept rate, not both")
        if far is not None:
            threshold = engine.operating_point(far=far).threshold
        if threshold is None:
            threshold = saved.get("threshold")
        if threshold is None and engine.embedder.calibration is not None:
            threshold = default_threshold(engine)
        # An embedder without calibration (a trained model) and no threshold: listing and naming
        # clusters still work; clustering asks for a threshold (see the ``threshold`` property).
        self._threshold = None if threshold is None else float(threshold)
        if self._threshold is not None and not -1.0 <= self._threshold <= 1.0:
            raise ConfigError(f"a threshold is a cosine score between -1 and 1, got {self._threshold}")
        self.min_size = int(min_size if min_size is not None else saved.get("min_size") or DEFAULT_MIN_SIZE)
        if self.min_size < 1:
            raise ConfigError(f"min_size must be at least 1, got {self.min_size}")

    @property
    def threshold(self) -> float:
        """The score two faces need to be linked (:class:`ConfigError` when there is none to use)."""
        if self._threshold is None:
            raise ConfigError(
                f"embedder {self.engine.embedder.name!r} has no calibration; pass a clustering threshold"
            )
        return self._threshold

    @classmethod
    def saved(cls, db: str | os.PathLike[str] | None = None, **options: Any) -> "Collection":
        """The collection kept in a gallery: ``db`` (a path or URL), else ``$FACESHOT_DB``, else ``./faceshot.db`` (as :class:`Gallery`)."""
        from faceshot.gallery import DEFAULT_PATH, ENVIRONMENT_VARIABLE

        location = parse_location(db or os.environ.get(ENVIRONMENT_VARIABLE) or DEFAULT_PATH)
        if not location.exists():
            # Opening would create an empty gallery; the user most likely named the wrong file.
            what = "gallery file" if location.is_file else "gallery"
            raise NotFound(f"{location}: no such {what}; cluster photos into it first: faceshot cluster DIR --db {location}")
        return cls(location, **options)

    def __repr__(self) -> str:
        where = "memory" if self.db is None else str(self.db)
        threshold = "none" if self._threshold is None else f"{self._threshold:.4f}"
        return f"Collection({where!r}, algorithm={self.algorithm!r}, threshold={threshold})"

    def __enter__(self) -> "Collection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    # -- adding photos ----------------------------------------------------------------------
    def add(
        self,
        inputs: Iterable[str | os.PathLike[str]],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> Clustering:
        """Detect and embed every face in these files and folders, and cluster them with the rest.

        Unreadable files and files that are not images are listed in ``failed`` and the others
        are still clustered; photos seen before are skipped. ``progress(done, total)`` is called
        after each new photo. Returns the whole collection afterwards.
        """
        self.threshold  # noqa: B018  (raises before any work when there is no threshold to cluster with)
        files, failed = image_files(inputs)
        unreadable = 0
        todo: list[tuple[Path, str]] = []
        seen: set[str] = set()
        for path in files:
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError as exc:
                failed.append(Rejected(str(path), "ImageNotFoundError", f"{path}: cannot be read ({exc.strerror})"))
                unreadable += 1
                continue
            if digest not in seen:
                seen.add(digest)
                todo.append((path, digest))
        known = self.store.known_photos(seen)
        fresh = [(path, digest) for path, digest in todo if digest not in known]
        skipped = len(files) - unreadable - len(fresh)  # seen by an earlier run, or a copy of a file in this one

        no_face: list[str] = []
        added = 0
        batch: list[tuple[Path, str, list[Any]]] = []
        runner = self.runner or LocalRunner(self.workers)
        results = runner.represent(self.engine, [(str(path), digest) for path, digest in fresh], one_face=None,
                                   keep_chips=False)
        for done, (path, digest, result) in enumerate(_in_order(results, fresh), start=1):
            if result.error is not None:
                failed.append(Rejected(str(path), type(result.error).__name__, str(result.error)))
            else:
                if not result.faces:
                    no_face.append(str(path))
                batch.append((path, digest, result.faces))
            if len(batch) >= BATCH:
                added += self._store_faces(batch)
                batch = []
            if progress is not None:
                progress(done, len(fresh))
        added += self._store_faces(batch)

        with self.store.transaction():
            joined = self._grow()
            self.store.db.set_setting(_SETTING, {"algorithm": self.algorithm, "options": self.options,
                                                 "threshold": self.threshold, "min_size": self.min_size})
        log.info("%d new photo(s), %d face(s) added, %d joined existing clusters, %d failed",
                 len(fresh), added, joined, len(failed))
        return self._state(photos=len(files), skipped=skipped, no_face=tuple(no_face),
                           failed=tuple(failed), added=added, joined=joined)

    def _store_faces(self, batch: list[tuple[Path, str, list[Any]]]) -> int:
        """Keep a batch of photos and their faces (unclustered for now); returns the faces stored."""
        if not batch:
            return 0
        stored = 0
        with self.store.transaction():
            for path, digest, faces in batch:
                # Absolute, so that naming the cluster later finds the photo from any working folder.
                photo = self.store.add_photo(digest, os.path.abspath(path), len(faces))
                thumbnails = self._thumbnails(path, faces) if self.keep_thumbnails and faces else [None] * len(faces)
                for item, thumbnail in zip(faces, thumbnails):
                    self.store.add_face(photo, item.face, item.embedding, thumbnail)
                    stored += 1
        return stored

    def _grow(self) -> int:
        """Unclustered faces join the clusters they resemble, the rest are clustered; returns how many joined."""
        faces = self.store.faces()
        if not faces:
            return 0
        before = np.array([-1 if face.cluster is None else face.cluster for face in faces], dtype=np.int64)
        after, groups = grow(np.stack([face.embedding for face in faces]), before, self.clusterer,
                             self.threshold, self.min_size)
        moved = np.flatnonzero(after != before)
        for cluster_id in np.unique(after[moved]).tolist():
            self.store.assign([faces[k].id for k in moved if after[k] == cluster_id], cluster_id)
        for group in groups:
            self.store.assign([faces[k].id for k in group], self.store.new_cluster())
        return len(moved)

    def _thumbnails(self, path: Path, faces: Sequence[Any]) -> list[bytes | None]:
        try:
            image = Image.fromarray(self.engine.load(path))
        except FaceshotError:
            return [None] * len(faces)
        return [jpeg(face_crop(image, item.face.box)) for item in faces]

    # -- reading ----------------------------------------------------------------------------
    def clustering(self) -> Clustering:
        """The collection as it stands (no photo is read)."""
        return self._state(photos=0, skipped=0, no_face=(), failed=(), added=0, joined=0)

    def _state(self, **run: Any) -> Clustering:
        names = self.store.cluster_names()
        grouped: dict[int, list[ClusteredFace]] = {}
        unclustered: list[ClusteredFace] = []
        for face in self.store.faces():
            item = ClusteredFace(face.id, face.source, face.face, face.cluster)
            (unclustered if face.cluster is None else grouped.setdefault(face.cluster, [])).append(item)
        clusters = sorted(
            (Cluster(cluster_id, names.get(cluster_id), tuple(faces)) for cluster_id, faces in grouped.items()),
            key=lambda c: (-c.size, c.id),
        )
        return Clustering(tuple(clusters), tuple(unclustered), algorithm=self.algorithm,
                          threshold=self._threshold, min_size=self.min_size, **run)

    def cluster(self, cluster_id: int) -> Cluster:
        """One cluster with its faces (:class:`~faceshot.errors.NotFound` if there is none by that id)."""
        name = self.store.require_cluster(cluster_id)
        faces = self.store.faces(cluster=cluster_id)
        return Cluster(cluster_id, name, tuple(ClusteredFace(f.id, f.source, f.face, f.cluster) for f in faces))

    def thumbnail(self, face_id: int) -> bytes | None:
        """The JPEG kept for a face when ``keep_thumbnails`` was on, else ``None``."""
        return self.store.thumbnail(face_id)

    # -- corrections ------------------------------------------------------------------------
    def merge(self, target: int, source: int) -> Cluster:
        """Move every face of cluster ``source`` into ``target`` and delete ``source``.

        A name carries over when only ``source`` has one; two different names are refused.
        """
        if target == source:
            raise GalleryError(f"cannot merge cluster {target} into itself")
        with self.store.transaction():
            target_name = self.store.require_cluster(target)
            source_name = self.store.require_cluster(source)
            if target_name and source_name and target_name != source_name:
                raise GalleryError(
                    f"clusters {target} ({target_name!r}) and {source} ({source_name!r}) are named as different people"
                )
            self.store.assign([face.id for face in self.store.faces(cluster=source)], target)
            self.store.delete_cluster(source)
            if source_name and not target_name:
                self.store.set_name(target, source_name)
        return self.cluster(target)

    def split(self, cluster_id: int, face_id: int) -> Cluster:
        """Move one face out of a cluster into a new cluster of its own; returns the new cluster."""
        with self.store.transaction():
            self.store.require_cluster(cluster_id)
            if face_id not in {face.id for face in self.store.faces(cluster=cluster_id)}:
                raise GalleryError(f"face {face_id} is not in cluster {cluster_id}")
            new = self.store.new_cluster()
            self.store.assign([face_id], new)
        return self.cluster(new)

    # -- naming -----------------------------------------------------------------------------
    def name(
        self, cluster_id: int, name: str, gallery: Gallery, *, force: bool = False, keep_thumbnail: bool = False
    ) -> Naming:
        """Enroll every face of a cluster in ``gallery`` as ``name``, through its quality gate.

        Each photo is read again (it must still be where it was, unchanged) to cut the face for the
        gate; faces refused by the gate or whose photo moved are listed in ``rejected``. Naming a
        cluster again enrolls the faces that joined it since. The cluster keeps the name.
        """
        if not name or not name.strip():
            raise GalleryError("a person needs a non-empty name")
        if gallery.engine.embedder.space != self.engine.embedder.space:
            raise ConfigError("the gallery and the collection use different embedders")
        self.store.require_cluster(cluster_id)
        found: list[FoundFace] = []
        rejected: list[Rejected] = []
        for face in self.store.faces(cluster=cluster_id):
            try:
                found.append(self._found(face))
            except FaceshotError as exc:
                rejected.append(Rejected(face.source, type(exc).__name__, str(exc)))
        enrollment = gallery.enroll_found(name, found, force=force, keep_thumbnail=keep_thumbnail)
        with self.store.transaction():
            self.store.set_name(cluster_id, name)
        if rejected:
            enrollment = type(enrollment)(enrollment.person, enrollment.created, enrollment.added,
                                          enrollment.skipped, tuple(rejected) + enrollment.rejected)
        return Naming(cluster_id, enrollment)

    def _found(self, face: StoredFace) -> FoundFace:
        path = Path(face.source)
        try:
            data = path.read_bytes()
        except OSError:
            raise ImageNotFoundError(f"{path}: the photo is no longer there; it cannot be checked and enrolled") from None
        if hashlib.sha256(data).hexdigest() != face.sha256:
            raise ImageNotFoundError(f"{path}: the photo changed since it was clustered; cluster it again")
        return FoundFace(self.engine.load(data), face.face, face.embedding, str(path), face.sha256)


def _in_order(results: Iterator[tuple[int, str, FileResult]], items: Sequence[tuple[Path, str]]
              ) -> Iterator[tuple[Path, str, FileResult]]:
    """A runner's results (in any order) in the order of ``items``: faces are stored, and so
    clustered, in the same order whichever runner found them."""
    waiting: dict[int, FileResult] = {}
    following = 0
    for index, _, result in results:
        waiting[index] = result
        while following in waiting:
            yield (*items[following], waiting.pop(following))
            following += 1


def cluster(
    inputs: Iterable[str | os.PathLike[str]],
    *,
    algorithm: str | None = None,
    threshold: float | None = None,
    far: float | None = None,
    min_size: int | None = None,
    detector: str | Detector | None = None,
    engine: Engine | EngineSpec | None = None,
    workers: int | None = None,
) -> Clustering:
    """Group the faces in these photos and folders by person, keeping nothing (see :class:`Collection`).

    ``engine`` (or its spec): the detector, embedder and pixel limit; ``detector`` alone: an engine
    with that detector and the resolved defaults (:func:`faceshot.spec.open_engine`).
    """
    if isinstance(engine, EngineSpec):
        engine = engine.build()
    elif engine is None:
        engine = open_engine(None, detector=detector)
    with Collection(None, engine, algorithm=algorithm, threshold=threshold, far=far, min_size=min_size,
                    workers=workers) as collection:
        return collection.add(inputs)
