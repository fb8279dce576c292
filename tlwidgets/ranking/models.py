"""Rank candidate backbones on the user's own labelled images, before fine-tuning any.

:func:`rank_models` loads each candidate (a catalog name, or a model you already made), runs it
frozen over a capped, stratified sample of the training split (and of the validation split),
scores its features with LogME and k-NN accuracy (validation images classified by their nearest
training images), and returns one row per candidate beside the static prior (ImageNet top-1,
parameters, CPU speed from ``tlw.catalog()``), ranked by the k-NN accuracy (see
:func:`rank_order` for why). On public benchmarks the ImageNet-accuracy ranking is itself a
strong predictor of transfer, so the prior is kept in view rather than replaced.

Designed to run in a widget's thread: ``progress`` takes a callback, ``cancel`` an Event; a
cancelled run returns the rows finished so far (the rest say "cancelled" in ``error``).

>>> import tlwidgets as tlw
>>> data = tlw.sample_data(img_size=128)                  # doctest: +SKIP
>>> tlw.rank_models(data)[["rank", "model", "logme", "knn_accuracy", "top1"]]  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from ..errors import Cancelled, ConfigError
from ..weights import is_random_init
from .features import (
    backbone_features,
    check_data,
    load_for_features,
    stratified_sample,
    valid_sample,
)
from .progress import Progress, check_progress
from .scores import knn_accuracy, logme
from .shortlist import default_candidates
from .similarity import imagenet_head_classes, similarity_from_logits

__all__ = ["COLUMNS", "SCORES", "head_classes_of", "knn_scores", "rank_models", "rank_order"]

SCORES = ("knn_accuracy", "logme")
COLUMNS = [
    "rank", "model", "name", "logme", "knn_accuracy", "knn_loo", "top1", "params_m", "cpu_img_s",
    "feature_dim", "n_images", "n_valid", "seconds", "imagenet_max_prob", "imagenet_entropy",
    "looks_like", "why", "error",
]


def _catalog_row(name: str) -> pd.Series | None:
    from ..catalog import catalog

    df = catalog()
    hit = df[df["name"] == name]
    if hit.empty:
        hit = df[df["architecture"] == name]
    return None if hit.empty else hit.iloc[0]


def head_classes_of(name: str, fallback: int = 1000) -> int:
    """Classes of the pretrained head of catalog name ``name`` (so the head loads with the
    weights), or ``fallback`` when the catalog does not know it or lists no head."""
    row = _catalog_row(name)
    n = int(row["num_classes"]) if row is not None and row["num_classes"] else 0
    return n if n > 0 else fallback


def _label_of(model: nn.Module) -> tuple[str, str]:
    """(label for the ``model`` column, catalog name or "") of a model given as an object."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    arch, tag = cfg.get("architecture"), cfg.get("tag")
    name = f"{arch}.{tag}" if arch and tag else (arch or "")
    if is_random_init(model):
        return f"{arch or type(model).__name__} (random init)", ""
    return name or type(model).__name__, name


def _candidates(candidates: Any) -> list[tuple[str, Any]]:
    if isinstance(candidates, (str, nn.Module)):
        candidates = [candidates]
    if isinstance(candidates, Mapping):
        items = [(str(k), v) for k, v in candidates.items()]
    else:
        try:
            items = [(None, c) for c in candidates]
        except TypeError:
            raise ConfigError(
                f"candidates must be a list of catalog names and/or models, or a dict "
                f"label -> name/model; got {type(candidates).__name__}."
            ) from None
    out = []
    for label, c in items:
        if not isinstance(c, (str, nn.Module)):
            raise ConfigError(
                f"Each candidate must be a catalog name (str) or a torch module; got "
                f"{type(c).__name__} ({c!r:.60})."
            )
        out.append((label or (c if isinstance(c, str) else _label_of(c)[0]), c))
    if not out:
        raise ConfigError("candidates is empty; pass at least one name or model.")
    labels = [label for label, _ in out]
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ConfigError(
            f"Two candidates share the label {dupes[0]!r}; pass a dict {{label: model}} to "
            "tell them apart."
        )
    return out


