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

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from faceshot.engine import Engine, Multiple
from faceshot.errors import ConfigError, EmbedderMismatchError, FaceshotError, NotFound
from faceshot.bulk import Runner
from faceshot.gallery.enrollment import DIR_BATCH, Admitted, Enrollment
from faceshot.gallery.exchange import read_export, write_export
from faceshot.gallery.location import Location, open_store, parse_location
from faceshot.gallery.ranking import MAX_NEIGHBOURS, Aggregation, check_aggregation, rank_max, rank_mean, template
from faceshot.gallery.results import (
    CheckReport,
    DirProgress,
    DirSummary,
    EnrollResult,
    ExportSummary,
    FileIdentification,
    GroupSummary,
    Identification,
    ImportSummary,
    PersonDetails,
    PersonSummary,
    PersonVerification,
)
from faceshot.gallery.settings import GallerySettings
from faceshot.gallery.store import Hit, NewFace, PersonRecord, Store
from faceshot.io import ImageInput
from faceshot.match import Calibration, OperatingPoint, check_embeddings, decide, resolve_operating_point
from faceshot.quality import DEFAULT_LIMITS, QualityLimits
from faceshot.results import Face, Verification
from faceshot.spec import open_engine, record_engine
from faceshot.walk import is_url

__all__ = ["Gallery", "FoundFace", "DEFAULT_PATH", "ENVIRONMENT_VARIABLE"]

log = logging.getLogger(__name__)

