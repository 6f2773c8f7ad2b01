"""``mtcnn``: the MTCNN cascade (Zhang et al. 2016), FaceNet's detector, on onnxruntime without torch.

Three small networks (:mod:`faceshot.detect.mtcnn_weights`; made once by ``faceshot models fetch
mtcnn``) run in turn, as facenet-pytorch 2.6.0's ``detect_face`` runs them:

1. **P-Net** slides over an image pyramid: the photo scaled by ``12 / min_face``, then by
   ``factor`` (0.709, about 1/√2) again and again while its shorter side is at least 12 px. Each
   output cell is a 12 px window (stride 2) with a face probability and a box regression; windows
   above ``p_threshold`` are kept, suppressed per scale (IoU 0.5), then across scales (0.7),
   moved by their regression and made square.
2. **R-Net** re-scores each candidate cut out and resized to 24×24 (keep above ``r_threshold``,
   suppress at IoU 0.7, regress, square).
3. **O-Net** at 48×48 gives the final probability (keep above ``confidence``), the box
   regression and five landmarks; a last suppression keeps boxes overlapping another by less than
   0.7 of the smaller one.

``Face.score`` (the detector's confidence) is O-Net's face probability, in [0, 1].

**Landmarks.** MTCNN's five points are the eye centres, the nose tip and the mouth corners
(``eyes-nose-mouth``); dlib's aligner and ResNet read dlib's five (eye corners and the base of the
nose). By default (``landmarks=dlib-5``) :meth:`MtcnnDetector.detect` places dlib's 5-point shape
predictor on each MTCNN box moved by a fitted adapter (:class:`~faceshot.detect.adapter.PointsDetector`);
``landmarks=eyes-nose-mouth`` gives MTCNN's own points, for aligners with that template.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from faceshot.detect import detectors
from faceshot.detect.adapter import BoxAdapter, PointsDetector
from faceshot.detect import mtcnn_weights
from faceshot.detect.search import Found, unscaled, scaled_search
from faceshot.errors import ConfigError
from faceshot.onnx_graphs import new_session
from faceshot.results import DLIB_5, Box

__all__ = ["MtcnnDetector", "Detection", "nms"]


@dataclass(frozen=True)
class Detection:
    """A face found by a detector with landmarks of its own (``mtcnn``, ``yunet``).

    ``box`` in the photo's pixels; ``confidence``: the detector's (MTCNN: O-Net's face probability;
    YuNet: its score; both 0–1); ``points``: the five landmarks ``(x, y)`` in the photo's pixels, in
    MTCNN's order: the eye centre on the image's left, the other eye centre, the nose tip, the mouth
    corner on the left, the other mouth corner.
    """

    box: Box
    confidence: float
    points: tuple[tuple[float, float], ...]


def in_photo(found: list[Found], width: int, height: int) -> list[Detection]:
    """``(box, confidence, points)`` items in a ``width`` × ``height`` photo's pixels as detections,
    boxes rounded and clipped to the photo; boxes left empty by clipping are dropped."""
    detections = []
    for (x1, y1, x2, y2), confidence, points in found:
        box = Box(max(round(x1), 0), max(round(y1), 0), min(round(x2), width), min(round(y2), height))
        if box.area > 0:
            detections.append(Detection(box, float(confidence), tuple((float(x), float(y)) for x, y in points)))
    return detections


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression: indices of the boxes kept, highest score first.

    ``boxes``: ``float [N, 4]`` (x1, y1, x2, y2). A box is dropped when its overlap with a kept box,
    divided by the union (``mode="union"``, as torchvision's ``nms``, which facenet-pytorch uses in
    its first two stages) or by the smaller box (``"min"``, its last stage, which counts a box's
    pixels inclusively: ``x2 − x1 + 1`` wide), exceeds ``threshold``.
    """
    order = np.argsort(-scores, kind="stable")
    one = 1.0 if mode == "min" else 0.0
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2] + one, boxes[:, 3] + one
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        if mode == "min":
            overlap = inter / np.maximum(np.minimum(area[i], area[rest]), 1e-12)
        else:
            overlap = inter / np.maximum(area[i] + area[rest] - inter, 1e-12)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Each box made square around its centre, its side the longer of its two (facenet-pytorch's rerec)."""
    boxes = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    boxes[:, 0] += w * 0.5 - side * 0.5
    boxes[:, 1] += h * 0.5 - side * 0.5
    boxes[:, 2] = boxes[:, 0] + side
    boxes[:, 3] = boxes[:, 1] + side
    return boxes


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Move each box's sides by its regression, in units of its size (facenet-pytorch's bbreg)."""
    boxes = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, :4] += reg[:, :4] * np.stack([w, h, w, h], axis=1)
    return boxes


def _normalise(pixels: np.ndarray) -> np.ndarray:
    """``[N, H, W, 3]`` pixel values → ``float32 [N, 3, H, W]`` of ``(pixel − 127.5) / 128``."""
    return ((pixels.astype(np.float32) - 127.5) * 0.0078125).transpose(0, 3, 1, 2)


def _spans(size: np.ndarray | int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last-plus-one input cell each of ``out`` output cells averages, for inputs of
    ``size`` cells (an int, or an array of sizes ``[K]`` giving ``[K, out]``).

    Cell i averages floor(i·size/out) up to ceil((i+1)·size/out): torch's adaptive average pooling,
    which its "area" resampling (facenet-pytorch's ``imresample``) is, shrinking or enlarging.
    """
    size = np.asarray(size)[..., None]
    i = np.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)


