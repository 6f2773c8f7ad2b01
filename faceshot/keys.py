"""API keys and what each may do: the authorisation rules the service and the command line share.

A key is a random token (256 bits from :mod:`secrets`, shown once when made) held in the gallery's
records only as its SHA-256 digest (table ``api_keys``, :mod:`faceshot.gallery.database`). A token
presented later is hashed and compared with every active digest in constant time
(:func:`hmac.compare_digest`), so neither the table nor the time taken tells a token apart.

Roles, each allowing what the one before it does::

    recognize   detect, verify, identify (by photo or by vector)
    enroll      also enroll people, add and remove their faces, rename and delete them
    admin       everything, keys included

A key may be limited to groups: it then sees only people in at least one of its groups. Searches
run inside the union of its groups, people outside them are "not found" (404 in the service, as if
absent), and the people it enrolls join its groups. Revoking a key takes effect at every worker's
next request (each request reads the table).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

from faceshot.errors import AuthenticationError, ConfigError, GalleryError, NotFound, PermissionDeniedError
from faceshot.gallery.database import KEY_SCHEMA, Database, now
from faceshot.gallery.dialect import record_errors
from faceshot.gallery.location import Location, parse_location

__all__ = ["ROLES", "Role", "ApiKey", "KeyStore", "NO_KEY_HINT", "digest", "check_role", "normalise_group"]

Role = Literal["recognize", "enroll", "admin"]
#: The roles, from the least allowed to the most.
ROLES: tuple[Role, ...] = ("recognize", "enroll", "admin")
#: Random bytes per token: 256 bits, twice the 128 the service issue asks as a minimum.
TOKEN_BYTES = 32
TOKEN_PREFIX = "fsk_"
#: What a caller is told while the gallery holds no key at all.
NO_KEY_HINT = "this gallery has no API key yet: create one with `faceshot keys create --role admin --db GALLERY`"


def digest(token: str) -> str:
    """The SHA-256 hex digest a token is stored as."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}; the roles are {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


@dataclass(frozen=True)
class ApiKey:
    """One key as stored (never the token itself): ``id``, ``role``, the ``groups`` it is limited
    to (empty: the whole gallery), a ``name`` for people, when it was ``created`` and ``revoked``
    (ISO 8601 UTC, ``None`` while active)."""

    id: int
    role: Role
    groups: tuple[str, ...] = ()
    name: str | None = None
    created: str = ""
    revoked: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "groups": list(self.groups),
            "name": self.name,
            "created": self.created,
            "revoked": self.revoked,
        }

    @property
    def limited(self) -> bool:
        return bool(self.groups)

    def require(self, role: Role) -> None:
        """Raise :class:`PermissionDeniedError` unless this key's role allows what ``role`` may do."""
        if ROLES.index(self.role) < ROLES.index(check_role(role)):
            raise PermissionDeniedError(f"this key's role is {self.role!r}; this needs the {role!r} role or higher")

    def sees(self, groups: Iterable[str]) -> bool:
        """Whether a person in ``groups`` is visible to this key."""
        return not self.groups or bool(set(groups) & set(self.groups))

    def check_person(self, name: str, groups: Iterable[str]) -> None:
        """Raise :class:`NotFound` (as if absent) for a person outside this key's groups."""
        if not self.sees(groups):
            raise NotFound(f"no person named {name!r} in the gallery")

    def search_scope(self, group: str | Sequence[str] | None) -> str | tuple[str, ...] | None:
        """The groups a search asked for ``group`` runs in: that group (a group outside the key's is
        :class:`NotFound`, as if absent), else the key's groups, else the whole gallery (``None``)."""
        if group is None or (not isinstance(group, str) and not group):
            return tuple(self.groups) or None
        wanted = (group,) if isinstance(group, str) else tuple(group)
        if self.groups:
            for name in wanted:
                if name not in self.groups:
                    raise NotFound(f"no group named {name!r} in the gallery")
        return group if isinstance(group, str) else wanted

    def enroll_groups(self, groups: Iterable[str]) -> tuple[str, ...]:
        """The groups a person enrolled with this key joins: those asked for, which must be among
        the key's (:class:`PermissionDeniedError`), or by default all of the key's groups."""
        asked = tuple(groups)
        if not self.groups:
            return asked
        outside = [group for group in asked if group not in self.groups]
        if outside:
            raise PermissionDeniedError(
                f"this key is limited to the groups {', '.join(self.groups)}; it cannot enroll into {', '.join(outside)}"
            )
        return asked or self.groups


