"""Face crops cut from the original photos, for the contact sheet and the per-cluster folders."""

from __future__ import annotations

import io
import logging
from typing import Callable, Iterable, Iterator

from PIL import Image

from faceshot.cluster.results import ClusteredFace
from faceshot.errors import FaceshotError
from faceshot.io import load_image
from faceshot.results import Box

__all__ = ["face_crop", "jpeg", "face_crops", "CROP_SIDE"]

log = logging.getLogger(__name__)

#: Longest side of a face crop, in pixels.
CROP_SIDE = 112


def face_crop(image: Image.Image, box: Box, margin: float = 0.25, side: int = CROP_SIDE) -> Image.Image:
    """The face box widened by ``margin`` of its size on each side, kept inside the photo, at most ``side`` px."""
    pad_x, pad_y = box.width * margin, box.height * margin
    left, top = max(0, int(box.left - pad_x)), max(0, int(box.top - pad_y))
    right, bottom = min(image.width, int(box.right + pad_x)), min(image.height, int(box.bottom + pad_y))
    crop = image.crop((left, top, max(right, left + 1), max(bottom, top + 1)))
    crop.thumbnail((side, side))
    return crop


def jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def face_crops(
    faces: Iterable[ClusteredFace],
    *,
    stored: Callable[[int], bytes | None] | None = None,
    side: int = CROP_SIDE,
) -> Iterator[tuple[ClusteredFace, Image.Image | None]]:
    """Each face with its crop, reading each photo once (faces of one photo should come together).

    A photo that can no longer be read gives the thumbnail kept for the face (``stored(face_id)``)
    when there is one, else ``None``.
    """
    current: str | None = None
    image: Image.Image | None = None
    for face in faces:
        if face.source != current:
            current = face.source
            try:
                # faceshot's loader applies EXIF rotation, as detection did: the boxes fit.
                image = Image.fromarray(load_image(face.source))
            except FaceshotError as exc:
                log.warning("%s", exc)
                image = None
        if image is not None:
            yield face, face_crop(image, face.face.box, side=side)
            continue
        kept = stored(face.id) if stored is not None else None
        yield face, None if kept is None else Image.open(io.BytesIO(kept))
