"""How a photo is searched for faces, whatever the detector: at which scale, in which tiles, turned.

A detector sees faces down to a *native* size (dlib's HOG and MMOD: windows of about 80 pixels).
To find faces of ``min_face`` pixels in the photo, the photo is searched at the scale that makes
them native size: enlarged for small faces (a group photo), shrunk for large ones (a 24-megapixel
portrait). A scaled photo larger than a tile is searched in overlapping tiles, which find every
face up to the overlap, plus one coarser pass over the whole photo for the larger faces (searched
the same way, so a panorama at any size is a bounded amount of memory per step). Faces found
twice (in two tiles, or a tile and the coarse pass) are merged by box overlap.

Photos stored sideways (a phone's turn recorded only in an EXIF tag some programs strip) are
searched turned by 90°, 270° and 180° when the photo as stored has no face (:func:`turned`).

Every box and landmark returned is in the original photo's pixels.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
from PIL import Image

from faceshot.results import Box, Face

__all__ = ["Found", "scaled_search", "suppress", "tiles", "turned", "unscaled", "TURNS"]

#: ``(left, top, right, bottom)`` in pixels of the image searched (floats), and the confidence;
#: optionally a third item, the detector's own landmarks ``((x, y), ...)`` in the same pixels
#: (``mtcnn``, ``yunet``), which :func:`scaled_search` maps back with the box.
Found = tuple  # (box, confidence) or (box, confidence, points)

#: Turned copies tried in order (clockwise degrees → ``np.rot90`` quarter turns): phones' most
#: common sideways turn first.
TURNS = ((90, 3), (270, 1), (180, 2))


def tiles(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``length`` with at least ``overlap``
    pixels shared by neighbours (one tile at 0 when the length fits)."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    count = int(np.ceil((length - tile) / stride)) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def _resized(image: np.ndarray, scale: float) -> np.ndarray:
    if abs(scale - 1.0) < 1e-6:
        # A tile is a view into the photo, its rows apart in memory; dlib's detectors read such a
        # view wrongly (HOG found a face in 1 of 5 runs on the same tile, 5 of 5 on a copy).
        return np.ascontiguousarray(image)
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    method = Image.BILINEAR if scale < 1 else Image.BICUBIC
    return np.asarray(Image.fromarray(image).resize(size, method))


def scaled_search(
    image: np.ndarray,
    scale: float,
    find: Callable[[np.ndarray], list[Found]],
    *,
    native: int,
    tile: int = 2048,
) -> list[Found]:
    """Faces ``find`` sees in ``image`` searched at ``scale``, boxes in ``image``'s pixels.

    ``find`` searches an image as it is and returns boxes in its pixels; ``native``: the smallest
    face it sees (pixels); ``tile``: the largest side it is given at once (pixels). When the scaled
    photo is larger, tiles overlapping by ``4 * native`` find faces up to that size and a pass at
    ``scale / 4`` finds the larger ones.
    """
    height, width = image.shape[:2]
    if max(height, width) * scale <= tile:
        return [unscaled(item, scale, 0, 0) for item in find(_resized(image, scale))]
    overlap = 4 * native
    span = tile / scale  # a tile's side in the photo's pixels
    found: list[Found] = []
    for top in tiles(round(height * scale), tile, overlap):
        for left in tiles(round(width * scale), tile, overlap):
            x0, y0 = left / scale, top / scale
            crop = image[int(y0) : int(np.ceil(y0 + span)), int(x0) : int(np.ceil(x0 + span))]
            for item in find(_resized(crop, scale)):
                (l, t, r, b) = item[0]
                if max(r - l, b - t) <= overlap:  # larger ones may be cut here: the coarse pass has them
                    found.append(unscaled(item, scale, int(x0), int(y0)))
    coarse = scaled_search(image, scale / 4, find, native=native, tile=tile)
    found += [item for item in coarse if max(item[0][2] - item[0][0], item[0][3] - item[0][1]) * scale > overlap]
    return suppress(found)


def unscaled(item: Found, scale: float, x0: int, y0: int) -> Found:
    """``item`` found in a copy scaled by ``scale`` of the part of the photo starting at ``(x0, y0)``,
    in the photo's pixels."""
    (l, t, r, b), confidence = item[0], item[1]
    box = (l / scale + x0, t / scale + y0, r / scale + x0, b / scale + y0)
    if len(item) < 3:
        return (box, confidence)
    return (box, confidence, tuple((x / scale + x0, y / scale + y0) for x, y in item[2]))


def suppress(found: list[Found], iou: float = 0.4) -> list[Found]:
    """``found`` without boxes overlapping a more confident one by more than ``iou``."""
    kept: list[Found] = []
    for item in sorted(found, key=lambda item: -item[1]):
        if all(_iou(item[0], other[0]) <= iou for other in kept):
            kept.append(item)
    return kept


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    overlap = width * height if width > 0 and height > 0 else 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap
    return overlap / union if union > 0 else 0.0


def turned(detect: Callable[[np.ndarray], list[Face]], image: np.ndarray) -> Iterator[tuple[int, list[Face]]]:
    """For each turn in :data:`TURNS`: ``(degrees clockwise, faces found in the turned copy)``, with
    boxes and landmarks mapped back to ``image``'s pixels. Lazy: stop at the first turn with faces."""
    height, width = image.shape[:2]
    for degrees, quarter_turns in TURNS:
        faces = detect(np.ascontiguousarray(np.rot90(image, quarter_turns)))
        yield degrees, [_unturn(face, quarter_turns, width, height) for face in faces]


def _unturn(face: Face, quarter_turns: int, width: int, height: int) -> Face:
    """``face`` found in ``np.rot90(image, quarter_turns)``, in ``image``'s pixels (width × height)."""

    def point(x: float, y: float) -> tuple[float, float]:
        # np.rot90 turns counter-clockwise: a point (x, y) of a W-wide image goes to (y, W - x) in
        # the turned copy, whose height is W. Undo one quarter turn at a time.
        w, h = (height, width) if quarter_turns % 2 else (width, height)  # the turned copy's size
        for _ in range(quarter_turns % 4):
            x, y = h - y, x
            w, h = h, w
        return x, y

    corners = [point(face.box.left, face.box.top), point(face.box.right, face.box.bottom)]
    xs, ys = [c[0] for c in corners], [c[1] for c in corners]
    box = Box(round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys)))
    points = tuple((float(px), float(py)) for px, py in (point(x, y) for x, y in face.landmarks))
    return Face(box=box, score=face.score, landmarks=points, scheme=face.scheme)
