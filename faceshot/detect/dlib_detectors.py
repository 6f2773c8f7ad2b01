"""dlib's face detectors: ``hog`` (fast, frontal faces) and ``cnn`` (MMOD, robust to pose, slow on CPU),
and ``cnn-onnx``, dlib's MMOD network converted to ONNX: ``cnn``'s boxes, several times faster.

All share the same surroundings: large photos are searched on a downscaled copy and the boxes
mapped back; small ones are upsampled so that small faces are found (dlib's detectors see faces
down to about 80 pixels at their native scale), unless a search of the photo as it is already
found a face large for the photo (a portrait: the doubled search, four times the work, would only
add faces under 80 px); landmarks are then placed on the original image with dlib's 5-point shape
predictor, which is what the aligner needs.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from faceshot import models
from faceshot.detect import Detector, detectors
from faceshot.detect import mmod, mmod_onnx
from faceshot.detect.search import Found, scaled_search, suppress, turned
from faceshot.errors import ConfigError
from faceshot.results import Box, Face

__all__ = ["DlibDetector", "HogDetector", "CnnDetector", "CnnOnnxDetector"]

LANDMARKS_5 = "shape_predictor_5_face_landmarks.dat"
#: The smallest face dlib's HOG and MMOD detectors find at a photo's own scale (their windows are
#: about 80 × 80 pixels; dlib's documentation), which ``min_face`` scales the photo to.
NATIVE_FACE = 80


def shrunk(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``image`` downscaled (bilinear) so its longer side is at most ``max_side`` pixels, and the
    scale used (1.0: the image itself); boxes found in it map back by dividing by the scale."""
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale >= 1.0:
        return image, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR)), scale


#: The most doublings of a photo's size ``upsample`` may ask for: each quadruples the pixels searched
#: (99 ran out of memory); for smaller faces ``min_face`` scales and tiles the photo instead.
MAX_UPSAMPLE = 2


