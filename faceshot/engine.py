"""The configured pipeline: load → detect → align → embed → compare.

``Engine`` holds one detector, one aligner and one embedder. Models load on first use and are
shared by every engine in the process. The module functions in :mod:`faceshot.api` are thin
wrappers over a default ``Engine``.

An engine is described by an :class:`~faceshot.spec.EngineSpec` (``engine.spec``), a picklable
value from which every other path — bulk worker processes, clustering, evaluation, galleries —
builds the same engine (``spec.build()``, once per process). Detector and embedder texts follow
the grammar of :mod:`faceshot.spec` (``"hog:upsample=1"``, ``"hog>cnn-onnx"``, ``"model.onnx"``).
"""

from __future__ import annotations

import logging
import numpy as np

from faceshot.align import Aligner
from faceshot.choice import Multiple, choose_face, turned_face
from faceshot.detect import Detector
from faceshot.embed import DEFAULT_EMBEDDER, Embedder
from faceshot.errors import ConfigError
from faceshot.io import DEFAULT_MAX_PIXELS, ImageInput, describe, load_image
from faceshot.match import Calibration, OperatingPoint, cosine_similarity, resolve_operating_point
from faceshot.results import Face, FaceEmbedding, Verification
from faceshot.spec import DEFAULT_DETECTOR, EngineSpec, build_aligner, build_detector, build_embedder

__all__ = ["Engine", "EngineSpec"]

log = logging.getLogger(__name__)


