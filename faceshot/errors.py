"""Every error faceshot raises, as one tree, each with a stable machine-readable ``code``.

    FaceshotError                  error               (exit 2, HTTP 500)
    ├── ImageError                 bad_image           the input could not be used as an image (422)
    │   ├── ImageNotFoundError     image_not_found     no such file, a directory, an unusable path
    │   │                                              (also a FileNotFoundError) (422)
    │   ├── UnsupportedImageError  unsupported_image   not an image, or a format faceshot does not read (415)
    │   ├── CorruptImageError      corrupt_image       empty, truncated or damaged (422)
    │   ├── ImageTooLargeError     image_too_large     more pixels than the configured limit (413)
    │   └── ImageTooSmallError     image_too_small     too small to hold a face (422)
    ├── FaceError                  face_error          the image is fine, its faces are not what was needed (422)
    │   ├── NoFaceError            no_face             no face was found
    │   ├── MultipleFacesError     multiple_faces      several faces where exactly one was required
    │   └── QualityError           low_quality         the face is too small, blurred or turned to enroll
    ├── ConfigError                invalid_config      an unknown backend name or option, an impossible value
    │   │                                              (also a ValueError) (400)
    │   └── MissingExtraError      missing_extra       an optional dependency is not installed
    │                                                  (also an ImportError) (501)
    ├── VideoError                 bad_video           a video file or stream cannot be opened or decoded: missing,
    │                                                  not a video, truncated or damaged (422)
    ├── ModelError                 model_error         a model file is missing, cannot be loaded or run (500)
    ├── UnavailableError           unavailable         a server or backend cannot be reached (exit 69, HTTP 503)
    ├── AccessError                access_error        the service refused the caller (403)
    │   ├── AuthenticationError    unauthorized        no API key, or one the gallery does not hold (401)
    │   ├── PermissionDeniedError  forbidden           the key's role does not allow this (403)
    │   └── TooManyRequestsError   too_many_requests   the key has too many requests in flight (exit 75, HTTP 429)
    └── GalleryError               gallery_error       a gallery cannot do what was asked (400)
        ├── NotFound               not_found           no such person, face or group (also a LookupError) (404)
        ├── EmbedderMismatchError  embedder_mismatch   the gallery holds vectors of another embedder (409)
        ├── ConflictError          conflict            the write contradicts the gallery: a name taken,
        │                                              a photo enrolled under another person (409)
        ├── GalleryBusyError       gallery_busy        another writer held the gallery past the timeout;
        │                                              try again (exit 75, HTTP 503)
        └── GalleryReadOnlyError   gallery_read_only   the gallery file or database refuses writes (500)

A class that takes the place of a built-in exception users caught before also derives from it, so
``except ValueError`` around an option check keeps working.

The command line turns an error into an exit code with :func:`exit_code` (the ``EXIT_CODES``
table) and the service into an HTTP status with :func:`http_status` (``HTTP_STATUS``): one table
each, looked up along the class's ancestry, so a subclass without a row of its own takes its
parent's. Exit code 2 is every error of the input or the usage (README: "2 an error"); 69 and 75
are the ``sysexits.h`` codes for a service that cannot be reached and for a temporary failure worth
retrying. Exit code 1 is never an error: it is a negative answer (``verify``: different people).
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
    "QualityError",
    "ConfigError",
    "MissingExtraError",
    "ModelError",
    "VideoError",
    "UnavailableError",
    "AccessError",
    "AuthenticationError",
    "PermissionDeniedError",
    "TooManyRequestsError",
    "GalleryError",
    "NotFound",
    "EmbedderMismatchError",
    "ConflictError",
    "GalleryBusyError",
    "GalleryReadOnlyError",
    "EXIT_CODES",
    "HTTP_STATUS",
    "exit_code",
    "http_status",
]


class FaceshotError(Exception):
    """Base class of every error faceshot raises on purpose.

    ``code`` is a short stable name of the kind of error (``"no_face"``), for programs: JSON
    output, the service's problem+json ``code`` field, logs. The message is for people.
    """

    code = "error"


class ImageError(FaceshotError):
    """The input could not be used as an image."""

    code = "bad_image"


class ImageNotFoundError(ImageError, FileNotFoundError):
    """The path does not name a readable file (missing, a directory, a name the system refuses)."""

    code = "image_not_found"

    def __str__(self) -> str:
        # OSError's own __str__ formats "[Errno n] ..." when given two arguments; ours carry one message.
        return str(self.args[0]) if self.args else ""


class UnsupportedImageError(ImageError):
    """The data is not an image, or not in a format faceshot reads."""

    code = "unsupported_image"


class CorruptImageError(ImageError):
    """The file is empty, truncated or damaged."""

    code = "corrupt_image"


class ImageTooLargeError(ImageError):
    """The image has more pixels than the configured limit (a guard against decompression bombs)."""

    code = "image_too_large"


class ImageTooSmallError(ImageError):
    """The image is too small to contain a recognisable face."""

    code = "image_too_small"


class FaceError(FaceshotError):
    """The image was read, but its faces are not what the operation needs."""

    code = "face_error"


class NoFaceError(FaceError):
    """No face was found in the image."""

    code = "no_face"


class MultipleFacesError(FaceError):
    """Several faces were found where exactly one was required."""

    code = "multiple_faces"


class QualityError(FaceError):
    """The face is too small, too blurred or turned too far to serve as an enrollment reference."""

    code = "low_quality"


class ConfigError(FaceshotError, ValueError):
    """An unknown backend name or option, or an impossible value or combination of options."""

    code = "invalid_config"


class MissingExtraError(ConfigError, ImportError):
    """An optional dependency is missing; the message names the extra to install (``faceshot[train]``)."""

    code = "missing_extra"


class VideoError(FaceshotError):
    """A video file or stream could not be opened or decoded: missing, not a video, truncated or
    damaged (``faceshot watch``; a stream server that cannot be reached is an :class:`UnavailableError`)."""

    code = "bad_video"


class ModelError(FaceshotError):
    """A model file is missing, could not be loaded, or failed while running."""

    code = "model_error"


class UnavailableError(FaceshotError):
    """A server or backend faceshot needs (a database, a vector engine) cannot be reached."""

    code = "unavailable"


class AccessError(FaceshotError):
    """The service refused the caller (see :mod:`faceshot.keys`)."""

    code = "access_error"


class AuthenticationError(AccessError):
    """No API key was given, or one this gallery does not hold (never made, or revoked)."""

    code = "unauthorized"


class PermissionDeniedError(AccessError):
    """The key is valid but its role does not allow what was asked."""

    code = "forbidden"


class TooManyRequestsError(AccessError):
    """The key already has as many requests in flight as its limit allows; try again shortly."""

    code = "too_many_requests"


class GalleryError(FaceshotError):
    """A gallery cannot do what was asked (a damaged export file, a damaged index, ...)."""

    code = "gallery_error"


class NotFound(GalleryError, LookupError):
    """No person, face or group by that name or id is in the gallery."""

    code = "not_found"


class EmbedderMismatchError(GalleryError):
    """The gallery's vectors were made by another embedder; they cannot be compared or mixed."""

    code = "embedder_mismatch"


