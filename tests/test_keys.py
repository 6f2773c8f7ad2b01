"""API keys: made at random, kept as digests only, checked by role and group; the keys commands."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from typer.testing import CliRunner

from faceshot.cli import app
from faceshot.errors import AuthenticationError, ConfigError, GalleryError, NotFound, PermissionDeniedError
from faceshot.gallery import Gallery
from faceshot.keys import NO_KEY_HINT, ApiKey, KeyStore, digest


def test_keys_are_random_long_and_stored_only_as_digests(tmp_path):
    db = tmp_path / "g.db"
    with KeyStore(db, create=True) as store:
        tokens = [store.create("admin")[0] for _ in range(3)]
    assert len(set(tokens)) == 3
    assert all(len(token) >= 4 + 43 for token in tokens)  # 256 bits of URL-safe base64 after the prefix
    raw = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    for token in tokens:
        assert token.encode() not in raw
    rows = sqlite3.connect(db).execute("SELECT digest FROM api_keys ORDER BY id").fetchall()
    assert [row[0] for row in rows] == [digest(token) for token in tokens]


def test_authenticate_finds_the_key_and_refuses_others(tmp_path):
    with KeyStore(tmp_path / "g.db", create=True) as store:
        with pytest.raises(AuthenticationError, match="faceshot keys create --role admin"):
            store.authenticate("anything")  # no key yet
        token, key = store.create("enroll", groups=["office", "office"], name="door")
        assert key.groups == ("office",)
        assert store.authenticate(token) == key
        for bad in (None, "", token + "x", token[:-1]):
            with pytest.raises(AuthenticationError):
                store.authenticate(bad)
        store.revoke(key.id)
        with pytest.raises(AuthenticationError, match=NO_KEY_HINT[:20]):
            store.authenticate(token)
        with pytest.raises(NotFound):
            store.revoke(key.id)
        assert store.keys() == [] and [k.id for k in store.keys(revoked=True)] == [key.id]


def test_a_gallery_made_before_the_keys_table_gains_it_with_its_first_key(tmp_path):
    db = tmp_path / "g.db"
    with Gallery(db) as gallery:  # a gallery with someone in it (an untouched new file is removed on close)
        gallery.add_embeddings("Someone", np.eye(gallery.store.dim, dtype=np.float32)[0])
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE api_keys")
    conn.commit()
    conn.close()
    with KeyStore(db) as store:
        assert store.keys() == []
        with pytest.raises(AuthenticationError):
            store.authenticate("x")
        token, _ = store.create("recognize")
        assert store.authenticate(token).role == "recognize"


def test_roles_allow_what_the_ones_below_them_do():
    admin, enroll, recognize = (ApiKey(i, role) for i, role in enumerate(("admin", "enroll", "recognize")))
    for key in (admin, enroll, recognize):
        key.require("recognize")
    enroll.require("enroll")
    admin.require("admin")
    with pytest.raises(PermissionDeniedError):
        recognize.require("enroll")
    with pytest.raises(PermissionDeniedError):
        enroll.require("admin")
    with pytest.raises(ConfigError):
        admin.require("root")


def test_a_key_limited_to_groups_sees_and_searches_only_them():
    key = ApiKey(1, "enroll", ("office", "lab"))
    assert key.search_scope(None) == ("office", "lab")
    assert key.search_scope("lab") == "lab"
    with pytest.raises(NotFound):
        key.search_scope("home")
    with pytest.raises(NotFound):
        key.check_person("Ada", ("home",))
    key.check_person("Ada", ("home", "lab"))
    assert key.enroll_groups(()) == ("office", "lab")
    with pytest.raises(PermissionDeniedError):
        key.enroll_groups(["home"])
    whole = ApiKey(2, "admin")
    assert whole.search_scope(None) is None and whole.enroll_groups(()) == ()
    whole.check_person("Ada", ())


def test_the_keys_commands(tmp_path):
    db = str(tmp_path / "g.db")
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "--role", "recognize", "--group", "office", "--name", "door", "--db", db, "--json"])
    assert made.exit_code == 0, made.output
    key = json.loads(made.stdout)
    assert key["role"] == "recognize" and key["groups"] == ["office"] and key["key"].startswith("fsk_")
    plain = runner.invoke(app, ["keys", "create", "--role", "admin", "--db", db])
    assert plain.exit_code == 0 and plain.stdout.strip().startswith("fsk_")
    listed = json.loads(runner.invoke(app, ["keys", "list", "--db", db, "--json"]).stdout)
    assert [k["role"] for k in listed] == ["recognize", "admin"] and all("key" not in k for k in listed)
    assert runner.invoke(app, ["keys", "revoke", str(key["id"]), "--db", db]).exit_code == 0
    assert [k["role"] for k in json.loads(runner.invoke(app, ["keys", "list", "--db", db, "--json"]).stdout)] == ["admin"]
    again = runner.invoke(app, ["keys", "revoke", str(key["id"]), "--db", db])
    assert again.exit_code == 2 and "no active key" in again.stderr


def test_a_file_that_is_not_a_gallery_is_left_untouched(tmp_path):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    with pytest.raises(GalleryError):
        KeyStore(other, create=True)
    assert other.read_bytes() == before