def _prior(name: str, model: nn.Module | None) -> dict[str, float]:
    row = _catalog_row(name) if name else None
    random_init = model is not None and bool(is_random_init(model))
    prior = {"top1": np.nan, "params_m": np.nan, "cpu_img_s": np.nan}
    if row is not None:
        prior = {k: float(row[k]) for k in prior}
    if random_init:
        prior["top1"] = np.nan  # no ImageNet accuracy: the weights are not ImageNet's
    if np.isnan(prior["params_m"]) and model is not None:
        prior["params_m"] = sum(p.numel() for p in model.parameters()) / 1e6
    return prior


def rank_order(scores: pd.DataFrame, by: str = "knn_accuracy", ok: Any = None) -> pd.Series:
    """The ``rank`` column of a frame of scores: Int64, 1 = best by the column ``by``, ties
    broken by LogME (by k-NN accuracy when ``by="logme"``), rows equal on both sharing a rank,
    NA where ``ok`` is False (failed rows).

    Why k-NN accuracy, held out where there is a validation split: it is the one score that
    asks the question fine-tuning is judged on (are the *validation* images classified right
    from the training images' features?); it is not fooled by near-duplicates in the training
    images or by a shift between the splits (leave-one-out k-NN is, and LogME, an evidence on
    the training images alone, cannot see either); and it does not favour a feature width
    (LogME ranked the 1,280-d full models above better 112- and 320-d cuts on the benchmark).
    Accuracy on a few dozen images moves in steps, so on easy data several candidates tie
    (often at 100 %, a random-init model among them); LogME, a continuous score of the whole
    training sample that puts random init far below pretrained features, orders them, so the
    table has one order and random init is not shown "1st". Measured on the four tasks of
    ``benchmarks/bench_ranking.py`` (``docs/benchmarks.md``); nothing was tuned to them
    (``k`` stays 5, the sample stays ``per_class``).

    >>> df = pd.DataFrame({"knn_accuracy": [0.9, 0.9, 0.7], "logme": [0.1, 0.3, 0.9]})
    >>> rank_order(df).tolist(), rank_order(df, "logme").tolist()
    ([2, 1, 3], [3, 2, 1])
    """
    if by not in SCORES:
        raise ConfigError(f"by must be one of {', '.join(map(repr, SCORES))}; got {by!r}.")
    ok = pd.Series(True, index=scores.index) if ok is None else pd.Series(ok, index=scores.index)
    then = "knn_accuracy" if by == "logme" else "logme"
    first = scores[by].astype(float).where(ok).rank(ascending=False, method="min")
    second = scores[then].astype(float).where(ok).rank(ascending=False, method="min")
    key = first + second.fillna(len(scores) + 1) / (len(scores) + 2)
    return key.rank(method="min").astype("Int64")


def knn_scores(
    train: Any, train_labels: Any, valid: Any, valid_labels: Any, k: int
) -> tuple[float, float]:
    """(k-NN accuracy to rank by, leave-one-out k-NN accuracy) of one candidate's features:
    the first is held out (validation rows against training rows) when ``valid`` is given,
    else leave-one-out too. ``k`` is capped at the training images less one."""
    kk = min(k, len(train_labels) - 1)
    loo = knn_accuracy(train, train_labels, k=kk)
    if valid is None:
        return loo, loo
    held = knn_accuracy(train, train_labels, k=kk, valid_features=valid, valid_labels=valid_labels)
    return held, loo


def _load(name: str, num_classes: int, device: Any) -> nn.Module:
    return load_for_features(name, head_classes_of(name, fallback=num_classes), device)


