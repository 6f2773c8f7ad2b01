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


def test_a_jpeg_with_a_damaged_header_is_corrupt_and_its_size_is_the_files(tmp_path, obama):
    # A JPEG (start-of-image marker, EXIF block) whose frame header was overwritten: Pillow cannot
    # identify it, but it is a damaged JPEG, not an unsupported format; the size is the file's.
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 1  # orientation: upright
    obama.save(buffer, format="JPEG", exif=exif.tobytes())
    data = bytearray(buffer.getvalue())
    start = data.index(b"\xff\xdb")  # the first quantisation table, after the EXIF block
    data[start:] = bytes(len(data) - start)
    path = tmp_path / "damaged.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptImageError, match=f"JPEG whose header is damaged \\({len(data)} bytes\\)"):
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
    with pytest.raises(ImageNotFoundError, match="is a directory"):
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


def test_nul_byte_long_name_and_data_url_like_paths_are_image_errors(tmp_path):
    with pytest.raises(ImageNotFoundError, match="NUL"):
        faceshot.load_image(str(tmp_path / "a\0b.jpg"))
    with pytest.raises(ImageNotFoundError, match="too long"):
        faceshot.load_image(tmp_path / ("x" * 300 + ".jpg"))
    # ImageNotFoundError is also the FileNotFoundError that callers caught before.
    with pytest.raises(FileNotFoundError):
        faceshot.load_image(tmp_path / "nobody.jpg")


# -- data URLs and base64 -----------------------------------------------------------------------


def test_data_url_is_decoded_and_raw_base64_is_only_read_where_declared(images, tmp_path):
    import base64

    data = (images / "obama.jpg").read_bytes()
    reference = faceshot.load_image(data)
    encoded = base64.b64encode(data).decode()
    assert np.array_equal(faceshot.load_image(f"data:image/jpeg;base64,{encoded}"), reference)
    assert np.array_equal(faceshot.load_image(f"DATA:image/jpeg;BASE64,{encoded}"), reference)
    # Raw base64 passed as a path is a path (that does not exist), never decoded.
    with pytest.raises(ImageNotFoundError):
        faceshot.load_image(encoded[:200])
    # Where an interface declares base64: raw text (with line breaks, without padding) and data URLs.
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76)).rstrip("=")
    assert np.array_equal(faceshot.load_image_base64(wrapped), reference)
    assert np.array_equal(faceshot.load_image_base64(f"data:image/jpeg;base64,{encoded}"), reference)


def test_percent_encoded_data_url(tmp_path, obama):
    from urllib.parse import quote_from_bytes

    buffer = io.BytesIO()
    obama.resize((64, 64)).save(buffer, "PNG")
    pixels = faceshot.load_image("data:image/png," + quote_from_bytes(buffer.getvalue()))
    assert pixels.shape == (64, 64, 3)


@pytest.mark.parametrize(
    "url,error,message",
    [
        ("data:image/jpeg;base64", CorruptImageError, "no ','"),
        ("data:image/jpeg;base64,@@@not base64@@@", CorruptImageError, "base64"),
        ("data:text/plain;base64,aGVsbG8=", UnsupportedImageError, "text/plain"),
        ("data:image/png;base64,aGVsbG8=", UnsupportedImageError, "not a recognised image"),
        ("data:image/png;base64,", CorruptImageError, "empty"),
    ],
)
def test_bad_data_urls(url, error, message):
    with pytest.raises(error, match=message):
        faceshot.load_image(url)


def test_bad_base64():
    with pytest.raises(CorruptImageError, match="base64"):
        faceshot.load_image_base64("this is not base64!")
    with pytest.raises(CorruptImageError, match="base64"):
        faceshot.load_image_base64("héllo".encode())
    with pytest.raises(ImageError, match="text"):
        faceshot.load_image_base64(None)


# -- truncated JPEGs ----------------------------------------------------------------------------


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_missing_only_its_end_marker_is_accepted_when_no_pixel_is_lost(tmp_path, obama, progressive):
    path = saved(tmp_path, obama, "whole.jpg", quality=90, progressive=progressive)
    data = path.read_bytes()
    assert data.endswith(b"\xff\xd9")
    reference = faceshot.load_image(data)
    cut = tmp_path / "no_end.jpg"
    cut.write_bytes(data[:-2])
    with pytest.raises(OSError, match="truncated"):  # Pillow alone refuses it
        Image.open(cut).load()
    if progressive:
        # Several scans: a file that ends between two of them would lose the later ones unseen.
        with pytest.raises(CorruptImageError, match="truncated"):
            faceshot.load_image(cut)
        return
    assert np.array_equal(faceshot.load_image(cut), reference)


