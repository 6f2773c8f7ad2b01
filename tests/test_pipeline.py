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
    assert loose.same and loose.far is not None
    strict = faceshot.verify(images / "obama.jpg", images / "obama2.jpg", far=1e-3)
    default = faceshot.verify(images / "obama.jpg", images / "obama2.jpg")
    assert strict.threshold > default.threshold and strict.far == 1e-3
    with pytest.raises(ConfigError, match="not both"):
        faceshot.verify(images / "obama.jpg", images / "obama2.jpg", threshold=0.9, far=1e-3)


def test_unknown_backend_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="choose one of: cnn, cnn-onnx, hog"):
        faceshot.Engine(detector="mtcnn")
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
    assert max(big.shape[:2]) > detector.max_side  # the downscaling path is taken
    box = faceshot.detect(big)[0].box
    for ours, theirs in zip(box.to_dict().values(), small.to_dict().values()):
        assert abs(ours - theirs * factor) <= 0.08 * small.width * factor
