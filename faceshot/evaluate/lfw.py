"""LFW pairs files: View 1 (``pairsDevTrain.txt``, ``pairsDevTest.txt``) and View 2 (``pairs.txt``).

Format: a header line (``N`` for View 1, ``FOLDS N`` for View 2), then per fold ``N`` same-person
lines ``name i j`` followed by ``N`` different-person lines ``name1 i name2 j``. Images live at
``ROOT/name/name_0001.jpg``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faceshot.errors import ConfigError

__all__ = ["Pair", "read_pairs", "image_path"]


@dataclass(frozen=True)
class Pair:
    a: Path
    b: Path
    same: bool
    fold: int
    line: int


def image_path(root: Path, name: str, number: str) -> Path:
    return root / name / f"{name}_{int(number):04d}.jpg"


def read_pairs(pairs_file: str | Path, root: str | Path, *, check_files: bool = True) -> list[Pair]:
    """Every pair of an LFW pairs file; malformed lines and missing images raise, naming the line."""
    pairs_file, root = Path(pairs_file), Path(root)
    try:
        lines = pairs_file.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"{pairs_file}: cannot be read ({exc.strerror or exc})") from None
    if not lines:
        raise ConfigError(f"{pairs_file}: empty pairs file")
    header = lines[0].split()
    try:
        folds, per_fold = (1, int(header[0])) if len(header) == 1 else (int(header[0]), int(header[1]))
    except (ValueError, IndexError):
        raise ConfigError(f"{pairs_file}:1: expected 'N' or 'FOLDS N', got {lines[0]!r}") from None
    body = [(number, line) for number, line in enumerate(lines[1:], start=2) if line.strip()]
    if len(body) != folds * 2 * per_fold:
        raise ConfigError(
            f"{pairs_file}: the header promises {folds} fold(s) of {per_fold} same + {per_fold} different "
            f"pairs ({folds * 2 * per_fold} lines), the file has {len(body)}"
        )
    pairs = []
    for index, (number, line) in enumerate(body):
        fold, within = divmod(index, 2 * per_fold)
        same = within < per_fold
        fields = line.split()
        try:
            if same and len(fields) == 3:
                a, b = image_path(root, fields[0], fields[1]), image_path(root, fields[0], fields[2])
            elif not same and len(fields) == 4:
                a, b = image_path(root, fields[0], fields[1]), image_path(root, fields[2], fields[3])
            else:
                kind = "'name i j'" if same else "'name1 i name2 j'"
                raise ConfigError(f"{pairs_file}:{number}: expected a {kind} line, got {line!r}")
        except ConfigError:  # a ValueError too, but already the right message
            raise
        except ValueError:
            raise ConfigError(f"{pairs_file}:{number}: image numbers must be integers, got {line!r}") from None
        if check_files:
            for path in (a, b):
                if not path.is_file():
                    raise ConfigError(f"{pairs_file}:{number}: image {path} does not exist")
        pairs.append(Pair(a, b, same, fold, number))
    return pairs
