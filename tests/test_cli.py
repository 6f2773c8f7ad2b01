"""The faceshot command, run as a user runs it: a real subprocess, real photos, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def faceshot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "faceshot", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_verify_same_person_exits_0(images):
    run = faceshot("verify", images / "obama.jpg", images / "obama2.jpg")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("same person: score")


def test_verify_different_people_exits_1_with_json(images):
    run = faceshot("verify", images / "obama.jpg", images / "biden.jpg", "--json")
    assert run.returncode == 1, run.stderr
    result = json.loads(run.stdout)
    assert result["same"] is False
    assert result["score"] < result["threshold"]
    assert set(result["box_a"]) == {"left", "top", "right", "bottom"}


def test_verify_at_a_false_accept_rate(images):
    run = faceshot("verify", images / "obama.jpg", images / "obama3.jpg", "--far", "0.001", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["far"] == 0.001


def bad_input(kind: str, tmp):
    if kind == "missing":
        return tmp / "missing.jpg"
    if kind == "directory":
        return tmp
    path = tmp / f"{kind}.jpg"
    path.write_bytes(b"" if kind == "empty" else b"hello, not a photo")
    return path


@pytest.mark.parametrize(
    "kind,message",
    [("missing", "no such file"), ("directory", "directory"), ("empty", "empty"), ("text", "not a recognised image")],
)
def test_verify_bad_input_exits_2_with_the_reason(images, tmp_path, kind, message):
    run = faceshot("verify", images / "obama.jpg", bad_input(kind, tmp_path))
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""


def test_verify_no_face_exits_2(images, tmp_path):
    from PIL import Image

    Image.new("RGB", (200, 200), "gray").save(tmp_path / "wall.png")
    run = faceshot("verify", images / "obama.jpg", tmp_path / "wall.png")
    assert run.returncode == 2 and "no face found" in run.stderr


def test_verify_rejects_both_threshold_and_far(images):
    run = faceshot("verify", images / "obama.jpg", images / "obama2.jpg", "--threshold", "0.9", "--far", "0.01")
    assert run.returncode == 2 and "not both" in run.stderr


def test_detect_json_prints_one_object_per_image_and_reports_bad_ones(images, tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    run = faceshot("detect", images / "obama.jpg", tmp_path / "broken.jpg", images / "biden.jpg", "--json")
    assert run.returncode == 2  # one bad image
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [len(line["faces"]) for line in lines] == [1, 0, 1]
    assert "error" in lines[1] and "broken.jpg" in run.stderr
    face = lines[0]["faces"][0]
    assert len(face["landmarks"]) == 5 and face["score"] > 0


def test_a_progress_bar_off_a_terminal_prints_nothing_not_even_a_blank_line_before_an_error(capsys):
    from faceshot.cli.app import progress

    with pytest.raises(RuntimeError):
        for number in progress(range(5), "working"):
            if number == 2:
                raise RuntimeError("stop")
    assert capsys.readouterr().err == ""


def test_detect_csv(images):
    run = faceshot("detect", images / "obama.jpg")
    assert run.returncode == 0, run.stderr
    header, row = run.stdout.splitlines()
    assert header == "image,face,left,top,right,bottom,score"
    assert row.startswith(f"{images / 'obama.jpg'},0,")


def test_unknown_detector_exits_2(images):
    run = faceshot("detect", images / "obama.jpg", "--detector", "retinaface")
    assert run.returncode == 2 and "choose one of: cnn, cnn-onnx, hog, mtcnn, yunet" in run.stderr
    assert run.stdout == ""  # the option is refused before the CSV header


def test_a_missing_model_file_is_refused_before_the_csv_header(images, tmp_path):
    # A chain whose second detector's file is missing fails at once, not on the first photo that reaches it.
    run = faceshot("detect", images / "obama.jpg", "--detector", f"hog>yunet:model={tmp_path / 'gone.onnx'}")
    assert run.returncode == 2 and "cannot read the YuNet model" in run.stderr and "gone.onnx" in run.stderr
    assert run.stdout == ""
    run = faceshot("detect", images / "obama.jpg", "--detector", f"mtcnn:cache_dir={tmp_path}")
    assert run.returncode == 2 and "faceshot models fetch mtcnn" in run.stderr and run.stdout == ""


def test_verify_multiple_error_refuses_group_photos(images, tmp_path):
    import numpy as np
    from PIL import Image

    photos = [Image.open(images / name).convert("RGB") for name in ("obama.jpg", "biden.jpg")]
    photos = [p.resize((round(p.width * 600 / p.height), 600)) for p in photos]
    Image.fromarray(np.concatenate([np.asarray(p) for p in photos], axis=1)).save(tmp_path / "two.jpg")
    run = faceshot("verify", images / "obama2.jpg", tmp_path / "two.jpg", "--multiple", "error")
    assert run.returncode == 2 and "2 faces found" in run.stderr
    run = faceshot("verify", images / "obama2.jpg", tmp_path / "two.jpg", "--json")
    assert run.returncode in (0, 1) and "b: 2 faces found, the largest was compared" in run.stderr


@pytest.mark.parametrize("target,reason", [("a.xyz", "unknown image extension"), (".", "a folder")])
def test_identify_refuses_an_annotation_target_it_cannot_write_before_any_work(images, tmp_path, target, reason):
    from faceshot import Gallery

    Gallery(tmp_path / "g.db").close()
    run = faceshot("identify", images / "obama.jpg", "--db", tmp_path / "g.db", "--annotate", tmp_path / target)
    assert run.returncode == 2 and reason in run.stderr and "Traceback" not in run.stderr
    assert run.stdout == ""  # refused before the results table


def test_a_reader_that_goes_away_stops_the_command_quietly(images):
    import shlex

    photos = " ".join(shlex.quote(str(images / name)) for name in ("obama.jpg", "biden.jpg", "obama2.jpg") * 2)
    command = f"set -o pipefail; {shlex.quote(sys.executable)} -m faceshot detect {photos} | head -0"
    run = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300)
    assert run.returncode == 141 and run.stderr == "", (run.returncode, run.stderr)  # as Unix tools: no "Broken pipe"
