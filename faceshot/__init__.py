"""faceshot: one-shot face recognition — enroll from one photo, recognise without retraining."""

from faceshot.annotate import annotate
from faceshot.api import detect, embed, engine, represent, verify
from faceshot.engine import Engine
from faceshot.errors import (
    ConfigError,
    ConflictError,
    CorruptImageError,
    EmbedderMismatchError,
    FaceError,
    FaceshotError,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageTooSmallError,
    GalleryBusyError,
    AccessError,
    AuthenticationError,
    GalleryError,
    GalleryReadOnlyError,
    MissingExtraError,
    ModelError,
    MultipleFacesError,
    NoFaceError,
    NotFound,
    QualityError,
    PermissionDeniedError,
    TooManyRequestsError,
    UnavailableError,
    UnsupportedImageError,
)
from faceshot.gallery import Gallery, Identification
from faceshot.io import load_image, load_image_base64
from faceshot.match import Calibration, OperatingPoint, cosine_similarity
from faceshot.results import Box, Face, FaceEmbedding, Verification

__version__ = "0.1.0"

__all__ = [
    "Box",
    "Calibration",
    "ConfigError",
    "ConflictError",
    "CorruptImageError",
    "EmbedderMismatchError",
    "Engine",
    "Face",
    "FaceEmbedding",
    "FaceError",
    "GalleryBusyError",
    "AccessError",
    "AuthenticationError",
    "GalleryError",
    "GalleryReadOnlyError",
    "FaceshotError",
    "Gallery",
    "Identification",
    "ImageError",
    "ImageNotFoundError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "MissingExtraError",
    "ModelError",
    "MultipleFacesError",
    "NoFaceError",
    "NotFound",
    "OperatingPoint",
    "QualityError",
    "PermissionDeniedError",
    "TooManyRequestsError",
    "UnavailableError",
    "UnsupportedImageError",
    "Verification",
    "annotate",
    "cosine_similarity",
    "detect",
    "embed",
    "engine",
    "load_image",
    "load_image_base64",
    "represent",
    "verify",
]
