"""cnn-onnx: dlib's MMOD face detector network converted to ONNX finds dlib's faces, on real photos.

The detector under test runs the converted network with onnxruntime and dlib's pyramid, windows and
suppression rebuilt in numpy (faceshot.detect.mmod); the reference is dlib's own ``cnn`` detector
with the same scaling. dlib takes seconds per photo here, so the photos are searched at a reduced
size; the converted model lives in a temporary cache directory.
"""

from __future__ import annotations

import numpy as np
import pytest

from faceshot import models
from faceshot.detect import create_detector, detectors, mmod, mmod_onnx
from faceshot.embed.dlib_format import read_network
from faceshot.errors import ModelError
from faceshot.evaluate.detection import iou
from faceshot.io import load_image

MIN_IOU = 0.9  # per face, against dlib's box (measured: every box is dlib's, IoU 1.0)
MAX_SCORE_DIFFERENCE = 1e-3  # measured: at most 6e-5 (float rounding in the pyramid and convolutions)
PACKAGE_PHOTOS = ("obama.jpg", "obama2.jpg", "biden.jpg", "insightface_t1.jpg")
SCENES = ("dlib_2007_007763.jpg", "dlib_2008_004176.jpg")  # 7 annotated faces each


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("faceshot-cache")


def _compare(paths, cache, **scaling) -> list[tuple[str, int, float, float]]:
    """(photo, faces, worst IoU, largest confidence difference) of cnn-onnx against cnn."""
    ours_detector = create_detector("cnn-onnx", cache_dir=cache, **scaling)
    dlib_detector = create_detector("cnn", **scaling)
    rows = []
    for path in paths:
        image = load_image(path)
        ours, theirs = ours_detector.locate(image), dlib_detector.locate(image)
        assert len(ours) == len(theirs), (path.name, ours, theirs)
        worst_iou, worst_score = 1.0, 0.0
        for box, score in theirs:  # each of dlib's faces against our best match
            match, match_score = max(ours, key=lambda found: iou(found[0], box))
            worst_iou = min(worst_iou, iou(match, box))
            worst_score = max(worst_score, abs(match_score - score))
        rows.append((path.name, len(theirs), worst_iou, worst_score))
    print()
    for name, faces, worst, score in rows:
        print(f"{name}: {faces} faces, worst IoU {worst:.3f}, largest confidence difference {score:.2g}")
    return rows


def _check(rows) -> None:
    assert sum(faces for _, faces, _, _ in rows) > 0
    assert min(worst for _, _, worst, _ in rows) >= MIN_IOU, rows
    assert max(score for _, _, _, score in rows) <= MAX_SCORE_DIFFERENCE, rows


def test_package_photos_give_dlibs_faces(images, cache):
    # 640 px without upsampling: the photos' faces are large; dlib takes ~3 s per photo here.
    rows = _compare([images / name for name in PACKAGE_PHOTOS], cache, max_side=640, upsample=0)
    _check(rows)
    assert all(faces >= 1 for _, faces, _, _ in rows)  # the group photo's faces are too small at 640 px but one


def test_upsampled_search_gives_dlibs_faces(images, cache):
    # Small photos are doubled before the search (dlib's pyramid_up), and the boxes mapped back.
    _check(_compare([images / "biden.jpg", images / "insightface_t1.jpg"], cache, max_side=320, upsample=1))


def test_annotated_scenes_give_dlibs_faces(datasets, cache):
    # The detectors' default scaling: these VOC photos (500 px) are doubled before the search.
    _check(_compare([datasets / "scenes" / name for name in SCENES], cache))


def test_reader_gives_the_detector_settings():
    network = read_network(models.model_path(mmod_onnx.MMOD_FILE))
    assert network.loss == "loss_mmod_"
    assert np.allclose(network.input.mean, (122.782, 117.001, 104.298), atol=1e-3)
    assert (network.input.padding, network.input.outer_padding) == (10, 11)  # dlib's defaults for old files
    options = network.mmod
    assert [(w.width, w.height) for w in options.windows] == [(80, 80)]
    assert 0.3 < options.nms_iou < 0.4 and options.nms_percent_covered == 1.0
    assert not options.bounding_box_regression
    detector = mmod_onnx.read_detector()
    assert (detector.stride, detector.offset) == (8, 14)  # three stride-2 5×5 convolutions


def test_resizing_matches_dlibs():
    dlib = models.dlib()
    rng = np.random.default_rng(0)
    planes = (rng.random((1, 61, 83)) * 2 - 1).astype(np.float32)
    for rows, columns in ((50, 69), (41, 57), (123, 168)):
        ours = mmod._resize(planes, rows, columns)[0]
        theirs = dlib.resize_image(planes[0], rows, columns)
        assert np.abs(ours - theirs).max() < 1e-5
    image = rng.integers(0, 256, (40, 57, 3), dtype=np.uint8)
    bigger = mmod.upsample(image)
    theirs = dlib.resize_image(image, 81, 116)  # pyramid_up's size for 40×57: (2·40+1)×(2·57+2)
    assert bigger.shape == theirs.shape
    assert np.abs(bigger.astype(int) - theirs).max() <= 1 and (bigger != theirs).mean() < 1e-3


def test_pyramid_layout_tiles_the_levels_without_overlap():
    rects, rows, columns = mmod.pyramid_layout(480, 640, 6, 10, 11)
    widths = [r[2] - r[0] + 1 for r in rects]
    assert rects[0] == (11, 11, 650, 490) and columns == 640 + 22
    assert widths[:3] == [640, 533, 444]  # each level 5/6 of the one before, rounded down
    for i, a in enumerate(rects):
        assert 0 <= a[0] and a[2] < columns and 0 <= a[1] and a[3] < rows
        for b in rects[i + 1 :]:
            assert a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1]


def test_the_conversion_is_cached_and_checked(cache, monkeypatch):
    mmod_onnx.onnx_model(directory=cache)
    assert len(list(cache.glob("dlib_mmod_*.onnx"))) == 1

    def no_conversion(source):
        raise AssertionError("converted again")

    monkeypatch.setattr(mmod_onnx, "convert", no_conversion)
    assert mmod_onnx.onnx_model(directory=cache)
    with pytest.raises(ModelError, match="not dlib's MMOD face detector"):
        mmod_onnx.read_detector(models.model_path("dlib_face_recognition_resnet_model_v1.dat"))


def test_images_too_small_for_the_network_have_no_faces(cache):
    detector = create_detector("cnn-onnx", cache_dir=cache)
    for size in ((1, 1), (2, 2), (5, 7)):
        assert detector.locate(np.zeros((*size, 3), dtype=np.uint8)) == []


def test_registered_beside_cnn_and_hog():
    assert {"hog", "cnn", "cnn-onnx"} <= set(detectors.names())
    with pytest.raises(ValueError, match="threads"):
        create_detector("cnn-onnx", threads=0)
