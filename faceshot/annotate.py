"""Draw what faceshot found onto a copy of the photo: boxes, names and scores."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from faceshot.gallery.results import Identification

__all__ = ["annotate"]

KNOWN, UNKNOWN = (40, 200, 80), (230, 60, 60)


def annotate(image: np.ndarray, found: Sequence[Identification]) -> Image.Image:
    """A copy of ``image`` with each face boxed: green and named when known, red "unknown" otherwise."""
    canvas = Image.fromarray(image).copy()
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(max(canvas.size) / 400))
    font = ImageFont.load_default(size=max(12, round(max(canvas.size) / 50)))
    for item in found:
        box = item.face.box
        colour = KNOWN if item.known else UNKNOWN
        label = item.identity if item.known else "unknown"
        if item.score is not None:
            label = f"{label} {item.score:.3f}"
        draw.rectangle((box.left, box.top, box.right, box.bottom), outline=colour, width=width)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        # Below the box, kept inside the picture.
        x = min(box.left, canvas.width - (right - left) - 2)
        y = min(box.bottom + width, canvas.height - (bottom - top) - 2)
        draw.rectangle((x - 2, y + top - 2, x + right - left + 2, y + bottom + 2), fill=colour)
        draw.text((x - left, y), label, fill=(255, 255, 255), font=font)
    return canvas