def _whole(name: str, value: object, low: int, high: int | None, unit: str) -> None:
    """Raise ConfigError unless ``value`` is a whole number in [low, high] (``high`` None: no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"from {low} to {high}"
        raise ConfigError(f"{name} must be a whole number of {unit}, {bounds}, got {value!r}")


class DlibDetector(Detector):
    """Shared scaling, landmarking and ordering around one of dlib's detectors.

    ``max_side``: photos whose longer side exceeds this are searched on a copy downscaled to it
    (faster; faces smaller than about 40 px in the copy are then missed).
    ``upsample``: how many times to double the image before searching; ``None`` doubles images
    whose longer side is at most ``upsample_below`` pixels once (higher finds smaller faces,
    each step costs about four times the time).
    ``large_face``: with ``upsample=None``, a photo that would be doubled is first searched as it
    is; if that finds a face at least this fraction of the photo's shorter side wide (a portrait),
    its faces are kept and the doubled search (about four times the work) is skipped. Faces
    smaller than about 80 px beside such a face are then not looked for. ``None``: always double.

    ``min_face``: the smallest face to find, in the photo's pixels; replaces the three options
    above by one rule: the photo is searched at the scale that makes such a face 80 px
    (:data:`NATIVE_FACE`), in tiles when that is larger than 2048 px (see
    :mod:`faceshot.detect.search`); an enlarged search is joined by one at the photo's own size,
    where HOG found 3 of 300 LFW faces that its pyramid over the doubled photo missed. ``None`` (default) keeps the rule above, which amounts to
    about 40 px in photos up to 1000 px, 80 px up to ``max_side``, and 80 px of the downscaled
    copy beyond. The cost grows with the square of the scale: ``min_face=40`` on a 1920 × 1080
    photo searches 3840 × 2160 pixels.
    ``confidence``: the lowest detector confidence a face is returned with (dlib's
    ``adjust_threshold``: 0 is dlib's own; lower finds more faces and more false ones).
    ``sure``: faces at least this confident come first, largest first, then the others, largest
    first: "the largest face" is the largest *sure* one, so a large false detection of low
    confidence is not the face compared. The defaults per detector (:attr:`SURE`) are the 1st
    percentile of the confidence of LFW's centred faces (1,500 random LFW photos for ``hog``,
    600 for ``cnn-onnx``), rounded down; ``None`` orders by size only.
    ``turns``: when the photo as stored has no face, search it turned by 90°, 270° and 180°
    (a phone photo whose EXIF turn was stripped); faces are returned in the stored photo's pixels.
    """

    #: The default ``sure`` confidence (see above).
    SURE: float | None = None

    def __init__(
        self,
        *,
        max_side: int = 2000,
        upsample: int | None = None,
        upsample_below: int = 1000,
        large_face: float | None = 0.2,
        min_face: int | None = None,
        turns: bool = False,
        confidence: float = 0.0,
        sure: float | None = None,
    ) -> None:
        _whole("max_side", max_side, 64, None, "pixels")
        if upsample is not None:
            _whole("upsample", upsample, 0, MAX_UPSAMPLE, "doublings of the photo's size")
        _whole("upsample_below", upsample_below, 0, None, "pixels")
        if large_face is not None and (isinstance(large_face, bool) or not isinstance(large_face, (int, float))):
            raise ConfigError(f"large_face must be a fraction of the photo's shorter side, in (0, 1], or none, got {large_face!r}")
        if large_face is not None and not 0 < large_face <= 1:
            raise ConfigError(f"large_face must be a fraction of the photo's shorter side, in (0, 1], got {large_face}")
        if min_face is not None and (isinstance(min_face, bool) or not isinstance(min_face, int) or min_face < 8):
            raise ConfigError(f"min_face must be a whole number of pixels, at least 8, got {min_face!r}")
        self.max_side = max_side
        self.min_face = min_face
        if not isinstance(turns, bool):
            raise ConfigError(f"turns must be true or false, got {turns!r}")
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)):
            raise ConfigError(f"confidence must be a number (the detector's own scale), got {confidence!r}")
        if sure is not None and (isinstance(sure, bool) or not isinstance(sure, (int, float))):
            raise ConfigError(f"sure must be a number (the detector's own scale) or none, got {sure!r}")
        self.turns = turns
        self.confidence = float(confidence)
        self.sure = self.SURE if sure is None else float(sure)
        self.upsample = upsample
        self.upsample_below = upsample_below
        self.large_face = large_face

    @abstractmethod
    def _find(self, image: np.ndarray, upsample: int) -> list[tuple[Any, float]]:
        """(dlib rectangle, confidence) pairs in the coordinates of ``image``."""

    def detect(self, image: np.ndarray) -> list[Face]:
        faces = self._detect_as_stored(image)
        if not faces and self.turns:
            for _, faces in turned(self._detect_as_stored, image):
                if faces:
                    break
        return faces

    def _detect_as_stored(self, image: np.ndarray) -> list[Face]:
        faces = [Face(box=box, score=score, landmarks=self.landmarks(image, box)) for box, score in self.locate(image)]
        sure = -np.inf if self.sure is None else self.sure
        faces.sort(key=lambda face: (face.score >= sure, face.box.area), reverse=True)
        return faces

    def locate(self, image: np.ndarray) -> list[tuple[Box, float]]:
        """The face boxes in ``image`` and the detector's confidence in each, without landmarks."""
        height, width = image.shape[:2]
        if self.min_face is not None:
            scale = NATIVE_FACE / self.min_face
            found = scaled_search(image, scale, self._native, native=NATIVE_FACE)
            if scale > 1:  # enlarged, HOG's pyramid may step past 1×, where a few faces are found only
                found = suppress(found + scaled_search(image, 1.0, self._native, native=NATIVE_FACE))
            boxes = [(_clip(Box(*(round(v) for v in box)), width, height), float(c)) for box, c in found]
            return [(box, confidence) for box, confidence in boxes if box.area > 0]
        small, scale = shrunk(image, self.max_side)
        found = []
        for rect, score in self._search(small):
            box = Box(
                round(rect.left() / scale),
                round(rect.top() / scale),
                round((rect.right() + 1) / scale),
                round((rect.bottom() + 1) / scale),
            )
            box = _clip(box, width, height)
            if box.area > 0:
                found.append((box, float(score)))
        return found

    def _native(self, image: np.ndarray) -> list[Found]:
        """Faces at ``image``'s own scale, boxes as ``(left, top, right, bottom)`` (exclusive)."""
        return [
            ((rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1), float(score)) for rect, score in self._find(image, 0)
        ]

    def _search(self, image: np.ndarray) -> list[tuple[Any, float]]:
        """Search once or twice, as ``upsample`` and ``large_face`` say."""
        if self.upsample is not None:
            return self._find(image, self.upsample)
        if max(image.shape[:2]) > self.upsample_below:
            return self._find(image, 0)
        if self.large_face is not None:
            found = self._find(image, 0)
            if any(rect.width() >= self.large_face * min(image.shape[:2]) for rect, _ in found):
                return found
        return self._find(image, 1)

    def landmarks(self, image: np.ndarray, box: Box) -> tuple[tuple[float, float], ...]:
        """dlib's 5 landmarks (eye corners and nose) of the face in ``box``, in image coordinates."""
        dlib = models.dlib()
        predictor = models.load("shape_predictor", LANDMARKS_5)
        shape = predictor(image, dlib.rectangle(box.left, box.top, box.right - 1, box.bottom - 1))
        return tuple((float(p.x), float(p.y)) for p in shape.parts())


