"""Per-gallery settings, stored in the gallery itself so every process and user sees the same ones."""

from __future__ import annotations

from typing import Any

from faceshot.errors import ConfigError
from faceshot.gallery.ranking import Aggregation, check_aggregation
from faceshot.gallery.store import Store

__all__ = ["GallerySettings"]


class GallerySettings:
    """Key/value settings of one gallery (JSON values), with typed access to the ones faceshot reads.

    ``threshold``: a fixed identification threshold used when ``identify`` is given none (``None``:
    the FPIR-1% threshold for the faces searched, from the gallery's FAR table). ``calibration``
    (read through :attr:`Gallery.calibration`): the FAR table ``faceshot calibrate --db`` saved. ``aggregation``: how a person's several faces are scored
    (``"max"`` or ``"mean"``; ``None``: ``"mean"``). Reserved keys (``embedder``, ``dim``,
    ``schema``, ``generation``) can be read but not set.
    """

    THRESHOLD = "identify.threshold"
    AGGREGATION = "identify.aggregation"

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, key: str, default: Any = None) -> Any:
        value = self._store.get_setting(key)
        return default if value is None else value

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` (durable when this returns); ``None`` removes the key."""
        self._store.set_setting(key, value)

    @property
    def threshold(self) -> float | None:
        value = self.get(self.THRESHOLD)
        return None if value is None else float(value)

    @threshold.setter
    def threshold(self, value: float | None) -> None:
        if value is not None:
            value = float(value)
            if not -1.0 <= value <= 1.0:
                raise ConfigError(f"a threshold is a cosine similarity between -1 and 1, got {value}")
        self.set(self.THRESHOLD, value)

    @property
    def aggregation(self) -> Aggregation | None:
        value = self.get(self.AGGREGATION)
        return None if value is None else check_aggregation(value)

    @aggregation.setter
    def aggregation(self, value: Aggregation | None) -> None:
        self.set(self.AGGREGATION, None if value is None else check_aggregation(value))
