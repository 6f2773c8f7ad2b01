"""Operating points with the real models and photos: results carry them, galleries keep their own FAR table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from faceshot.errors import ConfigError
from faceshot.gallery import Gallery
from faceshot.match import Calibration, OperatingPoint, resolve_operating_point


def faceshot_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "faceshot", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def test_verification_reports_a_clamped_target_and_an_unmeasured_far(engine, images):
    bundled = engine.embedder.calibration
    strict = engine.verify(images / "obama.jpg", images / "obama2.jpg", far=1e-9)
    assert strict.clamped and strict.threshold == bundled.far_table[-1][0] and strict.far == bundled.far_table[-1][1]
    assert strict.to_dict()["clamped"] is True
    assert strict.operating_point == OperatingPoint(strict.threshold, strict.far, clamped=True)
    low = engine.verify(images / "obama.jpg", images / "biden.jpg", threshold=0.5)
    assert low.same and low.far is None and not low.clamped  # not the table's first row, FAR 0.5
    usual = engine.verify(images / "obama.jpg", images / "obama2.jpg")
    assert usual.same and not usual.clamped and usual.far == pytest.approx(bundled.far_at(bundled.threshold))
    for bad in (float("nan"), 2.0):
        with pytest.raises(ConfigError, match="between -1 and 1"):
            engine.verify(images / "obama.jpg", images / "obama2.jpg", threshold=bad)


@pytest.fixture(scope="module")
def calibrated(datasets, images, tmp_path_factory) -> tuple[Path, dict]:
    """A gallery holding Obama and Biden and a FAR table `faceshot calibrate --db` measured on
    8 people of the AT&T faces; and what calibrate printed."""
    folder = tmp_path_factory.mktemp("calibrated")
    root = folder / "att"
    root.mkdir()
    for person in sorted((datasets / "att_faces").iterdir())[:8]:
        (root / person.name).symlink_to(person)
    db = folder / "gallery.db"
    with Gallery(db) as gallery:
        gallery.enroll("Barack Obama", images / "obama.jpg")
        gallery.enroll("Joe Biden", images / "biden.jpg")
    run = faceshot_cli("calibrate", root, "--far", "0.05", "--db", db, "--json")
    assert run.returncode == 0, run.stderr
    return db, json.loads(run.stdout)


def test_calibrate_saves_a_far_table_that_verify_and_identify_use(calibrated, images):
    db, result = calibrated
    assert result["people"] == 8 and result["impostor_pairs"] > 2000 and result["far"] <= 0.05
    with Gallery(db) as gallery:
        calibration = gallery.calibration
        bundled = gallery.engine.embedder.calibration
        assert calibration != bundled and calibration.embedder == "dlib-resnet"
        assert calibration.threshold == pytest.approx(result["threshold"], abs=1e-6)
        # Every row has at least 100 impostors at or above it, except the one asked for (FAR 0.05).
        rates = [far for _, far in calibration.far_table]
        assert len(rates) > 5 and rates == sorted(rates, reverse=True)
        pairs = result["impostor_pairs"]
        assert all(far * pairs >= 99.5 for t, far in calibration.far_table if t != calibration.threshold)
        assert calibration.far_at(calibration.threshold) == pytest.approx(result["far"], rel=1e-3)
        # Verification: the threshold measured on the user's photos, by default.
        verdict = gallery.verify(images / "obama.jpg", images / "obama2.jpg")
        assert verdict.threshold == pytest.approx(result["threshold"])
        assert verdict.far == pytest.approx(result["far"], rel=1e-3)
        # Identification: FPIR arithmetic over the gallery's 2 faces, on the user's table, not the bundled one.
        point = gallery.operating_point(fpir=0.1)
        per_comparison = 1 - (1 - 0.1) ** (1 / 2)
        assert point == OperatingPoint(pytest.approx(calibration.threshold_for(per_comparison)), pytest.approx(per_comparison), 0.1)
        assert point.threshold != pytest.approx(resolve_operating_point(bundled, fpir=0.1, faces=2).threshold, abs=1e-3)
        assert point.threshold < gallery.operating_point(fpir=0.1, faces=3).threshold  # it rises with the gallery
        # FPIR 1% (the default) over 2 faces needs a FAR of 0.5%, beyond 8 people's 2,800 impostor
        # pairs: the table's strictest row, clamped, with the FPIR that holds there.
        strictest, lowest = calibration.far_table[-1]
        default = gallery.operating_point()
        assert default == OperatingPoint(strictest, lowest, pytest.approx(1 - (1 - lowest) ** 2), clamped=True)
        assert default.to_dict() == {"threshold": round(strictest, 6), "far": lowest, "fpir": default.fpir, "clamped": True}
        [found] = gallery.identify(images / "obama2.jpg")
        assert found.threshold == strictest


def test_cli_verify_db_uses_the_gallerys_calibration(calibrated, images):
    db, result = calibrated
    run = faceshot_cli("verify", images / "obama.jpg", images / "obama2.jpg", "--db", db, "--json")
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["threshold"] == pytest.approx(result["threshold"], abs=1e-6)
    assert answer["far"] == pytest.approx(result["far"], rel=1e-3) and answer["clamped"] is False
    with Gallery(db) as gallery:  # the same answer as the core's
        core = gallery.verify(images / "obama.jpg", images / "obama2.jpg")
    assert answer["score"] == pytest.approx(core.score, abs=1e-6) and answer["far"] == pytest.approx(core.far)
    # With --far on the gallery's table: the threshold that table gives, not the bundled one.
    run = faceshot_cli("verify", images / "obama.jpg", images / "obama2.jpg", "--db", db, "--far", "0.1", "--json")
    with Gallery(db) as gallery:
        assert json.loads(run.stdout)["threshold"] == pytest.approx(gallery.calibration.threshold_for(0.1), abs=1e-6)
    text = faceshot_cli("verify", images / "obama.jpg", images / "biden.jpg", "--threshold", "0.3")
    assert text.returncode == 0 and "FAR not measured" in text.stdout
    bad = faceshot_cli("verify", images / "obama.jpg", images / "biden.jpg", "--threshold", "nan")
    assert bad.returncode == 2 and "between -1 and 1" in bad.stderr


def test_an_old_gallery_with_only_a_threshold_still_works(images, tmp_path):
    db = tmp_path / "old.db"
    with Gallery(db) as gallery:
        gallery.enroll("Barack Obama", images / "obama.jpg")
        # What `faceshot calibrate --db` saved before it saved FAR tables.
        gallery.settings.threshold = 0.93
        gallery.settings.set("calibration", {"threshold": 0.93, "far": 0.001, "source": "photos"})
    with Gallery(db) as gallery:
        bundled = gallery.engine.embedder.calibration
        assert gallery.calibration.threshold == 0.93 and gallery.calibration.far_table == bundled.far_table
        verdict = gallery.verify(images / "obama.jpg", images / "obama2.jpg")
        assert verdict.threshold == 0.93 and verdict.far == pytest.approx(bundled.far_at(0.93))
        assert gallery.operating_point().threshold == 0.93  # the saved identification threshold, as before
        [found] = gallery.identify(images / "obama2.jpg")
        assert found.threshold == 0.93
        # Saving a FAR table drops the threshold the old calibrate saved with it: FPIR thresholds return.
        gallery.calibration = bundled
        assert gallery.settings.threshold is None
        assert gallery.operating_point() == resolve_operating_point(bundled, faces=1)
        with pytest.raises(ConfigError, match="cannot be used"):
            gallery.calibration = Calibration("other", 0.5, ((0.5, 0.1),), "", {})
    run = faceshot_cli("verify", images / "obama.jpg", images / "obama2.jpg", "--db", db, "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["threshold"] == pytest.approx(bundled.threshold, abs=1e-6)
