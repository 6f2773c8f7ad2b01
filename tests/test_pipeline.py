"""The detect → align → embed → verify pipeline on real photos with the real dlib models."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import faceshot
from faceshot import ConfigError, MultipleFacesError, NoFaceError


def test_same_person_is_verified(images):
    for other in ("obama2.jpg", "obama3.jpg"):
        result = faceshot.verify(images / "obama.jpg", images / other)
        assert result.same, (other, result.score, result.threshold)
        assert result.far is not None and 0 < result.far < 0.05


def test_different_people_are_told_apart(images):
    result = faceshot.verify(images / "obama.jpg", images / "biden.jpg")
    assert not result.same
    assert result.score < result.threshold


def test_embeddings_are_unit_length_and_stable(images):
    vectors = faceshot.embed(images / "obama.jpg")
    assert vectors.shape == (1, 128) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(faceshot.embed(images / "obama.jpg"), vectors)


def test_detect_gives_box_score_and_five_landmarks_on_the_face(images):
    faces = faceshot.detect(images / "obama.jpg")
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0 and len(face.landmarks) == 5
    for x, y in face.landmarks:
        assert face.box.left - 10 <= x <= face.box.right + 10
        assert face.box.top - 10 <= y <= face.box.bottom + 10


def side_by_side(*paths) -> np.ndarray:
    photos = [Image.open(p).convert("RGB") for p in paths]
    height = 600
    resized = [np.asarray(p.resize((round(p.width * height / p.height), height))) for p in photos]
    return np.concatenate(resized, axis=1)


def test_several_faces_use_the_largest_and_say_so(images):
    group = side_by_side(images / "obama.jpg", images / "biden.jpg")
    assert len(faceshot.detect(group)) == 2
    result = faceshot.verify(images / "obama2.jpg", group)
    assert result.faces_in_b == 2 and result.notes
    with pytest.raises(MultipleFacesError, match="2 faces"):
        faceshot.verify(images / "obama2.jpg", group, multiple="error")


def test_no_face_is_an_error_that_says_what_to_do(images):
    blank = np.full((300, 300, 3), 128, dtype=np.uint8)
    assert faceshot.detect(blank) == []
    assert faceshot.embed(blank).shape == (0, 128)
    with pytest.raises(NoFaceError, match="no face found"):
        faceshot.verify(images / "obama.jpg", blank)


def test_threshold_and_far_move_the_decision(images):
    loose = faceshot.verify(images / "obama.jpg", images / "biden.jpg", threshold=0.5)
    assert loose.same and loose.far is None  # below the FAR table: not measured (not its first row's 0.5)
    strict = faceshot.verify(images / "obama.jpg", images / "obama2.jpg", far=1e-3)
    default = faceshot.verify(images / "obama.jpg", images / "obama2.jpg")
    assert strict.threshold > default.threshold and strict.far == 1e-3
    with pytest.raises(ConfigError, match="not both"):
        faceshot.verify(images / "obama.jpg", images / "obama2.jpg", threshold=0.9, far=1e-3)


def test_unknown_backend_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="choose one of: cnn, cnn-onnx, hog, mtcnn, yunet"):
        faceshot.Engine(detector="retinaface")
    with pytest.raises(ConfigError, match="dlib-resnet"):
        faceshot.Engine(embedder="arcface")


@pytest.mark.slow
def test_cnn_detector_finds_the_same_face(images):
    hog = faceshot.detect(images / "obama.jpg")[0].box
    cnn = faceshot.detect(images / "obama.jpg", detector="cnn")
    assert len(cnn) == 1
    box = cnn[0].box
    centre = ((box.left + box.right) / 2, (box.top + box.bottom) / 2)
    assert hog.left < centre[0] < hog.right and hog.top < centre[1] < hog.bottom


def test_large_photos_are_searched_downscaled_and_boxes_mapped_back(images):
    photo = Image.open(images / "obama.jpg").convert("RGB")
    small = faceshot.detect(np.asarray(photo))[0].box
    factor = 5
    big = np.asarray(photo.resize((photo.width * factor, photo.height * factor)))
    detector = faceshot.engine().detector
    detector = getattr(detector, "members", [detector])[0]  # the default chain's first detector, HOG
    assert max(big.shape[:2]) > detector.max_side  # the downscaling path is taken
    box = faceshot.detect(big)[0].box
    for ours, theirs in zip(box.to_dict().values(), small.to_dict().values()):
        assert abs(ours - theirs * factor) <= 0.08 * small.width * factor


class _Rect:
    """A stand-in for a dlib rectangle: only its width matters to the upsampling decision."""

    def __init__(self, width: int) -> None:
        self._width = width

    def width(self) -> int:
        return self._width


def _searches(face_width: int, image_side: int, **options) -> list[int]:
    """The upsampling of each search a detector makes when the photo-as-is search finds one face."""
    from faceshot.detect.dlib_detectors import DlibDetector

    class Recording(DlibDetector):
        name = "recording"
        calls: list[int] = []

        def _find(self, image, upsample):
            self.calls.append(upsample)
            return [(_Rect(face_width), 1.0)] if face_width else []

    detector = Recording(**options)
    detector._search(np.zeros((image_side, image_side, 3), np.uint8))
    return detector.calls


def test_a_large_face_found_as_is_skips_the_doubled_search():
    assert _searches(100, 250) == [0]  # a portrait: 100 px ≥ 0.2 × 250
    assert _searches(45, 250) == [0, 1]  # a small face: look for smaller ones too
    assert _searches(0, 250) == [0, 1]  # nothing found as is
    assert _searches(100, 250, large_face=None) == [1]
    assert _searches(100, 1500) == [0]  # large photos are never doubled
    assert _searches(100, 250, upsample=2) == [2]
    with pytest.raises(ValueError, match="large_face"):
        _searches(100, 250, large_face=1.5)


def test_the_portrait_shortcut_finds_the_same_faces_on_real_photos(images):
    from faceshot.detect import create_detector
    from faceshot.evaluate.detection import iou

    shortcut, always = create_detector("hog"), create_detector("hog", large_face=None)
    def photo(name: str, side: int) -> np.ndarray:  # small enough to be doubled without the shortcut
        image = Image.open(images / name).convert("RGB")
        image.thumbnail((side, side))
        return np.asarray(image)

    portrait = photo("obama.jpg", 400)
    (fast,), (slow,) = shortcut.locate(portrait), always.locate(portrait)
    assert iou(fast[0], slow[0]) > 0.6
    group = photo("insightface_t1.jpg", 900)  # small faces: the doubled search runs
    found = shortcut.locate(group)
    assert found == always.locate(group) and len(found) >= 5  # the same boxes: the doubled search ran
