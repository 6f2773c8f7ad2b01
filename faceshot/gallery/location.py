"""Where a gallery lives, written as one string: a file path or a URL, with its vector engine.

    people.db                                   a SQLite file (as is ``$FACESHOT_DB``)
    sqlite:///people.db                         the same file (``sqlite:////abs/people.db``: an absolute path)
    postgresql://user:password@host:5432/db     records in PostgreSQL
    postgresql://…/db?vectors=milvus%3A%2F%2F127.0.0.1%3A19530
                                                records in PostgreSQL, vectors in another engine

The records (people, faces, groups, settings, keys, clusters, the change log) live where the
scheme says; the vectors' engine is the query parameter ``vectors``, percent-encoded since it is a
URL itself (``urllib.parse.quote(url, safe="")``). Without it the vectors are ``faiss``: an index
in each process, following the records' change log (:mod:`faceshot.gallery.vectors`). Other query
parameters of a PostgreSQL URL (``sslmode``, …) go to the driver (libpq) unchanged.

A vector engine plugs in with :func:`register_vectors`: its URL scheme and a function that opens
a :class:`~faceshot.gallery.vectors.VectorEngine` following the records' change log
(:func:`open_vectors`). :func:`open_store` opens any location: its records, with the vectors in
this process's FAISS index or in the engine named.

A password in the URL is used to connect and never shown: ``str()``, ``repr()``, errors and logs
print ``***`` in its place (:attr:`Location.shown`).
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from faceshot.errors import ConfigError

if TYPE_CHECKING:
    from faceshot.gallery.database import Database
    from faceshot.gallery.store import Store
    from faceshot.gallery.vectors import VectorEngine

__all__ = [
    "Location", "parse_location", "register_vectors", "vector_engines", "check_vectors", "open_vectors", "open_store", "VectorsOpener",
    "VECTORS_PARAMETER", "DEFAULT_VECTORS",
]

#: The query parameter that names the vector engine (a percent-encoded URL, or a registered name).
VECTORS_PARAMETER = "vectors"
#: The vector engine when none is named: FAISS in each process, following the change log.
DEFAULT_VECTORS = "faiss"
#: Record backends by URL scheme (``postgres://`` is libpq's other spelling).
RECORD_SCHEMES = {"sqlite": "sqlite", "postgresql": "postgresql", "postgres": "postgresql"}
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})


@dataclass(frozen=True, repr=False)
class Location:
    """A parsed gallery location.

    ``records``: ``"sqlite"`` or ``"postgresql"``. ``target``: the SQLite file's path, or the
    PostgreSQL URL to connect with (password included, ``vectors`` left out). ``vectors``: the
    vector engine's URL or name (``"faiss"`` by default).
    """

    records: str
    target: str
    vectors: str = DEFAULT_VECTORS

    @property
    def path(self) -> Path:
        """The SQLite file (a :class:`~faceshot.errors.ConfigError` for a server's location)."""
        if self.records != "sqlite":
            raise ConfigError(f"{self.shown} is not a gallery file")
        return Path(self.target)

    @property
    def is_file(self) -> bool:
        """Whether the records are a SQLite file on this machine."""
        return self.records == "sqlite"

    @property
    def shown(self) -> str:
        """The location as printed: a path as typed, a URL with its password replaced by ``***``."""
        if self.records == "sqlite":
            return self.target if self.vectors == DEFAULT_VECTORS else _with_vectors(f"sqlite:///{self.target}", self.vectors)
        return _with_vectors(redact(self.target), self.vectors)

    @property
    def secret_text(self) -> str:
        """The location as a string that parses back to it, password included: for handing it to
        another process through its environment, never for showing."""
        if self.records == "sqlite" and self.vectors == DEFAULT_VECTORS:
            return self.target
        base = f"sqlite:///{quote(self.target)}" if self.records == "sqlite" else self.target
        if self.vectors == DEFAULT_VECTORS:
            return base
        return f"{base}{'&' if '?' in base else '?'}{VECTORS_PARAMETER}={quote(self.vectors, safe='')}"

    @property
    def vectors_scheme(self) -> str:
        """The vector engine's name: the scheme of its URL, or the name itself (``faiss``)."""
        match = _URL.match(self.vectors)
        return (match.group(1) if match else self.vectors).lower()

    def secrets(self) -> tuple[str, ...]:
        """The passwords in the location (to scrub from messages that might repeat them)."""
        found = []
        for url in (self.target, self.vectors):
            parts = urlsplit(url) if _URL.match(url) else None
            if parts is None:
                continue
            if parts.password:
                found.append(unquote(parts.password))
                found.append(parts.password)
            found += [value for key, value in parse_qsl(parts.query) if key in _SECRET_PARAMETERS]
        return tuple(text for text in dict.fromkeys(found) if text)

    def scrub(self, text: str) -> str:
        """``text`` with every password of this location replaced by ``***``."""
        for secret in self.secrets():
            text = text.replace(secret, "***")
        return text

    def exists(self) -> bool:
        """Whether something is there to open: the file (opening says if it is no gallery), or a
        PostgreSQL schema holding the gallery's tables."""
        if self.is_file:
            return self.path.is_file()
        return self.read_settings() is not None

    def read_settings(self) -> dict[str, Any] | None:
        """The gallery's settings, read without creating or locking anything; ``None`` when there is
        no gallery there yet (a missing file, a database without the gallery's tables)."""
        from faceshot.gallery.database import read_settings

        return read_settings(self)

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:
        return f"Location({self.shown!r})"

    def __fspath__(self) -> str:
        # A file location still works where a path is expected (os.path, open); a server's does not.
        return str(self.path)


def redact(url: str) -> str:
    """``url`` with the password in its user part, and any ``password=`` parameter, replaced by ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:***@{host}"
    query = parts.query
    if query:
        pairs = [(key, "***" if key in _SECRET_PARAMETERS else value) for key, value in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(pairs, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _with_vectors(url: str, vectors: str) -> str:
    if vectors == DEFAULT_VECTORS:
        return url
    return f"{url}{'&' if '?' in url else '?'}{VECTORS_PARAMETER}={quote(redact(vectors) if _URL.match(vectors) else vectors, safe='')}"


def parse_location(where: "str | os.PathLike[str] | Location") -> Location:
    """The :class:`Location` a path or URL names. A path (or a string without ``scheme://``) is a
    SQLite file. Raises :class:`~faceshot.errors.ConfigError` for an unknown scheme (listing the
    known ones) or a URL without a database."""
    if isinstance(where, Location):
        return where
    if not isinstance(where, str):
        return Location("sqlite", os.fspath(where))
    match = _URL.match(where)
    if match is None:
        if not where.strip():
            raise ConfigError("an empty gallery location: give a file path or a postgresql:// URL")
        return Location("sqlite", where)
    scheme = match.group(1).lower()
    if scheme not in RECORD_SCHEMES:
        raise ConfigError(
            f"unknown gallery location scheme {scheme!r}; the known ones are "
            f"{', '.join(sorted(RECORD_SCHEMES))} (or a plain file path)"
        )
    parts = urlsplit(where)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    vectors = [value for key, value in pairs if key == VECTORS_PARAMETER]
    rest = [(key, value) for key, value in pairs if key != VECTORS_PARAMETER]
    if len(vectors) > 1:
        raise ConfigError(f"the gallery location names {VECTORS_PARAMETER}= more than once")
    engine = vectors[0] if vectors else DEFAULT_VECTORS
    if not engine:
        raise ConfigError(f"{VECTORS_PARAMETER}= is empty: name a vector engine ({', '.join(vector_engines())})")
    if RECORD_SCHEMES[scheme] == "sqlite":
        if parts.netloc:
            raise ConfigError(f"{redact(where)}: a sqlite URL has no host; write sqlite:///relative.db or sqlite:////absolute.db")
        path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
        if not path:
            raise ConfigError("sqlite:/// names no file")
        return Location("sqlite", path, engine)
    if not parts.path.strip("/"):
        raise ConfigError(f"{redact(where)}: the URL names no database (postgresql://user@host:port/DATABASE)")
    target = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest), parts.fragment))
    return Location("postgresql", target, engine)


# -- vector engines ----------------------------------------------------------------------------


class VectorsOpener(Protocol):
    """Opens the vector engine at ``url`` over ``records``, a consumer of their change log."""

    def __call__(self, url: str, records: "Database", *, embedder: str, dim: int) -> "VectorEngine": ...


#: Vector engines by URL scheme: an opener, or ``"module:function"`` imported on first use (so
#: naming an engine whose extra is not installed fails only when it is used, with its hint).
#: ``faiss`` (:data:`DEFAULT_VECTORS`) is not in it: it is each process's own index.
_VECTOR_ENGINES: dict[str, "VectorsOpener | str"] = {
    "milvus": "faceshot.gallery.milvus:open_engine",
}


def register_vectors(scheme: str, opener: "VectorsOpener | str") -> None:
    """Make the vector engine of URL scheme ``scheme`` (``milvus`` for ``vectors=milvus://…``) open
    through ``opener``: a callable, or ``"module:function"`` imported when first used."""
    _VECTOR_ENGINES[scheme.lower()] = opener


def vector_engines() -> tuple[str, ...]:
    """The vector engines a location may name: ``faiss`` and the registered schemes."""
    return tuple(sorted({DEFAULT_VECTORS, *_VECTOR_ENGINES}))


def check_vectors(url: str | None) -> str | None:
    """The registered scheme of the vector engine ``url`` names (``None`` for ``faiss``), checked
    before anything is opened: :class:`~faceshot.errors.ConfigError` for an unknown one."""
    if url is None or url.strip() in ("", DEFAULT_VECTORS):
        return None
    match = _URL.match(url)
    scheme = (match.group(1) if match else url).lower()
    if scheme not in _VECTOR_ENGINES:
        raise ConfigError(f"unknown vector engine {scheme!r}; the known ones are {', '.join(vector_engines())}")
    return scheme


def open_vectors(url: str | None, records: "Database", *, embedder: str, dim: int) -> "VectorEngine | None":
    """The vector engine ``url`` names, following the change log of ``records``; ``None`` for
    ``faiss`` (or no URL): this process's own index.

    Raises :class:`~faceshot.errors.ConfigError` for an unknown scheme (listing the known ones) or a
    malformed URL; ``ImportError`` naming the extra to install when the engine's client is missing.
    """
    scheme = check_vectors(url)
    if scheme is None:
        return None
    found = _VECTOR_ENGINES[scheme]
    if isinstance(found, str):
        module, _, name = found.partition(":")
        found = getattr(importlib.import_module(module), name)
        _VECTOR_ENGINES[scheme] = found
    return found(url, records, embedder=embedder, dim=dim)  # type: ignore[operator]


def open_store(
    where: "str | os.PathLike[str] | Location",
    *,
    embedder: str,
    dim: int,
    index: str | None = None,
    create: bool = True,
    timeout: float = 60.0,
) -> "Store":
    """The store at ``where`` (a path or URL, see the module's text): its records opened (or created
    when ``create``), its vectors in the engine the location names."""
    from faceshot.gallery.local import LocalStore

    location = parse_location(where)
    return LocalStore(location, embedder=embedder, dim=dim, index=index, create=create, timeout=timeout)

