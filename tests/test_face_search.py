"""The face-search policy: photos searched at the scale ``min_face`` asks for, in tiles when that is
large, and turned when stored sideways — boxes always in the stored photo's pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import faceshot
from faceshot.detect import create_detector
from faceshot.detect.search import scaled_search, suppress, tiles
from faceshot.errors import ConfigError

from conftest import face_cut, panorama_photo


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def panorama(images) -> tuple[np.ndarray, list[int]]:
    """A 5120 × 886 panorama with six faces of about 100 px, and the x of each face's cut."""
    return panorama_photo(images)


def test_tiles_cover_the_length_with_the_overlap() -> None:
    assert tiles(1000, 2048, 320) == [0]
    starts = tiles(5120, 2048, 320)
    assert starts[0] == 0 and starts[-1] == 5120 - 2048
    assert all(b - a <= 2048 - 320 for a, b in zip(starts, starts[1:]))


def test_suppress_keeps_the_more_confident_of_two_overlapping_boxes() -> None:
    found = [((0, 0, 100, 100), 0.5), ((5, 5, 105, 105), 0.9), ((300, 0, 400, 100), 0.1)]
    assert suppress(found) == [((5, 5, 105, 105), 0.9), ((300, 0, 400, 100), 0.1)]


def test_a_face_on_a_tile_border_is_found_once_in_the_photos_pixels(images) -> None:
    face = face_cut(_rgb(images / "obama.jpg"), 120)
    canvas = np.full((600, 3000, 3), 128, np.uint8)
    x = 1700  # the first tile ends at 2048: this face crosses into the overlap
    canvas[100 : 100 + face.shape[0], x : x + face.shape[1]] = face
    hog = create_detector("hog")
    found = scaled_search(canvas, 1.0, hog._native, native=80, tile=2048)
    assert len(found) == 1
    (left, top, right, bottom), _ = found[0]
    assert x < left < right < x + face.shape[1] and 100 < top < bottom < 100 + face.shape[0]


def test_a_view_into_a_photo_is_searched_as_its_copy_is(images) -> None:
    """dlib's HOG read a view (rows apart in memory, as a tile is) wrongly: on this one it found
    the face in 1 of 5 runs, and every time on a copy."""
    face = face_cut(_rgb(images / "obama.jpg"), 120)
    canvas = np.full((600, 3000, 3), 128, np.uint8)
    canvas[100 : 100 + face.shape[0], 1700 : 1700 + face.shape[1]] = face
    view = canvas[:, 952:]
    assert not view.flags.c_contiguous
    hog = create_detector("hog")
    want = hog._native(np.ascontiguousarray(view))
    assert len(want) == 1
    assert [hog._native(view) for _ in range(5)] == [want] * 5


def test_the_panorama_that_the_default_search_misses_gives_six_faces_with_min_face(panorama) -> None:
    canvas, xs = panorama
    assert len(create_detector("hog").detect(canvas)) == 0  # downscaled to 2000 px, the faces are 39 px
    faces = create_detector("hog", min_face=80).detect(canvas)
    assert len(faces) == 6
    for face, x in zip(sorted(faces, key=lambda f: f.box.left), xs):
        assert x < face.box.left < x + 200 and 80 <= face.box.width <= 130
        assert all(face.box.left - 10 <= px <= face.box.right + 10 for px, _ in face.landmarks)


def test_an_enlarged_group_photo_is_found_with_min_face(datasets) -> None:
    """The 640 × 405 group photo has 21 faces of about 20 px that HOG finds searched at 4×; enlarged
    to 1280 × 810 the default search (no upsampling past 1000 px) finds none."""
    small = Image.open(datasets / "scenes" / "opencv_course_group_1.jpg").convert("RGB")
    enlarged = np.asarray(small.resize((1280, 810), Image.BICUBIC))
    assert len(create_detector("hog").detect(enlarged)) == 0
    assert len(create_detector("hog", min_face=40).detect(enlarged)) >= 20
    assert len(create_detector("hog", min_face=20).detect(np.asarray(small))) >= 20


def test_a_sideways_photo_is_found_with_turns_and_embeds_like_the_upright_one(images) -> None:
    upright = _rgb(images / "obama.jpg")
    sideways = np.ascontiguousarray(np.rot90(upright, 1))  # a phone photo whose EXIF turn was lost
    assert create_detector("hog").detect(sideways) == []
    faces = create_detector("hog", turns=True).detect(sideways)
    assert len(faces) == 1
    box = faces[0].box
    assert box.right <= sideways.shape[1] and box.bottom <= sideways.shape[0]
    engine = faceshot.engine(detector="hog:turns=true")
    assert float(engine.embed(sideways)[0] @ faceshot.engine().embed(upright)[0]) > 0.95


@pytest.mark.parametrize("bad", [0, 7, 20.5, True, "big"])
def test_min_face_must_be_a_whole_number_of_pixels(bad) -> None:
    with pytest.raises(ConfigError, match="min_face"):
        create_detector("hog", min_face=bad)


def test_the_largest_face_is_the_largest_sure_one(datasets) -> None:
    """In this LFW photo HOG also returns a larger box of confidence 0.15 beside the portrait's face
    (2.33): the face compared is the sure one."""
    image = _rgb(datasets / "lfw" / "images" / "Bernadette_Peters" / "Bernadette_Peters_0001.jpg")
    by_size = create_detector("hog", sure=-10.0).detect(image)
    assert len(by_size) == 2 and by_size[0].score < 0.3 <= by_size[1].score  # the false box is larger
    first = create_detector("hog").detect(image)[0]
    assert first.score >= 0.3 and abs((first.box.left + first.box.right) / 2 - 125) < 25


def test_a_higher_confidence_returns_fewer_faces(datasets) -> None:
    image = _rgb(datasets / "lfw" / "images" / "Bernadette_Peters" / "Bernadette_Peters_0001.jpg")
    assert len(create_detector("hog", confidence=0.5).detect(image)) == 1
    assert len(create_detector("hog", confidence=-0.5).detect(image)) >= 2


@pytest.mark.parametrize("option", [{"turns": "no"}, {"turns": 1}, {"gray": "off"}, {"confidence": "abc"}, {"sure": "high"},
                                    {"upsample": -1}, {"upsample": "abc"}, {"upsample": 1.5}, {"upsample": 99},
                                    {"upsample_below": -1}, {"max_side": "abc"}, {"large_face": "abc"}])
def test_switches_and_levels_are_checked(option) -> None:
    with pytest.raises(ConfigError, match=next(iter(option))):
        create_detector("hog", **option)
