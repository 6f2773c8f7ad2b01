"""``yunet:model=PATH``: OpenCV Zoo's YuNet face detector (MIT), from a file the user supplies.

faceshot does not ship YuNet; ``model`` names the user's ONNX file (OpenCV Zoo's
``face_detection_yunet_2023mar.onnx`` or a re-export of it with symbolic height and width). It runs
on onnxruntime; the output decoding is OpenCV's ``FaceDetectorYN`` (``face_detect.cpp``, 4.8+):

- the input is the photo as BGR ``float32 [1, 3, H, W]`` pixel values 0–255, zero-padded on the
  right and bottom to multiples of 32; photos whose longer side exceeds ``max_side`` are searched on
  a copy downscaled to it, and the boxes mapped back (with ``min_face``: at the scale that makes
  such a face :data:`NATIVE_FACE` pixels, in tiles of ``max_side`` when larger; see
  :mod:`faceshot.detect.search`);
- for each stride s in 8, 16, 32 and each cell (row i, column j) of the ``H/s × W/s`` grid, outputs
  ``cls_s``, ``obj_s`` (clipped to [0, 1]) give the confidence ``√(cls · obj)``; ``bbox_s`` the box
  centre ``((j + dx)·s, (i + dy)·s)`` and size ``(e^dw·s, e^dh·s)``; ``kps_s`` five points
  ``((j + kx)·s, (i + ky)·s)``: the eye centres, the nose tip and the mouth corners;
- boxes at or above ``confidence`` are kept and suppressed at IoU 0.3 (OpenCV's defaults).

``Face.score`` is that confidence, in [0, 1]. Its useful range is not OpenCV's default threshold of
0.9: its real faces score about 0.9–0.95, and 0.7 is the default (see ``confidence`` in
:class:`YunetDetector`).

**Landmarks.** As with ``mtcnn``, YuNet's five points (``eyes-nose-mouth``) are not dlib's: by
default :meth:`YunetDetector.detect` places dlib's 5-point predictor on each box moved by a fitted
adapter; ``landmarks=eyes-nose-mouth`` gives YuNet's own points.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from faceshot.detect import detectors
from faceshot.detect.adapter import BoxAdapter, PointsDetector
from faceshot.detect.dlib_detectors import shrunk
from faceshot.detect.mtcnn import Detection, in_photo, nms
from faceshot.detect.search import Found, scaled_search, unscaled
from faceshot.errors import ConfigError, ModelError
from faceshot.onnx_graphs import new_session
from faceshot.results import DLIB_5

__all__ = ["YunetDetector"]

STRIDES = (8, 16, 32)
#: The smallest face (dlib HOG box width, pixels) YuNet finds reliably in the image it is given:
#: 60 LFW faces shrunk to 12 / 16 / 20 / 24 px were found in 23 / 53 / 59 / 60 of them. ``min_face``
#: scales the photo so its faces of that size become this size.
NATIVE_FACE = 24
_OUTPUTS = [f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in STRIDES]


@detectors.register("yunet")
class YunetDetector(PointsDetector):
    """YuNet on onnxruntime: faces, their confidence and five landmarks. Picklable: the session is
    started lazily in each process."""

    #: Fitted on 597 LFW DevTrain faces: dlib's points on the adapted box are a median 0.40 px from
    #: those on HOG's box on DevTest (0.97 px on YuNet's own box). ``benchmarks/fit_box_adapter.py``.
    ADAPTER = BoxAdapter(dx=0.0330, dy=0.0659, sx=1.1170, sy=0.8389)

    name = "yunet"

    def __init__(
        self,
        *,
        model: str | Path | None = None,
        confidence: float = 0.7,
        max_side: int = 640,
        min_face: int | None = None,
        nms_iou: float = 0.3,
        threads: int | None = 1,
        landmarks: str = DLIB_5,
    ) -> None:
        """``model``: the YuNet ONNX file (required: faceshot does not ship it). ``confidence``: the
        confidence a face needs. Default 0.7, measured (BENCHMARKS.md, "MTCNN and YuNet"): the surest
        face of every LFW photo scored 0.90–0.95, so OpenCV's default of 0.9 lost a sixth of the
        annotated faces in group photos; at 0.7 every annotated face was found with no false one
        among them, and 1 of 22 non-face photos gave a detection (3 at 0.5, 7 at 0.3).
        ``max_side``: larger photos are searched on a copy downscaled to this many pixels (default
        640: YuNet's boxes grow from 8–32 px cells, and it is trained on photos of about that size;
        faces smaller than about 20 px in the copy are missed; with ``min_face``, the tile size).
        ``min_face``: the smallest face to find, in the photo's pixels, whatever its size (the same
        meaning as the other detectors' ``min_face``): the photo is searched at the scale that
        makes such a face :data:`NATIVE_FACE` px (shrunk for large faces, enlarged for small ones),
        in overlapping tiles of ``max_side`` when that is larger, plus coarser passes for the larger
        faces. ``None`` (default): the rule above, about 24 px in photos up to 640 px and
        ``24 · longer side / 640`` beyond. ``nms_iou``: boxes overlapping a
        surer one by more than this are dropped (0.3, OpenCV's). ``threads``: onnxruntime threads
        (default 1; ``None``: the process's thread budget). ``landmarks``: the scheme
        :meth:`detect` gives (see the module). Raises :class:`ConfigError` for a
        missing model or a value out of range."""
        if model is None:
            raise ConfigError("yunet needs its model file: yunet:model=PATH (OpenCV Zoo's face_detection_yunet_2023mar.onnx)")
        if not 0 <= confidence < 1:
            raise ConfigError(f"confidence must be in [0, 1), got {confidence}")
        if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 32:
            raise ConfigError(f"max_side must be a whole number of pixels, at least 32, got {max_side!r}")
        if min_face is not None and (isinstance(min_face, bool) or not isinstance(min_face, int) or min_face < 8):
            raise ConfigError(f"min_face must be a whole number of pixels, at least 8, got {min_face!r}")
        if not 0 < nms_iou <= 1:
            raise ConfigError(f"nms_iou must be in (0, 1], got {nms_iou}")
        if threads is not None and threads < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        self._choose_scheme(landmarks)
        self.model = Path(model)
        self.confidence = float(confidence)
        self.max_side = max_side
        self.min_face = min_face
        self.nms_iou = float(nms_iou)
        self.threads = threads
        self._session: Any = None
        self._pid = 0

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_session"], state["_pid"] = None, 0  # started again in each process
        return state

    def check(self) -> None:
        """Open the model now: a :class:`ModelError` if its file is missing or not YuNet."""
        self._start()

    def _start(self) -> None:
        if self._session is None or self._pid != os.getpid():
            try:
                data = self.model.read_bytes()
            except OSError as exc:
                raise ModelError(f"cannot read the YuNet model {self.model}: {exc.strerror or exc}") from None
            session = new_session(data, self.threads, what=f"YuNet ({self.model.name})")
            names = [output.name for output in session.get_outputs()]
            if sorted(names) != sorted(_OUTPUTS) or len(session.get_inputs()) != 1:
                raise ModelError(f"{self.model} is not a YuNet face detector: its outputs are {', '.join(names)}, "
                                 f"not {', '.join(_OUTPUTS)}")
            self._session, self._pid = session, os.getpid()

    def _run(self, blob: np.ndarray) -> dict[str, np.ndarray]:
        self._start()
        outputs = self._session.run(_OUTPUTS, {self._session.get_inputs()[0].name: blob})
        return dict(zip(_OUTPUTS, outputs))

    def locate(self, image: np.ndarray) -> list[Detection]:
        """Every face YuNet finds in the RGB ``uint8 [H, W, 3]`` ``image``, surest first: box,
        confidence and YuNet's five landmarks (eye centres, nose tip, mouth corners), in the
        image's pixels."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ConfigError(f"YuNet needs an RGB uint8 image [H, W, 3], got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        if self.min_face is None:
            small, scale = shrunk(image, self.max_side)
            found = [unscaled(item, scale, 0, 0) for item in self._decode(small)]
        else:
            found = scaled_search(image, NATIVE_FACE / self.min_face, self._decode, native=NATIVE_FACE, tile=self.max_side)
        return in_photo(found, width, height)

    def _decode(self, small: np.ndarray) -> list[Found]:
        """YuNet on ``small`` as it is: ``(box, confidence, points)`` in its pixels, surest first."""
        h, w = small.shape[:2]
        padded_h, padded_w = -(-h // 32) * 32, -(-w // 32) * 32
        blob = np.zeros((1, 3, padded_h, padded_w), np.float32)
        blob[0, :, :h, :w] = small[:, :, ::-1].transpose(2, 0, 1)  # BGR, as OpenCV reads photos
        out = self._run(blob)

        boxes, scores, points = [], [], []
        for s in STRIDES:
            rows, cols = padded_h // s, padded_w // s
            i, j = np.divmod(np.arange(rows * cols), cols)
            cls = np.clip(out[f"cls_{s}"][0, :, 0], 0, 1)
            obj = np.clip(out[f"obj_{s}"][0, :, 0], 0, 1)
            score = np.sqrt(cls * obj)
            keep = score >= self.confidence
            if not keep.any():
                continue
            bbox, kps, i, j = out[f"bbox_{s}"][0][keep], out[f"kps_{s}"][0][keep], i[keep], j[keep]
            cx, cy = (j + bbox[:, 0]) * s, (i + bbox[:, 1]) * s
            bw, bh = np.exp(bbox[:, 2]) * s, np.exp(bbox[:, 3]) * s
            boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1))
            scores.append(score[keep])
            points.append(np.stack([(kps[:, 0::2] + j[:, None]) * s, (kps[:, 1::2] + i[:, None]) * s], axis=2))
        if not boxes:
            return []
        all_boxes, all_scores, all_points = np.concatenate(boxes), np.concatenate(scores), np.concatenate(points)
        return [
            (tuple(float(v) for v in all_boxes[k]), float(all_scores[k]), tuple((float(x), float(y)) for x, y in all_points[k]))
            for k in nms(all_boxes, all_scores, self.nms_iou)
        ]

    def __repr__(self) -> str:
        return f"YunetDetector(model={str(self.model)!r}, confidence={self.confidence}, max_side={self.max_side}, min_face={self.min_face})"
