"""Which face of a photo to use where one person is expected: the one place that decides, and says why not.

Verification, enrollment (one photo, a folder, a named cluster) and the bulk workers all call
:func:`choose_face`, so a photo without a face or with several gets the same answer and the same
message everywhere.
"""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np

from faceshot.detect import search
from faceshot.errors import ConfigError, MultipleFacesError, NoFaceError
from faceshot.results import Face

__all__ = ["Multiple", "MULTIPLE", "choose_face", "central", "no_face", "several_faces", "turned_face"]

#: With several faces: take the ``largest``, the ``central`` one, or raise (``error``).
Multiple = Literal["largest", "central", "error"]
MULTIPLE: tuple[str, ...] = ("largest", "central", "error")


def choose_face(
    faces: list[Face],
    shape: tuple[int, ...],
    *,
    label: str,
    multiple: Multiple = "largest",
    min_width: int = 40,
    several_hint: str = "crop the photo",
    turned: Callable[[], int | None] | None = None,
) -> Face:
    """The face to use among ``faces`` (largest first, as detectors return them).

    ``shape``: the photo's array shape ``(height, width, ...)`` in pixels, for ``"central"``.
    ``label`` names the photo in messages; ``min_width`` (pixels) is the smallest face the caller
    can use, quoted when there is none; ``several_hint`` says what to do about several faces;
    ``turned``, called only when there is no face, returns the turn that shows one (see
    :func:`turned_face`) for the message.
    Raises :class:`~faceshot.errors.NoFaceError` when there is no face,
    :class:`~faceshot.errors.MultipleFacesError` for several with ``multiple="error"``, and
    :class:`~faceshot.errors.ConfigError` for an unknown ``multiple``.
    """
    if multiple not in MULTIPLE:
        raise ConfigError(f"multiple must be one of {', '.join(MULTIPLE)}, got {multiple!r}")
    if not faces:
        raise no_face(label, min_width, None if turned is None else turned())
    if len(faces) > 1 and multiple == "error":
        raise several_faces(label, len(faces), several_hint)
    return central(faces, shape) if multiple == "central" else faces[0]


def no_face(label: str, min_width: int = 40, turned: int | None = None) -> NoFaceError:
    """The error for a photo without a face; ``turned``: the clockwise turn (degrees) that shows one."""
    if turned is not None:
        return NoFaceError(
            f"{label}: no face found as the photo is stored, but one appears when it is turned {turned}° "
            f"clockwise: the file is probably stored sideways without an EXIF orientation tag; rotate it"
        )
    return NoFaceError(
        f"{label}: no face found; use a photo where the face is at least about {min_width} pixels wide "
        f"and roughly frontal, or a detector for smaller faces (mtcnn, or hog:min_face=20)"
    )


def turned_face(detect: Callable[[np.ndarray], list[Face]], image: np.ndarray) -> int | None:
    """The clockwise turn (90, 180 or 270 degrees) under which ``detect`` finds a face, if any.

    Called only when the photo as stored has none, to say why: phones store photos sideways and
    record the turn in an EXIF tag that some programs strip. (Searching turned copies as part of
    detection is the detectors' ``turns`` option: :func:`faceshot.detect.search.turned`.)
    """
    for degrees, faces in search.turned(detect, image):
        if faces:
            return degrees
    return None


def several_faces(label: str, count: int, hint: str = "crop the photo") -> MultipleFacesError:
    return MultipleFacesError(f"{label}: {count} faces found where one was required; {hint}")


def central(faces: list[Face], shape: tuple[int, ...]) -> Face:
    """The face whose box centre is nearest the middle of the image."""
    middle_x, middle_y = shape[1] / 2, shape[0] / 2

    def offset(face: Face) -> float:
        box = face.box
        return ((box.left + box.right) / 2 - middle_x) ** 2 + ((box.top + box.bottom) / 2 - middle_y) ** 2

    return min(faces, key=offset)
