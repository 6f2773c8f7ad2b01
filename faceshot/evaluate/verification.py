"""The LFW verification protocol on scored pairs: 10-fold accuracy, ROC, EER, TAR at fixed FAR.

Scores follow faceshot's convention (higher = more alike). A pair that could not be scored (no
face in one of its images) is given the lowest possible score, i.e. it is rejected: it counts as
a false reject when it is a genuine pair and a correct reject when it is not. Nothing is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from faceshot.evaluate.metrics import accuracy, best_threshold

__all__ = ["Roc", "roc", "FoldResult", "VerificationReport", "kfold", "UNSCORED"]

#: The score given to a pair that could not be scored: below any cosine similarity.
UNSCORED = -2.0


@dataclass(frozen=True)
class Roc:
    """Receiver operating characteristic: for each threshold, the FAR and TAR it gives."""

    thresholds: np.ndarray
    far: np.ndarray
    tar: np.ndarray

    @property
    def auc(self) -> float:
        """Area under the curve (1.0: perfect separation, 0.5: chance)."""
        order = np.lexsort((self.tar, self.far))  # by FAR, then TAR: vertical steps go up
        far, tar = self.far[order], self.tar[order]
        return float(np.sum(np.diff(far) * (tar[1:] + tar[:-1]) / 2))

    @property
    def eer(self) -> float:
        """Equal error rate: where the false-accept rate equals the false-reject rate."""
        frr = 1.0 - self.tar
        i = int(np.argmin(np.abs(self.far - frr)))
        return float((self.far[i] + frr[i]) / 2)

    def tar_at(self, far: float) -> float:
        """The true-accept rate at the lowest threshold whose FAR is at most ``far``."""
        allowed = self.far <= far
        return float(self.tar[allowed].max()) if allowed.any() else 0.0


def roc(scores: np.ndarray, same: np.ndarray) -> Roc:
    """The ROC over every distinct score as a threshold (plus one above them all)."""
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    thresholds = np.concatenate([np.unique(scores), [np.inf]])
    genuine, impostor = np.sort(scores[same]), np.sort(scores[~same])
    # Accepted = score >= threshold: count from the right with searchsorted.
    tar = 1.0 - np.searchsorted(genuine, thresholds, side="left") / max(len(genuine), 1)
    far = 1.0 - np.searchsorted(impostor, thresholds, side="left") / max(len(impostor), 1)
    return Roc(thresholds, far, tar)


@dataclass(frozen=True)
class FoldResult:
    fold: int
    threshold: float
    accuracy: float


@dataclass(frozen=True)
class VerificationReport:
    """What the protocol measured; ``to_dict`` is what ``eval verify --json`` prints."""

    folds: tuple[FoldResult, ...]
    roc: Roc
    pairs: int
    unscored_pairs: int
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def accuracy_mean(self) -> float:
        return float(np.mean([f.accuracy for f in self.folds]))

    @property
    def accuracy_std(self) -> float:
        return float(np.std([f.accuracy for f in self.folds]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "unscored_pairs": self.unscored_pairs,
            "accuracy_mean": round(self.accuracy_mean, 5),
            "accuracy_std": round(self.accuracy_std, 5),
            "folds": [
                {"fold": f.fold, "threshold": round(f.threshold, 6), "accuracy": round(f.accuracy, 5)} for f in self.folds
            ],
            "roc_auc": round(self.roc.auc, 6),
            "eer": round(self.roc.eer, 5),
            "tar_at_far_1e-2": round(self.roc.tar_at(1e-2), 5),
            "tar_at_far_1e-3": round(self.roc.tar_at(1e-3), 5),
            "settings": self.settings,
        }


def kfold(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> tuple[FoldResult, ...]:
    """For each fold: the best-accuracy threshold on the other folds, and the accuracy it gets on this one."""
    scores, same, folds = np.asarray(scores), np.asarray(same, dtype=bool), np.asarray(folds)
    results = []
    for fold in np.unique(folds):
        test = folds == fold
        threshold = best_threshold(scores[~test], same[~test]) if (~test).any() else best_threshold(scores, same)
        results.append(FoldResult(int(fold), threshold, accuracy(scores[test], same[test], threshold)))
    return tuple(results)
