"""Prometheus metrics at ``/metrics``: requests and latency by route, the gallery's people and faces.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``faceshot serve`` sets it) every worker writes its counts
there and ``/metrics`` adds them up, whichever worker answers (prometheus_client's multiprocess
mode). Without prometheus_client (the serve extra brings it) there is no ``/metrics``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.concurrency import run_in_threadpool

from faceshot.errors import FaceshotError
from faceshot.gallery import Gallery

__all__ = ["install", "gallery_counts"]

_METRICS: tuple[Any, ...] | None = None


def install(app: FastAPI, gallery: Gallery) -> None:
    """Prometheus metrics at ``/metrics``: requests, latency, faces enrolled, gallery size. With
    ``PROMETHEUS_MULTIPROC_DIR`` set (``faceshot serve`` sets it) they add up across workers."""
    try:
        import prometheus_client as prom
        from prometheus_client import multiprocess
    except ImportError:  # the serve extra brings it; without it there is no /metrics
        return
    registry = prom.REGISTRY
    global _METRICS
    if _METRICS is None:  # one set per process, however many apps a test makes
        _METRICS = (
            prom.Counter("faceshot_requests", "Requests answered", ["method", "route", "status"]),
            prom.Histogram("faceshot_request_seconds", "Time to answer a request", ["route"]),
            prom.Gauge("faceshot_gallery_faces", "Faces in the gallery", multiprocess_mode="livemax"),
            prom.Gauge("faceshot_gallery_people", "People in the gallery", multiprocess_mode="livemax"),
        )
    requests, latency, faces, people = _METRICS

    @app.middleware("http")
    async def measure(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        requests.labels(request.method, path, str(response.status_code)).inc()
        latency.labels(path).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        def collect() -> bytes:
            try:
                people_count, face_count = gallery_counts(gallery)
                faces.set(face_count)
                people.set(people_count)
            except FaceshotError:
                pass
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                collector = prom.CollectorRegistry()
                multiprocess.MultiProcessCollector(collector)
                return prom.generate_latest(collector)
            return prom.generate_latest(registry)

        return Response(await run_in_threadpool(collect), media_type=prom.CONTENT_TYPE_LATEST)


def gallery_counts(gallery: Gallery) -> tuple[int, int]:
    everyone = gallery.people()
    return len(everyone), sum(p.faces for p in everyone)