def rank_models(
    data: Any,
    candidates: Any = None,
    per_class: int | None = 50,
    *,
    k: int = 5,
    by: str = "knn_accuracy",
    seed: int = 0,
    batch_size: int = 64,
    device: Any = None,
    shortlist: int = 5,
    budget_s: float = 60.0,
    progress: Any = True,
    cancel: Any = None,
) -> pd.DataFrame:
    """Score each candidate backbone on ``data``'s training images; one row per candidate.

    ``candidates``: catalog names (``"tf_efficientnet_lite0.in1k"`` or an architecture,
    loaded with ``tlw.create_model(weights="auto")``), models already made (one made with
    ``weights="none"`` shows as "<arch> (random init)"), or a dict ``{label: name or model}``.
    Default (``candidates=None``): every model whose weights are loadable offline now
    (``tlw.catalog()[cached]``) and, when the Hugging Face hub answers (a 3 s probe; never
    with ``HF_HUB_OFFLINE=1``), a shortlist by the static prior: the best ImageNet top-1 tag
    of each of the ``shortlist`` (5) best architectures whose feature pass over the sample
    takes at most ``budget_s`` (60) seconds at the catalog's CPU speed, commercial licences
    only (``tlwidgets.ranking.shortlist.default_candidates``). The ``why`` column says why
    each row is there; widen with a larger ``shortlist`` or ``budget_s``, or pass names.

    Features are the classifier's input of the frozen model (``forward_head(...,
    pre_logits=True)``) on at most ``per_class`` images per class of the training split and
    as many of the validation split (stratified, reproducible from ``seed``; the validation
    images only for k-NN accuracy), each model seeing the data through its own
    pretrained preprocessing (``data.with_model(model)``; the size stays ``data``'s when it was
    given as ``img_size``). Models you pass stay on their device; names load on ``device``
    (default CUDA when available, else CPU).

    Columns: ``rank`` (1 = best by ``by``, ``"knn_accuracy"`` (default) or ``"logme"``, ties
    broken by the other; :func:`rank_order` says why), ``model``, ``name`` (catalog name, ""
    if unknown), ``logme`` (training sample), ``knn_accuracy`` (fraction; cosine on centred
    features, ``k`` neighbours; **held out**: the sampled validation images classified by the
    sampled training images, when ``data`` has a validation split of two classes or more, else
    leave-one-out: ``attrs["knn"]`` says which), ``knn_loo`` (leave-one-out on the training
    sample, for reference), the static prior ``top1`` (ImageNet %, NaN for random init),
    ``params_m``, ``cpu_img_s``, ``feature_dim``, ``n_images`` (training images scored),
    ``n_valid`` (validation images, 0 without a split), ``seconds`` (load + features +
    scores), ``imagenet_max_prob``/``imagenet_entropy``/``looks_like`` (the ImageNet-similarity
    card's figures, when the model has its pretrained ImageNet head), ``why`` (how the
    candidate was chosen), ``error`` (why a
    candidate could not be scored; "" otherwise). Rows are sorted by rank; failed ones last,
    never dropped.

    ``progress``: True (tqdm bar), False, or ``fn(done, total, message)`` returning False to
    cancel; ``cancel``: a ``threading.Event``. A cancelled run returns what it finished, the
    rest marked "cancelled" (and ``df.attrs["cancelled"] = True``). ``df.attrs["similarity"]``
    maps each ``model`` with an ImageNet head to its similarity card
    (``ImageNetSimilarity.to_dict()``), for a details pane.

    >>> import tlwidgets as tlw
    >>> data = tlw.sample_data(img_size=128)                                  # doctest: +SKIP
    >>> df = tlw.rank_models(data, ["tf_efficientnet_lite0",
    ...                             tlw.create_model("tf_efficientnet_lite0", 4, weights="none")])
    ...                                                                       # doctest: +SKIP
    >>> df[["rank", "model", "logme", "knn_accuracy"]]                       # doctest: +SKIP
    """
    import torch

    if by not in SCORES:
        raise ConfigError(f"by must be one of {', '.join(map(repr, SCORES))}; got {by!r}.")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer (neighbours per vote); got {k!r}.")
    check_progress(progress, cancel)
    labels = check_data(data, "train")
    idx = stratified_sample(labels, per_class, seed)
    vidx = valid_sample(data, per_class, seed)
    per_model = len(idx) + (0 if vidx is None else len(vidx))
    if candidates is None:
        chosen = default_candidates(per_model, shortlist, budget_s)
        items = list(zip(chosen["name"], chosen["name"]))
        why = dict(zip(chosen["name"], chosen["why"]))
    else:
        items, why = _candidates(candidates), {}
    dev = torch.device(device) if device is not None else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu"
    )
    rows: list[dict[str, Any]] = []
    cards: dict[str, dict[str, Any]] = {}
    cancelled = False
    with Progress(per_model * len(items), progress, cancel, desc="ranking models") as bar:
        for label, cand in items:
            row: dict[str, Any] = {"model": label, "name": cand if isinstance(cand, str) else "",
                                   "why": why.get(label, "passed as a candidate")}
            if cancelled:
                rows.append(row | {"error": "cancelled"})
                continue
            start = time.perf_counter()
            model = None
            try:
                bar.check()
                if isinstance(cand, str):
                    model = _load(cand, len(data.classes), dev)
                    cfg = model.pretrained_cfg
                    row["name"] = f"{cfg.get('architecture')}.{cfg.get('tag')}" if cfg.get(
                        "tag") else cand
                else:
                    model = cand
                    row["name"] = _label_of(cand)[1]
                row |= _prior(row["name"], model)
                head = imagenet_head_classes(model)
                out = backbone_features(
                    model, data, idx, logits=head is not None, batch_size=batch_size,
                    progress=bar, label=label,
                )
                val = None if vidx is None else backbone_features(
                    model, data, vidx, split="valid", batch_size=batch_size, progress=bar,
                    label=label,
                )
                row["feature_dim"] = int(out.features.shape[1])
                row["n_images"] = len(out.labels)
                row["n_valid"] = 0 if val is None else len(val.labels)
                row["logme"] = logme(out.features, out.labels)
                row["knn_accuracy"], row["knn_loo"] = knn_scores(
                    out.features, out.labels, None if val is None else val.features,
                    None if val is None else val.labels, k,
                )
                if out.logits is not None:
                    card = similarity_from_logits(out.logits, out.labels, list(data.classes), label)
                    row["imagenet_max_prob"] = card.mean_max_prob
                    row["imagenet_entropy"] = card.normalised_entropy
                    row["looks_like"] = ", ".join(card.looks_like(3))
                    cards[label] = card.to_dict()
                row["error"] = ""
            except Cancelled:
                cancelled = True
                row["error"] = "cancelled"
            except Exception as err:  # noqa: BLE001 - a failed candidate is a row, not a crash
                row["error"] = " ".join(f"{type(err).__name__}: {err}".split())[:1000]
            finally:
                if "top1" not in row:  # failed before the prior: still show what is known
                    row |= _prior(row["name"], model if isinstance(model, nn.Module) else None)
                row["seconds"] = time.perf_counter() - start
                if isinstance(cand, str):
                    del model  # free a model we made before loading the next
            rows.append(row)
    df = _frame(rows, by, cancelled)
    df.attrs["similarity"] = cards
    df.attrs["knn"] = "leave-one-out" if vidx is None else "held-out"
    return df


def _frame(rows: list[dict[str, Any]], by: str, cancelled: bool) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in df:
            df[col] = "" if col in ("looks_like", "why", "error", "name") else np.nan
    df["looks_like"] = df["looks_like"].fillna("")
    ok = df["error"].fillna("") == ""
    df["rank"] = rank_order(df, by, ok)
    for col in ("feature_dim", "n_images", "n_valid"):
        df[col] = df[col].astype("Int64")
    df = df[COLUMNS].sort_values(["rank", "model"], na_position="last", kind="stable")
    df = df.reset_index(drop=True)
    df.attrs["by"] = by
    df.attrs["cancelled"] = cancelled
    return df
