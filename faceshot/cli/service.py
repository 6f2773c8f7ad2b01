"""``faceshot serve`` and ``faceshot keys …``: the REST service and its API keys (adapters over
:mod:`faceshot.server` and :mod:`faceshot.keys`)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Optional

import typer
from rich.table import Table

from faceshot.cli.app import (
    GalleryOption,
    DetectorOption,
    EmbedderOption,
    JsonOption,
    MaxPixelsOption,
    app,
    err,
    out,
    reports_errors,
)
from faceshot.cli.gallery import gallery_location
from faceshot.errors import MissingExtraError, NotFound
from faceshot.gallery import Gallery
from faceshot.gallery.location import parse_location
from faceshot.keys import ROLES, KeyStore, check_role, normalise_group
from faceshot.spec import ENV_DETECTOR, ENV_EMBEDDER, ENV_MAX_PIXELS, open_engine

keys_app = typer.Typer(help="Create, list and revoke the service's API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
@reports_errors
def keys_create(
    role: str = typer.Option(..., "--role", help=f"What the key may do: {', '.join(ROLES)} (each allows the one before)."),
    group: list[str] = typer.Option([], "--group", "-g", help="Limit the key to this group; repeat for several."),
    name: Optional[str] = typer.Option(None, "--name", help="A label for people (who holds the key)."),
    db: Optional[str] = GalleryOption,
    as_json: bool = JsonOption,
) -> None:
    """Make an API key and print it once (only its SHA-256 digest is kept). Creates the gallery if missing."""
    check_role(role)  # before any file is made
    for text in group:
        normalise_group(text)
    with KeyStore(gallery_location(db), create=True) as keys:
        token, key = keys.create(role, groups=group, name=name)
    if as_json:
        print(json.dumps({**key.to_dict(), "key": token}))
        return
    print(token)
    err.print(f"key {key.id} ({key.role}{', groups ' + ', '.join(key.groups) if key.groups else ''}): "
              "shown once, store it now; send it as the X-API-Key header")


@keys_app.command("list")
@reports_errors
def keys_list(
    revoked: bool = typer.Option(False, "--revoked", help="Also list revoked keys."),
    db: Optional[str] = GalleryOption,
    as_json: bool = JsonOption,
) -> None:
    """The gallery's keys: id, role, groups, label, when made (never the keys themselves)."""
    with KeyStore(gallery_location(db)) as keys:
        found = keys.keys(revoked=revoked)
    if as_json:
        print(json.dumps([key.to_dict() for key in found]))
        return
    table = Table("id", "role", "groups", "name", "created", "revoked")
    for key in found:
        table.add_row(str(key.id), key.role, ", ".join(key.groups), key.name or "", key.created, key.revoked or "")
    out.print(table)


@keys_app.command("revoke")
@reports_errors
def keys_revoke(
    key_id: int = typer.Argument(..., help="The key's id (see `faceshot keys list`)."),
    db: Optional[str] = GalleryOption,
) -> None:
    """Revoke a key: refused from every worker's next request on."""
    with KeyStore(gallery_location(db)) as keys:
        key = keys.revoke(key_id)
    out.print(f"revoked key {key.id} ({key.role})")


@app.command()
@reports_errors
def serve(
    db: Optional[str] = GalleryOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes over the one gallery file."),
    detector: Optional[str] = DetectorOption,
    embedder: Optional[str] = EmbedderOption,
    max_pixels: Optional[int] = MaxPixelsOption,
) -> None:
    """Run the REST API and the web page (http://HOST:PORT/, API docs at /docs). Needs the serve extra.

    Every /v1 call needs a key: create one first with `faceshot keys create --role admin`.
    """
    location = gallery_location(db)
    if location.is_file:
        location = parse_location(location.path.resolve())  # the workers may start elsewhere
    if not location.exists():
        raise NotFound(f"{location}: no such gallery; create it and a key with `faceshot keys create --role admin --db {location}`")
    KeyStore(location).close()  # a file that is not a gallery is refused here, before any worker starts
    # The engine options reach the workers as the environment (flag > environment > gallery > default);
    # an impossible option or an embedder of another vector space is refused here, once.
    engine = open_engine(location, detector=detector, embedder=embedder, max_pixels=max_pixels)
    Gallery(location, engine=engine, create=False).close()
    for variable, value in ((ENV_DETECTOR, detector), (ENV_EMBEDDER, embedder), (ENV_MAX_PIXELS, max_pixels)):
        if value is not None:
            os.environ[variable] = str(value)
    try:
        import uvicorn

        import faceshot.server.app  # noqa: F401  (FastAPI present?)
    except ImportError as exc:
        raise MissingExtraError(f"`faceshot serve` needs the serve extra: pip install 'faceshot[serve]' ({exc})") from None
    from faceshot.onnx_graphs import available_cores

    # The workers read the location, password included, from the environment (never the command line).
    os.environ["FACESHOT_DB"] = location.secret_text
    # The cores are shared: each worker's ONNX sessions get their part of them.
    os.environ["FACESHOT_WORKER_THREADS"] = str(max(1, available_cores() // workers))
    metrics = None
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:  # /metrics adds up every worker's counts
        metrics = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="faceshot-metrics-")
    err.print(f"faceshot: serving {location} on http://{host}:{port}/ ({workers} worker(s)); API docs at /docs")
    try:
        uvicorn.run(
            "faceshot.server.app:app_from_environment", factory=True, host=host, port=port, workers=workers,
            log_level="warning",
        )
    finally:
        if metrics is not None:
            shutil.rmtree(metrics, ignore_errors=True)

