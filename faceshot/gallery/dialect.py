"""What differs between the records' SQL engines, kept to one small class each.

:class:`~faceshot.gallery.database.Database` is the one records implementation: every query is
written once, in the SQL both engines accept (``?`` placeholders, ``ON CONFLICT``, ``RETURNING``).
A :class:`Dialect` supplies only what cannot be written the same way:

- connecting, and the session settings (SQLite's pragmas, PostgreSQL's lock timeout);
- the column types of the schema (:meth:`Dialect.ddl`) and the list of tables;
- how a write transaction takes the gallery's write lock, and how a read sees one state;
- how a change-log row gets its number and how the log's head is read (the contract's rule 2);
- how the driver's exceptions become faceshot's (:meth:`Dialect.errors`).

SQLite is here; PostgreSQL is :mod:`faceshot.gallery.postgres` (imported only when a
``postgresql://`` location is opened, so psycopg stays an optional extra).
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Any, Iterator

from faceshot.errors import GalleryBusyError, GalleryError, GalleryReadOnlyError
from faceshot.gallery.location import Location

__all__ = ["Dialect", "SQLiteDialect", "dialect_for", "record_errors"]


class Dialect:
    """One SQL engine's differences (see the module's text). Subclasses override every method."""

    name = ""
    #: How messages name the engine.
    label = ""

    def connect(self, location: Location, timeout: float) -> Any:
        """A connection in autocommit mode (transactions are begun explicitly), its rows readable
        by column index and by name."""
        raise NotImplementedError

    def tables(self, conn: Any) -> set[str]:
        raise NotImplementedError

    def ddl(self, statement: str) -> str:
        """A schema statement (written in SQLite's types) in this engine's types."""
        return statement

    def log_schema(self) -> tuple[str, ...]:
        """Statements that set up numbering the change log, beyond the ``changes`` table itself."""
        return ()

    def begin_write(self, conn: Any) -> None:
        """Begin a transaction holding the gallery's write lock (waiting up to the timeout)."""
        raise NotImplementedError

    def begin_read(self, conn: Any) -> None:
        """Begin a transaction whose queries all see one committed state."""
        raise NotImplementedError

    def head(self, conn: Any) -> int:
        raise NotImplementedError

    def append_change(self, conn: Any, op: str, face: int | None, person: int | None, detail: str | None, at: str) -> None:
        raise NotImplementedError

    @contextmanager
    def errors(self, where: Location) -> Iterator[None]:
        """The driver's exceptions as faceshot's: busy, read-only, unreachable, full or damaged."""
        yield

    def open_error(self, where: Location, exc: BaseException) -> BaseException:
        """What to raise when opening ``where`` failed with ``exc`` (after its connection closed)."""
        return exc


class SQLiteDialect(Dialect):
    """One file in WAL mode; ``BEGIN IMMEDIATE`` takes the write lock, AUTOINCREMENT numbers the log."""

    name = "sqlite"
    label = "SQLite"

    def connect(self, location: Location, timeout: float) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(location.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise GalleryError(f"{location}: cannot open the gallery database ({exc})") from None
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    @staticmethod
    def configure(conn: sqlite3.Connection) -> None:
        """The pragmas of a gallery file (set once the file is known to be a gallery or empty)."""
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")

    def tables(self, conn: sqlite3.Connection) -> set[str]:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        tables.discard("sqlite_sequence")
        return tables

    def begin_write(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def begin_read(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN")

    def head(self, conn: sqlite3.Connection) -> int:
        # AUTOINCREMENT's counter: writers are serialised, and a rolled-back transaction takes its
        # numbers back, so the last number given out is the last one committed.
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'changes'").fetchone()
        return 0 if row is None else int(row[0])

    def append_change(
        self, conn: sqlite3.Connection, op: str, face: int | None, person: int | None, detail: str | None, at: str
    ) -> None:
        conn.execute("INSERT INTO changes (op, face, person, detail, at) VALUES (?, ?, ?, ?, ?)", (op, face, person, detail, at))

    @contextmanager
    def errors(self, where: Location) -> Iterator[None]:
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise GalleryBusyError(
                    f"{where}: another process has been writing to the gallery for too long ({text}); try again"
                ) from None
            if "readonly" in text or "read-only" in text:
                raise GalleryReadOnlyError(f"{where}: the gallery cannot be written ({text}); check its permissions") from None
            if "full" in text:
                raise GalleryError(f"{where}: the disk is full; nothing was written ({text})") from None
            raise GalleryError(f"{where}: the gallery database failed ({text})") from None
        except sqlite3.ProgrammingError as exc:
            raise GalleryError(f"{where}: the gallery is closed ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{where}: the gallery database is damaged ({exc})") from None

    def open_error(self, where: Location, exc: BaseException) -> BaseException:
        if isinstance(exc, sqlite3.OperationalError) and _is_transient(exc):
            return exc  # busy, read-only or full: the store says which
        if isinstance(exc, sqlite3.DatabaseError):
            return GalleryError(f"{where}: not a faceshot gallery, or a damaged one ({exc})")
        return exc


def _is_transient(exc: sqlite3.OperationalError) -> bool:
    """Busy, read-only or full: the file is a gallery, it just cannot be written now."""
    text = str(exc)
    return any(word in text for word in ("locked", "busy", "readonly", "read-only", "full"))


_SQLITE = SQLiteDialect()


def dialect_for(location: Location) -> Dialect:
    """The dialect of a location's records (PostgreSQL's imports psycopg, with a hint when missing)."""
    if location.records == "sqlite":
        return _SQLITE
    from faceshot.gallery.postgres import dialect

    return dialect()


@contextmanager
def record_errors(location: Location) -> Iterator[None]:
    """:meth:`Dialect.errors` of the location's engine."""
    with dialect_for(location).errors(location):
        yield
