"""The store backends the contract suite runs against, opened by name (also from writer processes).

A backend that needs a server (PostgreSQL, Milvus) adds its row here with a fixture that starts
the server; every test in ``test_store_contract.py`` then runs against it too.

- ``sqlite``: SQLite records + this process's FAISS index.
- ``milvus``: SQLite records + a collection on the session's Milvus server (``milvus_server``
  fixture, address in ``$FACESHOT_TEST_MILVUS``), one collection per gallery file. Writes are
  confirmed at every search (``confirm_rows=0``), so every search goes through Milvus.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from faceshot.gallery.local import LocalStore
from faceshot.gallery.store import Store

DIM = 32
EMBEDDER = "test-random"
BACKENDS = ("sqlite", "milvus")
#: Backends whose server comes from a fixture: backend -> fixture name.
SERVERS = {"milvus": "milvus_server"}


def milvus_url(location: str | Path, **options: object) -> str:
    """The Milvus URL of the gallery at ``location`` on the test server: a collection named after its path."""
    address = os.environ.get("FACESHOT_TEST_MILVUS")
    if not address:
        raise RuntimeError("no Milvus test server: use the milvus_server fixture")
    collection = "g_" + hashlib.sha1(str(Path(location).resolve()).encode()).hexdigest()[:16]
    query = "&".join(f"{key}={value}" for key, value in {"collection": collection, "confirm_rows": 0, **options}.items())
    return f"milvus://{address}?{query}"


def open_backend(name: str, location: str | Path, *, embedder: str = EMBEDDER, dim: int = DIM, **options: object) -> Store:
    """A store of backend ``name`` at ``location`` (a file path for SQLite), holding random 32-D vectors."""
    if name == "sqlite":
        return LocalStore(Path(location), embedder=embedder, dim=dim, **options)  # type: ignore[arg-type]
    if name == "milvus":
        return LocalStore(Path(location), embedder=embedder, dim=dim, vectors=milvus_url(location), **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown store backend {name!r}")
