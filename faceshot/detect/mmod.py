"""dlib's MMOD detection around its network, in numpy: the image pyramid, the windows, the suppression.

What ``dlib.cnn_face_detection_model_v1(image, upsample)`` does, step by step, so that the network
can run elsewhere (:mod:`faceshot.detect.mmod_onnx`) and still give dlib's boxes:

1. **upsample**: double the image ``upsample`` times with dlib's ``pyramid_up`` (bilinear; an image of
   H×W rows and columns becomes (2H+1)×(2W+2), the size dlib's ``pyramid_down<2>`` maps back to H×W);
2. **tiled pyramid** (``input_rgb_image_pyramid``): the image as ``(pixel − mean) / 256`` and copies
   each 5/6 the size of the one before (down to 5 rows), packed into one zero-filled image — the
   first column of tiles from the top, the rest back up from the bottom right — with ``padding``
   zeros between tiles and ``outer_padding`` around them. The network sees every scale in one run;
   since its view (about 190 pixels) crosses the padding, tiles seen one at a time would score
   differently near their edges;
3. **windows**: every output position scoring above 0 is a detection: the detector window (80×80 for
   dlib's face model), centred on the input pixel the position looks at, mapped back from the tile
   it falls in to the image (each level up multiplies coordinates by 6/5 and adds 0.3);
4. **non-max suppression**: from the highest score down, a box is kept unless it overlaps one kept
   already (``test_box_overlap``: intersection over the box bounding both above ``nms_iou``, or more
   than ``nms_percent_covered`` of either box covered);
5. boxes of an upsampled image are mapped back (``x / 2 − 1.25``, ``y / 2 − 0.75`` per doubling) and
   rounded, as dlib rounds its rectangles.

Boxes are ``(left, top, right, bottom)`` with right and bottom *inclusive*, as dlib's rectangles.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from faceshot.detect.mmod_onnx import MmodNetwork

__all__ = ["Rect", "upsample", "pyramid_layout", "tiled_pyramid", "detections", "suppress", "detect"]

Rect = tuple[int, int, int, int]  # left, top, right, bottom, inclusive
_MIN_LEVEL_ROWS = 5


# --- resizing as dlib does -----------------------------------------------------------------------


def _columns(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Source column and fraction for each output column of dlib's bilinear ``resize_image``.

    dlib samples output column ``c`` at ``c·(n_in − 1)/(n_out − 1)``; its vectorised loop steps four
    columns at a time in float32, so positions drift from the exact product by float rounding. The
    same float32 steps are taken here (columns the loop leaves to its scalar tail are exact), which
    makes the resized pixels dlib's to within a float rounding.
    """
    scale = (n_in - 1) / max(n_out - 1, 1)
    groups = n_out // 4 + 1
    step = np.float32(4 * scale)
    lanes = np.empty(groups * 4, dtype=np.float32)
    for lane in range(4):
        sequence = np.full(groups + 1, step, dtype=np.float32)
        sequence[0] = np.float32(-4 * scale + lane * scale)
        lanes[lane::4] = np.add.accumulate(sequence, dtype=np.float32)[1:]
    # The vector loop stops at the first group whose last column's right neighbour is off the image.
    outside = np.nonzero(lanes[3::4].astype(np.int64) + 1 >= n_in)[0]
    vector = min((int(outside[0]) if len(outside) else groups) * 4, n_out)
    position = np.concatenate([lanes[:vector].astype(np.float64), np.arange(vector, n_out) * scale])
    left = np.floor(position).astype(np.int64)
    return left, (position - left).astype(np.float32)


