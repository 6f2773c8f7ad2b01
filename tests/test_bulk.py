"""The throughput pipeline: same answers as one image at a time, in input order, bad files reported."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from faceshot.bulk import detect_files, ordered_map, represent_files
from faceshot.detect import create_detector
from faceshot.errors import CorruptImageError, ImageNotFoundError, MultipleFacesError, NoFaceError


@pytest.fixture(scope="module")
def mixed(images, tmp_path_factory):
    """Good photos (one and several faces), a corrupt file, a missing file and a photo of no face."""
    folder = tmp_path_factory.mktemp("mixed")
    corrupt = folder / "corrupt.jpg"
    corrupt.write_bytes((images / "obama.jpg").read_bytes()[:300])
    blank = folder / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(blank)
    good = [images / name for name in ("obama.jpg", "biden.jpg", "obama2.jpg", "insightface_t1.jpg", "obama3.jpg")]
    paths = [*good, corrupt, good[0], folder / "missing.jpg", blank, *good]
    return [str(p) for p in paths]


@pytest.mark.parametrize("backend", ["threads", "processes"])
def test_results_match_one_image_at_a_time_in_input_order(mixed, engine, backend):
    results = list(represent_files(mixed, workers=2, backend=backend, batch_size=4))
    assert [r.path for r in results] == mixed
    for result in results:
        name = result.path.rsplit("/", 1)[-1]
        if name == "corrupt.jpg":
            assert isinstance(result.error, CorruptImageError)
        elif name == "missing.jpg":
            assert isinstance(result.error, ImageNotFoundError)
        elif name == "blank.png":
            assert result.ok and result.faces == [] and result.found == 0
        else:
            expected = engine.represent(result.path)
            assert result.ok and result.found == len(expected) == len(result.faces) >= 1
            assert [f.face.box for f in result.faces] == [f.face.box for f in expected]
            got = np.stack([f.embedding for f in result.faces])
            want = np.stack([f.embedding for f in expected])
            assert np.abs(got - want).max() < 1e-5
    assert sum(len(r.faces) for r in results if r.path.endswith("insightface_t1.jpg")) == 12  # 6 faces, twice


def test_detect_files_keeps_order_reports_bad_files_and_sends_the_settings_to_the_workers(mixed, engine):
    gray = create_detector("hog", gray=True)  # other boxes than the default: the workers must use it
    results = list(detect_files(mixed, detector=gray, workers=2))
    assert [r.path for r in results] == mixed
    errors = {r.path.rsplit("/", 1)[-1]: type(r.error) for r in results if not r.ok}
    assert errors == {"corrupt.jpg": CorruptImageError, "missing.jpg": ImageNotFoundError}
    differ = 0
    for result in results:
        if result.ok:
            image = engine.load(result.path)
            assert result.faces == gray.detect(image)
            differ += result.faces != engine.detector.detect(image)
    assert differ > 0


def test_one_face_per_file_reports_photos_without_exactly_one(mixed):
    results = {r.path: r for r in represent_files(mixed, one_face="error", workers=2)}
    group = next(p for p in mixed if p.endswith("insightface_t1.jpg"))
    assert isinstance(results[group].error, MultipleFacesError)
    blank = next(p for p in mixed if p.endswith("blank.png"))
    assert isinstance(results[blank].error, NoFaceError)
    obama = next(p for p in mixed if p.endswith("obama.jpg"))
    assert results[obama].ok and len(results[obama].faces) == 1 and results[obama].found == 1


def test_one_worker_runs_in_this_thread(images):
    results = list(represent_files([images / "obama.jpg", images / "biden.jpg"], workers=1))
    assert [len(r.faces) for r in results] == [1, 1]


def test_unknown_backend_is_refused(images):
    with pytest.raises(ValueError, match="backend"):
        list(represent_files([images / "obama.jpg"], backend="gpu"))  # type: ignore[arg-type]


def test_ordered_map_keeps_order_and_reads_ahead_only_so_far():
    pulled = 0

    def items():
        nonlocal pulled
        for i in range(50):
            pulled += 1
            yield i

    out = []
    with ThreadPoolExecutor(3) as pool:
        for taken, future in enumerate(ordered_map(pool, lambda x: x * x, items(), ahead=5), start=1):
            # Drawn from the input so far: what was handed out, plus at most `ahead` in flight.
            assert pulled <= taken + 5
            out.append(future.result())
    assert out == [i * i for i in range(50)]


def test_chips_come_back_only_when_asked(images):
    photos = [images / "insightface_t1.jpg", images / "obama.jpg"]
    kept = list(represent_files(photos, workers=2, keep_chips=True))
    assert [r.chips.shape for r in kept] == [(6, 150, 150, 3), (1, 150, 150, 3)]
    assert all(r.chips is None for r in represent_files(photos, workers=2))