DEFAULT_PATH = "faceshot.db"
ENVIRONMENT_VARIABLE = "FACESHOT_DB"


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

    ``path``: the gallery file, or a URL (``sqlite:///people.db``, ``postgresql://user:password@host/db``,
    optionally ``?vectors=`` another vector engine: :mod:`faceshot.gallery.location`); by default
    ``$FACESHOT_DB`` or ``./faceshot.db``. ``create``: make the gallery when it is missing
    (``False``: raise :class:`~faceshot.errors.NotFound` instead, for commands that only read or
    change an existing gallery). Beside a file, ``<path>.faiss`` holds a snapshot of the search
    index, derived from the records and rebuilt when lost or damaged.
    ``index``: the index kind for this process (FAISS factory-style names, ``"flat"`` for exact
    search); by default the gallery's ``index`` setting, else ``"auto"``.
    ``engine``: the detector/embedder to use; by default an engine with the embedder the gallery was
    made with. A gallery never mixes embedders: opening one with an engine of another embedder
    raises :class:`~faceshot.errors.EmbedderMismatchError`.
    ``quality``: the limits of the enrollment gate (:mod:`faceshot.quality`).
    ``aggregation``: how a person's several faces are scored, ``"mean"`` (their mean template,
    renormalised) or ``"max"`` (their best face); by default the gallery's setting, else ``"mean"``,
    which named more of the right people at the same FPIR on LFW (BENCHMARKS.md).
    ``store``: another :class:`~faceshot.gallery.store.Store` backend instead of the local file.
    ``vectors``: where the face vectors are searched: ``"faiss"`` (this process's index, the default)
    or a vector engine's URL such as ``milvus://host:port?collection=NAME`` (:mod:`faceshot.gallery.milvus`).
    Several processes may open the same gallery at once; each sees the others' writes at its next
    search (the consistency contract, :mod:`faceshot.gallery.store`).
    """

    def __init__(
        self,
        path: "str | os.PathLike[str] | Location | None" = None,
        engine: Engine | None = None,
        *,
        index: str | None = None,
        create: bool = True,
        quality: QualityLimits = DEFAULT_LIMITS,
        aggregation: Aggregation | None = None,
        store: Store | None = None,
        vectors: str | None = None,
    ) -> None:
        if store is not None and vectors is not None:
            raise ConfigError("give vectors or store, not both (a store brings its own vectors)")
        if path is None:
            path = os.environ.get(ENVIRONMENT_VARIABLE) or DEFAULT_PATH
        self.location = parse_location(path)
        if vectors is not None:  # the vector engine given apart from the records' location
            self.location = dataclasses.replace(self.location, vectors=vectors)
        #: The gallery file (``None`` when the records are on a server).
        self.path: Path | None = self.location.path if self.location.is_file else None
        # A file this object creates and never writes to is removed on close: a command refused
        # for bad input leaves nothing behind.
        self._made_file = store is None and create and self.path is not None and not self.path.exists()
        # The engine given, else the one resolved from the environment and the gallery's own settings
        # (its vector space pinned); one function for galleries, collections and the command line.
        self.engine = engine = open_engine(self.location if store is None else store, engine=engine)
        embedder = engine.embedder
        # A gallery records the vector space, not the program that computed it: dlib-resnet and
        # dlib-resnet-onnx give the same vectors and may share a gallery.
        self.store: Store = store or open_store(
            self.location, embedder=embedder.space, dim=embedder.dim, index=index, create=create
        )
        record_engine(self.store, engine)
        self.quality = quality
        self.settings = GallerySettings(self.store)
        self._pipeline = Enrollment(self.engine, self.store, quality)
        self._aggregation = None if aggregation is None else check_aggregation(aggregation)

    def __repr__(self) -> str:
        return f"Gallery({self.location.shown!r}, embedder={self.store.embedder!r})"

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close the database; the gallery object cannot be used afterwards.

        A gallery file this object created is removed again when nothing was ever written to it.
        """
        try:
            unused = self._made_file and self.store.head() == 0
        except FaceshotError:
            unused = False
        self.store.close()
        if unused and self.path is not None:
            for leftover in (self.path, *(self.path.with_name(self.path.name + end) for end in ("-wal", "-shm", ".faiss"))):
                leftover.unlink(missing_ok=True)

    @property
    def aggregation(self) -> Aggregation:
        """The aggregation rule in force: the one given when opening, else the gallery's setting, else mean."""
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
        return self._pipeline.photos(name, _as_list(images), create=True, groups=groups, metadata=metadata,
                                     force=force, keep_thumbnail=keep_thumbnail)

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
        return self._pipeline.photos(name, _as_list(images), create=False, force=force, keep_thumbnail=keep_thumbnail)

    def enroll_found(
        self, name: str, found: Sequence[FoundFace], *, force: bool = False, keep_thumbnail: bool = False
    ) -> EnrollResult:
        """Enroll ``name`` (created if new) from faces already found, such as a named cluster's.

        Each face passes the quality gate as in :meth:`enroll` (``force=True`` skips it); refused
        faces are listed in ``rejected``, a photo already enrolled for this person in ``skipped``.
        One transaction: when this returns the faces are durable.
        """
        return self._pipeline.found(
            name, [(item.image, item.face, item.embedding, item.source, item.sha256) for item in found],
            force=force, keep_thumbnail=keep_thumbnail,
        )

    def add_embeddings(
        self,
        name: str,
        vectors: np.ndarray,
        *,
        groups: Iterable[str] = (),
        metadata: dict[str, Any] | None = None,
        sources: Sequence[str] | None = None,
        space: str | None = None,
    ) -> EnrollResult:
        """Enroll ``name`` (created if new) from face vectors computed elsewhere, with no photo.

        ``vectors``: ``(N, dim)`` (or one ``(dim,)``) float32 embeddings of unit length, made by
        this gallery's vector space (``space``, when given, must name it: a vector of another
        embedder cannot be compared). ``sources``: a name per vector, kept as each face's source.
        Raises :class:`~faceshot.errors.ConfigError` for a wrong shape, a non-finite or non-unit
        vector, and :class:`~faceshot.errors.EmbedderMismatchError` for another space. One
        transaction; nothing is deduplicated (there is no photo hash), and no quality gate runs.
        """
        self._check_space(space)
        array = check_embeddings(vectors, self.store.dim)
        if sources is not None and len(sources) != len(array):
            raise ConfigError(f"sources names {len(sources)} faces for {len(array)} vectors")
        admitted = [
            Admitted(NewFace(embedding=vector, source=None if sources is None else sources[i]), None, None)
            for i, vector in enumerate(array)
        ]
        existed = self.store.has_person(name)
        added, skipped = self._pipeline.record(name, admitted, create=True, groups=tuple(groups), metadata=metadata)
        return EnrollResult(name, not existed, tuple(added), tuple(skipped), ())

    def add_embeddings_batch(self, people: Iterable[PersonRecord], *, space: str | None = None) -> ImportSummary:
        """Add many people's vectors at once (a bulk load): all of them in one transaction, or none.

        ``people``: :class:`~faceshot.gallery.store.PersonRecord` values whose faces carry unit
        ``(dim,)`` vectors of this gallery's space; a face whose ``sha256`` the person already has
        is skipped. Every vector is checked (shape, finite, unit length) before anything is written.
        """
        self._check_space(space)
        checked = []
        for record in people:
            for face in record.faces:
                check_embeddings(face.embedding, self.store.dim)
            checked.append(record)
        return self.store.import_people(checked)

    def _check_space(self, space: str | None) -> None:
        if space is not None and space != self.store.embedder:
            raise EmbedderMismatchError(
                f"these vectors were made in the space of {space!r}; this gallery holds {self.store.embedder!r} vectors"
            )

    def enroll_dir(
        self,
        root: str | os.PathLike[str],
        *,
        groups: Iterable[str] = (),
        force: bool = False,
        keep_thumbnail: bool = False,
        workers: int | None = None,
        progress: Callable[[DirProgress], None] | None = None,
        runner: Runner | None = None,
        batch: int = DIR_BATCH,
    ) -> DirSummary:
        """Enroll a folder holding one sub-folder per person (the folder name is the person's name).

        The folder is read by :mod:`faceshot.walk` as every command reads folders: photos at any
        depth below a person's folder, links followed, hidden files ignored; files that are not
        images, or not in a person's folder, are listed in ``left_out`` (not failures); broken
        links are failures. Raises :class:`~faceshot.errors.ImageNotFoundError` when no person's
        folder holds a photo. Photos already enrolled for that person (same file content) are
        skipped before any work, so an interrupted run can simply be started again. A bad photo
        is reported in ``failed`` and does not stop the run. Detection and embedding run in
        ``workers`` processes (default: one per core), or wherever ``runner`` puts them: a
        :class:`faceshot.bulk_ray.RayRunner` detects and embeds on a Ray cluster, and then ``root``
        may also be an fsspec URL the cluster can read (``s3://bucket/people``); this process
        still writes every record. Faces are committed in batches of up to ``batch`` (64): an
        interruption loses at most the batch in hand. ``progress`` is called after each photo.
        Raises :class:`~faceshot.errors.ConfigError` for a ``batch`` below 1.
        """
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigError(f"batch must be a whole number of faces, at least 1, got {batch!r}")
        folder = root if isinstance(root, str) and is_url(root) else Path(root)
        return self._pipeline.folder(folder, groups=tuple(groups), force=force, keep_thumbnail=keep_thumbnail,
                                     workers=workers, progress=progress, runner=runner, batch=batch)

    # -- identification ---------------------------------------------------------------------
    def identify(
        self,
        image: ImageInput,
        *,
        top_k: int = 5,
        threshold: float | None = None,
        far: float | None = None,
        group: str | Sequence[str] | None = None,
        aggregation: Aggregation | None = None,
        fpir: float | None = None,
        among: Sequence[str] | None = None,
    ) -> list[Identification]:
        """Who is in this photo? One :class:`Identification` per face, largest face first.

        A face is named after the best-scoring enrolled person if that score reaches the
        threshold, and is unknown otherwise (:func:`faceshot.match.decide`). How sure that must
        be, first given first used: ``threshold`` (a score); ``far`` (a per-comparison
        false-accept rate, e.g. ``1e-3``); ``fpir`` (the share of strangers who may be named, e.g.
        ``0.01``); the gallery's ``settings.threshold`` (a fixed threshold set by hand); else FPIR
        1%. Rates are read from the gallery's :attr:`calibration` (the FAR table ``faceshot
        calibrate --db`` saved, else the embedder's). A stranger is compared with every face
        searched, so an FPIR threshold rises with the faces searched (the whole gallery, or the
        groups): see :meth:`operating_point`. Each result carries the operating point used.
        ``top_k``: how many candidate people to list per face. ``group``: compare only with
        members of this group, or of these groups (their union), restricted inside the index.
        ``among``: compare only with these people (a friends list): their faces are scored exactly,
        without the index, so the cost grows with them, not with the gallery; not with ``group``.
        ``aggregation``: see :class:`Gallery`. Raises :class:`~faceshot.errors.NotFound` for an
        unknown group or person, :class:`~faceshot.errors.ConfigError` for an impossible option.
        """
        chosen, point = self._plan_search(top_k, aggregation, group, among, threshold, far, fpir)
        loaded = self.engine.load(image)
        faces = self.engine.detector.detect(loaded)
        if not faces:
            return []
        vectors = self.engine.embed_faces(loaded, faces)
        return self._identify(vectors, faces, point, top_k=top_k, group=group, aggregation=aggregation, among=chosen)

    def identify_files(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        workers: int | None = None,
        top_k: int = 5,
        threshold: float | None = None,
        far: float | None = None,
        fpir: float | None = None,
        group: str | Sequence[str] | None = None,
        aggregation: Aggregation | None = None,
        among: Sequence[str] | None = None,
    ) -> Iterator[FileIdentification]:
        """Who is in each of these photo files? One :class:`FileIdentification` per path, in the order given.

        The photos are decoded and searched for faces on ``workers`` processes at once (default:
        one per core) and embedded here (:func:`faceshot.bulk.represent_files`, this gallery's
        engine); each face is then decided as :meth:`identify` decides, with the options of
        :meth:`identify` and one operating point for all the photos. A file that cannot be used
        gives a result with its error (:class:`~faceshot.errors.ImageError`, ...) and the others go
        on. Raises :class:`~faceshot.errors.NotFound` for an unknown group or person and
        :class:`~faceshot.errors.ConfigError` for an impossible option, before any photo is read.
        """
        from faceshot.bulk import represent_files

        chosen, point = self._plan_search(top_k, aggregation, group, among, threshold, far, fpir)
        for result in represent_files(paths, engine=self.engine, workers=workers):
            if not result.ok or not result.faces:
                yield FileIdentification(result.path, [], result.error)
                continue
            vectors = np.stack([found.embedding for found in result.faces])
            faces = [found.face for found in result.faces]
            yield FileIdentification(result.path, self._identify(vectors, faces, point, top_k=top_k, group=group,
                                                                 aggregation=aggregation, among=chosen))

    def identify_embeddings(
        self,
        vectors: np.ndarray,
        *,
        top_k: int = 5,
        threshold: float | None = None,
        far: float | None = None,
        fpir: float | None = None,
        group: str | Sequence[str] | None = None,
        aggregation: Aggregation | None = None,
        space: str | None = None,
        among: Sequence[str] | None = None,
    ) -> list[Identification]:
        """Who is each of these probe vectors? One :class:`Identification` per row, in order (``face`` is ``None``).

        ``vectors``: ``(N, dim)`` (or one ``(dim,)``) unit-length float32 embeddings of this
        gallery's vector space (``space``, when given, must name it). The operating point and the
        other options are those of :meth:`identify`, which detects and embeds, then calls the same
        decision. Raises :class:`~faceshot.errors.ConfigError` for a wrong shape or a non-unit
        vector, :class:`~faceshot.errors.NotFound` for an unknown group.
        """
        self._check_space(space)
        array = check_embeddings(vectors, self.store.dim)
        chosen, point = self._plan_search(top_k, aggregation, group, among, threshold, far, fpir)
        return self._identify(
            array, [None] * len(array), point, top_k=top_k, group=group, aggregation=aggregation, among=chosen
        )

    def _plan_search(
        self,
        top_k: int,
        aggregation: Aggregation | None,
        group: str | Sequence[str] | None,
        among: Sequence[str] | None,
        threshold: float | None,
        far: float | None,
        fpir: float | None,
    ) -> tuple[dict[str, np.ndarray] | None, OperatingPoint]:
        """The people ``among`` names (see :meth:`_among`) and the operating point for the faces
        searched; a bad option, an unknown group or person fails here, before any photo is read."""
        self._check_search(top_k, aggregation)
        chosen = self._among(among, group)
        faces_in_scope = self.store.scope(group)[0] if chosen is None else sum(map(len, chosen.values()))
        return chosen, self.operating_point(threshold, far, fpir=fpir, faces=faces_in_scope)

    def _among(self, among: Sequence[str] | None, group: str | Sequence[str] | None) -> dict[str, np.ndarray] | None:
        """The face vectors of the people ``among`` names, by their stored names (``None``: no such list)."""
        if among is None:
            return None
        if isinstance(among, str):
            raise ConfigError("among is a list of people's names, not one name")
        if group is not None:
            raise ConfigError("give group or among, not both")
        names = [self.store.person(name).name for name in dict.fromkeys(among)]  # NotFound for an unknown name
        return self.store.embeddings(names)

    @staticmethod
    def _check_search(top_k: int, aggregation: Aggregation | None) -> None:
        if not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"top_k must be a whole number of at least 1, got {top_k!r}")
        if aggregation is not None:
            check_aggregation(aggregation)

    def _identify(
        self,
        vectors: np.ndarray,
        faces: Sequence[Face | None],
        point: OperatingPoint,
        *,
        top_k: int,
        group: str | Sequence[str] | None,
        aggregation: Aggregation | None,
        among: dict[str, np.ndarray] | None = None,
    ) -> list[Identification]:
        """Rank people for each vector and decide (:func:`faceshot.match.decide`) at ``point``.
        ``among``: score exactly against these people's vectors instead of searching the index."""
        how = aggregation or self.aggregation
        found: list[Identification] = []
        hits: list[list[Hit]] = [[] for _ in faces]
        vectors_of = self.store.embeddings
        if among is not None:
            hits = [
                sorted((Hit(-1, name, float(score)) for name, faces_of in among.items() for score in faces_of @ vector),
                       key=lambda hit: -hit.score)
                for vector in np.asarray(vectors, dtype=np.float32)
            ]
            vectors_of = lambda names: {name: among[name] for name in names}  # noqa: E731
            faces_in_scope = 0
        else:
            faces_in_scope, most, _ = self.store.scope(group)
        rankings: list[list[tuple[str, float]]] | None = None
        if faces_in_scope and how == "mean":
            # One search over the people's templates (kept beside the faces' index when anyone has several faces).
            rankings = self.store.search_people(vectors, top_k, group=group)
        elif faces_in_scope:
            # Enough neighbours that top_k people survive even if each has the most faces anyone has.
            k = min(faces_in_scope, max(top_k, top_k * most), MAX_NEIGHBOURS)
            hits = self.store.search(vectors, k, group=group)
        for row, (face, vector, face_hits) in enumerate(zip(faces, vectors, hits)):
            if rankings is not None:
                ranking = rankings[row]
            else:
                ranking = rank_max(face_hits) if how == "max" else rank_mean(vector, face_hits, vectors_of)
            candidates = tuple(ranking[:top_k])
            identity, score = decide(candidates, point.threshold)
            found.append(
                Identification(
                    face, identity, score, point.threshold, candidates,
                    far=point.far, fpir=point.fpir, clamped=point.clamped,
                )
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

        A stranger is compared with ``faces`` enrolled faces (default: every face in the gallery;
        ``identify`` passes those of the group it searches), so the FPIR threshold rises with the
        gallery. Rates come from :attr:`calibration`; the arithmetic, and what LFW says of it, is
        :func:`faceshot.match.resolve_operating_point`'s.
        """
        if faces is None:
            faces = self.store.scope(None)[0]
        return resolve_operating_point(
            self.calibration, threshold=threshold, far=far, fpir=fpir, faces=faces,
            stored=self.settings.threshold, embedder=self.engine.embedder.name,
        )

    @property
    def calibration(self) -> Calibration | None:
        """The FAR table this gallery's thresholds come from: the one ``faceshot calibrate --db``
        saved in it, else the embedder's bundled one (see :meth:`Calibration.from_setting`)."""
        return Calibration.from_setting(
            self.settings.get("calibration"), embedder=self.store.embedder, bundled=self.engine.embedder.calibration
        )

    @calibration.setter
    def calibration(self, calibration: Calibration | None) -> None:
        """Save a FAR table (``None``: go back to the embedder's); :class:`ConfigError` if it was
        measured in another vector space. A fixed identification threshold an older ``faceshot
        calibrate --db`` saved is dropped with the table it came from, so FPIR thresholds rise
        with the gallery again."""
        if calibration is not None and calibration.embedder != self.store.embedder:
            raise ConfigError(
                f"a calibration of {calibration.embedder!r} vectors cannot be used by a gallery of "
                f"{self.store.embedder!r} vectors"
            )
        old = self.settings.get("calibration")
        if old is not None and "far_table" not in old and old.get("threshold") == self.settings.threshold:
            self.settings.threshold = None
        self.settings.set("calibration", None if calibration is None else calibration.to_dict())

    def verify(
        self,
        a: ImageInput,
        b: ImageInput,
        *,
        threshold: float | None = None,
        far: float | None = None,
        multiple: Multiple = "largest",
    ) -> Verification:
        """:meth:`Engine.verify` with this gallery's :attr:`calibration` (its own FAR table, if saved)."""
        return self.engine.verify(a, b, threshold=threshold, far=far, multiple=multiple, calibration=self.calibration)

    def verify_person(
        self,
        name: str,
        image: ImageInput,
        *,
        threshold: float | None = None,
        far: float | None = None,
        multiple: Multiple = "largest",
    ) -> PersonVerification:
        """Is the face in ``image`` the enrolled person ``name``? (A 1:1 check: a passport gate, a badge.)

        The photo's face (the largest; ``multiple="error"`` refuses several) is scored against the
        person as identification scores them (:attr:`aggregation`), and decided at the 1:1
        operating point :meth:`verify` uses (``threshold``, else ``far``, else the calibrated
        default, from this gallery's :attr:`calibration`). Raises :class:`NotFound` for an unknown
        person, :class:`~faceshot.errors.NoFaceError` when the photo shows none.
        """
        vectors = self.store.embeddings([name]).get(name)
        if vectors is None or not len(vectors):
            raise NotFound(f"no person named {name!r} in the gallery")
        point = self.engine.operating_point(threshold, far, calibration=self.calibration)
        found, count = self.engine.one_face(image, multiple=multiple)
        probe = np.asarray(found.embedding, dtype=np.float32)
        if self.aggregation == "max":
            score = float(np.max(np.asarray(vectors, dtype=np.float32) @ probe))
        else:
            score = float(template(vectors) @ probe)
        return PersonVerification(
            person=self.store.person(name).name, same=score >= point.threshold, score=score,
            threshold=point.threshold, far=point.far, face=found.face, faces_in_photo=count, clamped=point.clamped,
        )

    # -- people and groups ------------------------------------------------------------------
    def person_ids(self, names: Iterable[str]) -> dict[str, int]:
        """Each named person's stable id: kept through renames, never given to anyone else.
        Unknown names are left out. Needs a store with ``person_ids`` (the local one has it)."""
        return self.store.person_ids(names)  # type: ignore[attr-defined]

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


def _as_list(images: ImageInput | Sequence[ImageInput]) -> list[ImageInput]:
    if isinstance(images, (list, tuple)):
        return list(images)
    return [images]  # type: ignore[list-item]