def _resize(image: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """dlib's bilinear ``resize_image`` of a float32 ``(channels, rows, columns)`` array.

    Each output pixel is ``tl·w_tl + tr·w_tr + bl·w_bl + br·w_br``, summed in that order in float32
    with the weights multiplied first, as dlib's vectorised loop does.
    """
    n_rows, n_columns = image.shape[1:]
    y = np.arange(rows) * ((n_rows - 1) / max(rows - 1, 1))
    top = np.floor(y).astype(np.int64)
    down = (y - top).astype(np.float32)[:, None]
    left, across = _columns(n_columns, columns)
    bottom, right = np.minimum(top + 1, n_rows - 1), np.minimum(left + 1, n_columns - 1)
    stay_row, stay_column = np.float32(1) - down, np.float32(1) - across[None, :]
    upper, lower = np.take(image, top, axis=1), np.take(image, bottom, axis=1)
    out = np.take(upper, left, axis=2)
    out *= stay_row * stay_column
    for rows_from, columns_from, weight in ((upper, right, stay_row * across), (lower, left, down * stay_column),
                                            (lower, right, down * across)):
        term = np.take(rows_from, columns_from, axis=2)
        term *= weight
        out += term
    return out


def upsample(image: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_up`` with ``pyramid_down<2>``: an H×W RGB ``uint8`` image to (2H+1)×(2W+2)."""
    rows, columns = image.shape[:2]
    planes = np.ascontiguousarray(np.moveaxis(image, 2, 0), dtype=np.float32)
    bigger = _resize(planes, 2 * rows + 1, 2 * columns + 2)
    return np.ascontiguousarray(np.moveaxis(bigger, 0, 2).astype(np.uint8))  # dlib truncates


def _unsample(value: float, levels: int, shift: float) -> float:
    for _ in range(levels):
        value = value / 2 - shift
    return value


# --- the tiled pyramid ---------------------------------------------------------------------------


def pyramid_layout(rows: int, columns: int, step: int, padding: int, outer_padding: int) -> tuple[list[Rect], int, int]:
    """Where each pyramid level lies in the tiled image, and the tiled image's rows and columns.

    dlib's ``compute_tiled_image_pyramid_details``: level sizes shrink by ``(step − 1)/step``
    (rounded down) until fewer than 5 rows remain; levels go down the left edge until the rest fit
    beside them, then back up from the bottom right, stopping before one would overlap the image.
    """
    if rows * columns == 0:
        return [], 0, 0
    rate = (step - 1.0) / step
    sizes = [(columns, rows)]
    while True:
        rows, columns = math.floor(rate * rows), math.floor(rate * columns)
        if rows * columns == 0 or rows < _MIN_LEVEL_ROWS:
            break
        sizes.append((columns, rows))
    width, first_height = sizes[0]
    total = sum(h + padding for _, h in sizes) - 2 * padding
    height = previous_width = 0
    for w, h in sizes:
        if w <= width - previous_width - padding and (height - first_height) * 2 >= total - first_height:
            break
        height += h + padding
        previous_width = w
    height -= padding

    rects: list[Rect] = []
    y = outer_padding
    while y < height + outer_padding and len(rects) < len(sizes):
        w, h = sizes[len(rects)]
        rects.append((outer_padding, y, outer_padding + w - 1, y + h - 1))
        y += h + padding
    y -= padding
    first = rects[0]
    while len(rects) < len(sizes):
        w, h = sizes[len(rects)]
        right, bottom = outer_padding + width - 1, y - 1
        rect = (right - w + 1, bottom - h + 1, right, bottom)
        if rect[0] <= first[2] and rect[2] >= first[0] and rect[1] <= first[3] and rect[3] >= first[1]:
            break  # it would overlap the full-size image
        rects.append(rect)
        y -= h + padding
    return rects, height + 2 * outer_padding, width + 2 * outer_padding


def tiled_pyramid(image: np.ndarray, network: MmodNetwork) -> tuple[np.ndarray, list[Rect]]:
    """dlib's input tensor for ``image`` (RGB ``uint8``): ``float32 [3, H, W]``, and the levels' places.

    Each level is resized from the one before, after the mean subtraction, as dlib's
    ``input_rgb_image_pyramid::to_tensor`` does.
    """
    layer = network.input
    rows, columns = image.shape[:2]
    rects, height, width = pyramid_layout(rows, columns, network.pyramid_step, layer.padding, layer.outer_padding)
    tensor = np.zeros((3, height, width), dtype=np.float32)
    if not rects:
        return tensor, rects
    mean = np.array(layer.mean, dtype=np.float32)[:, None, None]
    left, top, right, bottom = rects[0]
    tensor[:, top : bottom + 1, left : right + 1] = (np.moveaxis(image, 2, 0).astype(np.float32) - mean) / np.float32(256)
    for (l0, t0, r0, b0), (l1, t1, r1, b1) in zip(rects, rects[1:]):
        source = tensor[:, t0 : b0 + 1, l0 : r0 + 1]
        tensor[:, t1 : b1 + 1, l1 : r1 + 1] = _resize(source, b1 - t1 + 1, r1 - l1 + 1)
    return tensor, rects


# --- from scores to boxes ------------------------------------------------------------------------


def _nearest_level(rects: list[Rect], x: float, y: float) -> int:
    """dlib's ``nearest_rect``: the first tile holding the point, else the closest one."""
    best, best_distance = 0, math.inf
    for i, (left, top, right, bottom) in enumerate(rects):
        if left <= x <= right and top <= y <= bottom:
            return i
        distance = math.hypot(x - min(max(x, left), right), y - min(max(y, top), bottom))
        if distance < best_distance:
            best, best_distance = i, distance
    return best


def _round(value: float) -> int:
    return math.floor(value + 0.5)  # dlib's drectangle → rectangle


def detections(
    scores: np.ndarray, rects: list[Rect], network: MmodNetwork, threshold: float = 0.0
) -> list[tuple[Rect, float]]:
    """Every window scoring above ``threshold`` (``scores``: ``[windows, h, w]``), as image boxes, best first."""
    found: list[tuple[Rect, float]] = []
    rate = network.pyramid_step / (network.pyramid_step - 1.0)
    for k, window in enumerate(network.options.windows):
        half_width, half_height = (window.width - 1) / 2, (window.height - 1) / 2
        for row, column in zip(*np.nonzero(scores[k] > threshold)):
            x = network.stride * int(column) + network.offset
            y = network.stride * int(row) + network.offset
            level = _nearest_level(rects, x, y)
            corners = [x - half_width - rects[level][0], y - half_height - rects[level][1],
                       x + half_width - rects[level][0], y + half_height - rects[level][1]]
            for _ in range(level):  # pyramid_down<N>::point_up, once per level
                corners = [value * rate + 0.3 for value in corners]
            found.append((tuple(_round(v) for v in corners), float(scores[k, row, column])))  # type: ignore[misc]
    found.sort(key=lambda item: item[1], reverse=True)
    return found


def _area(rect: Rect) -> int:
    return max(rect[2] - rect[0] + 1, 0) * max(rect[3] - rect[1] + 1, 0)


def _overlaps(a: Rect, b: Rect, iou: float, covered: float) -> bool:
    """dlib's ``test_box_overlap`` (its "union" is the box that bounds both)."""
    inner = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    if inner == 0:
        return False
    outer = _area((min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])))
    return inner / outer > iou or inner / _area(a) > covered or inner / _area(b) > covered


