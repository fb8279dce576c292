"""The ModelBrowser's "Rank on my data": what ``tlw.rank_models`` returned, as the page gets it.

The catalog travels once (``_catalog``); a ranking adds a small second payload (``_scores``):
the score columns of the ranked candidates only, with the table row each one belongs to, and the
rows for candidates that are not catalog rows (a model made with ``weights="none"``, your own
model), encoded like the catalog (:func:`~tlwidgets.widgets.model_browser.encode_catalog`) so
the page appends them to its columns. ``js/lib/scores.js`` merges it (``mergeScores``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ._catalog_wire import encode_catalog

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SCORE_SENTENCES", "encode_scores", "ranking_text"]

#: One sentence on what each figure means; the browser's details pane and the Studio show them.
SCORE_SENTENCES: dict[str, str] = {
    "logme": (
        "LogME: how well a linear classifier on the model's frozen features can explain your "
        "labels (the log evidence per image, averaged over classes); higher is better, and it "
        "only compares models on the same data."
    ),
    "knn_accuracy": (
        "k-NN accuracy: the share of your sampled validation images whose 5 nearest training "
        "images in the model's feature space mostly carry their own label (without a "
        "validation split, each training image left out in turn); the rank follows it."
    ),
    "top1": (
        "ImageNet top-1, the static prior: on public benchmarks the ImageNet ranking alone "
        "already predicts transfer well, so weigh it beside the scores on your data."
    ),
    "similarity": (
        "ImageNet similarity: what the model's own 1,000-class head says about your images: "
        "the classes they look most like, its mean top probability (1 = sure of some ImageNet "
        "class) and the normalised entropy of its guesses (0 = certain, 1 = no idea)."
    ),
}

# result column -> (wire column, scale): numbers travel as float32 like the catalog's
_NUMBERS = {
    "rank": ("score_rank", 1.0),
    "logme": ("logme", 1.0),
    "knn_accuracy": ("knn_pct", 100.0),
    "feature_dim": ("feature_dim", 1.0),
    "n_images": ("n_images", 1.0),
    "seconds": ("rank_seconds", 1.0),
    "imagenet_max_prob": ("imagenet_max_prob", 1.0),
    "imagenet_entropy": ("imagenet_entropy", 1.0),
}
_TEXTS = {"error": "rank_error", "looks_like": "looks_like"}
RANDOM_INIT = " (random init)"


def _numbers(values: Any, scale: float) -> bytes:
    import pandas as pd

    data = pd.to_numeric(pd.Series(values), errors="coerce").astype("float64")
    return (data.to_numpy(na_value=np.nan) * scale).astype(np.float32).tobytes()


def _extra_rows(rows: list[Any], frame: pd.DataFrame) -> pd.DataFrame:
    """Table rows for ranked candidates that are not in the catalog: named by their label,
    with what their architecture's catalog row says (family, GMACs, size) where there is one."""
    import pandas as pd

    by_arch: dict[str, int] = {}
    if "architecture" in frame:
        for i, arch in enumerate(frame["architecture"].astype(str)):
            by_arch.setdefault(arch, i)
    out = []
    for r in rows:
        label = str(r["model"])
        random_init = label.endswith(RANDOM_INIT)
        arch = str(r["name"]).partition(".")[0] if r["name"] else label.removesuffix(RANDOM_INIT)
        entry: dict[str, Any] = {
            "name": label, "architecture": arch, "tag": "",
            "pretrain": "random init" if random_init else "your model",
            "params_m": r["params_m"], "top1": r["top1"], "cpu_img_s": r["cpu_img_s"],
            "cached": True,  # the model is in this kernel
        }
        hit = by_arch.get(arch)
        for key in ("family", "gmacs", "img_size", "license"):
            if hit is not None and key in frame:
                entry[key] = frame[key].iloc[hit]
        out.append(entry)
    return pd.DataFrame(out)


