"""faceshot: one-shot face recognition — enroll from one photo, recognise without retraining."""

from faceshot.api import detect, embed, engine, represent, verify
from faceshot.engine import Engine
from faceshot.errors import (
    ConfigError,
    CorruptImageError,
    FaceError,
    FaceshotError,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageTooSmallError,
    ModelError,
    MultipleFacesError,
    NoFaceError,
    UnsupportedImageError,
)
from faceshot.io import load_image
from faceshot.match import Calibration, OperatingPoint, cosine_similarity
from faceshot.results import Box, Face, FaceEmbedding, Verification

__version__ = "0.1.0"

__all__ = [
    "Box",
    "Calibration",
    "ConfigError",
    "CorruptImageError",
    "Engine",
    "Face",
    "FaceEmbedding",
    "FaceError",
    "FaceshotError",
    "ImageError",
    "ImageNotFoundError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "ModelError",
    "MultipleFacesError",
    "NoFaceError",
    "OperatingPoint",
    "UnsupportedImageError",
    "Verification",
    "cosine_similarity",
    "detect",
    "embed",
    "engine",
    "load_image",
    "represent",
    "verify",
]