def suppress(found: list[tuple[Rect, float]], network: MmodNetwork) -> list[tuple[Rect, float]]:
    """Non-max suppression, highest score first, with the thresholds stored in the detector."""
    options = network.options
    kept: list[tuple[Rect, float]] = []
    for rect, score in found:
        if not any(_overlaps(other, rect, options.nms_iou, options.nms_percent_covered) for other, _ in kept):
            kept.append((rect, score))
    return kept


def detect(
    image: np.ndarray,
    network: MmodNetwork,
    run: Callable[[np.ndarray], np.ndarray],
    upsample_times: int = 0,
    threshold: float = 0.0,
) -> list[tuple[Rect, float]]:
    """Faces in ``image`` (RGB ``uint8``) as dlib's CNN detector finds them: ``(box, confidence)`` pairs.

    ``run`` maps dlib's input tensor ``[1, 3, H, W]`` to the network's scores ``[1, windows, h, w]``.
    ``upsample_times``: doublings before the search, as ``cnn_face_detection_model_v1(image, n)``.
    ``threshold``: dlib's ``adjust_threshold`` (lower finds more, and more false faces).
    """
    searched = image
    for _ in range(upsample_times):
        searched = upsample(searched)
    tensor, rects = tiled_pyramid(searched, network)
    if not rects or min(tensor.shape[1:]) < network.min_input:
        return []  # too small for the network to score anything (dlib itself fails on these)
    found = suppress(detections(run(tensor[None])[0], rects, network, threshold), network)
    if not upsample_times:
        return found
    return [
        (
            (
                _round(_unsample(rect[0], upsample_times, 1.25)),
                _round(_unsample(rect[1], upsample_times, 0.75)),
                _round(_unsample(rect[2], upsample_times, 1.25)),
                _round(_unsample(rect[3], upsample_times, 0.75)),
            ),
            score,
        )
        for rect, score in found
    ]
