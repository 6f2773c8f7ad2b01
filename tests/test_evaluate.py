"""The verification protocol on scores whose answers are known by hand, and `faceshot eval verify` end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from faceshot.evaluate.verification import UNSCORED, kfold, roc


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
