"""YuNet (``yunet:model=PATH``) with the copy in ../shared/models: real photos, its confidences, errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceshot.detect import create_detector
from faceshot.errors import ConfigError, ModelError

MODEL_NAME = "face_detection_yunet_2026may.onnx"


@pytest.fixture(scope="module")
def model(datasets) -> Path:
    path = datasets.parent / "models" / MODEL_NAME
    if not path.is_file():
        pytest.skip(f"{path} is absent: these tests need the shared YuNet model")
    return path


@pytest.fixture(scope="module")
def yunet(model):
    return create_detector("yunet", model=str(model))


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_one_face_in_each_package_photo_where_hog_finds_it(yunet, images):
    hog = create_detector("hog")
    for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"):
        image = _rgb(images / name)
        faces = yunet.detect(image)
        assert len(faces) == 1, (name, faces)
        assert faces[0].box.iou(hog.detect(image)[0].box) >= 0.5, name
        assert 0.85 <= faces[0].score <= 1.0  # real faces score about 0.9–0.95 (BENCHMARKS.md)


def test_group_photo_and_its_points(yunet, images):
    image = _rgb(images / "insightface_t1.jpg")  # six people, all found by HOG
    hog = [face.box for face in create_detector("hog").detect(image)]
    found = yunet.locate(image)
    assert len(found) == len(hog) == 6
    for face in found:
        assert max(face.box.iou(box) for box in hog) >= 0.5
        # YuNet's own points (eye centres, nose tip, mouth corners) lie in order inside the box.
        (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = face.points
        assert face.box.left <= lx < rx <= face.box.right and max(ly, ry) < ny < min(mly, mry) <= face.box.bottom


def test_large_photos_are_searched_downscaled_in_the_photos_coordinates(yunet, images):
    image = _rgb(images / "biden.jpg")  # 970 × 2204: searched at 640 px
    big = yunet.detect(image)
    small = Image.fromarray(image).resize((image.shape[1] // 4, image.shape[0] // 4))
    quarter = yunet.detect(np.asarray(small))
    assert len(big) == len(quarter) == 1
    scaled = quarter[0].box
    assert big[0].box.iou(type(scaled)(scaled.left * 4, scaled.top * 4, scaled.right * 4, scaled.bottom * 4)) >= 0.8


def test_verification_through_yunet(model, images):
    import faceshot

    detector = f"yunet:model={model}"
    assert faceshot.verify(images / "obama.jpg", images / "obama2.jpg", detector=detector).same
    assert not faceshot.verify(images / "obama.jpg", images / "biden.jpg", detector=detector).same


def test_annotated_scenes_recall_and_precision(yunet, datasets):
    from conftest import scene_detection

    result, precision = scene_detection(yunet.detect, datasets, "yunet")
    assert result.recall >= 0.9 and precision >= 0.9


def test_no_face_in_non_face_photos(yunet, datasets):
    from faceshot.io import load_image

    photos = sorted(p for p in (datasets / "nonfaces").iterdir() if not p.name.endswith(".md"))
    alarms = [p.name for p in photos if yunet.detect(load_image(p))]
    assert len(alarms) <= 1, alarms


def test_errors(model, tmp_path, images):
    with pytest.raises(ConfigError, match="yunet:model=PATH"):
        create_detector("yunet")
    with pytest.raises(ConfigError, match="confidence"):
        create_detector("yunet", model=str(model), confidence=1.5)
    image = _rgb(images / "obama2.jpg")
    with pytest.raises(ModelError, match="cannot read the YuNet model"):
        create_detector("yunet", model=str(tmp_path / "missing.onnx")).detect(image)
    # Another ONNX model is refused by its outputs, naming them.
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "other",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, None, None])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, None, None])])
    other = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), other)
    with pytest.raises(ModelError, match="not a YuNet face detector"):
        create_detector("yunet", model=str(other)).detect(image)
    with pytest.raises(ConfigError, match="RGB uint8"):
        create_detector("yunet", model=str(model)).locate(np.zeros((64, 64), np.uint8))


def test_pickled_detector_starts_its_own_session(yunet, images):
    image = _rgb(images / "obama2.jpg")
    first = yunet.detect(image)
    copy = pickle.loads(pickle.dumps(yunet))
    assert copy._session is None
    assert copy.detect(image) == first


def test_concurrent_detections_equal_the_single_thread_ones(yunet, model, images):
    from concurrent.futures import ThreadPoolExecutor

    fresh = create_detector("yunet", model=str(model))  # its session is started by the threads
    photos = [_rgb(images / name) for name in ("obama2.jpg", "insightface_t1.jpg")]
    single = [yunet.detect(image) for image in photos]
    with ThreadPoolExecutor(4) as pool:
        found = list(pool.map(fresh.detect, photos * 3))
    assert found == single * 3


def test_min_face_finds_the_panorama_faces_the_640_px_copy_loses(model, images):
    """Six faces of about 100 px in a 5120 × 886 panorama: the default search (a copy of 640 px,
    faces of 12 px) finds at most a few; ``min_face=80`` searches it at 0.3× in tiles of 640 px."""
    from conftest import panorama_photo

    canvas, xs = panorama_photo(images)
    assert len(create_detector("yunet", model=str(model)).detect(canvas)) < 6
    faces = create_detector("yunet", model=str(model), min_face=80).detect(canvas)
    assert len(faces) == 6
    for face, x in zip(sorted(faces, key=lambda f: f.box.left), xs):
        assert x < face.box.left < x + 200 and 70 <= face.box.width <= 140
    own = create_detector("yunet", model=str(model), min_face=80, landmarks="eyes-nose-mouth").detect(canvas)
    assert all(f.box.left <= px <= f.box.right for f in own for px, _ in f.landmarks)  # points mapped back too


@pytest.mark.parametrize("bad", [0, 7, 20.5, True, "big"])
def test_min_face_must_be_a_whole_number_of_pixels(model, bad):
    with pytest.raises(ConfigError, match="min_face"):
        create_detector("yunet", model=str(model), min_face=bad)
