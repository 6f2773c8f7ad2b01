"""The REST service: FastAPI routes that parse a request, check its key, call the core, and answer JSON.

No decision is made here: :class:`~faceshot.gallery.Gallery` does the recognition,
:mod:`faceshot.keys` says what a key may do, :mod:`faceshot.server.problems` turns every error into
problem+json. CPU work (decoding, detection, embedding, search) runs in the thread pool, never on
the event loop; SQLite writes are committed before a request is answered.

Each worker process (``faceshot serve --workers N``) opens its own :class:`Gallery` on the same
file; the consistency contract (:mod:`faceshot.gallery.store`) makes a write through one worker
visible to every other worker's next search, and a delete at once.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, AsyncIterator

import numpy as np
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from faceshot.errors import ConfigError, FaceshotError, NotFound, PermissionDeniedError, TooManyRequestsError
from faceshot.gallery import Gallery
from faceshot.gallery.location import parse_location
from faceshot.keys import ApiKey, KeyStore
from faceshot.onnx_graphs import set_thread_budget
from faceshot.server import metrics, problems
from faceshot.server.models import (
    DetectBody,
    EmbeddingsBody,
    EmbeddingsIdentifyBody,
    FacesBody,
    Id,
    IdentifyBody,
    KeyBody,
    MergeBody,
    NameClusterBody,
    PatchBody,
    PersonBody,
    SplitBody,
    VerifyBody,
    image_body,
)
from faceshot.server.inputs import read_request

__all__ = ["create_app", "app_from_environment", "Limits"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one request may ask, and how many a key may have in flight (per worker process).

    ``max_bytes``: the largest request body and image (bytes); ``max_faces``: faces answered per
    photo (the largest first); ``in_flight``: requests one key may have running at once in one
    worker (more: 429 with ``Retry-After``). Pixels are limited by the engine (``--max-pixels``).
    """

    max_bytes: int = 20 * 1024 * 1024
    max_faces: int = 100
    in_flight: int = 16

    @classmethod
    def from_environment(cls) -> "Limits":
        def number(name: str, default: int) -> int:
            text = os.environ.get(name)
            if text is None:
                return default
            try:
                value = int(text)
            except ValueError:
                raise ConfigError(f"{name} must be a whole number, got {text!r}") from None
            if value < 1:
                raise ConfigError(f"{name} must be at least 1, got {value}")
            return value

        return cls(
            max_bytes=number("FACESHOT_MAX_UPLOAD_BYTES", cls.max_bytes),
            max_faces=number("FACESHOT_MAX_FACES", cls.max_faces),
            in_flight=number("FACESHOT_MAX_IN_FLIGHT", cls.in_flight),
        )


# -- the application -------------------------------------------------------------------------------


@dataclass
class _State:
    gallery: Gallery
    keys: KeyStore
    limits: Limits
    ready: bool = False
    in_flight: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def app_from_environment() -> FastAPI:
    """The app for ``uvicorn --factory`` (each worker calls it): the gallery ``$FACESHOT_DB``, the
    limits of :meth:`Limits.from_environment`, ``$FACESHOT_WORKER_THREADS`` ONNX threads."""
    path = os.environ.get("FACESHOT_DB")
    if not path:
        raise ConfigError("FACESHOT_DB must name the gallery (a file or a URL) the service opens")
    threads = os.environ.get("FACESHOT_WORKER_THREADS")
    if threads and threads.isdigit():
        set_thread_budget(int(threads))  # `faceshot serve` shares the cores among its workers
    return create_app(path, limits=Limits.from_environment())


