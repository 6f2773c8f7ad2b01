"""Draw what faceshot found onto a copy of the photo: boxes, names and scores.

Names are drawn in whatever script they are written in when a font on the system has their
characters: Pillow's own font covers Latin only, so for other scripts faceshot asks fontconfig
(``fc-list``, present on Linux desktops and most servers) for an installed font that covers the
whole label, or uses the font file the caller names. On Debian and Ubuntu, ``apt install
fonts-noto-cjk`` adds Chinese, Japanese and Korean. When no font covers a name, the person's id
(or, without one, the name with its characters written as ``\\uXXXX`` escapes) is drawn instead
of empty boxes, and a warning is logged.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from faceshot.errors import ConfigError
from faceshot.gallery.results import Identification

__all__ = ["annotate", "font_for"]

logger = logging.getLogger(__name__)

KNOWN, UNKNOWN = (40, 200, 80), (230, 60, 60)
#: A code point no font has a glyph for (the last private-use one): what "missing" looks like.
_MISSING = "\U0010fffd"

FontLike = ImageFont.FreeTypeFont | ImageFont.ImageFont


def annotate(
    image: np.ndarray, found: Sequence[Identification], *, font: str | os.PathLike | None = None
) -> Image.Image:
    """A copy of ``image`` (RGB ``uint8``, ``(height, width, 3)``) with each face boxed: green and
    named when known, red "unknown" otherwise.

    ``font``: a TrueType/OpenType file to draw the names with; by default Pillow's font, or an
    installed font that has the name's characters (see the module docstring). Raises
    :class:`~faceshot.errors.ConfigError` when ``font`` cannot be read as a font.
    """
    canvas = Image.fromarray(image).copy()
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(max(canvas.size) / 400))
    size = max(12, round(max(canvas.size) / 50))
    for item in found:
        box = item.face.box
        colour = KNOWN if item.known else UNKNOWN
        label = item.identity if item.known else "unknown"
        if item.score is not None:
            label = f"{label} {item.score:.3f}"
        chosen = font_for(label, size, font)
        if chosen is None:
            shown = _stand_in(item)
            logger.warning(
                "no installed font has the characters of %r; drawing %r instead "
                "(on Debian/Ubuntu: apt install fonts-noto-cjk, or pass a font file)",
                item.identity, shown,
            )
            label = shown if item.score is None else f"{shown} {item.score:.3f}"
            chosen = font_for(label, size, font) or _default_font(size)
        draw.rectangle((box.left, box.top, box.right, box.bottom), outline=colour, width=width)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=chosen)
        # Below the box, kept inside the picture.
        x = min(box.left, canvas.width - (right - left) - 2)
        y = min(box.bottom + width, canvas.height - (bottom - top) - 2)
        draw.rectangle((x - 2, y + top - 2, x + right - left + 2, y + bottom + 2), fill=colour)
        draw.text((x - left, y), label, fill=(255, 255, 255), font=chosen)
    return canvas


def font_for(text: str, size: int, font: str | os.PathLike | None = None) -> FontLike | None:
    """A font of ``size`` pixels with a glyph for every character of ``text``, or None.

    With ``font`` (a file), that font or None; otherwise Pillow's default font when it covers the
    text, else the first installed font fontconfig lists as covering it.
    """
    if font is not None:
        chosen = _load_font(os.fspath(font), size)
        return chosen if covers(chosen, text) else None
    default = _default_font(size)
    if covers(default, text):
        return default
    for path in _installed_fonts_covering(frozenset(ch for ch in text if not ch.isspace())):
        try:
            candidate = _load_font(path, size)
        except ConfigError:
            continue
        if covers(candidate, text):
            return candidate
    return None


def covers(font: FontLike, text: str) -> bool:
    """Whether ``font`` draws every character of ``text`` with a glyph of its own, not the
    "missing" box (``.notdef``): a character is missing when it renders as a code point no font has."""
    missing = _mask(font, _MISSING)
    return all(ch.isspace() or _mask(font, ch) != missing for ch in set(text))


def _mask(font: FontLike, text: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(text)
    return mask.size, bytes(mask)


def _stand_in(item: Identification) -> str:
    person_id = getattr(item, "person_id", None)
    if person_id is not None:
        return f"#{person_id}"
    return (item.identity or "unknown").encode("ascii", "backslashreplace").decode("ascii")


@functools.lru_cache(maxsize=8)
def _default_font(size: int) -> FontLike:
    return ImageFont.load_default(size=size)


@functools.lru_cache(maxsize=32)
def _load_font(path: str, size: int) -> FontLike:
    try:
        return ImageFont.truetype(path, size)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot be read as a font ({exc})") from None


@functools.lru_cache(maxsize=256)
def _installed_fonts_covering(characters: frozenset[str]) -> tuple[str, ...]:
    """Font files fontconfig lists as having every one of ``characters``, regular sans-serif first."""
    if not characters or shutil.which("fc-list") is None:
        return ()
    charset = " ".join(f"{ord(ch):x}" for ch in sorted(characters))
    try:
        listed = subprocess.run(
            ["fc-list", f":charset={charset}", "file"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("fc-list failed: %s", exc)
        return ()
    files = {line.strip().rstrip(":") for line in listed.splitlines() if line.strip()}

    def preference(path: str) -> tuple[bool, bool, bool, str]:
        name = Path(path).name.lower()
        styled = any(style in name for style in ("bold", "italic", "oblique", "light", "thin", "black", "medium"))
        return ("sans" not in name, styled, "mono" in name, name)

    return tuple(sorted(files, key=preference))
