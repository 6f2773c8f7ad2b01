"""The CLI shows names, paths and reasons exactly as typed: no rich markup, no emoji codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest


def faceshot(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "faceshot", *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd
    )


@pytest.fixture(scope="module")
def gallery(images, tmp_path_factory):
    """A gallery with one person named ``[test]`` enrolled from ``holiday [2019].jpg``."""
    folder = tmp_path_factory.mktemp("text")
    photo = folder / "holiday [2019].jpg"
    shutil.copy(images / "obama.jpg", photo)
    run = faceshot("enroll", "[test]", photo, "--db", folder / "g.db", cwd=folder)
    assert run.returncode == 0, run.stderr
    assert "enrolled [test]:" in run.stdout
    return folder


def test_names_and_paths_in_brackets_are_printed_literally(gallery):
    listed = faceshot("people", "list", "--db", "g.db", cwd=gallery)
    assert listed.returncode == 0, listed.stderr
    assert "[test]" in listed.stdout

    found = faceshot("identify", "holiday [2019].jpg", "--db", "g.db", cwd=gallery)
    assert found.returncode == 0, found.stderr
    assert "holiday [2019].jpg" in found.stdout  # the table's title
    assert "[test]" in found.stdout

    as_json = faceshot("identify", "holiday [2019].jpg", "--db", "g.db", "--json", cwd=gallery)
    data = json.loads(as_json.stdout)
    assert data["image"] == "holiday [2019].jpg" and data["faces"][0]["identity"] == "[test]"


def test_reasons_quote_names_and_paths_literally(gallery):
    missing = faceshot("people", "show", "[nobody] :smile:", "--db", "g.db", cwd=gallery)
    assert missing.returncode == 2
    assert "[nobody] :smile:" in missing.stderr and "😄" not in missing.stderr
    assert missing.stderr.startswith("error: ")

    no_file = faceshot("verify", "holiday [2020].jpg", "holiday [2019].jpg", cwd=gallery)
    assert no_file.returncode == 2
    assert "holiday [2020].jpg: no such file" in no_file.stderr


def test_rename_prints_both_names_literally(gallery):
    renamed = faceshot("people", "rename", "[test]", "[b]bold[red] :cat:", "--db", "g.db", cwd=gallery)
    assert renamed.returncode == 0, renamed.stderr
    assert "renamed [test] to [b]bold[red] :cat:" in renamed.stdout
    back = faceshot("people", "rename", "[b]bold[red] :cat:", "[test]", "--db", "g.db", cwd=gallery)
    assert back.returncode == 0, back.stderr
