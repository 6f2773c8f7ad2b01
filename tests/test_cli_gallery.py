"""Gallery commands run as a user runs them: enroll, enroll-dir, identify, people, gallery; and the demo."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def faceshot(*args, db: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "faceshot", *map(str, args), "--db", str(db)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_enroll_identify_and_manage_people(images, tmp_path):
    db = tmp_path / "people.db"
    assert faceshot("enroll", "Obama", images / "obama.jpg", db=db).returncode == 0
    assert faceshot("enroll", "Biden", images / "biden.jpg", "--group", "vp", db=db).returncode == 0

    run = faceshot("identify", images / "obama2.jpg", images / "obama3.jpg", "--json", db=db)
    assert run.returncode == 0, run.stderr
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert [a["faces"][0]["identity"] for a in answers] == ["Obama", "Obama"]
    face = answers[0]["faces"][0]
    assert set(face) >= {"box", "identity", "score", "candidates"}
    assert face["candidates"][0]["name"] == "Obama"

    # Restricted to the "vp" group, Obama is not a candidate, so his photo is nobody known.
    run = faceshot("identify", images / "obama2.jpg", "--group", "vp", "--json", db=db)
    assert json.loads(run.stdout)["faces"][0]["identity"] is None

    annotated = tmp_path / "annotated.jpg"
    assert faceshot("identify", images / "obama2.jpg", "--annotate", annotated, db=db).returncode == 0
    assert Image.open(annotated).size == Image.open(images / "obama2.jpg").size

    listing = json.loads(faceshot("people", "list", "--json", db=db).stdout)
    assert {p["name"]: p["faces"] for p in listing} == {"Biden": 1, "Obama": 1}
    assert faceshot("people", "rename", "Obama", "Barack Obama", db=db).returncode == 0
    shown = faceshot("people", "show", "Barack Obama", db=db)
    assert shown.returncode == 0 and json.loads(shown.stdout)["name"] == "Barack Obama"

    missing = faceshot("people", "show", "Nobody", db=db)
    assert missing.returncode == 2 and "Nobody" in missing.stderr and "Traceback" not in missing.stderr
    assert faceshot("people", "remove", "Nobody", db=db).returncode == 2

    exported = tmp_path / "gallery.jsonl"
    assert faceshot("gallery", "export", exported, db=db).returncode == 0
    copy = tmp_path / "copy.db"
    assert faceshot("gallery", "import", exported, db=copy).returncode == 0
    run = faceshot("identify", images / "obama3.jpg", "--json", db=copy)
    assert json.loads(run.stdout)["faces"][0]["identity"] == "Barack Obama"

    assert faceshot("people", "remove", "Barack Obama", db=db).returncode == 0
    run = faceshot("identify", images / "obama3.jpg", "--json", db=db)
    assert json.loads(run.stdout)["faces"][0]["identity"] is None
    check = faceshot("gallery", "check", "--json", db=db)
    assert check.returncode == 0 and json.loads(check.stdout)["ok"] is True



def test_identify_searches_several_photos_on_workers_in_order_and_reports_a_bad_one(images, tmp_path):
    # A batch command: the photos are searched on every core at once (--workers), the answers come
    # in the order given, a corrupt file is reported and the others still answered (exit code 2).
    db = tmp_path / "people.db"
    assert faceshot("enroll", "Obama", images / "obama.jpg", db=db).returncode == 0
    assert faceshot("enroll", "Biden", images / "biden.jpg", db=db).returncode == 0
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 not a jpeg")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 300), (200, 200, 200)).save(blank)
    photos = [images / "obama2.jpg", corrupt, images / "biden.jpg", blank, images / "obama3.jpg"]
    # A second photo named obama2.jpg (another folder): its annotated copy must not overwrite the first's.
    (tmp_path / "again").mkdir()
    again = tmp_path / "again" / "obama2.jpg"
    shutil.copy(images / "biden.jpg", again)
    photos.append(again)
    answers = {}
    for workers in (1, 2):
        run = faceshot("identify", *photos, "--workers", workers, "--json", "--annotate", tmp_path / f"out{workers}", db=db)
        assert run.returncode == 2 and "corrupt.jpg" in run.stderr and "Traceback" not in run.stderr
        answers[workers] = [json.loads(line) for line in run.stdout.splitlines()]
        assert [a["image"] for a in answers[workers]] == [str(p) for p in photos]
        assert [[f["identity"] for f in a["faces"]] for a in answers[workers]] == [["Obama"], [], ["Biden"], [], ["Obama"], ["Biden"]]
        written = sorted(p.name for p in (tmp_path / f"out{workers}").iterdir())
        assert written == ["biden.annotated.jpg", "blank.annotated.jpg", "obama2-2.annotated.jpg", "obama2.annotated.jpg",
                           "obama3.annotated.jpg"]
        assert "error" in answers[workers][1] and "error" not in answers[workers][3]
    # The same faces and scores whichever process searched them.
    assert answers[1] == answers[2]

def test_enroll_rejects_no_face_and_two_face_photos_with_the_reason(images, tmp_path):
    db = tmp_path / "people.db"
    Image.new("RGB", (300, 300), "gray").save(tmp_path / "wall.png")
    run = faceshot("enroll", "Wall", tmp_path / "wall.png", db=db)
    assert run.returncode == 2 and "no face" in run.stderr.lower()

    photos = [Image.open(images / name).convert("RGB") for name in ("obama.jpg", "biden.jpg")]
    photos = [p.resize((round(p.width * 600 / p.height), 600)) for p in photos]
    Image.fromarray(np.concatenate([np.asarray(p) for p in photos], axis=1)).save(tmp_path / "two.jpg")
    run = faceshot("enroll", "Pair", tmp_path / "two.jpg", db=db)
    assert run.returncode == 2 and "2 faces" in run.stderr
    # Nothing was enrolled, so nothing was written: no gallery file, and readers do not make one.
    assert not db.exists()
    listed = faceshot("people", "list", "--json", db=db)
    assert listed.returncode == 2 and "no such gallery" in listed.stderr and not db.exists()
    assert faceshot("enroll", "Pair", tmp_path / "two.jpg", "--force", db=db).returncode == 0
    assert [p["name"] for p in json.loads(faceshot("people", "list", "--json", db=db).stdout)] == ["Pair"]


def test_enroll_dir_reports_bad_files_and_resumes(images, tmp_path):
    root = tmp_path / "people"
    (root / "obama").mkdir(parents=True)
    (root / "biden").mkdir()
    shutil.copy(images / "obama.jpg", root / "obama")
    shutil.copy(images / "obama2.jpg", root / "obama")
    shutil.copy(images / "biden.jpg", root / "biden")
    (root / "biden" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    db = tmp_path / "people.db"

    run = faceshot("enroll-dir", root, "--json", db=db)
    assert run.returncode == 1, run.stderr  # finished, one file failed
    summary = json.loads(run.stdout)
    assert summary["enrolled"] == 3 and len(summary["failed"]) == 1
    assert "broken.jpg" in run.stderr

    again = json.loads(faceshot("enroll-dir", root, "--json", db=db).stdout)
    assert again["enrolled"] == 0 and again["skipped"] == 3


def test_demo_runs_end_to_end(images, tmp_path):
    run = subprocess.run(
        [sys.executable, str(REPO / "examples" / "demo.py"), str(images)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("Barack Obama │") >= 2
    strangers = [line for line in run.stdout.splitlines() if "insightface_t1" in line]
    assert len(strangers) >= 5 and all("unknown" in line for line in strangers)
    assert (tmp_path / "out" / "insightface_t1.annotated.jpg").is_file()
