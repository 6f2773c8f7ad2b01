"""Turn whatever the user hands us into an RGB ``uint8`` array, or say clearly why not.

Accepted inputs: a path (``str`` or ``os.PathLike``), a ``data:`` URL (a ``str`` starting with
``data:``), ``bytes``, a binary file object, a numpy array (RGB order, ``uint8``; gray or RGBA are
converted) or a PIL image. Raw base64 text is not a path: :func:`load_image_base64` reads it where
an interface declares base64 (the service's JSON bodies). Formats: JPEG, PNG, GIF (first frame),
WEBP, BMP, TIFF, PGM/PPM, and HEIC/HEIF with the ``heic`` extra (``pip install 'faceshot[heic]'``).

EXIF orientation is applied, so a phone photo taken sideways comes out upright and face boxes land
on the faces. faceshot reads the orientation itself instead of through Pillow's EXIF parser, which
*prints* warnings (``warnings.warn``) about damaged EXIF blocks, and the only way to silence those
is a process-wide filter that is not thread-safe. A damaged block is logged on this module's logger
and the photo is used as stored.

The pixel limit is checked from the header, before the pixels are decoded, so a tiny file that
claims to be 100,000 × 100,000 pixels is refused without allocating 30 GB.
"""

from __future__ import annotations

import base64
import binascii
import errno
import io
import logging
import numbers
import os
import struct
import threading
from pathlib import Path
from typing import BinaryIO, Iterator, Union
from urllib.parse import unquote, unquote_to_bytes

import numpy as np
from PIL import Image, UnidentifiedImageError

from faceshot.errors import (
    ConfigError,
    CorruptImageError,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageTooSmallError,
    MissingExtraError,
    UnsupportedImageError,
)

__all__ = [
    "read_bytes",
    "ImageInput",
    "load_image",
    "load_image_base64",
    "describe",
    "DEFAULT_MAX_PIXELS",
    "MIN_SIDE",
    "FORMATS",
    "IMAGE_SUFFIXES",
]

logger = logging.getLogger(__name__)

ImageInput = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, np.ndarray, Image.Image]

#: Images with more pixels than this are refused (about 40 megapixels: a 7,700 × 5,200 photo).
DEFAULT_MAX_PIXELS = 40_000_000
#: Images whose shorter side is below this many pixels cannot hold a face the detectors find.
MIN_SIDE = 16
#: Pillow format names we read. MPO is the multi-picture JPEG many phone cameras write; HEIF
#: (HEIC photos from phones) needs the ``heic`` extra.
FORMATS = ("JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP", "TIFF", "PPM", "HEIF")
#: File name endings of those formats: what folder scans (enroll-dir, eval, calibrate, cluster) pick up.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".pgm", ".ppm",
     ".heic", ".heif", ".hif"}
)


