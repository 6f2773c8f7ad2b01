"""``faceshot cluster`` run as a user runs it: cluster, list, name, identify, split, merge; bad inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def faceshot(*args: object) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "faceshot", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_cluster_a_folder_name_a_cluster_and_identify_the_person(images, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"):
        (photos / name).write_bytes((images / name).read_bytes())
    db, sheet, out = tmp_path / "g.db", tmp_path / "sheet.html", tmp_path / "out"

    run = faceshot("cluster", photos, "--db", db, "--json", "--report", sheet, "--out", out, "--workers", "1")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert [c["size"] for c in result["clusters"]] == [3]
    assert {Path(f["image"]).name for f in result["clusters"][0]["faces"]} == {"obama.jpg", "obama2.jpg", "obama3.jpg"}
    assert [Path(f["image"]).name for f in result["unclustered"]] == ["biden.jpg"]
    assert set(result["clusters"][0]["faces"][0]) >= {"id", "image", "box", "cluster"}
    page = sheet.read_text()
    assert page.count("data:image/jpeg;base64,") == 4 and "Cluster " in page
    cluster_id = result["clusters"][0]["id"]
    assert len(list((out / f"cluster-{cluster_id:04d}").glob("*.jpg"))) == 3
    assert len(list((out / "unclustered").glob("*.jpg"))) == 1

    again = faceshot("cluster", photos, "--db", db, "--json", "--workers", "1")
    assert json.loads(again.stdout)["skipped"] == 4 and json.loads(again.stdout)["added"] == 0

    named = faceshot("cluster", "name", cluster_id, "Obama", "--db", db)
    assert named.returncode == 0, named.stderr
    assert "3 face(s) enrolled" in named.stdout
    found = faceshot("identify", images / "obama.jpg", "--json", "--db", db)
    assert json.loads(found.stdout)["faces"][0]["identity"] == "Obama"

    listed = json.loads(faceshot("cluster", "list", "--db", db, "--json").stdout)
    face_id = listed["clusters"][0]["faces"][0]["id"]
    split = faceshot("cluster", "split", cluster_id, face_id, "--db", db)
    assert split.returncode == 0 and "new cluster" in split.stdout
    new_id = int(split.stdout.split()[-1])
    assert faceshot("cluster", "merge", cluster_id, new_id, "--db", db).returncode == 0
    missing = faceshot("cluster", "merge", cluster_id, 999, "--db", db)
    assert missing.returncode == 2 and "no cluster 999" in missing.stderr and "Traceback" not in missing.stderr


def test_empty_folders_and_unreadable_files_give_clear_messages(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run = faceshot("cluster", empty)
    assert run.returncode == 2 and "no image files" in run.stderr and "Traceback" not in run.stderr

    folder = tmp_path / "no-faces"
    folder.mkdir()
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    from PIL import Image

    Image.new("RGB", (200, 200), (120, 160, 200)).save(folder / "sky.png")
    run = faceshot("cluster", folder, "--workers", "1")
    assert run.returncode == 1, run.stderr
    assert "broken.jpg" in run.stderr and "no face found in 1 photo(s); nothing to cluster" in run.stderr
    assert "Traceback" not in run.stderr
    assert faceshot("cluster", folder, "--algorithm", "kmeans").returncode == 2
    absent = faceshot("cluster", "list", "--db", tmp_path / "absent.db")
    assert absent.returncode == 2 and "no such gallery file" in absent.stderr
    assert not (tmp_path / "absent.db").exists()