@pytest.mark.parametrize("lost", [3, 40, 5000])
def test_jpeg_that_lost_pixels_is_refused(tmp_path, obama, lost):
    data = saved(tmp_path, obama, "whole.jpg", quality=90).read_bytes()
    with pytest.raises(CorruptImageError, match="truncated"):
        faceshot.load_image(data[:-lost])
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # nothing global was changed


# -- deep and float pixels ----------------------------------------------------------------------


def test_float_tiff_in_0_1_is_scaled_not_black(tmp_path, obama):
    gray = np.asarray(obama.convert("L"), dtype=np.float32) / 255.0
    path = saved(tmp_path, Image.fromarray(gray, ), "float.tif")
    assert Image.open(path).mode == "F"
    pixels = faceshot.load_image(path)
    expected = np.asarray(obama.convert("L"))
    assert np.abs(pixels[:, :, 0].astype(int) - expected).max() <= 1
    one_face(path)


def test_12_bit_data_in_a_16_bit_png_is_scaled_not_near_black(tmp_path, obama):
    gray = np.asarray(obama.convert("L"), dtype=np.uint16)
    twelve = (gray.astype(np.uint32) * 4095 // 255).astype(np.uint16)
    path = saved(tmp_path, Image.fromarray(twelve), "gray12.png")
    assert Image.open(path).mode.startswith("I")
    pixels = faceshot.load_image(path)
    assert np.abs(pixels[:, :, 0].astype(int) - gray).max() <= 1
    one_face(path)


@pytest.mark.parametrize(
    "values,message",
    [
        (np.full((32, 32), -1.0, dtype=np.float32), "negative"),
        (np.full((32, 32), np.nan, dtype=np.float32), "NaN"),
        (np.full((32, 32), 1e6, dtype=np.float32), "beyond 16 bits"),
    ],
)
def test_float_images_of_unknown_scale_are_refused_with_the_reason(tmp_path, values, message):
    path = saved(tmp_path, Image.fromarray(values), "odd.tif")
    with pytest.raises(UnsupportedImageError, match=message):
        faceshot.load_image(path)


# -- EXIF ---------------------------------------------------------------------------------------


def exif_only_jpeg(image: Image.Image, exif: bytes) -> bytes:
    """A JPEG as phones write it: an EXIF (APP1) segment and no JFIF header (Pillow then reads the
    resolution from the EXIF block while opening it)."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    assert data[2:4] == b"\xff\xe0"  # Pillow's JFIF APP0
    app0_end = 4 + int.from_bytes(data[4:6], "big")
    body = b"Exif\0\0" + exif
    return b"\xff\xd8\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body + data[app0_end:]


def damaged_exif(orientation: int | None) -> bytes:
    """Little-endian TIFF: IFD0 with a resolution tag pointing far past the block, and maybe Orientation."""
    entries = [(0x011A, 5, 1, 5000)]  # XResolution, RATIONAL, at offset 5000: beyond the 60 bytes
    if orientation is not None:
        entries.append((0x0112, 3, 1, orientation))
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    return b"II*\0" + struct.pack("<I", 8) + ifd


def test_corrupt_exif_is_logged_not_warned(tmp_path, obama, caplog, recwarn):
    # Pillow itself warns about this block, on the console, while opening such a JPEG.
    data = exif_only_jpeg(obama, damaged_exif(orientation=6))
    with pytest.warns(UserWarning):  # "Truncated File Read"
        Image.open(io.BytesIO(data)).getexif().get(0x011A)
    recwarn.clear()
    pixels = faceshot.load_image(data)
    assert not recwarn.list, [str(w.message) for w in recwarn.list]
    # Orientation 6 is intact and applied; the damage elsewhere does not matter to faceshot.
    assert pixels.shape[:2] == (obama.width, obama.height)

    truncated = damaged_exif(orientation=None)[:12]  # the directory is cut off
    with caplog.at_level("WARNING", logger="faceshot.io"):
        pixels = faceshot.load_image(exif_only_jpeg(obama, truncated))
    assert not recwarn.list, [str(w.message) for w in recwarn.list]
    assert pixels.shape[:2] == (obama.height, obama.width)
    assert any("EXIF block is damaged" in record.getMessage() for record in caplog.records)


def test_exif_orientation_of_png_and_webp(tmp_path, obama):
    sideways = obama.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    for fmt in ("PNG", "WEBP"):
        path = saved(tmp_path, sideways, f"rotated.{fmt.lower()}", format=fmt, exif=exif)
        assert faceshot.load_image(path).shape[:2] == (obama.height, obama.width), fmt


# -- HEIC ---------------------------------------------------------------------------------------


def test_heic_photo_is_read_through_the_extra(tmp_path, obama, obama_box):
    pillow_heif = pytest.importorskip("pillow_heif", reason="the heic extra (pillow-heif) is not installed")
    heif = pillow_heif.from_pillow(obama)
    path = tmp_path / "phone.heic"
    heif.save(path, quality=90)
    assert path.read_bytes()[4:12] in (b"ftypheic", b"ftypmif1")
    pixels = faceshot.load_image(path)
    assert pixels.shape == (obama.height, obama.width, 3)
    box = one_face(path).box
    assert abs(box.left - obama_box.left) <= 0.1 * obama_box.width


def test_heic_without_the_extra_names_it(tmp_path, obama):
    pillow_heif = pytest.importorskip("pillow_heif", reason="pillow-heif is needed to write the test photo")
    path = tmp_path / "phone.heic"
    pillow_heif.from_pillow(obama.resize((64, 64))).save(path)
    # A fresh interpreter where importing pillow_heif fails, as when the extra is not installed.
    code = (
        "import sys; sys.modules['pillow_heif'] = None\n"
        "import faceshot\n"
        "try:\n"
        f"    faceshot.load_image({str(path)!r})\n"
        "except faceshot.MissingExtraError as exc:\n"
        "    print('refused:', exc)\n"
    )
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "refused:" in run.stdout and "faceshot[heic]" in run.stdout, run.stdout + run.stderr


def test_cluster_reads_heic_jfif_and_jpe_photos(tmp_path, images):
    # cluster used to skip these endings silently.
    pillow_heif = pytest.importorskip("pillow_heif", reason="the heic extra (pillow-heif) is not installed")
    import json
    import shutil
    import subprocess
    import sys

    from faceshot.io import IMAGE_SUFFIXES

    assert {".heic", ".heif", ".jfif", ".jpe"} <= IMAGE_SUFFIXES
    folder = tmp_path / "photos"
    folder.mkdir()
    pillow_heif.from_pillow(Image.open(images / "obama.jpg").convert("RGB")).save(folder / "a.heic", quality=90)
    shutil.copy(images / "obama2.jpg", folder / "b.jfif")
    shutil.copy(images / "obama3.jpg", folder / "c.jpe")
    run = subprocess.run(
        [sys.executable, "-m", "faceshot", "cluster", str(folder), "--json"], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    sources = {Path(face["image"]).name for cluster in result["clusters"] for face in cluster["faces"]}
    sources |= {Path(face["image"]).name for face in result["unclustered"]}
    assert result["photos"] == 3 and not result["failed"], result
    assert sources == {"a.heic", "b.jfif", "c.jpe"}, result


@pytest.mark.parametrize("limit", [0, -1, "many", 2.5])
def test_an_impossible_pixel_limit_is_a_config_error(images, limit):
    with pytest.raises(faceshot.ConfigError, match="max_pixels"):
        faceshot.load_image(images / "obama.jpg", max_pixels=limit)


def test_exif_orientation_in_imagemagick_png_text(obama):
    from PIL import PngImagePlugin

    sideways = obama.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = exif.tobytes()  # "Exif\0\0" + TIFF
    info = PngImagePlugin.PngInfo()
    info.add_text("Raw profile type exif", f"\nexif\n{len(data):8}\n{data.hex()}\n")
    buffer = io.BytesIO()
    sideways.save(buffer, "PNG", pnginfo=info)
    assert faceshot.load_image(buffer.getvalue()).shape[:2] == (obama.height, obama.width)
