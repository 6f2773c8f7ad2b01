"""Which face of a photo to use where one person is expected: the one place that decides, and says why not.

Verification, enrollment (one photo, a folder, a named cluster) and the bulk workers all call
:func:`choose_face`, so a photo without a face or with several gets the same answer and the same
message everywhere.
"""

from __future__ import annotations

from typing import Literal

from faceshot.errors import ConfigError, MultipleFacesError, NoFaceError
from faceshot.results import Face

__all__ = ["Multiple", "MULTIPLE", "choose_face", "central", "no_face", "several_faces"]

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
) -> Face:
    """The face to use among ``faces`` (largest first, as detectors return them).

    ``shape``: the photo's array shape ``(height, width, ...)`` in pixels, for ``"central"``.
    ``label`` names the photo in messages; ``min_width`` (pixels) is the smallest face the caller
    can use, quoted when there is none; ``several_hint`` says what to do about several faces.
    Raises :class:`~faceshot.errors.NoFaceError` when there is no face,
    :class:`~faceshot.errors.MultipleFacesError` for several with ``multiple="error"``, and
    :class:`~faceshot.errors.ConfigError` for an unknown ``multiple``.
    """
    if multiple not in MULTIPLE:
        raise ConfigError(f"multiple must be one of {', '.join(MULTIPLE)}, got {multiple!r}")
    if not faces:
        raise no_face(label, min_width)
    if len(faces) > 1 and multiple == "error":
        raise several_faces(label, len(faces), several_hint)
    return central(faces, shape) if multiple == "central" else faces[0]


def no_face(label: str, min_width: int = 40) -> NoFaceError:
    return NoFaceError(
        f"{label}: no face found; use a photo where the face is at least about {min_width} pixels wide "
        f"and roughly frontal, or try detector='cnn-onnx'"
    )


def several_faces(label: str, count: int, hint: str = "crop the photo") -> MultipleFacesError:
    return MultipleFacesError(f"{label}: {count} faces found where one was required; {hint}")


def central(faces: list[Face], shape: tuple[int, ...]) -> Face:
    """The face whose box centre is nearest the middle of the image."""
    middle_x, middle_y = shape[1] / 2, shape[0] / 2

    def offset(face: Face) -> float:
        box = face.box
        return ((box.left + box.right) / 2 - middle_x) ** 2 + ((box.top + box.bottom) / 2 - middle_y) ** 2

    return min(faces, key=offset)
