"""The REST service, served for real (``faceshot serve --workers 2`` on 127.0.0.1): every endpoint,
every role, bad inputs answered with the right problem+json, two workers over one gallery."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

PROBLEM = "application/problem+json"


def call(served, method: str, path: str, key: str | None = "admin", **kwargs):
    """One request on a new connection (so either worker may answer), with the key of that role."""
    headers = dict(kwargs.pop("headers", {}))
    if key is not None:
        headers["X-API-Key"] = served["keys"].get(key, key)
    response = httpx.request(method, served["url"] + path, headers=headers, timeout=120, **kwargs)
    assert response.status_code < 500, response.text  # never a 500
    return response


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["code"] == code, body
    assert body["detail"] and "Traceback" not in body["detail"]
    return body


def photo(images, name: str):
    return (name, (images / name).read_bytes(), "image/jpeg")


def b64(images, name: str) -> str:
    return base64.b64encode((images / name).read_bytes()).decode()


def enroll(served, images, name: str, *files: str, key: str = "admin", **data):
    return call(served, "POST", "/v1/people", key, data={"name": name, **data},
                files=[("images", photo(images, f)) for f in files])


@pytest.fixture(scope="module")
def people(served, images):
    """Barack Obama (group office, from two photos) and Joe Biden (group home), enrolled by the admin."""
    obama = enroll(served, images, "Barack Obama", "obama.jpg", "obama2.jpg", groups="office")
    assert obama.status_code == 201, obama.text
    biden = enroll(served, images, "Joe Biden", "biden.jpg", groups="home", keep_thumbnail="true")
    assert biden.status_code == 201, biden.text
    return {"obama": obama.json()["person"], "biden": biden.json()["person"]}


# -- health, docs, keys ----------------------------------------------------------------------------


def test_health_and_docs_need_no_key(served):
    assert call(served, "GET", "/healthz", None).json() == {"status": "ok"}
    ready = call(served, "GET", "/readyz", None)
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert call(served, "GET", "/docs", None).status_code == 200
    paths = call(served, "GET", "/openapi.json", None).json()["paths"]
    for path in ("/v1/detect", "/v1/verify", "/v1/identify", "/v1/people", "/v1/people/{name}",
                 "/v1/people/{name}/faces", "/v1/people/{name}/faces/{face_id}", "/v1/people/{name}/verify",
                 "/v1/embeddings/identify", "/v1/people/{name}/embeddings"):
        assert path in paths, path


@pytest.mark.parametrize("key", [None, "not-a-key", "revoked"])
def test_a_missing_unknown_or_revoked_key_is_401(served, key):
    body = problem(call(served, "GET", "/v1/people", key), 401, "unauthorized")
    assert "key" in body["detail"].lower()


def test_without_any_key_every_v1_call_names_the_command_that_makes_one(tmp_path, images):
    from fastapi.testclient import TestClient

    from faceshot.gallery import Gallery
    from faceshot.server import create_app

    with Gallery(tmp_path / "g.db") as gallery:  # someone enrolled, no key yet
        gallery.add_embeddings("Someone", np.eye(gallery.store.dim, dtype=np.float32)[0])
    with TestClient(create_app(tmp_path / "g.db", warm=False)) as client:
        for method, path in (("GET", "/v1/people"), ("POST", "/v1/identify"), ("DELETE", "/v1/people/x")):
            body = problem(client.request(method, path, headers={"X-API-Key": "anything"}), 401, "unauthorized")
            assert "faceshot keys create --role admin" in body["detail"]
        assert client.get("/healthz").status_code == 200


def test_a_key_revoked_while_serving_is_refused_at_once(served):
    from faceshot.keys import KeyStore

    with KeyStore(served["db"]) as store:
        token, key = store.create("recognize")
    assert call(served, "GET", "/v1/people", token).status_code == 200
    with KeyStore(served["db"]) as store:
        store.revoke(key.id)
    for _ in range(4):  # whichever worker answers
        problem(call(served, "GET", "/v1/people", token), 401, "unauthorized")


def test_admins_manage_keys_through_the_api(served):
    made = call(served, "POST", "/v1/keys", "admin", json={"role": "recognize", "groups": ["office"], "name": "door"})
    assert made.status_code == 201, made.text
    token = made.json()["key"]
    assert call(served, "GET", "/v1/people", token).status_code == 200
    listed = call(served, "GET", "/v1/keys", "admin").json()["keys"]
    assert {"id", "role", "groups", "name", "created"} <= set(listed[0]) and all("key" not in k for k in listed)
    for role in ("enroll", "recognize"):
        problem(call(served, "GET", "/v1/keys", role), 403, "forbidden")
        problem(call(served, "POST", "/v1/keys", role, json={"role": "admin"}), 403, "forbidden")
    problem(call(served, "POST", "/v1/keys", "admin", json={"role": "root"}), 422, "invalid_request")
    assert call(served, "DELETE", f"/v1/keys/{made.json()['id']}", "admin").json()["revoked"]
    problem(call(served, "GET", "/v1/people", token), 401, "unauthorized")
    problem(call(served, "DELETE", f"/v1/keys/{made.json()['id']}", "admin"), 404, "not_found")


# -- recognition ---------------------------------------------------------------------------------


def test_detect_returns_boxes_confidence_and_landmarks(served, images):
    faces = call(served, "POST", "/v1/detect", "recognize", files={"image": photo(images, "obama.jpg")}).json()["faces"]
    assert len(faces) == 1
    assert set(faces[0]) == {"box", "confidence", "landmarks", "landmark_scheme"} and len(faces[0]["landmarks"]) == 5
    group = call(served, "POST", "/v1/detect", "recognize", json={"image": b64(images, "insightface_t1.jpg")})
    assert len(group.json()["faces"]) > 3


def test_verify_two_photos(served, images):
    same = call(served, "POST", "/v1/verify", "recognize",
                files={"a": photo(images, "obama.jpg"), "b": photo(images, "obama3.jpg")}).json()
    assert same["same"] is True and same["score"] >= same["threshold"] and same["far"] is not None
    other = call(served, "POST", "/v1/verify", "recognize",
                 json={"a": b64(images, "obama.jpg"), "b": b64(images, "biden.jpg"), "far": 0.001}).json()
    assert other["same"] is False and "box_a" in other and "box_b" in other


def test_identify_by_file_and_by_base64_with_person_ids(served, images, people):
    found = call(served, "POST", "/v1/identify", "recognize", files={"image": photo(images, "obama3.jpg")}).json()
    (face,) = found["faces"]
    assert face["identity"] == "Barack Obama" and face["person_id"] == people["obama"]["person_id"]
    assert {"threshold", "far", "fpir", "clamped", "candidates", "box", "score"} <= set(face)
    data_url = "data:image/jpeg;base64," + b64(images, "biden.jpg")
    (face,) = call(served, "POST", "/v1/identify", "recognize", json={"image": data_url, "top_k": 1}).json()["faces"]
    assert face["identity"] == "Joe Biden" and len(face["candidates"]) == 1


def test_identify_among_a_list_of_people(served, images, people):
    (face,) = call(served, "POST", "/v1/identify", "recognize", data={"among": ["joe biden"]},
                   files={"image": photo(images, "obama3.jpg")}).json()["faces"]
    assert face["identity"] is None and [c["name"] for c in face["candidates"]] == ["Joe Biden"]
    (face,) = call(served, "POST", "/v1/identify", "recognize", json={"image": b64(images, "obama3.jpg"),
                   "among": ["Joe Biden", "Barack Obama"]}).json()["faces"]
    assert face["identity"] == "Barack Obama" and len(face["candidates"]) == 2
    problem(call(served, "POST", "/v1/identify", "recognize", data={"among": ["Nobody"]},
                 files={"image": photo(images, "obama3.jpg")}), 404, "not_found")
    problem(call(served, "POST", "/v1/identify", "recognize", data={"among": ["Joe Biden"], "group": "home"},
                 files={"image": photo(images, "obama3.jpg")}), 400, "invalid_config")
    problem(call(served, "POST", "/v1/identify", "office-recognize", data={"among": ["Joe Biden"]},
                 files={"image": photo(images, "obama3.jpg")}), 404, "not_found")


def test_identify_a_photo_without_faces_is_an_empty_list(served):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (200, 200), (120, 130, 140)).save(buffer, "PNG")
    response = call(served, "POST", "/v1/identify", "recognize", files={"image": ("grey.png", buffer.getvalue(), "image/png")})
    assert response.status_code == 200 and response.json() == {"faces": []}


def test_verify_a_photo_against_an_enrolled_person(served, images, people):
    yes = call(served, "POST", "/v1/people/barack obama/verify", "recognize", files={"image": photo(images, "obama3.jpg")})
    assert yes.json()["same"] is True and yes.json()["person"] == "Barack Obama"
    no = call(served, "POST", "/v1/people/Joe Biden/verify", "recognize", files={"image": photo(images, "obama3.jpg")})
    assert no.json()["same"] is False
    problem(call(served, "POST", "/v1/people/Nobody/verify", "recognize", files={"image": photo(images, "obama3.jpg")}),
            404, "not_found")


def test_embeddings_enroll_and_identify_and_other_spaces_are_refused(served, engine, images, people):
    vector = engine.embed(images / "obama3.jpg")[0]
    created = call(served, "POST", "/v1/people/Vector Person/embeddings", "enroll",
                   json={"vectors": [vector.tolist()], "groups": ["vectors"]})
    assert created.status_code == 201, created.text
    found = call(served, "POST", "/v1/embeddings/identify", "recognize",
                 json={"vectors": [vector.tolist()], "group": "vectors", "top_k": 1}).json()["faces"]
    assert found[0]["identity"] == "Vector Person" and found[0]["box"] is None
    problem(call(served, "POST", "/v1/embeddings/identify", "recognize", json={"vectors": [vector.tolist()], "space": "arcface"}),
            409, "embedder_mismatch")
    problem(call(served, "POST", "/v1/embeddings/identify", "recognize", json={"vectors": [[0.5, 0.5]]}), 400, "invalid_config")
    problem(call(served, "POST", "/v1/embeddings/identify", "recognize", json={"vectors": [(vector * 3).tolist()]}),
            400, "invalid_config")
    assert call(served, "DELETE", "/v1/people/Vector Person", "enroll").status_code == 200


# -- people and faces ------------------------------------------------------------------------------


def test_people_list_with_paging_and_group(served, people):
    listed = call(served, "GET", "/v1/people", "recognize", params={"limit": 1}).json()
    assert listed["total"] >= 2 and len(listed["people"]) == 1 and listed["people"][0]["person_id"]
    office = call(served, "GET", "/v1/people", "recognize", params={"group": "office"}).json()
    assert [p["name"] for p in office["people"]] == ["Barack Obama"]
    problem(call(served, "GET", "/v1/people", "recognize", params={"group": "nowhere"}), 404, "not_found")


def test_a_person_keeps_their_id_through_a_rename(served, images, people):
    created = enroll(served, images, "Renamed Person", "obama2.jpg", key="enroll", force="true", metadata='{"badge": 7}')
    assert created.status_code == 201, created.text
    person_id = created.json()["person"]["person_id"]
    assert created.json()["person"]["metadata"] == {"badge": 7}
    assert created.json()["added"][0]["source"] == "obama2.jpg"
    changed = call(served, "PATCH", "/v1/people/renamed person", "enroll", json={"name": "New Name", "metadata": {"x": 1}})
    assert changed.status_code == 200, changed.text
    assert changed.json()["person_id"] == person_id and changed.json()["metadata"] == {"badge": 7, "x": 1}
    problem(call(served, "GET", "/v1/people/Renamed Person", "recognize"), 404, "not_found")
    assert call(served, "GET", "/v1/people/new name", "recognize").json()["person_id"] == person_id
    problem(enroll(served, images, "NEW NAME", "obama3.jpg", key="enroll"), 409, "conflict")
    problem(call(served, "PATCH", "/v1/people/New Name", "enroll", json={"name": "Joe Biden"}), 409, "conflict")
    grouped = call(served, "PATCH", "/v1/people/New Name", "enroll", json={"groups": ["office", "lab"]}).json()
    assert sorted(grouped["groups"]) == ["lab", "office"]
    problem(call(served, "PATCH", "/v1/people/New Name", "office-enroll", json={"groups": ["home"]}), 403, "forbidden")
    kept = call(served, "PATCH", "/v1/people/New Name", "office-enroll", json={"groups": []}).json()
    assert kept["groups"] == ["lab"]  # a key limited to office takes the person out of office only
    problem(call(served, "GET", "/v1/people/New Name", "office-recognize"), 404, "not_found")
    deleted = call(served, "DELETE", "/v1/people/New Name", "enroll").json()
    assert deleted["person_id"] == person_id and deleted["faces_removed"] == 1


def test_faces_are_added_refused_with_reasons_and_deleted(served, images, people):
    added = call(served, "POST", "/v1/people/Barack Obama/faces", "enroll",
                 files=[("images", photo(images, "obama3.jpg")), ("images", photo(images, "obama.jpg")),
                        ("images", ("t1.jpg", (images / "insightface_t1.jpg").read_bytes(), "image/jpeg"))])
    assert added.status_code == 200, added.text
    result = added.json()
    assert [f["source"] for f in result["added"]] == ["obama3.jpg"]
    assert [f["source"] for f in result["skipped"]] == ["obama.jpg"]  # enrolled before
    assert result["rejected"][0]["source"] == "t1.jpg" and result["rejected"][0]["reason"]
    face_id = result["added"][0]["id"]
    problem(call(served, "DELETE", f"/v1/people/Joe Biden/faces/{face_id}", "enroll"), 404, "not_found")
    assert call(served, "DELETE", f"/v1/people/Barack Obama/faces/{face_id}", "enroll").json()["deleted"] == face_id
    problem(call(served, "POST", "/v1/people/Nobody/faces", "enroll", files=[("images", photo(images, "obama3.jpg"))]),
            404, "not_found")


def test_thumbnails_only_when_kept(served, people):
    biden_face = people["biden"]["faces"][0]["id"]
    thumb = call(served, "GET", f"/v1/people/Joe Biden/faces/{biden_face}/thumbnail", "recognize")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg" and thumb.content[:2] == b"\xff\xd8"
    obama_face = people["obama"]["faces"][0]["id"]
    problem(call(served, "GET", f"/v1/people/Barack Obama/faces/{obama_face}/thumbnail", "recognize"), 404, "not_found")


def test_enrolling_nothing_usable_is_422_with_each_reason(served, images):
    body = problem(enroll(served, images, "Group Photo", "insightface_t1.jpg", key="enroll"), 422, "nothing_enrolled")
    assert body["rejected"][0]["error"] == "MultipleFacesError"
    problem(call(served, "GET", "/v1/people/Group Photo", "recognize"), 404, "not_found")


# -- roles and groups ------------------------------------------------------------------------------


def test_recognize_keys_cannot_change_people(served, images, people):
    problem(enroll(served, images, "Someone", "obama3.jpg", key="recognize"), 403, "forbidden")
    problem(call(served, "DELETE", "/v1/people/Joe Biden", "recognize"), 403, "forbidden")
    problem(call(served, "PATCH", "/v1/people/Joe Biden", "recognize", json={"name": "x"}), 403, "forbidden")
    problem(call(served, "POST", "/v1/people/Joe Biden/embeddings", "recognize", json={"vectors": [[1.0]]}), 403, "forbidden")
    assert call(served, "GET", "/v1/people/Joe Biden", "recognize").status_code == 200


def test_a_key_limited_to_a_group_sees_nothing_outside_it(served, images, people):
    listed = call(served, "GET", "/v1/people", "office-recognize").json()
    assert {p["name"] for p in listed["people"]} == {"Barack Obama"}
    problem(call(served, "GET", "/v1/people/Joe Biden", "office-recognize"), 404, "not_found")
    problem(call(served, "POST", "/v1/people/Joe Biden/verify", "office-recognize",
                 files={"image": photo(images, "biden.jpg")}), 404, "not_found")
    (face,) = call(served, "POST", "/v1/identify", "office-recognize", files={"image": photo(images, "biden.jpg")}).json()["faces"]
    assert face["identity"] is None and all(c["name"] != "Joe Biden" for c in face["candidates"])
    problem(call(served, "POST", "/v1/identify", "office-recognize",
                 files={"image": photo(images, "biden.jpg")}, data={"group": "home"}), 404, "not_found")
    problem(enroll(served, images, "Elsewhere", "obama3.jpg", key="office-enroll", groups="home"), 403, "forbidden")
    made = enroll(served, images, "Office Newcomer", "obama3.jpg", key="office-enroll", force="true")
    assert made.status_code == 201 and made.json()["person"]["groups"] == ["office"]
    problem(call(served, "DELETE", "/v1/people/Joe Biden", "office-enroll"), 404, "not_found")
    assert call(served, "DELETE", "/v1/people/Office Newcomer", "office-enroll").status_code == 200
    # A key limited to two groups searches their union.
    both = call(served, "POST", "/v1/keys", "admin", json={"role": "recognize", "groups": ["office", "home"]}).json()["key"]
    (face,) = call(served, "POST", "/v1/identify", both, files={"image": photo(images, "biden.jpg")}).json()["faces"]
    assert face["identity"] == "Joe Biden"
    (face,) = call(served, "POST", "/v1/identify", both, files={"image": photo(images, "obama3.jpg")}).json()["faces"]
    assert face["identity"] == "Barack Obama"
    assert {p["name"] for p in call(served, "GET", "/v1/people", both).json()["people"]} >= {"Joe Biden", "Barack Obama"}


# -- bad input -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case,status,code",
    [
        ("corrupt", 422, "corrupt_image"),
        ("empty", 422, "corrupt_image"),
        ("not an image", 415, "unsupported_image"),
        ("huge", 413, "image_too_large"),
        ("wrong body type", 415, "unsupported_image"),
        ("missing image", 422, "invalid_request"),
        ("bad base64", 422, "corrupt_image"),
        ("bad option", 422, "invalid_request"),
        ("unknown option", 422, "invalid_request"),
        ("not JSON", 422, "invalid_request"),
        ("JSON list", 422, "invalid_request"),
        ("image not text", 422, "invalid_request"),
    ],
)
def test_bad_input_is_the_right_problem(served, images, case, status, code):
    jpeg = (images / "obama.jpg").read_bytes()
    requests = {
        "corrupt": {"files": {"image": ("x.jpg", jpeg[:2000], "image/jpeg")}},
        "empty": {"files": {"image": ("x.jpg", b"", "image/jpeg")}},
        "not an image": {"files": {"image": ("x.txt", b"hello, not a photo at all", "text/plain")}},
        "huge": {"files": {"image": ("big.jpg", jpeg + b"\0" * 2_100_000, "image/jpeg")}},
        "wrong body type": {"content": jpeg, "headers": {"content-type": "image/jpeg"}},
        "missing image": {"json": {"top_k": 3}},
        "bad base64": {"json": {"image": "this is %%% not base64"}},
        "bad option": {"files": {"image": ("x.jpg", jpeg, "image/jpeg")}, "data": {"top_k": "zero"}},
        "unknown option": {"json": {"image": b64(images, "obama.jpg"), "colour": "red"}},
        "not JSON": {"content": b"{not json", "headers": {"content-type": "application/json"}},
        "JSON list": {"json": [1, 2]},
        "image not text": {"json": {"image": 42}},
    }
    problem(call(served, "POST", "/v1/identify", "recognize", **requests[case]), status, code)


def test_unknown_routes_and_methods_are_problems_too(served):
    problem(call(served, "GET", "/v1/nothing-here"), 404, "not_found")
    problem(call(served, "PUT", "/v1/people"), 405, "method_not_allowed")


def test_invalid_names_are_refused(served, images):
    problem(enroll(served, images, "   ", "obama3.jpg", key="enroll"), 400, "invalid_config")


# -- several workers, one gallery -------------------------------------------------------------------


def test_every_worker_finds_a_new_face_and_forgets_a_deleted_person(served, images):
    enrolled = enroll(served, images, "Shared Person", "obama3.jpg", groups="shared", force="true")
    assert enrolled.status_code == 201, enrolled.text
    workers: dict[str, str | None] = {}
    deadline = time.monotonic() + 60
    while len(workers) < 2 and time.monotonic() < deadline:
        response = call(served, "POST", "/v1/identify", "recognize", data={"group": "shared"},
                        files={"image": photo(images, "obama.jpg")})
        workers[response.headers["x-faceshot-worker"]] = response.json()["faces"][0]["identity"]
    assert len(workers) == 2, "the second worker never answered"
    assert set(workers.values()) == {"Shared Person"}
    call(served, "DELETE", "/v1/people/Shared Person")
    after: dict[str, str | None] = {}
    deadline = time.monotonic() + 60
    while len(after) < 2 and time.monotonic() < deadline:
        response = call(served, "POST", "/v1/identify", "recognize", files={"image": photo(images, "obama.jpg")})
        after[response.headers["x-faceshot-worker"]] = response.json()["faces"][0]["identity"]
        assert all(c["name"] != "Shared Person" for c in response.json()["faces"][0]["candidates"])
    assert len(after) == 2


def test_metrics_add_up_the_workers(served):
    import re

    def healthz_count(text: str) -> float:
        pattern = r'faceshot_requests_total\{[^}]*route="/healthz"[^}]*\} ([0-9.e+]+)'
        return sum(float(value) for value in re.findall(pattern, text))

    before = healthz_count(call(served, "GET", "/metrics", None).text)
    workers = {call(served, "GET", "/healthz", None).headers["x-faceshot-worker"] for _ in range(30)}
    text = call(served, "GET", "/metrics", None).text
    assert len(workers) == 2, "both workers should have answered some of 30 requests"
    assert healthz_count(text) - before == 30  # every worker's count, whichever answered /metrics
    assert "faceshot_request_seconds_bucket" in text and "faceshot_gallery_faces" in text


def test_recognition_never_blocks_the_event_loop(tmp_path, images):
    import asyncio

    from faceshot.keys import KeyStore
    from faceshot.server.app import create_app

    with KeyStore(tmp_path / "g.db", create=True) as store:
        token, _ = store.create("recognize")
    app = create_app(tmp_path / "g.db", warm=False)
    jpeg = (images / "insightface_t1.jpg").read_bytes()

    async def run() -> tuple[float, float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=120) as client:
            send = lambda: client.post("/v1/detect", headers={"X-API-Key": token},  # noqa: E731
                                       files={"image": ("t1.jpg", jpeg, "image/jpeg")})
            assert (await send()).status_code == 200  # the models are loaded
            started = time.perf_counter()
            slow = asyncio.create_task(send())
            await asyncio.sleep(0.05)
            asked = time.perf_counter()
            assert (await client.get("/healthz")).status_code == 200
            health = time.perf_counter() - asked
            assert (await slow).status_code == 200
            return health, time.perf_counter() - started

    health, detect = asyncio.run(run())
    assert health < detect / 2, (health, detect)  # /healthz answered while the detection ran


# -- durability: kill -9 during a stream of enrollments ---------------------------------------------


def _children(pid: int) -> list[int]:
    from pathlib import Path

    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def test_every_acknowledged_enrollment_survives_kill_9(tmp_path, engine):
    import os
    import signal
    import threading

    from conftest import start_server, stop_server
    from faceshot.keys import KeyStore

    db = tmp_path / "g.db"
    with KeyStore(db, create=True) as store:
        token, _ = store.create("admin")
    process, url = start_server(db, workers=2, log=tmp_path / "server.log")
    dim = engine.embedder.dim
    acknowledged: dict[str, list[float]] = {}
    answered: set[int] = set()  # the workers' process ids, from their answers
    stop = threading.Event()

    def stream(worker: int) -> None:
        rng = np.random.default_rng(worker)
        for i in range(400):  # bounded: at most 400 requests per client
            if stop.is_set():
                return
            vector = rng.standard_normal(dim).astype(np.float32)
            vector /= np.linalg.norm(vector)
            name = f"person {worker}-{i}"
            try:
                response = httpx.post(url + f"/v1/people/{name}/embeddings", headers={"X-API-Key": token},
                                      json={"vectors": [vector.tolist()]}, timeout=30)
            except httpx.HTTPError:
                continue  # the server is being killed: not acknowledged
            if response.status_code == 201:
                acknowledged[name] = vector.tolist()
                answered.add(int(response.headers["x-faceshot-worker"]))

    clients = [threading.Thread(target=stream, args=(n,)) for n in range(3)]
    try:
        for client in clients:
            client.start()
        deadline = time.monotonic() + 30
        while len(acknowledged) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        victim = sorted(answered)[0]
        assert victim in _children(process.pid)
        os.kill(victim, signal.SIGKILL)  # one worker, in the middle of the stream
        before = len(acknowledged)
        deadline = time.monotonic() + 30
        while len(acknowledged) < before + 10 and time.monotonic() < deadline:
            time.sleep(0.05)  # the stream goes on through the other worker
        assert len(acknowledged) >= before + 10
        for pid in [process.pid, *_children(process.pid)]:  # then the whole service
            os.kill(pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=60)
        if process.poll() is None:
            process.kill()
    assert len(acknowledged) >= 30
    process, url = start_server(db, workers=2, log=tmp_path / "server2.log")
    try:
        listed = httpx.get(url + "/v1/people", params={"limit": 1000}, headers={"X-API-Key": token}).json()
        stored = {p["name"]: p["faces"] for p in listed["people"]}
        missing = set(acknowledged) - set(stored)
        assert not missing, f"{len(missing)} acknowledged enrollments lost: {sorted(missing)[:5]}"
        assert all(stored[name] == 1 for name in acknowledged)
        sample = list(acknowledged.items())[::10]
        found = httpx.post(url + "/v1/embeddings/identify", headers={"X-API-Key": token}, timeout=60,
                           json={"vectors": [vector for _, vector in sample], "top_k": 1, "threshold": 0.99}).json()
        assert [face["identity"] for face in found["faces"]] == [name for name, _ in sample]
    finally:
        stop_server(process)


def test_a_key_over_its_requests_in_flight_gets_429_with_retry_after(tmp_path, images):
    import asyncio

    from faceshot.keys import KeyStore
    from faceshot.server.app import Limits, create_app

    with KeyStore(tmp_path / "g.db", create=True) as store:
        token, _ = store.create("recognize")
    app = create_app(tmp_path / "g.db", limits=Limits(in_flight=1), warm=False)
    jpeg = (images / "insightface_t1.jpg").read_bytes()

    async def run() -> list:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=120) as client:
            send = lambda: client.post("/v1/identify", headers={"X-API-Key": token},  # noqa: E731
                                       files={"image": ("t1.jpg", jpeg, "image/jpeg")})
            return await asyncio.gather(send(), send(), send())

    answers = asyncio.run(run())
    statuses = sorted(response.status_code for response in answers)
    assert statuses[0] == 200 and 429 in statuses, statuses
    refused = next(response for response in answers if response.status_code == 429)
    problem(refused, 429, "too_many_requests")
    assert refused.headers["retry-after"] == "1"


def test_clusters_are_reviewed_split_merged_and_named(served, images, people):
    from faceshot.cluster import Collection

    with Collection(served["db"]) as collection:
        collection.add([images / name for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")])
    listed = call(served, "GET", "/v1/clusters", "enroll").json()
    (obama,) = [c for c in listed["clusters"] if c["size"] == 3]
    faces = call(served, "GET", f"/v1/clusters/{obama['id']}", "enroll").json()["faces"]
    assert sorted(Path(f["image"]).name for f in faces) == ["obama.jpg", "obama2.jpg", "obama3.jpg"]
    split = call(served, "POST", f"/v1/clusters/{obama['id']}/split", "enroll", json={"face_id": faces[0]["id"]}).json()
    assert split["size"] == 1 and split["id"] != obama["id"]
    merged = call(served, "POST", f"/v1/clusters/{obama['id']}/merge", "enroll", json={"source": split["id"]}).json()
    assert merged["size"] == 3
    named = call(served, "POST", f"/v1/clusters/{obama['id']}/name", "enroll", json={"name": "Clustered Obama", "force": True})
    assert named.status_code == 200, named.text
    assert named.json()["cluster"] == obama["id"] and len(named.json()["added"]) == 3
    assert call(served, "GET", "/v1/people/Clustered Obama", "recognize").json()["faces"]
    assert call(served, "GET", f"/v1/clusters/{obama['id']}", "enroll").json()["name"] == "Clustered Obama"
    problem(call(served, "GET", "/v1/clusters", "recognize"), 403, "forbidden")
    problem(call(served, "GET", "/v1/clusters", "office-enroll"), 403, "forbidden")
    problem(call(served, "GET", "/v1/clusters/99999", "enroll"), 404, "not_found")
    problem(call(served, "POST", f"/v1/clusters/{obama['id']}/merge", "enroll", json={"source": obama["id"]}), 400, "gallery_error")
    assert call(served, "DELETE", "/v1/people/Clustered Obama", "enroll").status_code == 200


def test_the_error_mapping_busy_is_503_with_retry_after_and_the_unexpected_is_a_bare_500():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from faceshot.errors import GalleryBusyError
    from faceshot.server import problems

    app = FastAPI()
    problems.install(app)

    @app.get("/busy")
    async def busy() -> None:
        raise GalleryBusyError("another process has been writing to the gallery for too long")

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/busy")
        body = problem(answer, 503, "gallery_busy")
        assert answer.headers["retry-after"] == "1" and "writing" in body["detail"]
        answer = client.get("/broken")
        assert answer.status_code == 500 and answer.headers["content-type"].startswith(PROBLEM)
        assert answer.json()["code"] == "internal_error" and "secret" not in answer.text
