"""Image input: every accepted kind and format, and a clear ImageError for each bad input."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import faceshot
from faceshot import (
    CorruptImageError,
    ImageError,
    ImageNotFoundError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedImageError,
)


@pytest.fixture(scope="module")
def obama(images) -> Image.Image:
    return Image.open(images / "obama.jpg").convert("RGB")


@pytest.fixture(scope="module")
def obama_box(obama):
    return faceshot.detect(np.asarray(obama))[0].box


def saved(tmp_path: Path, image: Image.Image, name: str, **options) -> Path:
    path = tmp_path / name
    image.save(path, **options)
    return path


def one_face(path) -> faceshot.Face:
    faces = faceshot.detect(path)
    assert len(faces) == 1, f"{path}: {len(faces)} faces"
    return faces[0]


# -- accepted inputs ----------------------------------------------------------------------------


def test_path_bytes_file_array_and_pil_all_load_the_same_pixels(images, obama):
    path = images / "obama.jpg"
    reference = faceshot.load_image(path)
    assert reference.shape == (obama.height, obama.width, 3) and reference.dtype == np.uint8
    assert np.array_equal(faceshot.load_image(str(path)), reference)
    assert np.array_equal(faceshot.load_image(path.read_bytes()), reference)
    with open(path, "rb") as handle:
        assert np.array_equal(faceshot.load_image(handle), reference)
    assert np.array_equal(faceshot.load_image(reference), reference)
    assert np.array_equal(faceshot.load_image(obama), reference)


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path, obama):
    path = saved(tmp_path, obama.convert("CMYK"), "cmyk.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    assert faceshot.load_image(path).shape[2] == 3
    one_face(path)


def test_16_bit_png_is_scaled_not_clipped(tmp_path, obama):
    gray16 = (np.asarray(obama.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    path = saved(tmp_path, Image.fromarray(gray16), "gray16.png")
    assert Image.open(path).mode.startswith("I")
    pixels = faceshot.load_image(path)
    assert 60 < pixels.mean() < 200  # clipping would make it nearly all white
    one_face(path)


def test_rgba_png_is_composited_on_white(tmp_path, obama):
    rgba = obama.convert("RGBA")
    alpha = np.full((obama.height, obama.width), 255, dtype=np.uint8)
    alpha[:50, :50] = 0
    rgba.putalpha(Image.fromarray(alpha))
    path = saved(tmp_path, rgba, "rgba.png")
    pixels = faceshot.load_image(path)
    assert (pixels[:50, :50] == 255).all()
    one_face(path)


def test_grayscale_pgm(tmp_path, obama):
    path = saved(tmp_path, obama.convert("L"), "gray.pgm")
    assert faceshot.load_image(path).shape == (obama.height, obama.width, 3)
    one_face(path)


def test_animated_gif_uses_the_first_frame(tmp_path, obama):
    frames = [obama.convert("P"), Image.new("P", obama.size, 0)]
    path = tmp_path / "animated.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(path).n_frames == 2
    one_face(path)


@pytest.mark.parametrize("fmt,suffix", [("WEBP", "webp"), ("BMP", "bmp"), ("TIFF", "tif"), ("PNG", "png")])
def test_other_formats(tmp_path, obama, fmt, suffix):
    one_face(saved(tmp_path, obama, f"obama.{suffix}", format=fmt))


def test_exif_rotation_is_applied_and_the_box_lands_on_the_face(tmp_path, obama, obama_box):
    # Stored sideways (as a phone writes it) with Orientation=6: "rotate 90° clockwise to view".
    sideways = obama.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = saved(tmp_path, sideways, "rotated.jpg", exif=exif, quality=95)
    assert Image.open(path).size == (obama.height, obama.width)
    assert faceshot.load_image(path).shape[:2] == (obama.height, obama.width)
    box = one_face(path).box
    for ours, expected in zip(box.to_dict().values(), obama_box.to_dict().values()):
        assert abs(ours - expected) <= 0.1 * obama_box.width


# -- refused inputs -----------------------------------------------------------------------------


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(CorruptImageError, match="empty"):
        faceshot.load_image(path)


def test_truncated_jpeg(tmp_path, images):
    data = (images / "obama.jpg").read_bytes()
    path = tmp_path / "truncated.jpg"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CorruptImageError, match="truncated"):
        faceshot.load_image(path)


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a photo\n")
    with pytest.raises(UnsupportedImageError, match="not a recognised image"):
        faceshot.load_image(path)


def test_one_pixel_image(tmp_path):
    path = saved(tmp_path, Image.new("RGB", (1, 1)), "dot.png")
    with pytest.raises(ImageTooSmallError, match="1x1"):
        faceshot.load_image(path)


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and header claiming width × height, with a few bytes of pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(100_000, 100_000))
    with pytest.raises(ImageTooLargeError, match="megapixels|pixels"):
        faceshot.load_image(path)


def test_pixel_limit_is_configurable(tmp_path, images):
    with pytest.raises(ImageTooLargeError, match="limit"):
        faceshot.load_image(images / "obama.jpg", max_pixels=500_000)
    engine = faceshot.Engine(max_pixels=500_000)
    with pytest.raises(ImageTooLargeError):
        engine.detect(images / "obama.jpg")


def test_missing_path(tmp_path):
    with pytest.raises(ImageNotFoundError, match="no such file"):
        faceshot.load_image(tmp_path / "nobody.jpg")


def test_directory(tmp_path):
    with pytest.raises(ImageNotFoundError, match="directory"):
        faceshot.load_image(tmp_path)


def test_unsupported_container_format(tmp_path, obama):
    path = saved(tmp_path, obama, "obama.pdf", format="PDF")
    with pytest.raises(UnsupportedImageError):
        faceshot.load_image(path)


def test_wrong_array_types():
    with pytest.raises(ImageError, match="uint8"):
        faceshot.load_image(np.zeros((100, 100, 3), dtype=np.float32))
    with pytest.raises(ImageError, match="shape"):
        faceshot.load_image(np.zeros((100, 100, 5), dtype=np.uint8))
    with pytest.raises(ImageError, match="text mode"):
        faceshot.load_image(io.StringIO("abc"))
    with pytest.raises(ImageError, match="cannot read an image from a int"):
        faceshot.load_image(42)