def load_image(source: ImageInput, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Load an image as an ``(height, width, 3)`` RGB ``uint8`` array.

    A ``str`` that starts with ``data:`` is read as a data URL (RFC 2397, base64 or percent-encoded);
    every other ``str`` or ``os.PathLike`` is a path. ``max_pixels`` refuses larger images before
    they are decoded (raise it to accept bigger photos; they are downscaled for detection anyway).

    Raises a subclass of :class:`~faceshot.errors.ImageError` that says what was wrong and what to do,
    or :class:`~faceshot.errors.MissingExtraError` for a HEIC photo without the ``heic`` extra;
    :class:`~faceshot.errors.ConfigError` when ``max_pixels`` is not a positive integer.
    """
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, numbers.Integral) or max_pixels < 1:
        raise ConfigError(f"max_pixels must be a positive whole number of pixels, got {max_pixels!r}")
    name = describe(source)
    if isinstance(source, np.ndarray):
        return _check_size(_from_array(source, name), name)
    if isinstance(source, Image.Image):
        return _check_size(_from_pil(source, name, max_pixels, _exif_block(source)), name)
    if isinstance(source, str) and _is_data_url(source):
        return _from_bytes(_data_url_bytes(source, name), name, max_pixels)
    return _from_bytes(_read_bytes(source, name), name, max_pixels)


def load_image_base64(text: str | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Load an image sent as base64 text (or as a ``data:`` URL), as :func:`load_image` does.

    For interfaces that declare base64 (the service's JSON bodies); :func:`load_image` takes every
    string that is not a data URL for a path. Whitespace and line breaks in the text are ignored.
    Raises :class:`~faceshot.errors.CorruptImageError` when the text is not valid base64, and the
    errors of :func:`load_image` for the image it holds.
    """
    if not isinstance(text, (str, bytes)):
        raise ImageError(f"base64 images are text (str or bytes), not a {type(text).__name__}")
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise CorruptImageError("<base64 text>: not valid base64 (it holds non-ASCII bytes)") from None
    if _is_data_url(text):
        return load_image(text, max_pixels=max_pixels)
    name = f"<base64 text, {len(text)} characters>"
    return _from_bytes(_base64_bytes("".join(text.split()), name), name, max_pixels)


def describe(source: ImageInput) -> str:
    """A short human name for an input, for error messages and reports."""
    if isinstance(source, str) and _is_data_url(source):
        media = source[5 : source.find(",")].split(";")[0] if "," in source else ""
        return f"<data URL{', ' + media if media else ''}, {len(source)} characters>"
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if isinstance(source, np.ndarray):
        return f"<array {source.shape} {source.dtype}>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.size[0]}x{source.size[1]} {source.mode}>"
    return getattr(source, "name", None) or f"<{type(source).__name__}>"


# -- where the bytes come from ------------------------------------------------------------------


def read_bytes(source: ImageInput) -> bytes:
    """The encoded bytes of a path, a ``data:`` URL, ``bytes`` or a binary file object (read once).

    What identifies a photo by its content (its SHA-256) is computed on these bytes. Raises the
    :class:`ImageError` that says what is wrong; arrays and PIL images have no encoded bytes
    (:class:`ImageError`).
    """
    name = describe(source)
    if isinstance(source, str) and _is_data_url(source):
        return _data_url_bytes(source, name)
    return _read_bytes(source, name)


def _is_data_url(text: str) -> bool:
    return text[:5].lower() == "data:"


def _data_url_bytes(url: str, name: str) -> bytes:
    """The bytes of an RFC 2397 ``data:[<media type>][;base64],<data>`` URL."""
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise CorruptImageError(f"{name}: not a valid data URL (no ',' between the header and the data)")
    params = [part.strip().lower() for part in header.split(";")]
    media = params[0]
    if media and not media.startswith("image/") and media != "application/octet-stream":
        raise UnsupportedImageError(f"{name}: the data URL holds {media!r}, not an image")
    if "base64" in params[1:]:
        return _base64_bytes("".join(unquote(payload).split()), name)
    return unquote_to_bytes(payload)


def _base64_bytes(text: str, name: str) -> bytes:
    # Browsers and some encoders drop the '=' padding; the URL-safe alphabet is also common.
    text = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CorruptImageError(f"{name}: not valid base64 ({exc})") from None


def _read_bytes(source: ImageInput, name: str) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            path = Path(source)
            if path.is_dir():
                raise ImageNotFoundError(f"{name}: is a directory, not an image file")
            return path.read_bytes()
        except ImageError:  # ours (also a FileNotFoundError): already says what is wrong
            raise
        except FileNotFoundError:
            raise ImageNotFoundError(f"{name}: no such file{_data_url_hint(name)}") from None
        except ValueError:  # "embedded null byte": no operating system accepts it in a path
            raise ImageNotFoundError(f"{name!r}: not a usable path (it contains a NUL character)") from None
        except TypeError:  # os.PathLike whose __fspath__ returns something else
            raise ImageError(f"{name}: not a path") from None
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise ImageNotFoundError(
                    f"{_shortened(name)}: the file name is too long for the file system "
                    f"({max(map(len, Path(name).parts), default=0)} characters in one part){_data_url_hint(name)}"
                ) from None
            raise ImageNotFoundError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if hasattr(source, "read"):
        try:
            data = source.read()
        except OSError as exc:
            raise ImageError(f"{name}: cannot be read ({exc})") from None
        if isinstance(data, str):
            raise ImageError(f"{name}: opened in text mode; open image files with 'rb'")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise ImageError(f"{name}: read() returned a {type(data).__name__}, not bytes")
        return bytes(data)
    raise ImageError(
        f"cannot read an image from a {type(source).__name__}; "
        "pass a path, a data URL, bytes, a binary file, a numpy array or a PIL image"
    )


def _data_url_hint(name: str) -> str:
    if _is_data_url(name):
        return "; a data URL is read from a str, not from a path (pathlib.Path)"
    return ""


def _shortened(name: str, keep: int = 120) -> str:
    return name if len(name) <= keep else f"{name[: keep // 2]}…{name[-keep // 2 :]}"


# -- decoding -------------------------------------------------------------------------------------


def _from_bytes(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    if not data:
        raise CorruptImageError(f"{name}: the file is empty (0 bytes)")
    if _is_heif(data):
        _enable_heif(name)
    size = len(data)
    data, exif = _without_jpeg_metadata(data)
    image = _open(data, name, size)
    if image.format not in FORMATS:
        raise UnsupportedImageError(
            f"{name}: {image.format} images are not supported; use one of {', '.join(FORMATS)}"
        )
    _check_pixels(image, name, max_pixels)
    try:
        return _check_size(_from_pil(image, name, max_pixels, exif or _exif_block(image), _png_depth(data)), name)
    except CorruptImageError:
        if image.format != "JPEG" or not _single_sequential_scan(data):
            raise
        # A JPEG whose end-of-image marker is missing (an interrupted copy or upload, a camera
        # that died while writing): decoded as Pillow's LOAD_TRUNCATED_IMAGES would, for this
        # call only, and kept only if no pixel was lost.
        recovered = _recover_jpeg_without_end(data, name)
        if recovered is None:
            raise
        logger.info("%s: the JPEG end marker is missing; all its pixels were decoded", name)
        return _check_size(_from_pil(recovered, name, max_pixels, exif), name)


def _open(data: bytes, name: str, size: int) -> Image.Image:
    """Pillow's image over ``data`` (``size``: the file's bytes, before any metadata was taken out)."""
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        if data[:3] == b"\xff\xd8\xff":  # a JPEG's start-of-image marker: a JPEG, damaged
            raise CorruptImageError(f"{name}: a JPEG whose header is damaged ({size} bytes)") from None
        hint = " (a HEIC photo needs: pip install 'faceshot[heic]')" if _is_heif(data) else ""
        raise UnsupportedImageError(
            f"{name}: not a recognised image ({size} bytes); faceshot reads {', '.join(FORMATS)}{hint}"
        ) from None
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{name}: {exc}") from None
    except Exception as exc:  # Pillow's plugins raise many kinds on damaged headers
        raise CorruptImageError(f"{name}: the image header is damaged ({exc or type(exc).__name__})") from None


def _check_pixels(image: Image.Image, name: str, max_pixels: int) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name}: {width}x{height} is {width * height / 1e6:.0f} megapixels, above the limit of "
            f"{max_pixels / 1e6:.0f}; downscale it or raise max_pixels"
        )