def _clip(box: Box, width: int, height: int) -> Box:
    return Box(max(box.left, 0), max(box.top, 0), min(box.right, width), min(box.bottom, height))


@detectors.register("hog")
class HogDetector(DlibDetector):
    """dlib's HOG + linear SVM frontal face detector: about 30 ms per VGA image on one core."""

    name = "hog"
    SURE = 0.3  # 1st percentile 0.32 on LFW's centred faces

    def __init__(self, *, gray: bool = False, **options: Any) -> None:
        """``gray``: search a grayscale copy. dlib's HOG features of a colour image take the strongest
        of three channel gradients at every pixel; one channel is about 30% faster and found the same
        faces on the annotated scenes (``benchmarks/detect_speed.py``), but its slightly different
        boxes lowered LFW View 1 DevTest accuracy from 98.8% to 98.5%, so colour is the default.
        See ``max_side`` and ``upsample`` in :class:`DlibDetector`."""
        super().__init__(**options)
        if not isinstance(gray, bool):
            raise ConfigError(f"gray must be true or false, got {gray!r}")
        self.gray = gray

    def _find(self, image: np.ndarray, upsample: int) -> list[tuple[Any, float]]:
        detector = models.load("get_frontal_face_detector")
        if self.gray:
            image = np.asarray(Image.fromarray(image).convert("L"))
        rects, scores, _ = detector.run(np.ascontiguousarray(image), upsample, self.confidence)  # dlib misreads views
        return list(zip(rects, scores))


@detectors.register("cnn")
class CnnDetector(DlibDetector):
    """dlib's MMOD CNN detector: finds turned and partly hidden faces HOG misses; ~2 s per VGA image here."""

    name = "cnn"
    SURE = 0.9  # as cnn-onnx (same network and confidences)

    def _find(self, image: np.ndarray, upsample: int) -> list[tuple[Any, float]]:
        detector = models.load("cnn_face_detection_model_v1", "mmod_human_face_detector.dat")
        found = detector(np.ascontiguousarray(image), upsample)
        return [(face.rect, face.confidence) for face in found if face.confidence >= self.confidence]


@detectors.register("cnn-onnx")
class CnnOnnxDetector(DlibDetector):
    """dlib's MMOD CNN detector with its network run by onnxruntime: ``cnn``'s faces, boxes and
    confidences (tested equal on real photos), about fifteen times faster on one core.

    The network is converted from ``mmod_human_face_detector.dat`` on first use and cached (see
    :mod:`faceshot.detect.mmod_onnx`); the image pyramid, windows and suppression around it are
    dlib's, in numpy (:mod:`faceshot.detect.mmod`). Needs ``pip install onnxruntime onnx``.
    """

    name = "cnn-onnx"
    SURE = 0.9  # 1st percentile 1.01 on LFW's centred faces

    def __init__(
        self,
        *,
        threads: int | None = 1,
        cache_dir: str | Path | None = None,
        model_file: str | Path | None = None,
        **options: Any,
    ) -> None:
        """``threads``: cores onnxruntime may use for one image (default 1: the bulk workers run one
        detector per core; ``None``: the process's thread budget, :func:`faceshot.onnx_graphs.thread_budget`). ``cache_dir``: where the converted network is kept (default
        ``$XDG_CACHE_HOME/faceshot``). ``model_file``: another copy of ``mmod_human_face_detector.dat``.
        See ``max_side`` and ``upsample`` in :class:`DlibDetector`."""
        super().__init__(**options)
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        self.threads = threads
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.model_file = None if model_file is None else Path(model_file)
        self._network: mmod_onnx.MmodNetwork | None = None

    def _scores(self, tensor: np.ndarray) -> np.ndarray:
        return mmod_onnx.scores(tensor, threads=self.threads, source=self.model_file, directory=self.cache_dir)

    def _find(self, image: np.ndarray, upsample: int) -> list[tuple[Any, float]]:
        if self._network is None:
            self._network = mmod_onnx.read_detector(self.model_file)
        rectangle = models.dlib().rectangle
        found = mmod.detect(image, self._network, self._scores, upsample, self.confidence)
        return [(rectangle(*box), score) for box, score in found]
