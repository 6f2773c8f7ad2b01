"""Every error faceshot raises, as one tree.

    FaceshotError
    ├── ImageError                 the input could not be used as an image
    │   ├── ImageNotFoundError     no such file (or it is a directory)
    │   ├── UnsupportedImageError  not an image, or a format faceshot does not read
    │   ├── CorruptImageError      empty, truncated or damaged
    │   ├── ImageTooLargeError     more pixels than the configured limit
    │   └── ImageTooSmallError     too small to hold a face
    ├── FaceError                  the image is fine, the faces in it are not what was needed
    │   ├── NoFaceError            no face was found
    │   ├── MultipleFacesError     several faces where exactly one was required
    │   └── QualityError           the face is too small, blurred or turned to enroll
    ├── ConfigError                an unknown backend name, an impossible option
    │   └── MissingExtraError      an optional dependency is not installed (also an ImportError)
    ├── ModelError                 a model file is missing or cannot be loaded
    └── GalleryError               a gallery (enrolled people) cannot do what was asked
        ├── NotFound               no such person, face or group in the gallery
        ├── EmbedderMismatchError  the gallery holds vectors of another embedder
        ├── GalleryBusyError       another process held the gallery's write lock for too long
        ├── GalleryReadOnlyError   the gallery file cannot be written
        └── ConflictError          the write conflicts with what the gallery holds

The CLI maps this tree to exit codes in one place (``cli.py``); nothing else does.
"""

from __future__ import annotations

__all__ = [
    "FaceshotError",
    "ImageError",
    "ImageNotFoundError",
    "UnsupportedImageError",
    "CorruptImageError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "FaceError",
    "NoFaceError",
    "MultipleFacesError",
    "ConfigError",
    "MissingExtraError",
    "ModelError",
    "QualityError",
    "GalleryError",
    "NotFound",
    "EmbedderMismatchError",
    "GalleryBusyError",
    "GalleryReadOnlyError",
    "ConflictError",
]


class FaceshotError(Exception):
    """Base class of every error faceshot raises on purpose."""


class ImageError(FaceshotError):
    """The input could not be used as an image."""


class ImageNotFoundError(ImageError):
    """The path does not name a readable file."""


class UnsupportedImageError(ImageError):
    """The data is not an image, or not in a format faceshot reads."""


class CorruptImageError(ImageError):
    """The file is empty, truncated or damaged."""


class ImageTooLargeError(ImageError):
    """The image has more pixels than the configured limit (a guard against decompression bombs)."""


class ImageTooSmallError(ImageError):
    """The image is too small to contain a recognisable face."""


class FaceError(FaceshotError):
    """The image was read, but its faces are not what the operation needs."""


class NoFaceError(FaceError):
    """No face was found in the image."""


class MultipleFacesError(FaceError):
    """Several faces were found where exactly one was required."""


class ConfigError(FaceshotError):
    """An unknown backend name or an impossible combination of options."""


class MissingExtraError(ConfigError, ImportError):
    """An optional dependency is missing; the message names the extra to install (``faceshot[train]``)."""


class ModelError(FaceshotError):
    """A model file is missing or could not be loaded."""


class QualityError(FaceError):
    """The face is too small, too blurred or turned too far to serve as an enrollment reference."""


class GalleryError(FaceshotError):
    """A gallery cannot do what was asked (a name already taken, a damaged export file, ...)."""


class NotFound(GalleryError):
    """No person, face or group by that name or id is in the gallery."""


class EmbedderMismatchError(GalleryError):
    """The gallery's vectors were made by another embedder; they cannot be compared or mixed."""


class GalleryBusyError(GalleryError):
    """Another process held the gallery's write lock past the timeout; nothing was written. Try again."""


class GalleryReadOnlyError(GalleryError):
    """The gallery file (or its folder) cannot be written; nothing was written."""


class ConflictError(GalleryError):
    """The write conflicts with what the gallery holds (a name taken, a photo enrolled as someone else)."""
