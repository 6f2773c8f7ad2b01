"""PostgreSQL as the gallery's records (extra ``[postgres]``: psycopg 3), for several hosts over one gallery.

The tables are those of :mod:`faceshot.gallery.database`, with PostgreSQL's types (``BIGINT``
identities, ``BYTEA`` vectors); every query is the same code as on SQLite (:mod:`faceshot.gallery.dialect`).

**The change log on PostgreSQL** (the contract's rule 2: no gaps, commit order). A sequence gives
neither: numbers are taken before commit, so a reader can see number 8 committed while 7 is not
yet, and a rolled-back transaction leaves a hole. Two ways out: serialise writers, or let readers
stop at the first number not yet committed (which needs a way to tell "not committed yet" from
"never will be": a rolled-back number would stall readers). faceshot serialises writers, as SQLite
does: every write transaction first takes the gallery's transaction-level advisory lock
(``pg_advisory_xact_lock``), so writers run one after another, and the log's numbers come from a
one-row counter (``changes_head``) incremented in the writing transaction — a rollback takes its
number back, so there are no gaps, and the order of numbers is the order of commits. Readers take
no lock at all. The cost is that writes to one gallery do not run in parallel; a write holds the
lock for a few milliseconds (BENCHMARKS.md: writes per second with 1 and 4 concurrent writers),
far less than detecting and embedding the face it stores. The lock waits up to the store's
``timeout`` (``lock_timeout``), then :class:`~faceshot.errors.GalleryBusyError`.

A gallery is the faceshot tables of one schema: the first of the connection's ``search_path``
(``public`` by default; another with ``?options=-csearch_path%3Dname`` in the URL), so one database
may hold several galleries.

Reads that must see one state (a search, a listing) run in ``REPEATABLE READ READ ONLY``
transactions: PostgreSQL's snapshot, like a SQLite read transaction in WAL mode.

**A dropped connection** (the server restarted, an administrator ended it, the network cut it)
does not outlive the operation that found it: the next one connects again, so a long-lived
Gallery or ``faceshot serve`` recovers by itself once the server is back. A read, or a write
whose transaction had not begun, is resent at once on the new connection; a write cut inside its
transaction is never resent (PostgreSQL rolled all of it back; resending could not tell a lost
``COMMIT`` from a refused one and might write twice) and fails, as does everything while the server
cannot be reached, with :class:`~faceshot.errors.UnavailableError` (exit 69, HTTP 503 with
``Retry-After``). See :class:`PostgresConnection`.
"""

from __future__ import annotations

import logging
import re
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Callable, Iterator, Sequence

from faceshot.errors import GalleryBusyError, GalleryError, GalleryReadOnlyError, MissingExtraError, UnavailableError
from faceshot.gallery.dialect import Dialect
from faceshot.gallery.location import Location

__all__ = ["PostgresDialect", "PostgresConnection", "dialect", "WRITE_LOCK"]

log = logging.getLogger(__name__)

#: The advisory lock every write transaction takes, with the schema's hash as its second key: one
#: lock per gallery (advisory locks are per database, and a database may hold a gallery in each of
#: several schemas). The number is arbitrary; it only has to be the same in every process ("face").
WRITE_LOCK = 0x66616365

try:  # psycopg is the [postgres] extra: imported here, never by faceshot's other modules
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.pq import TransactionStatus
except ImportError as _missing:  # pragma: no cover - depends on the installed extras
    psycopg = None  # type: ignore[assignment]
    _IMPORT_ERROR: ImportError | None = _missing
else:
    _IMPORT_ERROR = None


class _Row(tuple):
    """A result row readable by index and by column name, like :class:`sqlite3.Row`."""

    __slots__ = ()
    _index: dict[str, int] = {}

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@lru_cache(maxsize=256)
def _row_class(names: tuple[str, ...]) -> type[_Row]:
    return type("Row", (_Row,), {"__slots__": (), "_index": {name: i for i, name in enumerate(names)}})


def _row_factory(cursor: Any) -> Any:
    if cursor.description is None:
        return tuple
    row = _row_class(tuple(column.name for column in cursor.description))
    return row


@lru_cache(maxsize=1024)
def _translate(sql: str) -> str:
    """``?`` placeholders (written for both engines) as psycopg's ``%s``."""
    return sql.replace("%", "%%").replace("?", "%s")


