"""Calibration: does a model's confidence match how often it is right?

The **expected calibration error** (ECE; Naeini et al. 2015, Guo et al. 2017, "On Calibration
of Modern Neural Networks") sorts the predictions by confidence (the top class's probability)
into ``bins`` equal-width bins ``(lo, hi]`` over 0..1 and averages, weighted by how many
predictions fall in each bin, the gap between the bin's accuracy and its mean confidence:
``ECE = sum_b n_b / N * |accuracy_b - confidence_b|``. 0 is perfectly calibrated. The
**maximum calibration error** (MCE) is the largest of those gaps over non-empty bins. The
per-bin table is a reliability diagram's data: accuracy against confidence, the diagonal being
perfect calibration.

>>> import numpy as np
>>> from tlwidgets.experiments import calibration
>>> cal = calibration(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]), bins=10)
>>> round(cal.ece, 3), int(cal.bins["count"].sum())
(0.45, 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataError

__all__ = ["Calibration", "calibration", "expected_calibration_error"]


@dataclass
class Calibration:
    """ECE, MCE and the reliability table of one set of predictions.

    ``bins``: one row per bin, columns ``lower``, ``upper``, ``confidence`` (mean top-class
    probability in the bin, NaN when empty), ``accuracy`` (fraction right, NaN when empty),
    ``count``, ``gap`` (``accuracy - confidence``: negative = overconfident).
    """

    ece: float
    mce: float
    accuracy: float
    confidence: float
    bins: pd.DataFrame

    def __repr__(self) -> str:
        return (f"Calibration(ece={self.ece:.4f}, mce={self.mce:.4f}, "
                f"accuracy={self.accuracy:.4f}, mean confidence={self.confidence:.4f}, "
                f"{len(self.bins)} bins)")


def _probs_targets(source: Any, targets: Any) -> tuple[np.ndarray, np.ndarray]:
    if targets is None:
        if hasattr(source, "evaluate") and not hasattr(source, "probs"):
            source = source.evaluate()  # a Trainer
        if not (hasattr(source, "probs") and hasattr(source, "targets")):
            raise ConfigError(
                "calibration() needs class probabilities and true labels: pass an Evaluation "
                "(trainer.evaluate()), a Trainer, or calibration(probs, targets)."
            )
        probs, targets = source.probs, source.targets
    else:
        probs = source
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets)
    if probs.ndim != 2 or targets.ndim != 1 or len(probs) != len(targets):
        raise DataError(
            f"probs must be (N, classes) and targets (N,); got shapes {probs.shape} and "
            f"{targets.shape}."
        )
    if len(targets) == 0:
        raise DataError("calibration() got no predictions (N = 0); evaluate on a non-empty set.")
    if np.any(probs < -1e-6) or np.any(np.abs(probs.sum(1) - 1) > 1e-3):
        raise DataError(
            "probs must be probabilities (each row >= 0 and summing to 1); apply a softmax to "
            "logits first, e.g. torch.softmax(logits, 1)."
        )
    return probs, targets.astype(np.int64)


def calibration(probs: Any, targets: Any = None, bins: int = 15) -> Calibration:
    """ECE, MCE and the reliability table of predictions.

    ``probs`` is an (N, classes) array of probabilities with ``targets`` the N true class
    indices; or an :class:`~tlwidgets.Evaluation` (``trainer.evaluate()``) or a Trainer, with
    ``targets`` left out. ``bins``: number of equal-width confidence bins (15 as in Guo et al.).

    >>> import tlwidgets as tlw
    >>> cal = tlw.experiments.calibration(trainer.evaluate())     # doctest: +SKIP
    >>> cal.ece, cal.bins[["confidence", "accuracy", "count"]]     # doctest: +SKIP
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ConfigError(f"bins must be a whole number >= 1 (e.g. bins=15); got {bins!r}.")
    p, y = _probs_targets(probs, targets)
    conf = p.max(1)
    right = (p.argmax(1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    # bin b holds (edges[b], edges[b+1]]; a confidence of exactly 0 cannot happen (max of a
    # distribution is >= 1/classes) but goes to the first bin
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, int(bins) - 1)
    count = np.bincount(idx, minlength=bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=bins) / count
        acc = np.bincount(idx, weights=right, minlength=bins) / count
    gap = acc - mean_conf
    filled = count > 0
    ece = float(np.sum(count[filled] / len(y) * np.abs(gap[filled])))
    mce = float(np.max(np.abs(gap[filled])))
    table = pd.DataFrame({
        "lower": edges[:-1], "upper": edges[1:], "confidence": mean_conf, "accuracy": acc,
        "count": count, "gap": gap,
    })
    return Calibration(ece=ece, mce=mce, accuracy=float(right.mean()),
                       confidence=float(conf.mean()), bins=table)


def expected_calibration_error(probs: Any, targets: Any = None, bins: int = 15) -> float:
    """Just the ECE of :func:`calibration`.

    >>> import numpy as np
    >>> expected_calibration_error(np.array([[1.0, 0.0]]), np.array([0]))
    0.0
    """
    return calibration(probs, targets, bins).ece