class Engine:
    """A detector, an aligner and an embedder, configured once and reused.

    ``detector``: ``"hog>cnn-onnx"`` (default: ``hog`` first, ``cnn-onnx`` only on photos where it
    finds nothing; chosen from the measurements in BENCHMARKS.md, "Choosing the default detector"),
    ``"hog"`` (fast, frontal faces), ``"cnn"`` (finds turned faces, ~2 s per photo on CPU),
    ``"cnn-onnx"`` (``cnn``'s faces, its network run by onnxruntime: about 15 times faster), with
    options (``"hog:upsample=1"``), as another fallback chain, or a :class:`~faceshot.detect.Detector` instance.
    ``embedder``: ``"dlib-resnet-onnx"`` (default: dlib's ResNet converted to ONNX, the same vectors
    as ``"dlib-resnet"``, which runs dlib itself), a model file from ``faceshot train``
    (``"model.onnx"``), or an :class:`~faceshot.embed.Embedder` instance.
    ``aligner``: defaults to the one the embedder was trained with.
    ``max_pixels``: larger images are refused before decoding.
    Bad texts raise :class:`~faceshot.errors.ConfigError` naming what exists (see :mod:`faceshot.spec`).
    """

    def __init__(
        self,
        detector: str | Detector = DEFAULT_DETECTOR,
        embedder: str | Embedder = DEFAULT_EMBEDDER,
        aligner: str | Aligner | None = None,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        self._spec = spec = EngineSpec(detector, embedder, aligner, max_pixels)
        self.detector = build_detector(spec.detector) if isinstance(spec.detector, str) else spec.detector
        self.embedder = build_embedder(spec.embedder) if isinstance(spec.embedder, str) else spec.embedder
        aligner = spec.aligner if spec.aligner is not None else self.embedder.aligner
        self.aligner = build_aligner(aligner) if isinstance(aligner, str) else aligner
        if self.detector.scheme != self.aligner.scheme:
            raise ConfigError(
                f"the aligner {self.aligner.name} needs {self.aligner.scheme} landmarks but the detector "
                f"{self.detector.name} gives {self.detector.scheme}; mtcnn and yunet give either "
                f"(landmarks={self.aligner.scheme})"
            )
        self.max_pixels = spec.max_pixels

    @classmethod
    def from_spec(cls, spec: EngineSpec) -> "Engine":
        """A new engine built from ``spec`` (:meth:`EngineSpec.build` shares one per process instead)."""
        return cls(spec.detector, spec.embedder, spec.aligner, max_pixels=spec.max_pixels)

    @property
    def spec(self) -> EngineSpec:
        """The description this engine was built from: picklable, for worker processes to rebuild it."""
        return self._spec

    def __repr__(self) -> str:
        return (
            f"Engine(detector={self.detector.name!r}, aligner={self.aligner.name!r}, "
            f"embedder={self.embedder.name!r}, max_pixels={self.max_pixels})"
        )

    def load(self, source: ImageInput) -> np.ndarray:
        """Load an image with this engine's pixel limit (see :func:`faceshot.load_image`)."""
        return load_image(source, max_pixels=self.max_pixels)

    def detect(self, source: ImageInput) -> list[Face]:
        """Every face in the image, largest first (an empty list when there is none)."""
        return self.detector.detect(self.load(source))

    def represent(self, source: ImageInput) -> list[FaceEmbedding]:
        """Every face in the image with its embedding, largest first."""
        image = self.load(source)
        faces = self.detector.detect(image)
        vectors = self.embed_faces(image, faces)
        return [FaceEmbedding(face, vector) for face, vector in zip(faces, vectors)]

    def embed(self, source: ImageInput) -> np.ndarray:
        """One unit-length embedding per face, largest face first: an ``(N, dim)`` array (N may be 0)."""
        image = self.load(source)
        return self.embed_faces(image, self.detector.detect(image))

    def embed_faces(self, image: np.ndarray, faces: list[Face]) -> np.ndarray:
        """Embeddings of faces already found in a loaded image."""
        return self.embedder.embed(self.aligner.align(image, faces))

    def operating_point(
        self,
        threshold: float | None = None,
        far: float | None = None,
        *,
        calibration: Calibration | None = None,
    ) -> OperatingPoint:
        """The verification threshold: the one given, the one for a target FAR, or the default.

        ``calibration``: the table to use instead of the embedder's (a gallery's own, saved by
        ``faceshot calibrate --db``). See :func:`faceshot.match.resolve_operating_point`.
        """
        return resolve_operating_point(
            calibration or self.embedder.calibration, threshold=threshold, far=far, embedder=self.embedder.name
        )

    def one_face(self, source: ImageInput, *, multiple: Multiple = "largest") -> tuple[FaceEmbedding, int]:
        """The face to use from a photo that should show one person, and how many faces it had.

        With several faces, ``multiple="largest"`` takes the largest, ``"central"`` the one nearest
        the middle of the photo (right for cropped portraits such as LFW's), ``"error"`` raises
        :class:`MultipleFacesError`. No face raises :class:`NoFaceError`.
        """
        image, face, found = self.choose_face(source, multiple=multiple)
        return FaceEmbedding(face, self.embed_faces(image, [face])[0]), found

    def choose_face(self, source: ImageInput, *, multiple: Multiple = "largest") -> tuple[np.ndarray, Face, int]:
        """The loaded image, the face :meth:`one_face` would embed, and how many faces there were."""
        image = self.load(source)
        faces = self.detector.detect(image)
        face = choose_face(faces, image.shape, label=describe(source), multiple=multiple,
                           turned=lambda: turned_face(self.detector.detect, image))
        return image, face, len(faces)

    def verify(
        self,
        a: ImageInput,
        b: ImageInput,
        *,
        threshold: float | None = None,
        far: float | None = None,
        multiple: Multiple = "largest",
        calibration: Calibration | None = None,
    ) -> Verification:
        """Are the people in photos ``a`` and ``b`` the same person?

        ``threshold`` (a score) or ``far`` (a target false-accept rate, e.g. ``1e-3``) sets how sure
        the answer must be; by default the calibrated threshold is used (``calibration``'s, else the
        embedder's). The result carries the operating point: ``clamped`` when a FAR beyond the
        calibration's table was asked for, ``far`` ``None`` for a threshold outside it. With several
        faces in a photo the largest is compared and the result's ``notes`` say so
        (``multiple="error"`` refuses such photos instead).
        """
        point = self.operating_point(threshold, far, calibration=calibration)
        first, count_a = self.one_face(a, multiple=multiple)
        second, count_b = self.one_face(b, multiple=multiple)
        score = float(cosine_similarity(first.embedding, second.embedding))
        notes = tuple(
            f"{label}: {count} faces found, the {'most central' if multiple == 'central' else 'largest'} was compared"
            for label, count in (("a", count_a), ("b", count_b))
            if count > 1
        )
        return Verification(
            same=score >= point.threshold,
            score=score,
            threshold=point.threshold,
            far=point.far,
            clamped=point.clamped,
            face_a=first.face,
            face_b=second.face,
            faces_in_a=count_a,
            faces_in_b=count_b,
            notes=notes,
        )