#: Statements resent once on a new connection when the old one turns out to be lost as they are
#: sent outside a transaction: they change nothing (a ``BEGIN`` starts a transaction whose
#: statements have not run yet; a ``SELECT``, ``SET`` or ``SHOW`` only reads or sets the session).
_RESENDABLE = frozenset({"BEGIN", "SELECT", "SET", "SHOW"})


class PostgresConnection:
    """A psycopg connection in autocommit mode, with :class:`sqlite3.Connection`'s ``execute``,
    that replaces itself when the server drops it (a restart, ``pg_terminate_backend``, a network cut).

    psycopg learns that a connection is gone only when a statement fails on it (``OperationalError``,
    the connection then ``broken``). What happens next depends on where the statement stood:

    - outside a transaction (a ``BEGIN``, or a statement run on its own): a statement that changes
      nothing (:data:`_RESENDABLE`) is sent again on a new connection, once, so the operation
      succeeds as if nothing happened; another (a write on its own, which the server may or may
      not have applied) fails, and the next statement gets a new connection;
    - inside a transaction, the server rolled the transaction back when the connection died
      (PostgreSQL commits a transaction whole or not at all), so it is never resent — that could
      write twice; the statement fails (as :class:`~faceshot.errors.UnavailableError`, through
      :meth:`PostgresDialect.errors`) and so does every later one of that transaction, while its
      ``ROLLBACK`` succeeds. A ``COMMIT`` whose answer was lost may or may not have been applied:
      its message says so. The next transaction starts on a new connection.

    While the server cannot be reached, the new connection fails as
    :class:`~faceshot.errors.UnavailableError`, and the one after it is tried again at the next statement.
    """

    def __init__(self, connect: Callable[[], Any], where: str) -> None:
        self._connect = connect
        self._where = where
        self.raw = connect()
        self._transaction = False  # a BEGIN was sent and neither COMMIT nor ROLLBACK yet
        self._closed = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        word = sql.lstrip()[:10].split(None, 1)[0].upper() if sql.strip() else ""
        query, values = _translate(sql), tuple(params)
        if self.raw.broken and not self._closed:
            if self._transaction:
                self._transaction = False  # rolled back by the server when the connection died
                if word == "ROLLBACK":
                    return None
                raise psycopg.OperationalError(
                    "the connection to the server was lost during a transaction; nothing of it was stored"
                )
            self._renew()
        try:
            cursor = self.raw.execute(query, values)
        except psycopg.OperationalError as exc:
            if not self.raw.broken or self._closed:
                raise
            if self._transaction:
                self._transaction = False
                why = " ".join(str(exc).split())
                if word == "COMMIT":
                    raise psycopg.OperationalError(
                        f"the connection to the server was lost while committing; the write may or may not "
                        f"have been stored, look before writing it again ({why})"
                    ) from None
                raise psycopg.OperationalError(
                    f"the connection to the server was lost during a transaction; nothing of it was stored ({why})"
                ) from None
            if word not in _RESENDABLE:
                raise
            log.warning("%s: the connection to the server was lost (%s); connecting again", self._where,
                        " ".join(str(exc).split()))
            self._renew()
            cursor = self.raw.execute(query, values)
        if word == "BEGIN":
            self._transaction = True
        elif word in ("COMMIT", "ROLLBACK", "END", "ABORT"):
            self._transaction = False
        return cursor

    def _renew(self) -> None:
        """A new connection in place of the lost one (UnavailableError while the server is down)."""
        try:
            self.raw.close()
        except psycopg.Error:
            pass
        self.raw = self._connect()
        self._transaction = False
        log.info("%s: connected again", self._where)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        # Only inside write transactions (imports): never resent, a lost connection fails the transaction.
        if self.raw.broken and not self._closed and not self._transaction:
            self._renew()
        cursor = self.raw.cursor()
        cursor.executemany(_translate(sql), [tuple(row) for row in rows])
        return cursor

    @property
    def in_transaction(self) -> bool:
        if self.raw.broken:
            return self._transaction  # the server ended it; its ROLLBACK is still expected
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self._closed = True
        self.raw.close()


