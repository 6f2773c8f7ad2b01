"""The store backends the contract suite runs against, opened by name (also from writer processes).

A backend that needs a server (PostgreSQL, Milvus) adds its row here with a fixture that starts
the server; every test in ``test_store_contract.py`` then runs against it too.

- ``sqlite``: SQLite records + this process's FAISS index.
- ``postgres``: the session's throwaway server (conftest's ``postgres_server``, whose URL reaches
writer processes as ``$FACESHOT_TEST_POSTGRES``); each test location (a path under the test's
temporary folder) is a gallery of its own on it: a schema of one database, named from the path.
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
BACKENDS = ("sqlite", "postgres", "milvus")
#: Backends that need a server, by the session fixture that starts it.
SERVER_FIXTURES = {"postgres": "postgres_server", "milvus": "milvus_server"}
POSTGRES_ENVIRONMENT = "FACESHOT_TEST_POSTGRES"


def postgres_url(location: str | Path) -> str:
    """The database standing for ``location`` on the session's PostgreSQL server (created on first use)."""
    from faceshot.sandbox.postgres import create_database, create_schema

    admin = os.environ.get(POSTGRES_ENVIRONMENT)
    if not admin:
        raise RuntimeError(f"${POSTGRES_ENVIRONMENT} is not set: request the postgres_server fixture")
    name = "g_" + hashlib.sha1(str(Path(location).resolve()).encode()).hexdigest()[:24]
    return create_schema(create_database(admin, "contract"), name)


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
    if name == "postgres":
        return LocalStore(postgres_url(location), embedder=embedder, dim=dim, **options)  # type: ignore[arg-type]
    if name == "milvus":
        return LocalStore(Path(location), embedder=embedder, dim=dim, vectors=milvus_url(location), **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown store backend {name!r}")