class ConflictError(GalleryError):
    """A write contradicts what the gallery holds: a name already taken, the same photo's face
    enrolled under another person."""

    code = "conflict"


class GalleryBusyError(GalleryError):
    """Another writer held the gallery locked past the timeout; nothing was written, try again."""

    code = "gallery_busy"


class GalleryReadOnlyError(GalleryError):
    """The gallery refuses writes (a read-only file, folder or database user); nothing was written."""

    code = "gallery_read_only"


#: Exit code of the ``faceshot`` command for each error class (see the module docstring).
EXIT_CODES: dict[type[FaceshotError], int] = {
    FaceshotError: 2,
    ImageError: 2,
    ImageNotFoundError: 2,
    UnsupportedImageError: 2,
    CorruptImageError: 2,
    ImageTooLargeError: 2,
    ImageTooSmallError: 2,
    FaceError: 2,
    NoFaceError: 2,
    MultipleFacesError: 2,
    QualityError: 2,
    ConfigError: 2,
    MissingExtraError: 2,
    ModelError: 2,
    VideoError: 2,
    UnavailableError: 69,  # EX_UNAVAILABLE
    AccessError: 2,
    AuthenticationError: 2,
    PermissionDeniedError: 2,
    TooManyRequestsError: 75,
    GalleryError: 2,
    NotFound: 2,
    EmbedderMismatchError: 2,
    ConflictError: 2,
    GalleryBusyError: 75,  # EX_TEMPFAIL: the same command may succeed when run again
    GalleryReadOnlyError: 2,
}

#: HTTP status of the service's problem+json answer for each error class.
HTTP_STATUS: dict[type[FaceshotError], int] = {
    FaceshotError: 500,
    ImageError: 422,
    ImageNotFoundError: 422,
    UnsupportedImageError: 415,
    CorruptImageError: 422,
    ImageTooLargeError: 413,
    ImageTooSmallError: 422,
    FaceError: 422,
    NoFaceError: 422,
    MultipleFacesError: 422,
    QualityError: 422,
    ConfigError: 400,
    MissingExtraError: 501,
    ModelError: 500,
    VideoError: 422,
    UnavailableError: 503,
    AccessError: 403,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    TooManyRequestsError: 429,
    GalleryError: 400,
    NotFound: 404,
    EmbedderMismatchError: 409,
    ConflictError: 409,
    GalleryBusyError: 503,
    GalleryReadOnlyError: 500,
}


def _lookup(table: dict[type[FaceshotError], int], error: BaseException | type[BaseException]) -> int:
    cls = error if isinstance(error, type) else type(error)
    for ancestor in cls.__mro__:
        if ancestor in table:
            return table[ancestor]  # type: ignore[index]
    raise TypeError(f"{cls.__name__} is not a FaceshotError")


def exit_code(error: BaseException | type[BaseException]) -> int:
    """The ``faceshot`` command's exit code for an error (instance or class): its nearest row in
    :data:`EXIT_CODES`. Raises ``TypeError`` for an exception outside the tree."""
    return _lookup(EXIT_CODES, error)


def http_status(error: BaseException | type[BaseException]) -> int:
    """The HTTP status for an error (instance or class): its nearest row in :data:`HTTP_STATUS`.
    Raises ``TypeError`` for an exception outside the tree."""
    return _lookup(HTTP_STATUS, error)
