"""Splits and positions: the stratified train/valid split, the ``valid_pct`` and ``seed``
checks, and the positions a subset is taken at.

>>> stratified_split([0, 0, 0, 0, 1, 1, 1, 1], 0.25, 0, ["a", "b"])[1]   # one of each class
[2, 7]
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .errors import DataError

__all__ = ["check_seed", "check_valid_pct", "positions", "stratified_split"]


def check_valid_pct(valid_pct: float) -> float:
    """``valid_pct`` as a float in [0, 1); a DataError naming the fix else.

    >>> check_valid_pct(0.2)
    0.2
    """
    try:
        pct = float(valid_pct)
    except (TypeError, ValueError):
        raise DataError(f"valid_pct must be a number in [0, 1); got {valid_pct!r}.") from None
    if not 0.0 <= pct < 1.0 or math.isnan(pct):
        raise DataError(
            f"valid_pct={valid_pct!r} is outside [0, 1); use e.g. 0.2 to hold out 20% of each "
            "class for validation (0 for no validation set)."
        )
    return pct


def stratified_split(
    labels: Sequence[int], valid_pct: float, seed: int, classes: Sequence[str],
    noun: str = "images",
) -> tuple[list[int], list[int]]:
    """Indices of train and valid; deterministic per seed; every class with >= 2 items lands
    in both splits when valid_pct > 0 (``noun`` names the items in the error: "texts").

    >>> stratified_split([0, 0, 0, 1, 1, 1], 0.34, 0, ["a", "b"])
    ([0, 1, 3, 4], [2, 5])
    """
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(int(y), []).append(i)
    train: list[int] = []
    valid: list[int] = []
    for y in sorted(by_class):
        idx = np.array(by_class[y])
        idx = idx[rng.permutation(len(idx))]
        n = len(idx)
        n_valid = int(round(n * valid_pct)) if valid_pct > 0 else 0
        if valid_pct > 0 and n >= 2:
            n_valid = max(n_valid, 1)
            if n_valid >= n:
                raise DataError(
                    f"valid_pct={valid_pct} would put all {n} {noun} of class "
                    f"{classes[y]!r} in validation and none in training; use a smaller "
                    f"valid_pct or add {noun} to that class."
                )
        elif n < 2:
            n_valid = 0
        valid.extend(int(i) for i in idx[:n_valid])
        train.extend(int(i) for i in idx[n_valid:])
    return sorted(train), sorted(valid)


def check_seed(seed: Any) -> int:
    """``seed`` as an int >= 0 (what numpy and torch generators accept); a DataError else.

    >>> check_seed(0)
    0
    """
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise DataError(
            f"seed must be a whole number >= 0, e.g. seed=0; got {seed!r} "
            f"({type(seed).__name__})."
        )
    if not 0 <= int(seed) < 2**63:
        raise DataError(f"seed must be in 0..2**63-1, e.g. seed=0; got {seed}.")
    return int(seed)


def positions(indices: Any, n: int, name: str, items: str) -> list[int]:
    """``indices`` (list, range, 1-D int array or tensor) as sorted unique positions in [0, n);
    ``name`` and ``items`` name the argument and the list it indexes in the DataError.

    >>> positions([3, 0, 2], 5, "train_indices", "train_items")
    [0, 2, 3]
    """
    if isinstance(indices, torch.Tensor):
        indices = indices.detach().cpu().numpy()
    if isinstance(indices, (str, bytes)) or not hasattr(indices, "__iter__"):
        raise DataError(
            f"{name} must be a sequence of integer positions in data.{items}; got "
            f"{type(indices).__name__}."
        )
    arr = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
    if arr.size and (arr.ndim != 1 or arr.dtype.kind not in "iu"):
        raise DataError(
            f"{name} must be a 1-D sequence of integer positions in data.{items}; got "
            f"dtype {arr.dtype}, shape {arr.shape} (for a mask use np.flatnonzero(mask))."
        )
    pos = [int(i) for i in arr.tolist()]
    bad = [i for i in pos if not 0 <= i < n]
    if bad:
        raise DataError(
            f"{name} has positions {bad[:5]} outside data.{items}, which holds {n} images; "
            f"use positions 0..{n - 1}."
        )
    dup = sorted({i for i, c in Counter(pos).items() if c > 1})
    if dup:
        raise DataError(
            f"{name} repeats positions {dup[:5]}; pass each image once (e.g. sorted(set(...)))."
        )
    return sorted(pos)

