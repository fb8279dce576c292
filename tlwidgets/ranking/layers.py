"""Which layers to reuse: the transferability scores after each layer group of one backbone.

The common advice is to reuse every layer but the last few. :func:`rank_layers` makes it
measurable: it pools (global average) the output of each layer group of
``tlw.layer_groups(model)`` on a sample of the user's images, scores each with LogME and k-NN
accuracy (held out on the validation sample, as :func:`~tlwidgets.rank_models` does), and
suggests a freeze point: the group whose output ranks best (``rank_order``: by k-NN accuracy,
ties broken by LogME) is the last one worth keeping frozen, so ``tlw.freeze_to(model, suggested)``
trains everything after it.
The last group before the head is scored on the head's actual input (timm's pre-logits
features), so its row is what head-only training sees.

>>> import tlwidgets as tlw
>>> model = tlw.create_model("tf_efficientnet_lite0", num_classes=4)       # doctest: +SKIP
>>> df = tlw.rank_layers(model, tlw.sample_data(img_size=128))            # doctest: +SKIP
>>> tlw.freeze_to(model, df.attrs["suggested_freeze_to"])                 # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from ..errors import ConfigError
from .features import (
    backbone_features,
    check_data,
    load_for_features,
    stratified_sample,
    valid_sample,
)
from .models import SCORES, head_classes_of, knn_scores, rank_order
from .progress import Progress
from .scores import logme

__all__ = ["rank_layers"]


def rank_layers(
    model: Any,
    data: Any,
    per_class: int | None = 50,
    *,
    k: int = 5,
    by: str = "knn_accuracy",
    fine: bool = False,
    seed: int = 0,
    batch_size: int = 64,
    progress: Any = True,
    cancel: Any = None,
) -> pd.DataFrame:
    """LogME and k-NN accuracy of the pooled output of each layer group of ``model``.

    ``model``: a model (yours, frozen or not: it runs in eval mode and is left as it was) or a
    catalog name. Groups are ``tlw.layer_groups(model, fine=fine)`` without the head. One
    forward pass over at most ``per_class`` training images per class, and one over as many
    validation images (when there is a validation split).

    Columns: ``group`` (index, as ``layer_groups`` numbers them), ``name``, ``feature_dim``,
    ``logme``, ``knn_accuracy`` (held out, or leave-one-out without a validation split:
    ``attrs["knn"]``), ``knn_loo``, ``freeze_to`` (the ``n`` of ``tlw.freeze_to(model, n)``
    that keeps this group and every earlier one frozen and trains the rest), ``rank`` (as
    ``rank_models``' column), ``suggested`` (True on the rank-1 row; the earliest group if
    two tie on both scores). ``df.attrs["suggested_freeze_to"]`` is that row's ``freeze_to``;
    ``attrs["seconds"]`` the time taken. Raises :class:`~tlwidgets.Cancelled` when cancelled.

    >>> import tlwidgets as tlw
    >>> df = tlw.rank_layers("tf_efficientnet_lite0", tlw.sample_data())   # doctest: +SKIP
    >>> df[["group", "name", "logme", "knn_accuracy", "suggested"]]        # doctest: +SKIP
    """
    from ..freeze import layer_groups

    if by not in SCORES:
        raise ConfigError(f"by must be one of {', '.join(map(repr, SCORES))}; got {by!r}.")
    labels = check_data(data, "train")
    idx = stratified_sample(labels, per_class, seed)
    vidx = valid_sample(data, per_class, seed)
    start = time.perf_counter()
    if isinstance(model, str):
        model = load_for_features(model, head_classes_of(model, len(data.classes)))
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"model must be a torch module or a catalog name; got {type(model).__name__}."
        )
    groups = layer_groups(model, fine=fine)
    body = groups[:-1] if len(groups) > 1 and groups[-1].name == "head" else groups
    if not body:
        raise ConfigError("The model has no layer groups before its head to score.")
    layers = [(g.name, g.paths) for g in body[:-1]]
    total = len(idx) + (0 if vidx is None else len(vidx))
    with Progress(total, progress, cancel, desc="ranking layers") as bar:
        out = backbone_features(
            model, data, idx, layers=layers, batch_size=batch_size, progress=bar,
            label="layers",
        )
        val = None if vidx is None else backbone_features(
            model, data, vidx, split="valid", layers=layers, batch_size=batch_size,
            progress=bar, label="layers",
        )
    rows = []
    for g in body:
        last = g is body[-1]
        feats = out.features if last else out.layers.get(g.name)
        vfeats = None if val is None else (val.features if last else val.layers.get(g.name))
        row: dict[str, Any] = {"group": g.index, "name": g.name, "freeze_to": g.index + 1}
        if feats is None:  # the group's modules never ran in the forward pass
            row |= {"feature_dim": 0, "logme": np.nan, "knn_accuracy": np.nan, "knn_loo": np.nan}
        else:
            held, loo = knn_scores(feats, out.labels, vfeats, None if val is None else val.labels, k)
            row |= {
                "feature_dim": int(feats.shape[1]),
                "logme": logme(feats, out.labels),
                "knn_accuracy": held,
                "knn_loo": loo,
            }
        rows.append(row)
    df = pd.DataFrame(rows)[
        ["group", "name", "feature_dim", "logme", "knn_accuracy", "knn_loo", "freeze_to"]
    ]
    df["rank"] = rank_order(df, by, df["feature_dim"] > 0)
    best = int(df["rank"].fillna(len(df) + 1).to_numpy().argmin())
    df["suggested"] = np.arange(len(df)) == best
    df.attrs["suggested_freeze_to"] = int(df["freeze_to"].iloc[best])
    df.attrs["by"] = by
    df.attrs["knn"] = "leave-one-out" if val is None else "held-out"
    df.attrs["seconds"] = time.perf_counter() - start
    df.attrs["n_images"] = len(out.labels)
    df.attrs["n_valid"] = 0 if val is None else len(val.labels)
    return df
