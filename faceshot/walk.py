"""One way to read a folder of photos, for every command that reads folders.

``enroll-dir``, ``cluster``, ``calibrate``, ``eval`` and ``train`` all find their files here, so
they agree on what a folder holds:

- folders are searched at any depth; symbolic links to files and folders are followed (a folder
  reached twice through links is read once);
- hidden files and folders (names starting with ``.``, such as ``.DS_Store`` or macOS's ``._``
  copies) are left out without comment;
- a file whose ending is not an image format faceshot reads (:data:`faceshot.io.IMAGE_SUFFIXES`)
  is *skipped*, and listed as such, not counted as a failure;
- a broken symbolic link or an unreadable folder is listed as *broken*;
- a folder with no image file at all raises :class:`~faceshot.errors.ImageNotFoundError` (every
  command then exits with the same code, 2).

How files map to people or classes is each command's own, built on :func:`walk_images`:

====================  ============================================  =======================
command               layout                                         label
====================  ============================================  =======================
``enroll-dir``, eval  ``ROOT/person/…/photo.jpg``                   top folder = person
``train``             ``ROOT/…/class/image.png``                    folder holding images
``cluster``           any                                           none
====================  ============================================  =======================

``enroll-dir --runner ray`` also reads a folder given as an fsspec URL (``s3://bucket/people``,
``file:///data/people``): :func:`by_top_folder_url` lists it with the same rules (no links to
follow there).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from faceshot.errors import ImageNotFoundError, MissingExtraError
from faceshot.io import IMAGE_SUFFIXES

__all__ = ["Walked", "SkippedFile", "walk_images", "by_top_folder", "by_leaf_folder", "is_url", "by_top_folder_url"]


@dataclass(frozen=True)
class SkippedFile:
    """A file left out, and why: ``kind`` is ``"skipped"`` (not an image file) or ``"broken"``."""

    path: str
    kind: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "kind": self.kind, "reason": self.reason}


@dataclass(frozen=True)
class Walked:
    """The image files found below a folder (sorted), and the files left out with the reason."""

    root: Path
    files: tuple[Path, ...]
    skipped: tuple[SkippedFile, ...] = ()

    @property
    def broken(self) -> tuple[SkippedFile, ...]:
        return tuple(item for item in self.skipped if item.kind == "broken")


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def walk_images(root: str | os.PathLike[str], *, require: bool = True) -> Walked:
    """Every image file below ``root`` (any depth, links followed, hidden names left out), sorted.

    Raises :class:`~faceshot.errors.ImageNotFoundError` when ``root`` is not a folder, or (with
    ``require``) when it holds no image file.
    """
    top = Path(root)
    if not top.is_dir():
        raise ImageNotFoundError(f"{top}: no such folder")
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    seen: set[str] = set()

    def unreadable(error: OSError) -> None:
        skipped.append(SkippedFile(str(error.filename), "broken", f"{error.filename}: cannot be read ({error.strerror})"))

    for folder, folders, names in os.walk(top, followlinks=True, onerror=unreadable):
        real = os.path.realpath(folder)
        if real in seen:  # reached again through a link: read once, and never loop
            folders[:] = []
            continue
        seen.add(real)
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            if path.is_symlink() and not path.exists():
                skipped.append(SkippedFile(str(path), "broken", f"{path}: a link to {os.readlink(path)}, which does not exist"))
            elif not _is_image(path):
                ending = path.suffix or "no ending"
                skipped.append(SkippedFile(str(path), "skipped", f"{path}: not an image file ({ending})"))
            else:
                files.append(path)
        for name in folders:
            path = Path(folder) / name
            if path.is_symlink() and not path.exists():
                skipped.append(SkippedFile(str(path), "broken", f"{path}: a link to {os.readlink(path)}, which does not exist"))
    if require and not files:
        raise ImageNotFoundError(
            f"{top}: no image files in this folder or below it (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return Walked(top, tuple(sorted(files)), tuple(skipped))


def by_top_folder(root: str | os.PathLike[str]) -> tuple[dict[str, list[Path]], Walked]:
    """``{person: [photos]}`` for ``ROOT/person/…/photo``: the top folder names the person.

    Image files directly in ``ROOT`` belong to nobody: they are listed as skipped. Raises
    :class:`~faceshot.errors.ImageNotFoundError` when no person's folder holds an image file.
    """
    walked = walk_images(root, require=False)
    people: dict[str, list[Path]] = {}
    skipped = list(walked.skipped)
    for path in walked.files:
        parts = path.relative_to(walked.root).parts
        if len(parts) < 2:
            skipped.append(SkippedFile(str(path), "skipped", f"{path}: not in a person's folder (ROOT/person/photo.jpg)"))
            continue
        people.setdefault(parts[0], []).append(path)
    if not people:
        raise ImageNotFoundError(
            f"{walked.root}: no person's folder with image files; expected ROOT/person/photo.jpg"
        )
    return people, Walked(walked.root, walked.files, tuple(skipped))


def by_leaf_folder(root: str | os.PathLike[str]) -> tuple[dict[str, list[Path]], Walked]:
    """``{class: [images]}`` where a class is each folder that holds image files (``ROOT/…/class/x.png``).

    The class name is the folder's path below ``ROOT`` (``alphabet/character01``). Image files
    directly in ``ROOT`` are listed as skipped. Raises :class:`~faceshot.errors.ImageNotFoundError`
    when no folder below ``ROOT`` holds an image file.
    """
    walked = walk_images(root, require=False)
    classes: dict[str, list[Path]] = {}
    skipped = list(walked.skipped)
    for path in walked.files:
        folder = path.parent.relative_to(walked.root)
        if folder == Path("."):
            skipped.append(SkippedFile(str(path), "skipped", f"{path}: not in a class folder (ROOT/class/image.png)"))
            continue
        classes.setdefault(folder.as_posix(), []).append(path)
    if not classes:
        raise ImageNotFoundError(
            f"{walked.root}: no folder of images below it; expected ROOT/class/image.png"
        )
    return classes, Walked(walked.root, walked.files, tuple(skipped))


def is_url(text: str | os.PathLike[str]) -> bool:
    """Whether a folder is named by a URL (``scheme://…``) rather than a local path."""
    return isinstance(text, str) and "://" in text and text.split("://", 1)[0].isidentifier()


def by_top_folder_url(url: str) -> tuple[dict[str, list[str]], tuple[SkippedFile, ...]]:
    """:func:`by_top_folder` for a folder named by an fsspec URL: ``({person: [photo URLs]}, skipped)``.

    The same rules: hidden names left out, files that are not images or not in a person's folder
    listed as skipped; URLs sorted. Raises :class:`~faceshot.errors.ImageNotFoundError` when the
    folder does not exist or holds no person's folder with an image file, and
    :class:`~faceshot.errors.MissingExtraError` without fsspec (the ``ray`` extra).
    """
    try:
        import fsspec
    except ImportError as exc:
        raise MissingExtraError(f"reading folders by URL needs fsspec: pip install 'faceshot[ray]' ({exc})") from None
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # an unknown protocol, or its package missing
        raise ImageNotFoundError(f"{url}: cannot be read ({exc})") from None
    root = root.rstrip("/")
    try:
        if not fs.isdir(root):
            raise ImageNotFoundError(f"{url}: no such folder")
        names = sorted(fs.find(root, withdirs=False, detail=False))
    except OSError as exc:
        raise ImageNotFoundError(f"{url}: cannot be read ({exc})") from None
    people: dict[str, list[str]] = {}
    skipped: list[SkippedFile] = []
    for name in names:
        parts = name[len(root):].strip("/").split("/")
        if any(part.startswith(".") for part in parts):
            continue
        location = fs.unstrip_protocol(name)
        if not _is_image(Path(parts[-1])):
            ending = Path(parts[-1]).suffix or "no ending"
            skipped.append(SkippedFile(location, "skipped", f"{location}: not an image file ({ending})"))
        elif len(parts) < 2:
            skipped.append(SkippedFile(location, "skipped", f"{location}: not in a person's folder (ROOT/person/photo.jpg)"))
        else:
            people.setdefault(parts[0], []).append(location)
    if not people:
        raise ImageNotFoundError(f"{url}: no person's folder with image files; expected ROOT/person/photo.jpg")
    return people, tuple(skipped)