class KeyStore:
    """The API keys of one gallery (a file path or a URL, :mod:`faceshot.gallery.location`).
    ``create``: make the gallery when it is missing (only ``faceshot keys create`` does); otherwise
    a missing gallery is :class:`NotFound`.

    Each method runs its own transaction; several processes (and hosts) may share the gallery.
    """

    def __init__(self, path: "str | Path | Location", *, create: bool = False) -> None:
        from faceshot.spec import open_engine, stored_engine

        self.location = parse_location(path)
        self._lock = threading.Lock()  # one connection, shared by the service's threads
        with record_errors(self.location):
            if not self.location.exists():
                if not create:
                    raise NotFound(f"{self.location}: no such gallery (enroll someone first, or check the path)")
                # A new gallery in the vector space of the engine resolved as for any new gallery
                # (environment, then the package default); its first key is written right after.
                embedder = open_engine(self.location).embedder
                Database(self.location, embedder=embedder.space, dim=embedder.dim, create=True).close()
        stored = stored_engine(self.location)
        if stored is None or stored.space is None or stored.dim is None:
            raise GalleryError(f"{self.location}: not a faceshot gallery, or a damaged one; it was left untouched")
        with self._lock, record_errors(self.location):
            self.db = Database(self.location, embedder=stored.space, dim=stored.dim, create=False)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "KeyStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _has_table(self) -> bool:
        return self.db.has_table("api_keys")

    def create(self, role: str, *, groups: Iterable[str] = (), name: str | None = None) -> tuple[str, ApiKey]:
        """Make a key: returns the token (shown once, never stored) and its record."""
        role = check_role(role)
        groups = tuple(dict.fromkeys(normalise_group(group) for group in groups))
        token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        created = now()
        with self._lock, self.db.errors(), self.db.transaction():
            self.db.ensure_tables(KEY_SCHEMA)
            key_id = self.db.conn.execute(
                "INSERT INTO api_keys (digest, role, groups, name, created) VALUES (?, ?, ?, ?, ?) RETURNING id",
                (digest(token), role, json.dumps(groups), name, created),
            ).fetchone()[0]
        return token, ApiKey(int(key_id), role, groups, name, created, None)

    def keys(self, *, revoked: bool = False) -> list[ApiKey]:
        """Every key (``revoked=True``: the revoked ones too), oldest first."""
        with self._lock, self.db.errors():
            return self._keys(revoked)

    def _keys(self, revoked: bool) -> list[ApiKey]:
        if not self._has_table():
            return []
        sql = "SELECT id, role, groups, name, created, revoked FROM api_keys"
        if not revoked:
            sql += " WHERE revoked IS NULL"
        return [_key(row) for row in self.db.conn.execute(sql + " ORDER BY id").fetchall()]

    def revoke(self, key_id: int) -> ApiKey:
        """Revoke a key by id (:class:`NotFound` if there is no active key with that id)."""
        with self._lock, self.db.errors():
            return self._revoke(key_id)

    def _revoke(self, key_id: int) -> ApiKey:
        if not self._has_table():
            raise NotFound(f"no key with id {key_id}")
        with self.db.transaction():
            changed = self.db.conn.execute(
                "UPDATE api_keys SET revoked = ? WHERE id = ? AND revoked IS NULL", (now(), int(key_id))
            ).rowcount
            row = self.db.conn.execute(
                "SELECT id, role, groups, name, created, revoked FROM api_keys WHERE id = ?", (int(key_id),)
            ).fetchone()
        if not changed:
            raise NotFound(f"no active key with id {key_id}")
        return _key(row)

    def stored(self) -> list[dict[str, Any]]:
        """Every key as stored, digest included (for copying a gallery: the tokens are never stored)."""
        with self._lock, self.db.errors():
            if not self._has_table():
                return []
            rows = self.db.conn.execute(
                "SELECT digest, role, groups, name, created, revoked FROM api_keys ORDER BY id"
            ).fetchall()
        return [{name: row[i] for i, name in enumerate(("digest", "role", "groups", "name", "created", "revoked"))}
                for row in rows]

    def restore(self, rows: Iterable[dict[str, Any]]) -> int:
        """Add keys as :meth:`stored` gives them, in one transaction; a key (digest) already here is
        left as it is. Returns how many were added."""
        added = 0
        with self._lock, self.db.errors(), self.db.transaction():
            self.db.ensure_tables(KEY_SCHEMA)
            for row in rows:
                added += self.db.conn.execute(
                    "INSERT INTO api_keys (digest, role, groups, name, created, revoked) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (digest) DO NOTHING",
                    (row["digest"], check_role(row["role"]), row["groups"], row["name"], row["created"], row["revoked"]),
                ).rowcount
        return added

    def authenticate(self, token: str | None) -> ApiKey:
        """The active key whose token this is; :class:`AuthenticationError` otherwise (no key given,
        an unknown or revoked one, or a gallery without keys, whose message says how to make one)."""
        rows = []
        with self._lock, self.db.errors():
            if self._has_table():
                rows = self.db.conn.execute(
                    "SELECT id, role, groups, name, created, revoked, digest FROM api_keys WHERE revoked IS NULL"
                ).fetchall()
        if not rows:
            raise AuthenticationError(NO_KEY_HINT)
        if not token:
            raise AuthenticationError("no API key: send one in the X-API-Key header")
        presented = digest(token)
        found = None
        for row in rows:  # every row compared, in constant time each: no early exit to time
            if hmac.compare_digest(presented, row["digest"]):
                found = row
        if found is None:
            raise AuthenticationError("this API key is not valid for this gallery (unknown or revoked)")
        return _key(found)


def normalise_group(group: str) -> str:
    text = " ".join(str(group).split())
    if not text:
        raise ConfigError("a group name cannot be empty")
    return text


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=int(row["id"]),
        role=row["role"],
        groups=tuple(json.loads(row["groups"])),
        name=row["name"],
        created=row["created"],
        revoked=row["revoked"],
    )
