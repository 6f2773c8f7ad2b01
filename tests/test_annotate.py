"""--annotate draws names in their own script when an installed font has them, and says so when none does."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from faceshot.annotate import annotate, covers, font_for
from faceshot.errors import ConfigError
from faceshot.gallery import Identification
from faceshot.results import Box, Face

BOX = Box(40, 40, 160, 160)


def labelled(name: str | None, **options) -> np.ndarray:
    """The label strip under the face box, as drawn on a gray 400 × 300 picture."""
    found = [Identification(Face(BOX, 1.0, ()), name, 0.95 if name else None, 0.9)]
    drawn = np.asarray(annotate(np.full((300, 400, 3), 128, dtype=np.uint8), found, **options))
    return drawn[BOX.bottom + 1 :, :].copy()


def cjk_font():
    font = font_for("张伟李娜", 16)
    if font is None:
        pytest.skip("no installed font has Chinese characters (Debian/Ubuntu: apt install fonts-noto-cjk)")
    return font


def test_a_cjk_name_is_drawn_with_a_font_that_has_its_characters():
    font = cjk_font()
    assert covers(font, "张伟 0.950")
    # Pillow's own font has no Chinese glyphs: it would draw every character as the same box.
    from PIL import ImageFont

    default = ImageFont.load_default(size=16)
    assert not covers(default, "张伟")
    assert bytes(default.getmask("张")) == bytes(default.getmask("李"))
    # Drawn with a covering font, two names of the same length are different pictures, and
    # different from the boxes the default font would draw.
    zhang, li = labelled("张伟"), labelled("李娜")
    assert not np.array_equal(zhang, li)
    assert bytes(font.getmask("张")) != bytes(font.getmask("李"))


def test_latin_names_keep_the_default_font():
    assert covers(font_for("Ada Lovelace 0.950", 16), "Ada Lovelace 0.950")
    assert not np.array_equal(labelled("Ada"), labelled("Bob"))


def test_a_name_no_font_covers_is_drawn_as_its_escapes_with_a_warning(caplog):
    name = "\U00010000\U00010001"  # Linear B: in no font faceshot's tests can count on
    if font_for(name, 16) is not None:
        pytest.skip("an installed font covers Linear B")
    with caplog.at_level(logging.WARNING, logger="faceshot.annotate"):
        strip = labelled(name)
    assert any("no installed font" in r.getMessage() and "fonts-noto-cjk" in r.getMessage() for r in caplog.records)
    # What was drawn is the escaped name, the same picture as writing the escapes out.
    assert np.array_equal(strip, labelled("\\U00010000\\U00010001"))


def test_a_font_file_given_is_used_and_a_bad_one_is_a_config_error(tmp_path):
    font = cjk_font()
    assert not np.array_equal(labelled("张伟", font=font.path), labelled("李娜", font=font.path))
    bad = tmp_path / "not-a-font.ttf"
    bad.write_text("hello")
    with pytest.raises(ConfigError, match="cannot be read as a font"):
        labelled("Ada", font=bad)