_TYPES = (
    # The change log is numbered by changes_head, not by an identity (see the module's text).
    (re.compile(r"seq INTEGER PRIMARY KEY AUTOINCREMENT"), "seq BIGINT PRIMARY KEY"),
    (re.compile(r"INTEGER PRIMARY KEY AUTOINCREMENT"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
)


class PostgresDialect(Dialect):
    """PostgreSQL 14 or newer (tested on 18); see the module's text for the change log."""

    name = "postgresql"
    label = "PostgreSQL"

    def connect(self, location: Location, timeout: float) -> PostgresConnection:
        """A connection that connects again when the server dropped it (see :class:`PostgresConnection`)."""
        return PostgresConnection(lambda: self._open(location, timeout), str(location))

    def _open(self, location: Location, timeout: float) -> Any:
        try:
            conn = psycopg.connect(location.target, autocommit=True, row_factory=_row_factory, connect_timeout=10)
        except psycopg.Error as exc:
            raise UnavailableError(
                f"{location}: cannot connect to the PostgreSQL server ({' '.join(location.scrub(str(exc)).split())})"
            ) from None
        try:
            # Waits for the write lock up to the timeout, as SQLite's busy_timeout does.
            conn.execute(f"SET lock_timeout = {int(timeout * 1000)}")
        except psycopg.Error:
            conn.close()
            raise
        return conn

    def tables(self, conn: PostgresConnection) -> set[str]:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        return {row[0] for row in rows}

    def ddl(self, statement: str) -> str:
        for pattern, replacement in _TYPES:
            statement = pattern.sub(replacement, statement)
        return statement

    def log_schema(self) -> tuple[str, ...]:
        return (
            "CREATE TABLE IF NOT EXISTS changes_head (one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one), seq BIGINT NOT NULL)",
            "INSERT INTO changes_head (one, seq) VALUES (TRUE, 0) ON CONFLICT DO NOTHING",
        )

    def begin_write(self, conn: PostgresConnection) -> None:
        conn.execute("BEGIN")
        try:
            conn.execute("SELECT pg_advisory_xact_lock(?, hashtext(current_schema()))", (WRITE_LOCK,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def begin_read(self, conn: PostgresConnection) -> None:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def head(self, conn: PostgresConnection) -> int:
        row = conn.execute("SELECT seq FROM changes_head").fetchone()
        return 0 if row is None else int(row[0])

    def append_change(
        self, conn: PostgresConnection, op: str, face: int | None, person: int | None, detail: str | None, at: str
    ) -> None:
        # Under the write lock: the counter row's increment and the log row commit together or not at all.
        conn.execute(
            "WITH n AS (UPDATE changes_head SET seq = seq + 1 RETURNING seq) "
            "INSERT INTO changes (seq, op, face, person, detail, at) VALUES ((SELECT seq FROM n), ?, ?, ?, ?, ?)",
            (op, face, person, detail, at),
        )

    @contextmanager
    def errors(self, where: Location) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            raise self._translate_error(where, exc) from None

    def _translate_error(self, where: Location, exc: Exception) -> Exception:
        text = where.scrub(str(exc).strip())
        if isinstance(exc, pg_errors.LockNotAvailable):
            return GalleryBusyError(f"{where}: another host has been writing to the gallery for too long ({text}); try again")
        if isinstance(exc, (pg_errors.ReadOnlySqlTransaction, pg_errors.InsufficientPrivilege)):
            return GalleryReadOnlyError(f"{where}: the gallery cannot be written ({text}); check the role's privileges")
        if isinstance(exc, pg_errors.DiskFull):
            return GalleryError(f"{where}: the server's disk is full; nothing was written ({text})")
        if isinstance(exc, psycopg.InterfaceError):
            return GalleryError(f"{where}: the gallery is closed ({text})")
        if isinstance(exc, psycopg.OperationalError):
            return UnavailableError(f"{where}: the PostgreSQL server failed or cannot be reached ({text})")
        return GalleryError(f"{where}: the gallery database failed ({text})")

    def open_error(self, where: Location, exc: BaseException) -> BaseException:
        if isinstance(exc, psycopg.Error):
            return self._translate_error(where, exc)
        return exc


_DIALECT: PostgresDialect | None = None


def dialect() -> PostgresDialect:
    """The PostgreSQL dialect; :class:`~faceshot.errors.MissingExtraError` without psycopg."""
    global _DIALECT
    if _IMPORT_ERROR is not None:
        raise MissingExtraError(
            f"PostgreSQL galleries need the postgres extra: pip install 'faceshot[postgres]' ({_IMPORT_ERROR})"
        )
    if _DIALECT is None:
        _DIALECT = PostgresDialect()
    return _DIALECT
