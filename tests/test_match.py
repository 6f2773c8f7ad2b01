"""Thresholds, operating points and the LFW pairs reader, on small inputs with answers known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from faceshot import Calibration, ConfigError
from faceshot.evaluate.lfw import read_pairs
from faceshot.evaluate.metrics import accuracy, best_threshold, error_rates, far_table
from faceshot.match import cosine_similarity


def test_best_threshold_separates_when_it_can():
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    same = np.array([0, 0, 0, 1, 1, 1], dtype=bool)
    assert best_threshold(scores, same) == pytest.approx(0.5)
    assert accuracy(scores, same, 0.5) == 1.0


def test_best_threshold_with_overlap():
    # Accepting from 0.6 up gets 5 of 6 right (the 0.65 impostor is accepted).
    scores = np.array([0.1, 0.2, 0.65, 0.6, 0.8, 0.9])
    same = np.array([0, 0, 0, 1, 1, 1], dtype=bool)
    threshold = best_threshold(scores, same)
    assert 0.2 < threshold <= 0.6
    assert accuracy(scores, same, threshold) == pytest.approx(5 / 6)
    assert error_rates(scores, same, threshold) == (pytest.approx(1 / 3), 0.0)


def test_far_table_rows_are_quantiles_of_impostor_scores():
    impostors = np.linspace(0, 1, 10001)
    table = dict((far, threshold) for threshold, far in far_table(impostors, fars=np.array([0.1, 0.01])))
    assert table[0.1] == pytest.approx(0.9, abs=1e-3)
    assert table[0.01] == pytest.approx(0.99, abs=1e-3)


CALIBRATION = Calibration(
    embedder="toy",
    threshold=0.8,
    far_table=((0.7, 0.1), (0.8, 0.01), (0.9, 0.001)),
    reference="hand-made",
    figures={},
)


def test_operating_points_interpolate_in_log_far():
    assert CALIBRATION.far_at(0.8) == pytest.approx(0.01)
    assert CALIBRATION.far_at(0.85) == pytest.approx(10**-2.5)
    assert CALIBRATION.threshold_for(0.01) == pytest.approx(0.8)
    assert CALIBRATION.threshold_for(10**-1.5) == pytest.approx(0.75)
    assert CALIBRATION.operating_point().threshold == 0.8
    assert CALIBRATION.operating_point(far=0.001).threshold == pytest.approx(0.9)


def test_operating_points_refuse_what_was_not_measured():
    with pytest.raises(ConfigError, match="down to 0.001"):
        CALIBRATION.threshold_for(1e-5)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        CALIBRATION.threshold_for(1.5)


def test_bundled_calibration_for_the_default_embedder():
    calibration = Calibration.bundled("dlib-resnet")
    assert calibration is not None
    assert calibration.figures["devtest_accuracy"] >= 0.985
    thresholds = [t for t, _ in calibration.far_table]
    assert thresholds == sorted(thresholds)
    assert Calibration.bundled("no-such-embedder") is None


def test_cosine_similarity_shapes():
    a = np.eye(3, dtype=np.float32)
    assert cosine_similarity(a[0], a[0]) == pytest.approx(1.0)
    assert cosine_similarity(a, a[:2]).shape == (3, 2)


def write(tmp_path, text: str):
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    return path


def test_pairs_reader_folds_and_labels(tmp_path):
    text = "2\t1\nA\t1\t2\nA\t1\tB\t1\nC\t1\t2\nC\t2\tD\t3\n"
    pairs = read_pairs(write(tmp_path, text), tmp_path, check_files=False)
    assert [(p.same, p.fold) for p in pairs] == [(True, 0), (False, 0), (True, 1), (False, 1)]
    assert pairs[3].b == tmp_path / "D" / "D_0003.jpg"


@pytest.mark.parametrize(
    "text,message",
    [
        ("x\n", ":1: expected"),
        ("1\nA\t1\t2\n", "promises 1 fold"),
        ("1\nA\t1\nA\t1\tB\t1\n", ":2: expected a 'name i j'"),
        ("1\nA\t1\t2\nA\tone\tB\t1\n", ":3: image numbers"),
    ],
)
def test_malformed_pairs_files_name_the_line(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        read_pairs(write(tmp_path, text), tmp_path, check_files=False)


def test_missing_image_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"pairs.txt:2: image .*A_0001.jpg does not exist"):
        read_pairs(write(tmp_path, "1\nA\t1\t2\nA\t1\tB\t1\n"), tmp_path)
