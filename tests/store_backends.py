"""The store backends the contract suite runs against, opened by name (also from writer processes).

A backend that needs a server (PostgreSQL, Milvus) adds its row here with a fixture that starts
the server; every test in ``test_store_contract.py`` then runs against it too.
"""

from __future__ import annotations

from pathlib import Path

from faceshot.gallery.local import LocalStore
from faceshot.gallery.store import Store

DIM = 32
EMBEDDER = "test-random"
BACKENDS = ("sqlite",)


def open_backend(name: str, location: str | Path, *, embedder: str = EMBEDDER, dim: int = DIM, **options: object) -> Store:
    """A store of backend ``name`` at ``location`` (a file path for SQLite), holding random 32-D vectors."""
    if name == "sqlite":
        return LocalStore(Path(location), embedder=embedder, dim=dim, **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown store backend {name!r}")
