"""The REST service and its web page (``faceshot serve``; needs the ``serve`` extra).

:func:`create_app` builds the FastAPI application over one gallery file; see
:mod:`faceshot.server.app` for the endpoints, :mod:`faceshot.keys` for keys and roles, and
:mod:`faceshot.server.problems` for the error shape.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """:func:`faceshot.server.app.create_app`, with an error naming the extra when FastAPI is missing."""
    try:
        from faceshot.server.app import create_app as build
    except ImportError as exc:
        from faceshot.errors import MissingExtraError

        raise MissingExtraError(f"the service needs the serve extra: pip install 'faceshot[serve]' ({exc})") from None
    return build(*args, **kwargs)
