"""Shared fixtures: package-shipped photos (fetched by `make test-images`) and ../shared/datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("FACESHOT_DATASETS", REPO.parent / "shared" / "datasets"))
TEST_IMAGES = Path(os.environ.get("FACESHOT_TEST_IMAGES", REPO / ".cache" / "test_images"))


def _missing(what: str, how: str) -> None:
    # In CI a missing fixture is a broken install step, not a reason to skip.
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing: {how}")
    pytest.skip(f"{what} is missing: {how}")


@pytest.fixture(scope="session")
def images() -> Path:
    """obama.jpg, obama2.jpg, obama3.jpg, biden.jpg from the face_recognition 1.3.0 sdist."""
    if not (TEST_IMAGES / "obama.jpg").is_file():
        _missing(f"package-shipped test photos ({TEST_IMAGES})", "run `make test-images`")
    return TEST_IMAGES


@pytest.fixture(scope="session")
def datasets() -> Path:
    """The read-only evaluation data beside the project (../shared/datasets)."""
    if not (DATASETS / "README.md").is_file():
        pytest.skip(f"{DATASETS} is absent: these tests need the shared evaluation datasets")
    return DATASETS


@pytest.fixture(scope="session")
def engine():
    import faceshot

    return faceshot.engine()
