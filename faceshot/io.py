"""Turn whatever the user hands us into an RGB ``uint8`` array, or say clearly why not.

Accepted inputs: a path (``str`` or ``os.PathLike``), ``bytes``, a binary file object, a numpy
array (RGB order, ``uint8``; gray or RGBA are converted) or a PIL image. Formats: JPEG, PNG,
GIF (first frame), WEBP, BMP, TIFF, PGM/PPM. EXIF orientation is applied, so a phone photo
taken sideways comes out upright and face boxes land on the faces.

The pixel limit is checked from the header, before the pixels are decoded, so a tiny file that
claims to be 100,000 × 100,000 pixels is refused without allocating 30 GB.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceshot.errors import (
    CorruptImageError,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedImageError,
)

__all__ = ["ImageInput", "load_image", "describe", "DEFAULT_MAX_PIXELS", "MIN_SIDE", "FORMATS", "IMAGE_SUFFIXES"]

ImageInput = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, np.ndarray, Image.Image]

#: Images with more pixels than this are refused (about 40 megapixels: a 7,700 × 5,200 photo).
DEFAULT_MAX_PIXELS = 40_000_000
#: Images whose shorter side is below this many pixels cannot hold a face the detectors find.
MIN_SIDE = 16
#: Pillow format names we read. MPO is the multi-picture JPEG many phone cameras write.
FORMATS = ("JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP", "TIFF", "PPM")
#: File name endings of those formats: what folder scans (enroll-dir, eval, calibrate) pick up.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".pgm", ".ppm"})


def describe(source: ImageInput) -> str:
    """A short human name for an input, for error messages and reports."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if isinstance(source, np.ndarray):
        return f"<array {source.shape} {source.dtype}>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.size[0]}x{source.size[1]} {source.mode}>"
    return getattr(source, "name", None) or f"<{type(source).__name__}>"


def load_image(source: ImageInput, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Load an image as an ``(height, width, 3)`` RGB ``uint8`` array.

    ``max_pixels`` refuses larger images before they are decoded (raise it to accept bigger
    photos; they are downscaled for detection anyway). Raises a subclass of
    :class:`~faceshot.errors.ImageError` that says what was wrong and what to do.
    """
    name = describe(source)
    if isinstance(source, np.ndarray):
        return _check_size(_from_array(source, name), name)
    if isinstance(source, Image.Image):
        return _check_size(_from_pil(source, name, max_pixels), name)
    data = _read_bytes(source, name)
    if not data:
        raise CorruptImageError(f"{name}: the file is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UnsupportedImageError(
            f"{name}: not a recognised image ({len(data)} bytes); "
            f"faceshot reads {', '.join(FORMATS)}"
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{name}: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise CorruptImageError(f"{name}: the image header is damaged ({exc})") from None
    if image.format not in FORMATS:
        raise UnsupportedImageError(
            f"{name}: {image.format} images are not supported; use one of {', '.join(FORMATS)}"
        )
    return _check_size(_from_pil(image, name, max_pixels), name)


def _read_bytes(source: ImageInput, name: str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise ImageNotFoundError(f"{name}: is a directory, not an image file")
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ImageNotFoundError(f"{name}: no such file") from None
        except OSError as exc:
            raise ImageNotFoundError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if hasattr(source, "read"):
        data = source.read()
        if isinstance(data, str):
            raise ImageError(f"{name}: opened in text mode; open image files with 'rb'")
        return data
    raise ImageError(
        f"cannot read an image from a {type(source).__name__}; "
        "pass a path, bytes, a binary file, a numpy array or a PIL image"
    )


def _from_pil(image: Image.Image, name: str, max_pixels: int) -> np.ndarray:
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name}: {width}x{height} is {width * height / 1e6:.0f} megapixels, above the limit of "
            f"{max_pixels / 1e6:.0f}; downscale it or raise max_pixels"
        )
    try:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)  # animated GIF / multi-page TIFF: the first frame
        image.load()
        image = ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{name}: {exc}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CorruptImageError(f"{name}: truncated or damaged image data ({exc})") from None
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit and float gray: scale to 8 bits rather than clip (Pillow's convert would clip
        # everything above 255 to white).
        gray = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or gray.max(initial=0) > 255 else 255.0
        gray = np.clip(gray / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if mode in ("LA", "PA"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        # Transparent pixels carry arbitrary colours: composite on white, as a viewer shows them.
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def _from_array(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == np.uint16:
        array = (array.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    if array.dtype != np.uint8:
        raise ImageError(
            f"{name}: arrays must be uint8 (0-255); got {array.dtype}. "
            "For floats in [0, 1] pass (array * 255).astype('uint8')"
        )
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = _to_rgb(Image.fromarray(array, "RGBA"))
    elif not (array.ndim == 3 and array.shape[2] == 3):
        raise ImageError(f"{name}: expected (height, width[, 3 or 4]) pixels, got shape {array.shape}")
    return np.ascontiguousarray(array)


def _check_size(array: np.ndarray, name: str) -> np.ndarray:
    height, width = array.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ImageTooSmallError(
            f"{name}: {width}x{height} pixels is too small to hold a face "
            f"(at least {MIN_SIDE} pixels on each side)"
        )
    return array
