"""`faceshot gallery index` shows and changes a gallery's index; `gallery check` verifies it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from faceshot.evaluate.synthetic import lfw_dlib_model
from faceshot.gallery import Gallery
from faceshot.gallery.store import NewFace, PersonRecord

REPO = Path(__file__).resolve().parents[1]


def faceshot(*args, db: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "faceshot", *map(str, args), "--db", str(db)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def test_gallery_index_shows_changes_and_check_verifies_it(tmp_path):
    db = tmp_path / "g.db"
    _, gallery = lfw_dlib_model().gallery(500, seed=4)
    with Gallery(db) as g:
        g.add_embeddings_batch(
            PersonRecord(f"p{i}", {}, (), None, (NewFace(v),)) for i, v in enumerate(gallery.vectors)
        )
        g.identify_embeddings(gallery.vectors[:1])
        g.store._vectors.save()

    shown = faceshot("gallery", "index", "--json", db=db)
    assert shown.returncode == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["configured"] == "auto" and info["resolves_to"] == "flat" and info["faces"] == 500
    assert info["file"]["kind"] == "flat" and info["file"]["count"] == 500

    changed = faceshot("gallery", "index", "--kind", "hnsw:efSearch=96", db=db)
    assert changed.returncode == 0, changed.stderr
    assert "hnsw:efSearch=96" in changed.stdout and "flat index of 500 faces" in changed.stdout
    check = faceshot("gallery", "check", "--json", db=db)
    assert check.returncode == 0 and "'flat' index where 'hnsw:efSearch=96' is configured" in json.loads(check.stdout)["index_file"]

    with Gallery(db) as g:  # every later open uses the stored kind
        [result] = g.identify_embeddings(gallery.vectors[7])
        assert result.identity == "p7"
        assert g.store._vectors.index.kind == "hnsw" and g.store._vectors.index.params == {"efSearch": 96}
    check = faceshot("gallery", "check", "--json", db=db)
    report = json.loads(check.stdout)
    assert check.returncode == 0 and report["ok"] and report["indexed"] == 500, report

    bad = faceshot("gallery", "index", "--kind", "IVF10,PQ7", db=db)
    assert bad.returncode != 0 and "FAISS cannot build" in bad.stderr
    assert json.loads(faceshot("gallery", "index", "--json", db=db).stdout)["configured"] == "hnsw:efSearch=96"
