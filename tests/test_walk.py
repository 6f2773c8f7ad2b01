"""The one folder walker every folder-reading command uses (faceshot.walk)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from faceshot.errors import ImageNotFoundError
from faceshot.walk import by_leaf_folder, by_top_folder, walk_images


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """ROOT/{ada/{a.jpg, 2019/b.PNG, notes.txt, .DS_Store}, bob/c.jpeg, .hidden/d.jpg, stray.jpg,
    link-to-ada -> ada, dead.jpg -> nowhere, ada/loop -> ROOT}"""
    root = tmp_path / "root"
    (root / "ada" / "2019").mkdir(parents=True)
    (root / "bob").mkdir()
    (root / ".hidden").mkdir()
    for name in ("ada/a.jpg", "ada/2019/b.PNG", "bob/c.jpeg", ".hidden/d.jpg", "stray.jpg", "ada/.DS_Store"):
        (root / name).write_bytes(b"x")
    (root / "ada" / "notes.txt").write_text("no photo")
    (root / "empty").mkdir()
    os.symlink(root / "ada", root / "link-to-ada")
    os.symlink(root / "nowhere.jpg", root / "dead.jpg")
    os.symlink(root, root / "ada" / "loop")
    return root


def names(paths) -> list[str]:
    return sorted(Path(p).name for p in paths)


def test_every_image_below_once_with_what_was_left_out(tree):
    walked = walk_images(tree)
    # ada's files are reached twice (directly and through link-to-ada) and through the loop: read once.
    assert names(walked.files) == ["a.jpg", "b.PNG", "c.jpeg", "stray.jpg"]
    assert {Path(s.path).name: s.kind for s in walked.skipped} == {"notes.txt": "skipped", "dead.jpg": "broken"}
    assert "not an image file (.txt)" in next(s.reason for s in walked.skipped if s.kind == "skipped")
    assert "does not exist" in walked.broken[0].reason


def test_top_folder_names_the_person_and_leaf_folder_the_class(tree):
    people, walked = by_top_folder(tree)
    assert {person: names(photos) for person, photos in people.items()} == {
        "ada": ["a.jpg", "b.PNG"], "bob": ["c.jpeg"]
    }
    assert "stray.jpg" in names(s.path for s in walked.skipped if "person's folder" in s.reason)
    classes, _ = by_leaf_folder(tree)
    assert {name: names(files) for name, files in classes.items()} == {
        "ada": ["a.jpg"], "ada/2019": ["b.PNG"], "bob": ["c.jpeg"]
    }


def test_missing_and_empty_folders_are_the_same_error(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "only-text").mkdir()
    (tmp_path / "only-text" / "a.txt").write_text("x")
    for folder in ("absent", "empty", "only-text"):
        for walk in (walk_images, by_top_folder, by_leaf_folder):
            with pytest.raises(ImageNotFoundError):
                walk(tmp_path / folder)
