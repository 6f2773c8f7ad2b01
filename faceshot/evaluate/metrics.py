"""Threshold selection and error rates on genuine / impostor scores (higher score = more alike)."""

from __future__ import annotations

import numpy as np

__all__ = ["best_threshold", "accuracy", "error_rates", "far_table"]


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold with the highest accuracy on these pairs (midway between neighbouring scores)."""
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    order = np.argsort(scores)
    s, y = scores[order], same[order]
    # Threshold just above position i: pairs 0..i rejected, i+1.. accepted.
    rejected_impostors = np.concatenate([[0], np.cumsum(~y)])
    accepted_genuine = y.sum() - np.concatenate([[0], np.cumsum(y)])
    correct = rejected_impostors + accepted_genuine
    best = int(np.argmax(correct))
    if best == 0:
        return float(s[0] - 1e-6)
    if best == len(s):
        return float(s[-1] + 1e-6)
    return float((s[best - 1] + s[best]) / 2)


def accuracy(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    return float(np.mean((np.asarray(scores) >= threshold) == np.asarray(same, dtype=bool)))


def error_rates(scores: np.ndarray, same: np.ndarray, threshold: float) -> tuple[float, float]:
    """(false-accept rate over impostor pairs, false-reject rate over genuine pairs)."""
    scores, same = np.asarray(scores), np.asarray(same, dtype=bool)
    far = float(np.mean(scores[~same] >= threshold)) if (~same).any() else float("nan")
    frr = float(np.mean(scores[same] < threshold)) if same.any() else float("nan")
    return far, frr


def far_table(impostor_scores: np.ndarray, fars: np.ndarray | None = None) -> list[tuple[float, float]]:
    """``(threshold, far)`` rows, thresholds ascending: the score that only ``far`` of impostors reach."""
    scores = np.sort(np.asarray(impostor_scores, dtype=np.float64))
    if fars is None:
        lowest = max(10.0 / len(scores), 1e-6)  # below ~10 impostors over the line the figure is noise
        fars = np.logspace(np.log10(0.5), np.log10(lowest), 40)
    rows = []
    for far in fars:
        threshold = float(np.quantile(scores, 1.0 - far))
        rows.append((round(threshold, 6), float(f"{far:.4g}")))
    return sorted(rows)
