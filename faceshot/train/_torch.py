"""The one place the train package checks for its optional dependencies."""

from __future__ import annotations

from faceshot.errors import MissingExtraError

HINT = "pip install 'faceshot[train]' -c constraints.txt (torch's CPU build, pinned so that no CUDA build is pulled)"


def require() -> None:
    """Raise :class:`MissingExtraError` naming the extra when torch or pytorch-metric-learning is missing."""
    try:
        import pytorch_metric_learning  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(f"training needs the train extra ({exc}); install it with: {HINT}") from None