def _from_pil(
    image: Image.Image, name: str, max_pixels: int, exif: bytes | None, png_depth: int | None = None
) -> np.ndarray:
    _check_pixels(image, name, max_pixels)
    try:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)  # animated GIF / multi-page TIFF: the first frame
        image.load()
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(f"{name}: {exc}") from None
    except Exception as exc:  # OSError, SyntaxError, EOFError, struct.error, ... from the decoders
        raise CorruptImageError(f"{name}: truncated or damaged image data: {exc or type(exc).__name__}") from None
    orientation = _orientation(image, exif, name)
    pixels = _to_rgb(image, name, png_depth)
    return _transpose(pixels, orientation)


def _to_rgb(image: Image.Image, name: str, png_depth: int | None = None) -> np.ndarray:
    mode = image.mode
    if mode == "F" or mode.startswith("I"):
        gray = _scaled_gray(np.asarray(image), mode, name)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if png_depth == 16 and mode in ("RGB", "RGBA"):
        _refuse_dim_16_bit_colour(image, name)
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if mode in ("LA", "PA", "La"):
        image = image.convert("RGBA")
    try:
        if image.mode == "RGBA":
            # Transparent pixels carry arbitrary colours: composite on white, as a viewer shows them.
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image)
        if image.mode != "RGB":
            image = image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise UnsupportedImageError(f"{name}: {mode} pixels cannot be converted to RGB ({exc})") from None
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def _scaled_gray(values: np.ndarray, mode: str, name: str) -> np.ndarray:
    """Gray pixels deeper than 8 bits (``I;16``, ``I`` integers, ``F`` floats) scaled to ``uint8``.

    Floats in [0, 1] are the usual scientific and HDR convention, and are scaled by 255; floats
    within [0, 255] are taken as 8-bit values. Integers are scaled by the smallest of 8, 10, 12,
    14 and 16 bits that holds their maximum: cameras and scanners store 10-, 12- and 14-bit data
    in 16-bit files with the high bits empty, and dividing it by 65535 left it nearly black.
    Anything else (negative, not finite, beyond 16 bits) is refused: its scale cannot be told.
    """
    values = values.astype(np.float64)
    if values.size == 0:
        return values.astype(np.uint8)
    if not np.isfinite(values).all():
        raise UnsupportedImageError(f"{name}: the {mode} image holds NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if low < 0:
        raise UnsupportedImageError(
            f"{name}: the {mode} image holds negative values ({low:g} to {high:g}); "
            "faceshot cannot tell how to show them; save it as 8-bit"
        )
    if mode == "F" and high <= 1.0:
        top = 1.0
    elif high <= 255 and not mode.startswith("I;16"):
        top = 255.0
    else:
        bits = next((b for b in (8, 10, 12, 14, 16) if high <= 2**b - 1), None)
        if bits is None:
            raise UnsupportedImageError(
                f"{name}: the {mode} image holds values up to {high:g}, beyond 16 bits; save it as 8 or 16 bits"
            )
        top = 2.0**bits - 1
    return np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _refuse_dim_16_bit_colour(image: Image.Image, name: str) -> None:
    # Pillow reads 16-bit colour PNGs as 8 bits (the high byte of each value) and gives no way to
    # the low bytes; 10- or 12-bit data stored in them would come out black.
    if int(np.asarray(image.convert("RGB")).max(initial=0)) < 16:
        raise UnsupportedImageError(
            f"{name}: a 16-bit colour PNG whose values all fit in 12 bits; faceshot reads the top 8 "
            "bits of 16-bit colour, which are empty here. Scale it to 8 bits per channel first"
        )


def _png_depth(data: bytes) -> int | None:
    """The bit depth a PNG's header declares (None for other formats)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) > 24:
        return data[24]
    return None


# -- JPEGs that end without an end marker --------------------------------------------------------


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """``(marker, start, end)`` of each segment before a JPEG's first scan, the scan header included."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # end of image before any scan
            return
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2 or pos + 2 + length > len(data):
            return
        yield marker, pos, pos + 2 + length
        if marker == 0xDA:  # start of scan: what follows is entropy-coded data
            return
        pos += 2 + length


def _without_jpeg_metadata(data: bytes) -> tuple[bytes, bytes | None]:
    """A JPEG's bytes without its EXIF (APP1) and multi-picture (APP2 MPF) segments, and the EXIF.

    Pillow parses both while opening a JPEG and warns (``warnings.warn``) when they are damaged;
    the pixels need neither (the orientation is read from the returned EXIF block).
    """
    if data[:2] != b"\xff\xd8":
        return data, None
    pieces, start, exif = [], 0, None
    for marker, begin, end in _jpeg_segments(data):
        body = data[begin + 4 : end]
        if (marker == 0xE1 and body.startswith(b"Exif\0\0")) or (marker == 0xE2 and body.startswith(b"MPF\0")):
            pieces.append(data[start:begin])
            start = end
            if marker == 0xE1 and exif is None:
                exif = body[6:]
    if not pieces:
        return data, None
    pieces.append(data[start:])
    return b"".join(pieces), exif


def _single_sequential_scan(data: bytes) -> bool:
    """Whether a JPEG is sequential (baseline or extended) and its first scan holds every component:
    then all its pixels are in that one scan, and a file that ends inside it lost pixels."""
    components = None
    for marker, begin, end in _jpeg_segments(data):
        if marker in (0xC0, 0xC1) and end - begin > 9:
            components = data[begin + 9]
        elif 0xC2 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return False  # progressive, lossless or arithmetic-coded
        elif marker == 0xDA:
            return components is not None and end - begin > 4 and data[begin + 4] == components
    return False


def _recover_jpeg_without_end(data: bytes, name: str) -> Image.Image | None:
    """The JPEG decoded with an end marker added, or None when its decoded pixels were incomplete.

    libjpeg fills the blocks it finds no data for with gray and does not say so. Decoding twice, with
    different bytes between the data and the added marker, tells the two cases apart: when the scan
    is complete the decoder never reads them and both decodings are equal; when it is cut short the
    filler is decoded as picture data and they differ.
    """
    decoded = []
    for filler in (b"", b"\x00" * 64, b"\xa5" * 64):
        try:
            image = Image.open(io.BytesIO(data + filler + b"\xff\xd9"))
            image.load()
        except Exception:  # still not decodable: the refusal stands
            return None
        decoded.append(image)
    first = np.asarray(decoded[0])
    if all(np.array_equal(first, np.asarray(other)) for other in decoded[1:]):
        return decoded[0]
    logger.debug("%s: JPEG cut short inside its scan; pixels were lost", name)
    return None


# -- orientation ---------------------------------------------------------------------------------

_TRANSPOSE = {2: "flip_lr", 3: "rot180", 4: "flip_ud", 5: "transpose", 6: "rot270", 7: "transverse", 8: "rot90"}


def _exif_block(image: Image.Image) -> bytes | None:
    """The TIFF-structured EXIF block an image carries (``eXIf`` chunk, WEBP ``EXIF`` chunk, or the
    hex text ImageMagick writes into PNGs as "Raw profile type exif"), without its ``Exif`` prefix."""
    exif = image.info.get("exif")
    raw = image.info.get("Raw profile type exif")
    if exif is None and isinstance(raw, str):
        try:
            exif = bytes.fromhex("".join(raw.strip().split("\n")[2:]))
        except ValueError:
            logger.warning("%s: the EXIF text block is damaged; the photo is used as stored", describe(image))
            return None
    if isinstance(exif, (bytes, bytearray)):
        return bytes(exif[6:]) if exif[:6] == b"Exif\0\0" else bytes(exif)
    return None


def _orientation(image: Image.Image, exif: bytes | None, name: str) -> int:
    """The EXIF orientation (1-8; 1 = stored upright), read from IFD0 without Pillow's EXIF parser.

    A TIFF file carries the tag in its own directory, which Pillow read while opening it.
    """
    if exif is None:
        tags = getattr(image, "tag_v2", None)
        value = tags.get(0x0112, 1) if tags is not None else 1
        return value if isinstance(value, int) and 1 <= value <= 8 else 1
    try:
        if exif[:4] == b"II*\0":
            order = "<"
        elif exif[:4] == b"MM\0*":
            order = ">"
        else:
            raise ValueError("no TIFF header")
        (ifd,) = struct.unpack_from(order + "I", exif, 4)
        (count,) = struct.unpack_from(order + "H", exif, ifd)
        for entry in range(count):
            tag, kind, number = struct.unpack_from(order + "HHI", exif, ifd + 2 + 12 * entry)
            if tag != 0x0112:
                continue
            (value,) = struct.unpack_from(order + "H", exif, ifd + 2 + 12 * entry + 8)
            if kind != 3 or number != 1 or not 1 <= value <= 8:
                raise ValueError(f"orientation entry of type {kind}, count {number}, value {value}")
            return value
        return 1
    except (ValueError, struct.error) as exc:
        logger.warning("%s: the EXIF block is damaged (%s); the photo is used as stored, not rotated", name, exc)
        return 1


def _transpose(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Pixels as a viewer shows them, for EXIF orientation 1-8 (what ``ImageOps.exif_transpose`` does)."""
    step = _TRANSPOSE.get(orientation)
    if step is None:
        return pixels
    if step == "flip_lr":
        out = pixels[:, ::-1]
    elif step == "flip_ud":
        out = pixels[::-1]
    elif step == "rot180":
        out = pixels[::-1, ::-1]
    elif step == "rot90":  # counter-clockwise
        out = np.rot90(pixels, 1)
    elif step == "rot270":  # clockwise
        out = np.rot90(pixels, -1)
    elif step == "transpose":
        out = pixels.transpose(1, 0, 2)
    else:  # transverse
        out = np.rot90(pixels, 2).transpose(1, 0, 2)
    return np.ascontiguousarray(out)


# -- HEIC / HEIF (optional) ------------------------------------------------------------------------

_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"})
_heif_lock = threading.Lock()
_heif_ready = False


def _is_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


def _enable_heif(name: str) -> None:
    """Teach Pillow to open HEIC/HEIF, the first time such a file is seen (pillow-heif's opener)."""
    global _heif_ready
    if _heif_ready:
        return
    with _heif_lock:
        if _heif_ready:
            return
        try:
            from pillow_heif import register_heif_opener
        except ImportError:
            raise MissingExtraError(
                f"{name}: a HEIC/HEIF photo; reading it needs pillow-heif: pip install 'faceshot[heic]'"
            ) from None
        register_heif_opener()
        _heif_ready = True


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
        array = _to_rgb(Image.fromarray(array), name)
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