def encode_scores(result: pd.DataFrame, frame: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame]:
    """The ``_scores`` payload for ``result`` (a ``tlw.rank_models`` frame) shown over the
    catalog ``frame``, and the extra rows it appends (a DataFrame, maybe empty).

    A result row belongs to the catalog row named by its ``name`` (or, failing that, its
    ``model`` label); the others become extra rows after the catalog's, named by their label.
    ``index`` gives each result row's table row; ``columns`` hold one value per result row, in
    the result's order (by rank, failures last), which ``score_order`` (1, 2, ...) keeps.

    >>> import pandas as pd
    >>> from tlwidgets.widgets._browser_scores import encode_scores
    >>> catalog = pd.DataFrame({"name": ["a.x", "b.y"]})
    >>> result = pd.DataFrame({"rank": [1, 2], "model": ["b", "c (random init)"],
    ...     "name": ["b.y", ""], "logme": [0.5, -0.1], "knn_accuracy": [0.9, 0.4],
    ...     "top1": [80.0, float("nan")], "params_m": [5.0, 5.0], "cpu_img_s": [90.0, 90.0],
    ...     "error": ["", ""]})
    >>> payload, extra = encode_scores(result, catalog)
    >>> payload["index"], extra["name"].tolist()
    ([1, 2], ['c (random init)'])
    """
    names = frame["name"].astype(str).tolist()
    position = {name: i for i, name in enumerate(names)}
    index: list[int] = []
    extra: list[Any] = []
    for _, r in result.iterrows():
        hit = position.get(str(r["name"])) if r.get("name") else None
        if hit is None:
            hit = position.get(str(r["model"]))
        if hit is None:
            hit = len(names) + len(extra)
            extra.append(r)
        index.append(hit)
    extra_frame = _extra_rows(extra, frame)
    m = len(result)
    columns: dict[str, Any] = {
        "score_order": {"kind": "num", "dtype": "float32",
                        "data": np.arange(1, m + 1, dtype=np.float32).tobytes()},
    }
    for key, (wire, scale) in _NUMBERS.items():
        if key in result:
            columns[wire] = {"kind": "num", "dtype": "float32",
                             "data": _numbers(result[key], scale)}
    for key, wire in _TEXTS.items():
        if key in result:
            columns[wire] = {"kind": "str", "values": [
                "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                for v in result[key]]}
    table_names = names + (extra_frame["name"].tolist() if len(extra_frame) else [])
    cards = result.attrs.get("similarity", {}) or {}
    similarity = {table_names[i]: cards[label]
                  for i, label in zip(index, result["model"].astype(str)) if label in cards}
    payload = {
        "n": m,
        "index": index,
        "extra": encode_catalog(extra_frame) if len(extra_frame) else {"n": 0, "columns": {}},
        "columns": columns,
        "by": str(result.attrs.get("by", "logme")),
        "cancelled": bool(result.attrs.get("cancelled", False)),
        "similarity": similarity,
        "explain": dict(SCORE_SENTENCES),
    }
    return payload, extra_frame


def ranking_text(state: str, update: dict[str, Any], data_text: str, what: str) -> str:
    """The line the page shows beside "Rank on my data" for a ranking ``state``."""
    if state == "unavailable":
        return ("Rank on my data needs your images: tlw.ModelBrowser(data=data), or "
                "browser.data = data (a tlw.ImageData).")
    if state == "ready":
        return f"Rank {what} on your data ({data_text})."
    if state == "running":
        done, total = int(update.get("done", 0)), int(update.get("total", 0))
        model = update.get("message") or "…"
        return f"Ranking {what}: {done:,} of {total:,} images · {model}"
    if state == "failed":
        return f"The ranking failed: {update.get('error', '')}"
    result = update.get("result")
    if result is None:
        return "Cancelled before any model was scored." if state == "cancelled" else ""
    ok = result[result["error"].fillna("") == ""]
    failed = len(result) - len(ok) - int((result["error"] == "cancelled").sum())
    n_images = int(ok["n_images"].max()) if len(ok) and ok["n_images"].notna().any() else 0
    by = "LogME" if result.attrs.get("by", "logme") == "logme" else "k-NN accuracy"
    text = (f"Ranked {len(ok)} model{'s' if len(ok) != 1 else ''} on {n_images:,} of your "
            f"images in {float(update.get('seconds', 0.0)):.1f} s; sorted by rank (1 = best "
            f"{by}).")
    if failed:
        text += f" {failed} could not be scored: its row says why."
    if state == "cancelled":
        text = "Cancelled. " + text + " The others are not scored (Rank “–”)."
    return text
