"""The one place where errors become HTTP answers: RFC 9457 problem details (``application/problem+json``).

Every answer that is not a success has the same shape::

    {"type": "urn:faceshot:problem:no_face", "title": "No face", "status": 422,
     "detail": "photo.jpg: no face found ...", "code": "no_face"}

``code`` is the error's stable :attr:`~faceshot.errors.FaceshotError.code`; the status comes from
:func:`faceshot.errors.http_status` (the error tree's one table). Errors of the request itself
(a missing field, a wrong type) are ``invalid_request`` (422) with an ``errors`` list; an
unexpected failure is ``internal_error`` (500) without a traceback (it goes to the log).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from faceshot.errors import FaceshotError, GalleryBusyError, TooManyRequestsError, http_status

__all__ = ["problem", "install", "PROBLEM_TYPE", "RETRY_AFTER_SECONDS"]

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"
#: What a 503 (gallery busy) or a 429 (too many requests in flight) tells the client to wait.
RETRY_AFTER_SECONDS = 1

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    406: "not_acceptable", 413: "request_too_large", 415: "unsupported_media_type", 422: "invalid_request",
    429: "too_many_requests", 500: "internal_error", 503: "unavailable",
}


def problem(status: int, code: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """A problem+json response."""
    body = {
        "type": f"urn:faceshot:problem:{code}",
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_TYPE, headers=headers)


def from_error(exc: FaceshotError) -> JSONResponse:
    status = http_status(exc)
    headers = None
    if isinstance(exc, (GalleryBusyError, TooManyRequestsError)) or status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if status >= 500:
        log.error("%s: %s", exc.code, exc)
    return problem(status, exc.code, str(exc), headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # pydantic's entries also hold the input (possibly a whole image) and objects JSON cannot carry.
    return [{"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", ""))} for error in exc.errors()]


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into a problem response."""

    @app.exception_handler(FaceshotError)
    async def faceshot_error(request: Request, exc: FaceshotError) -> JSONResponse:
        return from_error(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
        return problem(422, "invalid_request", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return problem(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, "internal_error", "the server failed unexpectedly; the log has the details")
