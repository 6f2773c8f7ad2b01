"""enroll-dir on Ray Data (faceshot.bulk_ray): a real 2-node cluster on 127.0.0.1, real photos.

The Ray runner must give what the local runner gives (same people, same faces, same vectors, same
failures), survive a driver killed midway (every file enrolled exactly once after a rerun), and
start a Ray of its own, with its token outside the user's home, when no cluster is named.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from faceshot.errors import ConfigError
from faceshot.gallery import Gallery
from faceshot.walk import by_top_folder_url

REPO = Path(__file__).resolve().parents[1]


def _people(datasets: Path, root: Path, names: list[str], per_person: int) -> Path:
    """ROOT/person/photo.jpg with links to LFW photos (the data stays where it is)."""
    for name in names:
        (root / name).mkdir(parents=True)
        for photo in sorted((datasets / "lfw" / "images" / name).glob("*.jpg"))[:per_person]:
            (root / name / photo.name).symlink_to(photo)
    return root


@pytest.fixture(scope="module")
def folder(datasets, tmp_path_factory) -> Path:
    """Four LFW people (3 photos each), a corrupt file and a photo without a face."""
    root = _people(datasets, tmp_path_factory.mktemp("people"), ["Al_Gore", "Gray_Davis", "Hans_Blix", "Zico"], 3)
    (root / "Zico" / "corrupt.jpg").write_bytes(b"not a jpeg at all")
    (root / "Hans_Blix" / "brick.png").symlink_to(datasets / "nonfaces" / "skimage_brick.png")
    return root


def _faces(db: Path) -> dict[str, list[tuple[str, str, tuple, np.ndarray]]]:
    """Each person's faces as (source, sha256, box, embedding), sorted by source."""
    with Gallery(db, create=False) as gallery:
        return {
            record.name: sorted(
                ((face.source, face.sha256, tuple(face.box.to_dict().values()), face.embedding) for face in record.faces),
                key=lambda face: face[:3],
            )
            for record in gallery.store.export_people()
        }


def _driver_env(cluster) -> dict[str, str]:
    return {**os.environ, **cluster.env, "PYTHONPATH": str(REPO)}


def test_ray_runner_on_two_nodes_enrolls_what_the_local_runner_enrolls(ray_cluster, folder, tmp_path, monkeypatch):
    from faceshot.bulk_ray import RayRunner

    with Gallery(tmp_path / "local.db") as gallery:
        local = gallery.enroll_dir(folder, workers=2)
    for key, value in ray_cluster.env.items():
        monkeypatch.setenv(key, value)
    seen = []
    with RayRunner(ray_cluster.address) as runner, Gallery(tmp_path / "ray.db") as gallery:
        remote = gallery.enroll_dir(folder, runner=runner, batch=4, progress=seen.append)
        nodes = dict(runner.nodes)

    assert remote.enrolled == local.enrolled >= 10, (remote.failed, local.failed)
    assert len(nodes) == 2, f"both nodes' actors should have worked: {nodes}"
    assert sum(nodes.values()) == 14  # every photo went to the cluster, the two bad ones too
    assert sorted((f.source, f.error) for f in remote.failed) == sorted((f.source, f.error) for f in local.failed)
    assert {"UnsupportedImageError", "NoFaceError"} <= {f.error for f in remote.failed}
    assert [step.done for step in seen] == list(range(1, 15)) and seen[-1].total == 14
    assert json.dumps(remote.to_dict(), sort_keys=True) and remote.to_dict().keys() == local.to_dict().keys()

    ours, theirs = _faces(tmp_path / "ray.db"), _faces(tmp_path / "local.db")
    assert sorted(ours) == sorted(theirs) == ["Al_Gore", "Gray_Davis", "Hans_Blix", "Zico"]
    for name in ours:
        assert [face[:3] for face in ours[name]] == [face[:3] for face in theirs[name]], name
        for mine, reference in zip(ours[name], theirs[name]):
            np.testing.assert_allclose(mine[3], reference[3], atol=1e-5)


def test_ray_runner_clusters_a_collection_as_the_local_runner_does(ray_cluster, folder, monkeypatch):
    from faceshot.bulk_ray import RayRunner
    from faceshot.cluster import Collection

    def groups(clustering):
        faces = lambda items: sorted((f.source, tuple(f.face.box.to_dict().values())) for f in items)  # noqa: E731
        return sorted(faces(c.faces) for c in clustering.clusters), faces(clustering.unclustered)

    with Collection(None, workers=2) as photos:
        local = photos.add([folder])
    for key, value in ray_cluster.env.items():
        monkeypatch.setenv(key, value)
    with RayRunner(ray_cluster.address) as runner, Collection(None, runner=runner) as photos:
        remote = photos.add([folder])
        assert len(runner.nodes) == 2, runner.nodes

    assert remote.added == local.added > 10 and len(remote.failed) == len(local.failed) == 1
    assert remote.no_face == local.no_face and len(local.no_face) == 1
    assert groups(remote) == groups(local)
    assert len(local.clusters) >= 3  # the LFW people come out as clusters, not one heap