def _integral(image: np.ndarray) -> np.ndarray:
    """The summed-area table of ``image`` ``[H, W, 3]``: ``float64 [H + 1, W + 1, 3]``, exact for any photo."""
    table = np.zeros((image.shape[0] + 1, image.shape[1] + 1, image.shape[2]), np.float64)
    np.cumsum(image, axis=0, dtype=np.float64, out=table[1:, 1:])
    np.cumsum(table[1:, 1:], axis=1, out=table[1:, 1:])
    return table


def _area(table: np.ndarray, rows: tuple[np.ndarray, np.ndarray], columns: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Mean pixel of each (row span × column span) from the summed-area ``table``: ``float32 [..., h, w, 3]``."""
    (r0, r1), (c0, c1) = rows, columns
    r0, r1, c0, c1 = r0[..., :, None], r1[..., :, None], c0[..., None, :], c1[..., None, :]
    total = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
    return (total / ((r1 - r0) * (c1 - c0))[..., None]).astype(np.float32)


def _resize(table: np.ndarray, height: int, width: int) -> np.ndarray:
    """The image of the summed-area ``table``, area-resampled to ``height`` × ``width``: ``float32 [h, w, 3]``."""
    return _area(table, _spans(table.shape[0] - 1, height), _spans(table.shape[1] - 1, width))


def _crops(table: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """The part of the image in each box (cut at its edges, as facenet-pytorch's ``pad`` does),
    area-resampled to ``size`` × ``size``: ``float32 [K, size, size, 3]``. ``table``: the image's
    summed-area table."""
    height, width = table.shape[0] - 1, table.shape[1] - 1
    b = np.trunc(boxes[:, :4]).astype(np.int64)
    # facenet-pytorch's pad: 1-based corners clipped to the image, then the slice [y − 1, ey).
    x0, y0 = np.maximum(b[:, 0], 1) - 1, np.maximum(b[:, 1], 1) - 1
    x1, y1 = np.minimum(b[:, 2], width), np.minimum(b[:, 3], height)
    empty = (x1 <= x0) | (y1 <= y0)
    x1, y1 = np.where(empty, x0 + 1, x1), np.where(empty, y0 + 1, y1)
    rows = tuple(y0[:, None] + s for s in _spans(y1 - y0, size))
    columns = tuple(x0[:, None] + s for s in _spans(x1 - x0, size))
    out = _area(table, rows, columns)  # type: ignore[arg-type]
    out[empty] = 127.5  # a box outside the image: a blank crop (0 once normalised)
    return out


@detectors.register("mtcnn")
class MtcnnDetector(PointsDetector):
    """MTCNN (P-Net, R-Net, O-Net) on onnxruntime: faces, their confidence and five landmarks.

    Its graphs are made once by ``faceshot models fetch mtcnn`` (a :class:`ModelError` naming that
    command is raised on first use when they are missing). Picklable: the sessions are started
    lazily in each process.
    """

    #: Fitted on 596 LFW DevTrain faces: dlib's points on the adapted box are a median 0.40 px from
    #: those on HOG's box on DevTest (0.97 px on MTCNN's own box). ``benchmarks/fit_box_adapter.py``.
    ADAPTER = BoxAdapter(dx=0.0385, dy=0.0749, sx=1.1170, sy=0.8455)

    name = "mtcnn"

    def __init__(
        self,
        *,
        min_face: int = 20,
        factor: float = 0.709,
        confidence: float = 0.7,
        p_threshold: float = 0.6,
        r_threshold: float = 0.7,
        max_side: int = 2000,
        threads: int | None = 1,
        cache_dir: str | Path | None = None,
        landmarks: str = DLIB_5,
    ) -> None:
        """``min_face``: the smallest face looked for, in the photo's pixels, whatever its size
        (default 20, facenet-pytorch's); smaller finds smaller faces and costs more (the pyramid
        starts larger). The same meaning as the dlib detectors' and ``yunet``'s ``min_face``. ``factor``: the
        scale from one pyramid level to the next (0.709, the paper's). ``confidence``: the O-Net
        face probability a face needs (``Face.score``); ``p_threshold``, ``r_threshold``: what
        P-Net and R-Net need to pass a candidate on. Defaults (0.6, 0.7, 0.7) are
        facenet-pytorch's; lower finds more faces and more false ones. ``max_side``: the longest
        side searched at once (2,000 px: the search keeps a float64 summed-area table of what it
        searches, 24 bytes a pixel). A larger photo is searched on a copy downscaled to it when that
        copy still shows faces of ``min_face`` at 12 px or more, else at the scale ``12 / min_face``
        in overlapping tiles of this size (see :meth:`locate`).
        ``threads``: onnxruntime threads per session (default 1: bulk workers run one detector per
        core; ``None``: the process's thread budget). ``cache_dir``: where ``faceshot models fetch
        mtcnn --cache-dir`` wrote the graphs (default ``$XDG_CACHE_HOME/faceshot``).
        ``landmarks``: the scheme :meth:`detect` gives (see the module).
        Raises :class:`ConfigError` for a value out of range."""
        if isinstance(min_face, bool) or not isinstance(min_face, int) or min_face < 12:
            raise ConfigError(f"min_face must be a whole number of pixels, at least 12 (P-Net's window), got {min_face!r}")
        if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 48:
            raise ConfigError(f"max_side must be a whole number of pixels, at least 48, got {max_side!r}")
        if not 0.1 <= factor < 1:
            raise ConfigError(f"factor must be in [0.1, 1), got {factor}")
        thresholds = (float(p_threshold), float(r_threshold), float(confidence))
        if not all(0 <= t < 1 for t in thresholds):
            raise ConfigError(f"confidence, p_threshold and r_threshold are face probabilities in [0, 1), got {thresholds}")
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        self.min_face = min_face
        self.factor = factor
        self._choose_scheme(landmarks)
        self.max_side = max_side
        self.thresholds = thresholds
        self.threads = threads
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._sessions: dict[str, Any] = {}
        self._pid = 0

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_sessions"], state["_pid"] = {}, 0  # sessions are started again in each process
        return state

    def _run(self, network: str, batch: np.ndarray) -> list[np.ndarray]:
        if self._pid != os.getpid():  # a forked child must not use its parent's sessions
            self._sessions, self._pid = {}, os.getpid()
        session = self._sessions.get(network)
        if session is None:
            data = mtcnn_weights.onnx_model(network, self.cache_dir)
            session = new_session(data, self.threads, what=f"MTCNN's {network}")
            self._sessions[network] = session
        return session.run(None, {"image": np.ascontiguousarray(batch)})

    def check(self) -> None:
        """Start the three sessions now: a :class:`ModelError` naming the fetch command if a graph is missing."""
        for network, side in (("pnet", 12), ("rnet", 24), ("onet", 48)):
            self._run(network, np.zeros((1, 3, side, side), np.float32))

    def scales(self, height: int, width: int, min_face: float | None = None) -> list[float]:
        """The pyramid's scales for a photo of that size: ``12 / min_face · factor^k`` while the scaled
        shorter side is at least 12 px."""
        first = 12.0 / (min_face or self.min_face)
        scale, side, found = first, min(height, width) * first, []
        while side >= 12:
            found.append(scale)
            scale, side = scale * self.factor, side * self.factor
        return found

    def locate(self, image: np.ndarray) -> list[Detection]:
        """Every face MTCNN finds in the RGB ``uint8 [H, W, 3]`` ``image``, surest first: box,
        confidence and MTCNN's five landmarks, in the image's pixels.

        Faces of ``min_face`` pixels and larger are found in a photo of any size: when the pyramid's
        first level (the photo scaled by ``12 / min_face``) is longer than ``max_side``, the photo is
        searched at that scale in overlapping tiles of ``max_side`` pixels plus coarser passes for
        the larger faces (:func:`faceshot.detect.search.scaled_search`), instead of on one copy
        downscaled to ``max_side``."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ConfigError(f"MTCNN needs an RGB uint8 image [H, W, 3], got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        first = 12.0 / self.min_face  # the pyramid's first scale: a face of min_face px becomes P-Net's 12 px window
        if max(height, width) * first > self.max_side:
            found = scaled_search(image, first, lambda tile: self._cascade(tile, 12.0), native=12, tile=self.max_side)
        else:
            scale = min(1.0, self.max_side / max(height, width))
            small = image
            if scale < 1.0:  # a box filter: each pixel of the copy averages those it covers
                size = (max(1, round(width * scale)), max(1, round(height * scale)))
                small = np.asarray(Image.fromarray(image).resize(size, Image.BOX))
            # min_face * scale >= 12 here: the copy still shows a face of min_face px at 12 px or more
            found = [unscaled(item, scale, 0, 0) for item in self._cascade(small, self.min_face * scale)]
        return in_photo(found, width, height)

    def _cascade(self, image: np.ndarray, min_face: float) -> list[Found]:
        """The three stages on ``image`` as it is, the pyramid starting where a face of ``min_face``
        pixels is 12: ``(box, confidence, points)`` in ``image``'s pixels, surest first."""
        table = _integral(image)  # every resampling below reads it: the pyramid and the crops
        boxes = self._propose(table, max(12.0, min_face))
        if len(boxes):
            boxes = self._refine(table, boxes)
        if not len(boxes):
            return []
        boxes, points = self._output(table, boxes)
        return [(tuple(float(v) for v in row[:4]), float(row[4]), tuple((float(x), float(y)) for x, y in pts))
                for row, pts in zip(boxes, points)]

    def _propose(self, table: np.ndarray, min_face: float) -> np.ndarray:
        """Stage 1: P-Net over the pyramid. ``[K, 5]`` boxes (x1, y1, x2, y2, probability), squared."""
        height, width = table.shape[0] - 1, table.shape[1] - 1
        stride, cell = 2, 12
        candidates = []
        for scale in self.scales(height, width, min_face):
            level = _resize(table, int(height * scale + 1), int(width * scale + 1))
            reg, prob = self._run("pnet", _normalise(level[None]))
            face = prob[0, 1]
            ys, xs = np.nonzero(face >= self.thresholds[0])
            if not len(ys):
                continue
            start = np.stack([xs, ys], axis=1).astype(np.float32)
            q1 = np.floor((stride * start + 1) / scale)
            q2 = np.floor((stride * start + cell) / scale)
            found = np.concatenate([q1, q2, face[ys, xs][:, None], reg[0][:, ys, xs].T], axis=1)
            candidates.append(found[nms(found[:, :4], found[:, 4], 0.5)])
        if not candidates:
            return np.zeros((0, 5), np.float32)
        boxes = np.concatenate(candidates)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        moved = boxes[:, :4] + boxes[:, 5:9] * np.stack([w, h, w, h], axis=1)
        return _square(np.concatenate([moved, boxes[:, 4:5]], axis=1))

    def _refine(self, table: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Stage 2: R-Net on 24×24 crops. The boxes it keeps, regressed and squared."""
        reg, prob = self._run("rnet", _normalise(_crops(table, boxes, 24)))
        keep = prob[:, 1] > self.thresholds[1]
        boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], axis=1)
        reg = reg[keep]
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
        return _square(_regress(boxes[pick], reg[pick]))

    def _output(self, table: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stage 3: O-Net on 48×48 crops. Final boxes ``[K, 5]`` and landmarks ``[K, 5, 2]``."""
        reg, marks, prob = self._run("onet", _normalise(_crops(table, boxes, 48)))
        keep = prob[:, 1] > self.thresholds[2]
        boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], axis=1)
        reg, marks = reg[keep], marks[keep]
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        points = np.stack([w * marks[:, :5] + boxes[:, 0:1] - 1, h * marks[:, 5:] + boxes[:, 1:2] - 1], axis=2)
        boxes = _regress(boxes, reg)
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7, mode="min")
        return boxes[pick], points[pick]

    def __repr__(self) -> str:
        return f"MtcnnDetector(min_face={self.min_face}, factor={self.factor}, thresholds={self.thresholds}, max_side={self.max_side})"
