"""Thresholds, operating points and the LFW pairs reader, on small inputs with answers known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceshot import Calibration, ConfigError
from faceshot.evaluate.calibrate import far_rows
from faceshot.evaluate.lfw import read_pairs
from faceshot.evaluate.metrics import accuracy, best_threshold, error_rates, far_table
from faceshot.match import OperatingPoint, cosine_similarity, resolve_operating_point


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


def test_far_rows_stop_where_100_impostors_remain_and_report_measured_rates():
    impostors = np.sort(np.random.default_rng(0).uniform(-1, 1, 100_000))[::-1]
    rows = far_rows(impostors, extra=[(0.9999, int(np.sum(impostors >= 0.9999)))])
    thresholds = [t for t, _ in rows]
    assert thresholds == sorted(thresholds) and rows[0][1] == pytest.approx(0.5, rel=1e-3)
    for threshold, far in rows:
        assert far == pytest.approx(np.mean(impostors >= threshold), rel=1e-3)  # measured, not the target
        assert far * len(impostors) >= 100 or threshold == 0.9999  # the row asked for may stand on fewer
    assert rows[-1][0] == 0.9999 and min(f for t, f in rows if t != 0.9999) == pytest.approx(100 / len(impostors), rel=0.05)


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


def test_a_target_beyond_the_table_gives_its_last_threshold_clamped():
    point = CALIBRATION.point_for(1e-5)
    assert point == OperatingPoint(0.9, 0.001, clamped=True)  # the rate measured there, not the one asked
    assert CALIBRATION.threshold_for(1e-5) == 0.9
    assert CALIBRATION.operating_point(far=1e-5).clamped
    assert CALIBRATION.point_for(0.5) == OperatingPoint(0.7, 0.1, clamped=True)  # looser than the table
    assert not CALIBRATION.operating_point(far=0.01).clamped
    with pytest.raises(ConfigError, match="between 0 and 1"):
        CALIBRATION.threshold_for(1.5)


def test_a_threshold_outside_the_table_has_no_measured_far():
    assert CALIBRATION.far_at(0.5) is None  # not the first row's 0.1 (a capped rate)
    assert CALIBRATION.far_at(0.95) is None
    assert CALIBRATION.far_at(0.7) == pytest.approx(0.1) and CALIBRATION.far_at(0.9) == pytest.approx(0.001)
    point = CALIBRATION.operating_point(threshold=0.5)
    assert point.threshold == 0.5 and point.far is None and not point.clamped
    assert point.to_dict() == {"threshold": 0.5, "far": None, "fpir": None, "clamped": False}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 2.0, -1.5, "high"])
def test_user_thresholds_are_finite_scores(bad):
    with pytest.raises(ConfigError, match="between -1 and 1"):
        resolve_operating_point(CALIBRATION, threshold=bad)
    with pytest.raises(ConfigError, match="between -1 and 1"):
        resolve_operating_point(None, threshold=bad)  # also without a calibration


@pytest.mark.parametrize("bad", [0.0, 1.0, float("nan"), -0.1])
def test_target_rates_are_fractions(bad):
    with pytest.raises(ConfigError, match="false-accept rate is a fraction"):
        resolve_operating_point(CALIBRATION, far=bad)
    with pytest.raises(ConfigError, match="identification rate is a fraction"):
        resolve_operating_point(CALIBRATION, fpir=bad, faces=10)


def test_one_resolution_for_verification_and_identification():
    # Verification: the default threshold, no FPIR.
    assert resolve_operating_point(CALIBRATION) == OperatingPoint(0.8, pytest.approx(0.01))
    # Identification: FPIR 1% by default; 10 faces need a per-comparison FAR of 1 - 0.99^(1/10).
    per_comparison = 1 - (1 - 0.01) ** (1 / 10)
    point = resolve_operating_point(CALIBRATION, faces=10)
    assert point.fpir == 0.01 and point.far == pytest.approx(per_comparison) and not point.clamped
    assert point.threshold == pytest.approx(CALIBRATION.threshold_for(per_comparison))
    assert point.threshold == pytest.approx(0.8 + 0.1 * math.log10(0.01 / per_comparison), abs=1e-6)
    # A stored gallery threshold comes after an explicit target, before the FPIR default.
    assert resolve_operating_point(CALIBRATION, faces=10, stored=0.85).threshold == 0.85
    assert resolve_operating_point(CALIBRATION, faces=10, stored=0.85, fpir=0.1).fpir == 0.1
    # A user threshold in identification: the FPIR it stands for, 1 - (1 - far)^faces.
    given = resolve_operating_point(CALIBRATION, threshold=0.85, faces=10)
    assert given.fpir == pytest.approx(1 - (1 - 10**-2.5) ** 10)
    # Beyond the table: the strictest threshold, clamped, with the FPIR that holds there.
    beyond = resolve_operating_point(CALIBRATION, fpir=0.01, faces=100_000)
    assert beyond.threshold == 0.9 and beyond.clamped and beyond.far == 0.001
    assert beyond.fpir == pytest.approx(1 - 0.999**100_000)
    with pytest.raises(ConfigError, match="one of"):
        resolve_operating_point(CALIBRATION, threshold=0.9, fpir=0.01, faces=10)
    with pytest.raises(ConfigError, match="identification"):
        resolve_operating_point(CALIBRATION, fpir=0.01)


def test_without_a_calibration_only_a_threshold_is_accepted():
    assert resolve_operating_point(None, threshold=0.6, faces=3) == OperatingPoint(0.6, None)
    with pytest.raises(ConfigError, match="'mine' has no calibration"):
        resolve_operating_point(None, far=0.01, embedder="mine")
    with pytest.raises(ConfigError, match="no calibration"):
        resolve_operating_point(None, faces=3)


def test_calibrations_round_trip_and_old_gallery_settings_still_work():
    assert Calibration.from_dict(CALIBRATION.to_dict()) == CALIBRATION
    assert Calibration.from_setting(None, embedder="toy", bundled=CALIBRATION) is CALIBRATION
    assert Calibration.from_setting(CALIBRATION.to_dict(), embedder="toy", bundled=None) == CALIBRATION
    with pytest.raises(ConfigError, match="calibrate --db"):
        Calibration.from_setting(CALIBRATION.to_dict(), embedder="other", bundled=None)
    # What `faceshot calibrate --db` saved before it saved tables: one threshold, the FARs stay the table's.
    old = {"threshold": 0.75, "far": 0.02, "source": "photos"}
    legacy = Calibration.from_setting(old, embedder="toy", bundled=CALIBRATION)
    assert legacy.threshold == 0.75 and legacy.far_table == CALIBRATION.far_table
    assert resolve_operating_point(legacy).threshold == 0.75
    bare = Calibration.from_setting(old, embedder="toy", bundled=None)
    assert resolve_operating_point(bare) == OperatingPoint(0.75, None)
    with pytest.raises(ConfigError, match="no FAR table"):
        resolve_operating_point(bare, far=0.01)
    with pytest.raises(ConfigError, match="not a calibration"):
        Calibration.from_dict({"embedder": "toy", "threshold": 0.5, "reference": "", "far_table": [[0.9, 0.1], [0.8, 0.01]]})


def test_bundled_calibration_for_the_default_embedder():
    calibration = Calibration.bundled("dlib-resnet")
    assert calibration is not None
    assert calibration.figures["devtest_accuracy"] >= 0.985
    thresholds = [t for t, _ in calibration.far_table]
    assert thresholds == sorted(thresholds)
    assert Calibration.bundled("no-such-embedder") is None


def test_bundled_table_reaches_a_million_impostors_with_100_beyond_each_row():
    calibration = Calibration.bundled("dlib-resnet")
    assert calibration.threshold == 0.911674  # chosen on View 1; the table does not move it
    rates = [far for _, far in calibration.far_table]
    assert rates == sorted(rates, reverse=True) and rates[0] == 0.5
    pairs = calibration.figures["impostor_pairs"]
    assert pairs > 80_000_000 and "errata" in calibration.reference
    assert rates[-1] * pairs >= 99.5  # at least 100 impostors at or above the last row's threshold
    assert rates[-1] < 2e-6
    strictest = calibration.far_table[-1][0]
    assert calibration.point_for(1e-7) == OperatingPoint(strictest, rates[-1], clamped=True)
    assert calibration.far_at(0.5) is None  # a low threshold: not measured, not "FAR 0.5"


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