def create_app(db: str | os.PathLike[str], *, limits: Limits | None = None, warm: bool = True) -> FastAPI:
    """The service over the gallery ``db``, a file or a URL (which must exist: ``faceshot keys create`` makes one).

    ``warm``: load the models at start-up (``/readyz`` answers 200 once done).
    """
    location = parse_location(db)
    gallery = Gallery(location, create=False)
    collection: dict[str, Any] = {}  # the photo collection in the same file, opened on first use
    try:
        state = _State(gallery, KeyStore(location), limits or Limits())
    except BaseException:
        gallery.close()
        raise

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm:
            await run_in_threadpool(_warm_up, gallery)
        state.ready = True
        try:
            yield
        finally:
            gallery.close()
            state.keys.close()
            if "it" in collection:
                collection["it"].close()

    app = FastAPI(
        docs_url=None,  # served below, from the package's own copy of Swagger UI (no CDN: works offline)
        lifespan=lifespan,
        title="faceshot",
        version="1",
        description="One-shot face recognition over one gallery. Every /v1 call needs an X-API-Key header "
        "(`faceshot keys create`). Errors are RFC 9457 problem details with a stable `code`.",
    )
    app.state.faceshot = state
    problems.install(app)

    @app.middleware("http")
    async def worker_header(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers["X-Faceshot-Worker"] = str(os.getpid())  # which worker answered (tests, debugging)
        return response

    metrics.install(app, gallery)

    header = APIKeyHeader(name="X-API-Key", auto_error=False)

    async def caller(request: Request, token: str | None = Depends(header)) -> Any:
        key = await run_in_threadpool(state.keys.authenticate, token)
        with state.lock:
            if state.in_flight.get(key.id, 0) >= state.limits.in_flight:
                raise TooManyRequestsError(
                    f"this key already has {state.limits.in_flight} requests in flight; wait for one to finish"
                )
            state.in_flight[key.id] = state.in_flight.get(key.id, 0) + 1
        try:
            yield key
        finally:
            with state.lock:
                state.in_flight[key.id] -= 1

    def needs(role: str) -> Any:
        async def check(key: ApiKey = Depends(caller)) -> ApiKey:
            key.require(role)  # type: ignore[arg-type]
            return key

        return Depends(check)

    recognize, enroll, admin = needs("recognize"), needs("enroll"), needs("admin")

    def visible(key: ApiKey, name: str) -> Any:
        """The person ``name`` as this key may see them (NotFound outside its groups)."""
        details = gallery.person(name)
        key.check_person(name, details.groups)
        return details

    def search_scope(key: ApiKey, body: IdentifyBody) -> Any:
        """The groups a search runs in; with ``among``, each person named must be visible to the key."""
        if body.among is None:
            return key.search_scope(body.group)
        for name in body.among:
            visible(key, name)
        return body.group  # the core refuses group and among together

    def person_json(details: Any) -> dict[str, Any]:
        data = details.to_dict()
        data["person_id"] = gallery.person_ids([details.name]).get(details.name)
        return data

    def identification_json(found: list[Any]) -> list[dict[str, Any]]:
        names = {c[0] for f in found for c in f.candidates}
        ids = gallery.person_ids(names) if names else {}
        answer = []
        for item in found:
            data = item.to_dict()
            data["person_id"] = ids.get(item.identity) if item.identity else None
            for candidate in data["candidates"]:
                candidate["person_id"] = ids.get(candidate["name"])
            answer.append(data)
        return answer

    # -- health -----------------------------------------------------------------------------------
    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> Response:
        """Models loaded and gallery open: ready for requests (503 until then)."""
        if not state.ready:
            return problems.problem(503, "unavailable", "loading the models", headers={"Retry-After": "1"})
        try:
            await run_in_threadpool(gallery.store.head)  # the gallery answers
        except FaceshotError as exc:
            return problems.problem(503, "unavailable", f"the gallery cannot be read: {exc}", headers={"Retry-After": "1"})
        return JSONResponse({"status": "ready", "embedder": gallery.store.embedder})

    # -- recognition ------------------------------------------------------------------------------
    @app.post("/v1/detect", tags=["recognition"], openapi_extra=image_body("image", model=DetectBody))
    async def detect(request: Request, key: ApiKey = recognize) -> dict[str, Any]:
        """Every face in the photo: box, confidence (the detector's belief), five landmarks; largest first."""
        _, images = await read_request(request, DetectBody, {"image": False}, max_bytes=state.limits.max_bytes)
        faces = await run_in_threadpool(gallery.engine.detect, images["image"][0].data)
        return {"faces": [_face_json(face) for face in faces[: state.limits.max_faces]]}

    @app.post("/v1/verify", tags=["recognition"], openapi_extra=image_body("a", "b", model=VerifyBody))
    async def verify(request: Request, key: ApiKey = recognize) -> dict[str, Any]:
        """Are photos ``a`` and ``b`` the same person? Score, threshold, FAR, the boxes compared."""
        body, images = await read_request(request, VerifyBody, {"a": False, "b": False}, max_bytes=state.limits.max_bytes)
        result = await run_in_threadpool(
            gallery.verify, images["a"][0].data, images["b"][0].data,
            threshold=body.threshold, far=body.far, multiple=body.multiple,
        )
        return result.to_dict()

    @app.post("/v1/identify", tags=["recognition"], openapi_extra=image_body("image", model=IdentifyBody))
    async def identify(request: Request, key: ApiKey = recognize) -> dict[str, Any]:
        """Who is in the photo? One entry per face (largest first): identity (null: unknown), person_id,
        score, candidates and the operating point. No face: an empty list."""
        body, images = await read_request(request, IdentifyBody, {"image": False}, max_bytes=state.limits.max_bytes)
        group = await run_in_threadpool(search_scope, key, body)
        found = await run_in_threadpool(
            gallery.identify, images["image"][0].data, top_k=body.top_k, threshold=body.threshold,
            far=body.far, fpir=body.fpir, group=group, among=body.among,
        )
        found = found[: 1 if not body.multiple else state.limits.max_faces]
        return {"faces": await run_in_threadpool(identification_json, found)}

    @app.post("/v1/embeddings/identify", tags=["recognition"])
    async def identify_embeddings(body: EmbeddingsIdentifyBody, key: ApiKey = recognize) -> dict[str, Any]:
        """Who is each of these probe vectors (made on the client, in the gallery's vector space)?"""

        def run() -> list[dict[str, Any]]:
            found = gallery.identify_embeddings(
                _vectors(body.vectors), top_k=body.top_k, threshold=body.threshold, far=body.far,
                fpir=body.fpir, group=search_scope(key, body), space=body.space, among=body.among,
            )
            return identification_json(found)

        return {"faces": await run_in_threadpool(run)}

    # -- people -----------------------------------------------------------------------------------
    @app.get("/v1/people", tags=["people"])
    async def people(
        group: str | None = None,
        offset: int = Query(0, ge=0),
        limit: int = Query(100, ge=1, le=1000),
        key: ApiKey = recognize,
    ) -> dict[str, Any]:
        """Everyone this key may see, by name (``group``: only its members), ``limit`` from ``offset``."""
        scope = key.search_scope(group)
        wanted = None if scope is None else ({scope} if isinstance(scope, str) else set(scope))

        def run() -> dict[str, Any]:
            if group is not None and group not in {g.name for g in gallery.groups()}:
                raise NotFound(f"no group named {group!r} in the gallery")
            everyone = [p for p in gallery.people() if wanted is None or set(p.groups) & wanted]
            page = everyone[offset : offset + limit]
            ids = gallery.person_ids([p.name for p in page])
            return {
                "people": [{**p.to_dict(), "person_id": ids.get(p.name)} for p in page],
                "total": len(everyone), "offset": offset, "limit": limit,
            }

        return await run_in_threadpool(run)

    @app.post(
        "/v1/people", tags=["people"], status_code=201,
        openapi_extra=image_body("images", several=True, model=PersonBody),
    )
    async def create_person(request: Request, key: ApiKey = enroll) -> Response:
        """Enroll a new person (name, groups, metadata) from the photos in ``images`` (at least one must
        be usable: else 422 ``nothing_enrolled`` with each photo's reason). 409 if the name is taken."""
        body, images = await read_request(
            request, PersonBody, {"images": True}, max_bytes=state.limits.max_bytes, required=False
        )
        groups = key.enroll_groups(body.groups)

        def run() -> dict[str, Any]:
            if gallery.store.has_person(body.name):
                raise _taken(body.name)
            result = gallery.enroll(
                body.name, [u.stream() for u in images["images"]], groups=groups, metadata=body.metadata,
                force=body.force, keep_thumbnail=body.keep_thumbnail,
            )
            if not result.added:  # a person is made from at least one usable photo
                return {**result.to_dict(), "person": None}
            return {**result.to_dict(), "person": person_json(gallery.person(body.name))}

        answer = await run_in_threadpool(run)
        status = 201 if answer["person"] is not None else 422
        if status == 422:
            reasons = "; ".join(r["reason"] for r in answer["rejected"]) or "no photo was given"
            return problems.problem(422, "nothing_enrolled", f"{body.name!r} was not enrolled: {reasons}",
                                    rejected=answer["rejected"])
        return JSONResponse(answer, status_code=201)

    @app.get("/v1/people/{name}", tags=["people"])
    async def get_person(name: str, key: ApiKey = recognize) -> dict[str, Any]:
        """One person: person_id, name, metadata, groups, faces (no vectors)."""
        return await run_in_threadpool(lambda: person_json(visible(key, name)))

    @app.patch("/v1/people/{name}", tags=["people"])
    async def patch_person(name: str, body: PatchBody, key: ApiKey = enroll) -> dict[str, Any]:
        """Rename (``name``), merge ``metadata`` into theirs, or set their ``groups``. The person_id stays."""
        if body.groups is not None and body.groups:
            key.enroll_groups(body.groups)  # a key limited to groups may only set its own
        new_groups = body.groups

        def run() -> dict[str, Any]:
            details = visible(key, name)
            current = details.name
            if body.metadata:
                gallery.enroll(current, [], metadata=body.metadata)
            if new_groups is not None:
                for group in set(new_groups) - set(details.groups):
                    gallery.add_to_group(current, group)
                for group in set(details.groups) - set(new_groups):
                    if key.sees([group]):
                        gallery.remove_from_group(current, group)
            if body.name is not None and body.name != current:
                gallery.rename(current, body.name)
                current = body.name
            return person_json(gallery.person(current))

        return await run_in_threadpool(run)

    @app.delete("/v1/people/{name}", tags=["people"])
    async def delete_person(name: str, key: ApiKey = enroll) -> dict[str, Any]:
        """Delete a person and every vector of theirs: gone from every worker's next search."""

        def run() -> dict[str, Any]:
            details = visible(key, name)
            person_id = gallery.person_ids([details.name]).get(details.name)
            removed = gallery.delete(details.name)
            return {"deleted": details.name, "person_id": person_id, "faces_removed": removed}

        return await run_in_threadpool(run)

    @app.post("/v1/people/{name}/faces", tags=["people"], openapi_extra=image_body("images", several=True, model=FacesBody))
    async def add_faces(name: str, request: Request, key: ApiKey = enroll) -> dict[str, Any]:
        """Add photos (field ``images``, one or more) to an enrolled person. Per photo: added,
        already enrolled (skipped), or refused with the reason."""
        body, images = await read_request(request, FacesBody, {"images": True}, max_bytes=state.limits.max_bytes)

        def run() -> dict[str, Any]:
            details = visible(key, name)
            result = gallery.add_faces(
                details.name, [u.stream() for u in images["images"]], force=body.force, keep_thumbnail=body.keep_thumbnail
            )
            return {**result.to_dict(), "person": person_json(gallery.person(details.name))}

        return await run_in_threadpool(run)

    @app.delete("/v1/people/{name}/faces/{face_id}", tags=["people"])
    async def delete_face(name: str, face_id: Id, key: ApiKey = enroll) -> dict[str, Any]:
        """Remove one enrolled face of this person."""

        def run() -> dict[str, Any]:
            details = visible(key, name)
            if face_id not in {face.id for face in details.faces}:
                raise NotFound(f"{details.name!r} has no face {face_id}")
            gallery.remove_face(face_id)
            return {"deleted": face_id, "person": details.name}

        return await run_in_threadpool(run)

    @app.get(
        "/v1/people/{name}/faces/{face_id}/thumbnail", tags=["people"],
        responses={200: {"content": {"image/jpeg": {}}}}, response_class=Response,
    )
    async def thumbnail(name: str, face_id: Id, key: ApiKey = recognize) -> Response:
        """The JPEG kept for this face (only when it was enrolled with ``keep_thumbnail``)."""

        def run() -> bytes:
            details = visible(key, name)
            if face_id not in {face.id for face in details.faces}:
                raise NotFound(f"{details.name!r} has no face {face_id}")
            data = gallery.thumbnail(face_id)
            if data is None:
                raise NotFound(f"face {face_id} was enrolled without a thumbnail (the gallery keeps no photo by default)")
            return data

        return Response(await run_in_threadpool(run), media_type="image/jpeg")

    @app.post("/v1/people/{name}/verify", tags=["recognition"], openapi_extra=image_body("image", model=VerifyBody))
    async def verify_person(name: str, request: Request, key: ApiKey = recognize) -> dict[str, Any]:
        """Is the face in this photo the enrolled person ``name``? (The passport gate, the door badge.)"""
        body, images = await read_request(request, VerifyBody, {"image": False}, max_bytes=state.limits.max_bytes)

        def run() -> dict[str, Any]:
            details = visible(key, name)
            result = gallery.verify_person(
                details.name, images["image"][0].data, threshold=body.threshold, far=body.far, multiple=body.multiple
            )
            return {**result.to_dict(), "person_id": gallery.person_ids([details.name]).get(details.name)}

        return await run_in_threadpool(run)

    @app.post("/v1/people/{name}/embeddings", tags=["people"], status_code=201)
    async def add_embeddings(name: str, body: EmbeddingsBody, key: ApiKey = enroll) -> dict[str, Any]:
        """Enroll ``name`` (created if new) from vectors made on the client in the gallery's vector
        space (``space`` names it; another space is refused with 409)."""
        groups = key.enroll_groups(body.groups)

        def run() -> dict[str, Any]:
            if gallery.store.has_person(name):
                visible(key, name)
            result = gallery.add_embeddings(
                name, _vectors(body.vectors), groups=groups, metadata=body.metadata, space=body.space
            )
            return {**result.to_dict(), "person": person_json(gallery.person(name))}

        return await run_in_threadpool(run)

    # -- clusters (made by `faceshot cluster DIR --db G` on the server's photos) ------------------------
    cluster_lock = threading.Lock()  # the collection's one SQLite connection, shared by the threads

    def clusters_for(key: ApiKey, role: str) -> Any:
        key.require(role)  # type: ignore[arg-type]
        if key.limited:
            # Clustered faces belong to no group, so a key limited to groups sees none of them.
            raise PermissionDeniedError("clusters belong to no group: a key limited to groups cannot review them")
        if "it" not in collection:
            from faceshot.cluster import Collection

            collection["it"] = Collection(gallery.location, engine=gallery.engine)
        return collection["it"]

    def locked(function: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            with cluster_lock:
                return function(*args, **kwargs)

        return run

    @app.get("/v1/clusters", tags=["clusters"])
    async def clusters(key: ApiKey = enroll) -> dict[str, Any]:
        """The clusters of unlabeled faces, largest first, and how many faces are unclustered."""

        def run() -> dict[str, Any]:
            state_ = clusters_for(key, "enroll").clustering()
            return {
                "clusters": [{"id": c.id, "name": c.name, "size": c.size} for c in state_.clusters],
                "unclustered": len(state_.unclustered),
                "threshold": state_.threshold,
            }

        return await run_in_threadpool(locked(run))

    @app.get("/v1/clusters/{cluster_id}", tags=["clusters"])
    async def cluster(cluster_id: Id, key: ApiKey = enroll) -> dict[str, Any]:
        """One cluster with its faces (photo, box, detector confidence)."""
        return await run_in_threadpool(locked(lambda: clusters_for(key, "enroll").cluster(cluster_id).to_dict()))

    @app.get(
        "/v1/clusters/{cluster_id}/faces/{face_id}/thumbnail", tags=["clusters"],
        responses={200: {"content": {"image/jpeg": {}}}}, response_class=Response,
    )
    async def cluster_thumbnail(cluster_id: Id, face_id: Id, key: ApiKey = enroll) -> Response:
        """The JPEG of a clustered face (only when the collection keeps thumbnails)."""

        def run() -> bytes:
            found = clusters_for(key, "enroll")
            if face_id not in {f.id for f in found.cluster(cluster_id).faces}:
                raise NotFound(f"cluster {cluster_id} has no face {face_id}")
            data = found.thumbnail(face_id)
            if data is None:
                raise NotFound(f"face {face_id} has no thumbnail (cluster with --keep-thumbnails to keep them)")
            return data

        return Response(await run_in_threadpool(locked(run)), media_type="image/jpeg")

    @app.post("/v1/clusters/{cluster_id}/name", tags=["clusters"])
    async def name_cluster(cluster_id: Id, body: NameClusterBody, key: ApiKey = enroll) -> dict[str, Any]:
        """Enroll every face of the cluster as the person ``name`` (through the quality gate)."""

        def run() -> dict[str, Any]:
            found = clusters_for(key, "enroll")
            if gallery.store.has_person(body.name):
                visible(key, body.name)
            naming = found.name(cluster_id, body.name, gallery, force=body.force, keep_thumbnail=body.keep_thumbnail)
            return naming.to_dict()

        return await run_in_threadpool(locked(run))

    @app.post("/v1/clusters/{cluster_id}/merge", tags=["clusters"])
    async def merge_clusters(cluster_id: Id, body: MergeBody, key: ApiKey = enroll) -> dict[str, Any]:
        """Move every face of cluster ``source`` into this one."""
        return await run_in_threadpool(locked(lambda: clusters_for(key, "enroll").merge(cluster_id, body.source).to_dict()))

    @app.post("/v1/clusters/{cluster_id}/split", tags=["clusters"])
    async def split_cluster(cluster_id: Id, body: SplitBody, key: ApiKey = enroll) -> dict[str, Any]:
        """Move one face out of this cluster into a new cluster; returns the new cluster."""
        return await run_in_threadpool(locked(lambda: clusters_for(key, "enroll").split(cluster_id, body.face_id).to_dict()))

    # -- keys (admin) -----------------------------------------------------------------------------
    @app.get("/v1/keys", tags=["keys"])
    async def list_keys(key: ApiKey = admin) -> dict[str, Any]:
        """Every active key: id, role, groups, label, when made (never the keys themselves)."""
        return {"keys": [k.to_dict() for k in await run_in_threadpool(state.keys.keys)]}

    @app.post("/v1/keys", tags=["keys"], status_code=201)
    async def create_key(body: KeyBody, key: ApiKey = admin) -> dict[str, Any]:
        """Make a key; the answer holds it (``key``) once, it is never shown again."""
        token, made = await run_in_threadpool(lambda: state.keys.create(body.role, groups=body.groups, name=body.name))
        return {**made.to_dict(), "key": token}

    @app.delete("/v1/keys/{key_id}", tags=["keys"])
    async def revoke_key(key_id: Id, key: ApiKey = admin) -> dict[str, Any]:
        """Revoke a key: refused from every worker's next request on."""
        return (await run_in_threadpool(state.keys.revoke, key_id)).to_dict()

    # -- API docs and the web page ---------------------------------------------------------------
    _docs(app)

    # -- the web page -----------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(resources.files("faceshot.server").joinpath("web/index.html").read_text("utf-8"))

    return app


def _docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from the ``swagger-ui-bundle-v2`` wheel when installed (the serve extra
    brings it), so the page works without the internet; else FastAPI's default, from its CDN."""
    from fastapi.openapi.docs import get_swagger_ui_html

    try:
        import swagger_ui_bundle
        from fastapi.staticfiles import StaticFiles

        app.mount("/docs-assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")
        assets = {"swagger_js_url": "/docs-assets/swagger-ui-bundle.js", "swagger_css_url": "/docs-assets/swagger-ui.css",
                  "swagger_favicon_url": "/docs-assets/favicon-32x32.png"}
    except ImportError:
        assets = {}

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="faceshot API", **assets)


def _taken(name: str) -> FaceshotError:
    from faceshot.errors import ConflictError

    return ConflictError(f"the name {name!r} is taken; add faces with POST /v1/people/{{name}}/faces")


def _vectors(rows: list[list[float]]) -> np.ndarray:
    try:
        return np.asarray(rows, dtype=np.float32)
    except ValueError:
        raise ConfigError("vectors must be rows of equal length") from None


def _face_json(face: Any) -> dict[str, Any]:
    return {
        "box": face.box.to_dict(),
        "confidence": round(float(face.score), 4),
        "landmarks": [[round(x, 1), round(y, 1)] for x, y in face.landmarks],
        "landmark_scheme": face.scheme,
    }


def _warm_up(gallery: Gallery) -> None:
    """Load the detector and embedder now rather than on the first request."""
    engine = gallery.engine
    blank = np.zeros((64, 64, 3), np.uint8)
    engine.detector.detect(blank)
    size = getattr(engine.aligner, "size", 150)
    try:
        engine.embedder.embed(np.zeros((1, size, size, 3), np.uint8))
    except FaceshotError as exc:  # a pinned space without its model file: recognition will say so
        log.warning("the embedder could not be loaded: %s", exc)
