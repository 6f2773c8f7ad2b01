"""Landmarks carry their scheme: dlib's five (eye corners, nose base) or eyes-nose-mouth (MTCNN's,
YuNet's, ArcFace's template). Aligners need one; an engine refuses a detector that gives the other."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceshot.align.arcface import TEMPLATE_112, similarity
from faceshot.detect import create_detector
from faceshot.engine import Engine
from faceshot.errors import ConfigError
from faceshot.quality import yaw
from faceshot.results import DLIB_5, EYES_NOSE_MOUTH, Box, Face

REPO = Path(__file__).resolve().parents[1]
MODELS = Path(os.environ.get("FACESHOT_TEST_MODELS", REPO / ".cache" / "models"))


@pytest.fixture(scope="module")
def models() -> Path:
    from faceshot.detect import mtcnn_weights

    if not all(mtcnn_weights.model_path(net, MODELS).is_file() for net in mtcnn_weights.NETWORKS):
        message = f"MTCNN's graphs are missing from {MODELS}: run `make test-models`"
        pytest.fail(message) if os.environ.get("CI") == "true" else pytest.skip(message)
    return MODELS


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_an_engine_refuses_an_aligner_whose_scheme_the_detector_does_not_give() -> None:
    with pytest.raises(ConfigError, match="arcface-112 needs eyes-nose-mouth landmarks.*hog gives dlib-5"):
        Engine(detector="hog", aligner="arcface-112")


def test_a_chain_needs_one_scheme(models) -> None:
    with pytest.raises(ConfigError, match="different schemes"):
        Engine(detector=f"hog>mtcnn:landmarks=eyes-nose-mouth,cache_dir={models}")
    with pytest.raises(ConfigError, match="landmarks must be one of"):
        create_detector("mtcnn", cache_dir=str(models), landmarks="68")


def test_mtcnn_gives_its_own_points_or_dlibs_on_the_adapted_box(models, images) -> None:
    image = _rgb(images / "obama.jpg")
    own = create_detector("mtcnn", cache_dir=str(models), landmarks=EYES_NOSE_MOUTH).detect(image)[0]
    dlib_points = create_detector("mtcnn", cache_dir=str(models)).detect(image)[0]
    on_hog = create_detector("hog").detect(image)[0]
    assert own.scheme == EYES_NOSE_MOUTH and dlib_points.scheme == on_hog.scheme == DLIB_5
    # dlib's points placed on MTCNN's adapted box land where they land on HOG's box
    gap = np.linalg.norm(np.asarray(dlib_points.landmarks) - np.asarray(on_hog.landmarks), axis=1)
    assert np.median(gap) < 2.0, gap
    # MTCNN's own eye centres lie between dlib's corners of the same eye
    eye_centre = np.asarray(on_hog.landmarks[:2]).mean(axis=0)
    assert min(np.linalg.norm(np.asarray(own.landmarks[:2]) - eye_centre, axis=1)) < 0.1 * on_hog.box.width


def test_arcface_alignment_puts_the_points_on_the_template(models, images) -> None:
    engine = Engine(detector=f"mtcnn:landmarks=eyes-nose-mouth,cache_dir={models}", aligner="arcface-112")
    image = _rgb(images / "obama.jpg")
    faces = engine.detector.detect(image)
    chips = engine.aligner.align(image, faces[:1])
    assert chips.shape == (1, 112, 112, 3) and chips.dtype == np.uint8
    # The transform takes the face's points near the template (5 points, 4 parameters: a smile
    # moves the mouth corners off it, the eyes stay close).
    points = np.asarray(faces[0].landmarks)
    moved = (similarity(points, TEMPLATE_112) @ np.hstack([points, np.ones((5, 1))]).T).T
    assert np.abs(moved[:2] - TEMPLATE_112[:2]).max() < 3.0 and np.abs(moved - TEMPLATE_112).max() < 7.0
    # Found again in the chip (enlarged for MTCNN's 20-px minimum), the eyes are where the template puts them.
    again = create_detector("mtcnn", cache_dir=str(models), landmarks=EYES_NOSE_MOUTH).detect(
        np.asarray(Image.fromarray(chips[0]).resize((224, 224), Image.BICUBIC))
    )
    assert again
    eyes = np.asarray(again[0].landmarks[:2]) / 2
    assert np.abs(eyes - TEMPLATE_112[:2]).max() < 5.0  # the fit's residual plus a second detection


def test_the_similarity_transform_recovers_a_known_one() -> None:
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 200, (5, 2))
    angle, scale, shift = 0.3, 0.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = scale * source @ rotation.T + shift
    np.testing.assert_allclose(similarity(source, target), np.hstack([scale * rotation, shift[:, None]]), atol=1e-9)


def test_pose_is_judged_from_either_scheme() -> None:
    box = Box(0, 0, 100, 100)
    frontal = Face(box, 1.0, ((30, 40), (70, 40), (50, 60), (35, 80), (65, 80)), EYES_NOSE_MOUTH)
    turned = Face(box, 1.0, ((30, 40), (70, 40), (65, 60), (35, 80), (65, 80)), EYES_NOSE_MOUTH)
    assert abs(yaw(frontal)) < 0.01 and yaw(turned) > 0.2
    dlib_frontal = Face(box, 1.0, ((25, 40), (35, 40), (65, 40), (75, 40), (50, 62)))
    assert dlib_frontal.scheme == DLIB_5 and abs(yaw(dlib_frontal)) < 0.01
    assert frontal.to_dict()["landmark_scheme"] == EYES_NOSE_MOUTH