def _face_count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            return connection.execute("SELECT COUNT(*) FROM faces").fetchone()[0]
    except sqlite3.OperationalError:  # not made yet, or its tables not yet
        return 0


def test_ray_enroll_dir_killed_midway_resumes_and_enrolls_every_file_once(ray_cluster, datasets, tmp_path):
    root = _people(datasets, tmp_path / "people", ["George_W_Bush", "Colin_Powell", "Tony_Blair"], 7)
    total = sum(1 for _ in root.rglob("*.jpg"))
    db = tmp_path / "gallery.db"
    command = [sys.executable, "-m", "faceshot", "enroll-dir", str(root), "--runner", "ray",
               "--address", ray_cluster.address, "--db", str(db), "--batch", "1", "--json"]
    driver = subprocess.Popen(command, env=_driver_env(ray_cluster), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while _face_count(db) < 2 and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    driver.send_signal(signal.SIGKILL)
    _, stderr = driver.communicate(timeout=30)
    assert driver.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    before = _face_count(db)
    assert 0 < before < total, f"the kill should land midway: {before} of {total} faces written"

    again = subprocess.run(command, env=_driver_env(ray_cluster), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    summary = json.loads(again.stdout)
    assert summary["skipped"] == before and summary["enrolled"] == total - before and not summary["failed"]

    faces = _faces(db)
    hashes = [face[1] for person in faces.values() for face in person]
    assert len(hashes) == len(set(hashes)) == total, "every file enrolled exactly once"
    sources = sorted(face[0] for person in faces.values() for face in person)
    assert sources == sorted(str(path) for path in root.rglob("*.jpg"))


def test_ray_runner_without_address_starts_its_own_ray_and_reads_a_url(loopback_namespace, datasets, tmp_path):
    pytest.importorskip("ray.data", reason="the ray extra is not installed (pip install 'faceshot[ray]')")
    root = _people(datasets, tmp_path / "people", ["Hans_Blix", "Zico"], 2)
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(home)}
    for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN", "RAY_ADDRESS"):
        env.pop(key, None)
    done = subprocess.run(
        [sys.executable, "-m", "faceshot", "enroll-dir", f"file://{root}", "--runner", "ray", "--actors", "1",
         "--db", str(tmp_path / "g.db"), "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["enrolled"] == 4 and not summary["failed"]
    assert {person["person"] for person in summary["people"]} == {"Hans_Blix", "Zico"}
    assert all(face["source"].startswith("file://") for p in summary["people"] for face in p["added"])
    assert not (home / ".ray").exists(), "the token must not be written to the user's home"


def test_folders_by_url_follow_the_walker_rules(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "1.jpg").write_bytes(b"x")
    (tmp_path / "ann" / ".hidden.jpg").write_bytes(b"x")
    (tmp_path / "ann" / "notes.txt").write_text("x")
    (tmp_path / "loose.jpg").write_bytes(b"x")
    people, skipped = by_top_folder_url(f"file://{tmp_path}")
    assert people == {"ann": [f"file://{tmp_path}/ann/1.jpg"]}
    assert sorted(item.path.rsplit("/", 1)[1] for item in skipped) == ["loose.jpg", "notes.txt"]
    with pytest.raises(Exception, match="no such folder"):
        by_top_folder_url(f"file://{tmp_path}/nobody")


def test_ray_runner_refuses_impossible_settings_before_starting_anything():
    from faceshot.bulk_ray import RayRunner

    for bad in ({"actors": 0}, {"actors": True}, {"cpus_per_actor": 0}, {"files_per_call": 0}):
        with pytest.raises(ConfigError):
            RayRunner(**bad)


def test_ray_runner_says_when_no_cluster_answers(loopback_namespace, images, tmp_path):
    pytest.importorskip("ray.data", reason="the ray extra is not installed (pip install 'faceshot[ray]')")
    from faceshot.bulk_ray import RayRunner
    from faceshot.errors import UnavailableError

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "obama.jpg").symlink_to(images / "obama.jpg")
    runner = RayRunner(f"127.0.0.1:{port}")  # connects at its first use, as the command line's does
    with Gallery(tmp_path / "g.db") as gallery:
        with pytest.raises(UnavailableError, match="no Ray cluster answers"):
            gallery.enroll_dir(tmp_path, runner=runner)
        assert gallery.people() == []
    runner.close()


def test_a_url_folder_needs_the_ray_runner(tmp_path):
    with Gallery(tmp_path / "g.db") as gallery, pytest.raises(ConfigError, match="--runner ray"):
        gallery.enroll_dir(f"file://{tmp_path}")
    with Gallery(tmp_path / "g.db") as gallery, pytest.raises(ConfigError, match="batch"):
        gallery.enroll_dir(tmp_path, batch=0)
