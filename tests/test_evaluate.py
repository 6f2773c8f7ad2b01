"""The verification protocol on scores whose answers are known by hand, and `faceshot eval verify` end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from faceshot.evaluate.verification import UNSCORED, kfold, roc
from faceshot.match import resolve_operating_point


def test_roc_of_separable_scores():
    curve = roc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1], dtype=bool))
    assert curve.auc == pytest.approx(1.0)
    assert curve.eer == pytest.approx(0.0)
    assert curve.tar_at(0.0) == 1.0


def test_roc_of_reversed_and_overlapping_scores():
    assert roc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1], dtype=bool)).auc == pytest.approx(0.0)
    # Genuine 0.6, 0.9; impostor 0.5, 0.7: of the 4 genuine/impostor orderings 3 are right.
    curve = roc(np.array([0.6, 0.9, 0.5, 0.7]), np.array([1, 1, 0, 0], dtype=bool))
    assert curve.auc == pytest.approx(0.75)
    # At threshold 0.7 one impostor (0.7) and one genuine pair (0.6) are wrong: FAR = FRR = 1/2.
    assert curve.eer == pytest.approx(0.5)
    assert curve.tar_at(0.0) == pytest.approx(0.5)  # threshold 0.9: only the 0.9 genuine pair accepted


def test_kfold_picks_each_threshold_on_the_other_folds():
    # Fold 0 separates at 0.5, fold 1 at 0.3: each fold is tested with the other's threshold.
    scores = np.array([0.4, 0.6, 0.2, 0.4])
    same = np.array([0, 1, 0, 1], dtype=bool)
    folds = np.array([0, 0, 1, 1])
    results = kfold(scores, same, folds)
    assert [r.fold for r in results] == [0, 1]
    assert 0.2 < results[0].threshold <= 0.4  # from fold 1: between 0.2 and 0.4
    assert results[0].accuracy == pytest.approx(0.5)  # fold 0's impostor 0.4 is accepted
    assert 0.4 < results[1].threshold <= 0.6
    assert results[1].accuracy == pytest.approx(0.5)  # fold 1's genuine 0.4 is rejected


def test_unscored_pairs_count_as_rejected():
    scores = np.array([UNSCORED, 0.9, 0.1, UNSCORED])
    same = np.array([1, 1, 0, 0], dtype=bool)
    (result,) = kfold(scores, same, np.zeros(4, dtype=int))
    assert result.accuracy == pytest.approx(0.75)  # the unscored genuine pair is a false reject


def test_eval_verify_on_an_lfw_slice_writes_json_and_report(datasets, tmp_path):
    source = (datasets / "lfw" / "pairs.txt").read_text().splitlines()
    lines = ["2\t10"] + source[1:11] + source[301:311] + source[11:21] + source[311:321]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(lines) + "\n")
    report = tmp_path / "report.html"
    run = subprocess.run(
        [sys.executable, "-m", "faceshot", "eval", "verify", "--pairs", str(pairs),
         "--root", str(datasets / "lfw" / "images"), "--json", "--report", str(report)],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    (result,) = json.loads(run.stdout).values()
    assert result["pairs"] == 40 and len(result["folds"]) == 2
    assert result["accuracy_mean"] >= 0.9
    page = report.read_text()
    assert page.count("data:image/png;base64,") >= 2  # ROC/DET and the histogram are embedded
    assert "Settings and versions" in page and "dlib-bin" in page


def test_eval_verify_malformed_pairs_file_names_the_line(datasets, tmp_path):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\t1\nAaron_Peirsol\t1\nAaron_Peirsol\t1\tAbel_Pacheco\t1\n")
    run = subprocess.run(
        [sys.executable, "-m", "faceshot", "eval", "verify", "--pairs", str(pairs), "--root", str(datasets / "lfw" / "images")],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 2 and "pairs.txt:2" in run.stderr


# -- open-set identification --------------------------------------------------------------------

from faceshot.evaluate.identification import open_set, rank_people  # noqa: E402


def test_open_set_figures_on_a_hand_made_gallery():
    # Two people, one face each, on orthogonal axes; probes near them, and two strangers.
    enrolled = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    owners = np.array([0, 1])
    probes = np.array([
        [0.9, 0.1, 0.0],   # person 0, score 0.9
        [0.2, 0.6, 0.0],   # person 1, score 0.6
        [0.7, 0.0, 0.0],   # person 1 really, but person 0 scores higher: a rank-2 hit
        [0.0, 0.0, 1.0],   # stranger, best score 0.0
        [0.0, 0.8, 0.0],   # stranger who looks like person 1: 0.8
    ])
    truth = np.array([0, 1, 1, -1, -1])
    result = open_set(rank_people(enrolled, owners, probes), truth)
    assert result.rank_rate(1) == pytest.approx(2 / 3)
    assert result.rank_rate(2) == pytest.approx(1.0)
    assert result.fpir_at(0.5) == pytest.approx(0.5)  # the look-alike is named
    assert result.fnir_at(0.5) == pytest.approx(1 / 3)  # the rank-2 probe is wrong at rank 1
    threshold = result.threshold_at_fpir(0.5)  # one of two strangers may be named
    assert 0.0 < threshold <= 0.8 and result.fpir_at(threshold) == 0.5
    strict = result.threshold_at_fpir(0.0)
    assert strict > 0.8 and result.fpir_at(strict) == 0.0
    assert result.fnir_at(strict) == pytest.approx(2 / 3)  # only the 0.9 probe survives


def test_mean_template_aggregation():
    enrolled = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    owners = np.array([0, 0, 1])
    probe = np.array([[1.0, 0.0]])
    by_max = rank_people(enrolled, owners, probe, aggregation="max")
    by_mean = rank_people(enrolled, owners, probe, aggregation="mean")
    assert by_max.scores[0, 0] == pytest.approx(1.0)
    assert by_mean.scores[0, 0] == pytest.approx(np.sqrt(0.5))  # template (1, 1)/sqrt(2)


def test_eval_identify_on_att_faces(datasets, tmp_path):
    root = tmp_path / "att"
    root.mkdir()
    for person in sorted((datasets / "att_faces").iterdir())[:8]:
        (root / person.name).symlink_to(person)
    run = subprocess.run(
        [sys.executable, "-m", "faceshot", "eval", "identify", str(root), "--unknown-fraction", "0.25",
         "--baseline", "classifier", "--json", "--report", str(tmp_path / "report.html")],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "data:image/png;base64," in (tmp_path / "report.html").read_text()
    result = json.loads(run.stdout)
    assert result["people_enrolled"] == 6 and result["strangers"] == 2
    nearest = result["methods"]["nearest"]
    assert nearest["mated_probes"] == 54 and nearest["nonmated_probes"] == 20
    assert nearest["rank1"] >= 0.9
    assert "classifier" in result["methods"]
    assert nearest["fnir_at_fpir_0.001"] is None  # 20 strangers cannot measure 1e-3


def test_calibrate_on_own_photos_saves_a_far_table_verify_and_identify_use(datasets, images, tmp_path):
    from faceshot.evaluate.calibrate import wilson_interval

    low, high = wilson_interval(10, 1000)
    assert low < 0.01 < high and high - low < 0.015

    root = tmp_path / "att"
    root.mkdir()
    for person in sorted((datasets / "att_faces").iterdir())[:8]:
        (root / person.name).symlink_to(person)
    db = tmp_path / "gallery.db"
    run = subprocess.run(
        [sys.executable, "-m", "faceshot", "calibrate", str(root), "--far", "0.05", "--db", str(db), "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["people"] == 8 and result["impostor_pairs"] > 2000
    assert result["far"] <= 0.05 and result["far_interval_95"][0] <= result["far"] <= result["far_interval_95"][1]

    verify = subprocess.run(
        [sys.executable, "-m", "faceshot", "verify", str(images / "obama.jpg"), str(images / "obama2.jpg"),
         "--db", str(db), "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert json.loads(verify.stdout)["threshold"] == pytest.approx(result["threshold"], abs=1e-6)
    from faceshot.gallery import Gallery

    with Gallery(db) as gallery:  # identification: FPIR 1% on the saved FAR table (tests/test_operating_points.py)
        assert gallery.calibration.threshold == pytest.approx(result["threshold"])
        assert gallery.operating_point() == resolve_operating_point(gallery.calibration, faces=0)

    too_rare = subprocess.run(
        [sys.executable, "-m", "faceshot", "calibrate", str(root), "--far", "1e-6"],
        capture_output=True, text=True, timeout=600,
    )
    assert too_rare.returncode == 2 and "cannot measure" in too_rare.stderr


def test_det_points_trade_fpir_for_fnir():
    enrolled = np.array([[1.0, 0.0], [0.0, 1.0]])
    probes = np.array([[0.9, 0.1], [0.2, 0.7], [0.5, 0.0], [0.0, 0.3]])
    result = open_set(rank_people(enrolled, np.array([0, 1]), probes), np.array([0, 1, -1, -1]))
    thresholds, fpir, fnir = result.det()
    assert np.all(np.diff(thresholds) > 0)
    assert np.all(np.diff(fpir) <= 0) and np.all(np.diff(fnir) >= 0)  # stricter: fewer strangers, more misses
    assert fpir[0] == 1.0 and fnir[0] == 0.0  # the lowest threshold names everyone
    assert result.fpir_at(0.6) == 0.0 and result.fnir_at(0.6) == 0.0  # 0.5 / 0.3 strangers, 0.9 / 0.7 mated
