"""Plain-language readings of experiment tables: every number in a sentence comes from the
table it is given, so the reading changes when the results do.

>>> import tlwidgets as tlw
>>> print(tlw.experiments.read_data_efficiency(table))       # doctest: +SKIP
With 2 images per class the pretrained model (head only) reaches 96 %; from scratch needs more
than 32 to get there (its best: 79 % with 32, all layers).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .calibration import Calibration
from .data_efficiency import compute_curve, summarize
from .robustness import mean_corruption_accuracy

__all__ = ["read_data_efficiency", "read_compute", "read_generalization", "read_robustness",
           "read_calibration", "recipe_label", "pct"]

_RECIPES = {"head": "head only", "all": "all layers", "last-stage": "last stage and head"}
_INITS = {"pretrained": "the pretrained model", "scratch": "from scratch"}
# a curve has levelled off once it is within this much of its own best
_PLATEAU = 0.02


def pct(x: float) -> str:
    """``0.9375`` -> ``"94 %"``."""
    return "–" if x is None or not np.isfinite(x) else f"{100 * x:.0f} %"


def _points(fraction: float) -> str:
    """``0.23`` -> ``"23 points"`` (percentage points), ``0.01`` -> ``"1 point"``."""
    n = round(100 * fraction)
    return f"{n:.0f} point{'' if abs(n) == 1 else 's'}"


def recipe_label(recipe: str) -> str:
    """``"head"`` -> ``"head only"``; unknown names are returned as they are."""
    return _RECIPES.get(recipe, recipe)


def _init_label(init: str) -> str:
    return _INITS.get(init, init)


def _best_curves(summary: pd.DataFrame) -> dict[str, tuple[str, pd.DataFrame]]:
    """Per init, the recipe whose curve has the highest mean accuracy over the sizes."""
    out: dict[str, tuple[str, pd.DataFrame]] = {}
    for init, g in summary.groupby("init", sort=False):
        means = g.groupby("recipe", sort=False)["mean"].mean()
        recipe = str(means.idxmax())
        out[str(init)] = (recipe, g[g["recipe"] == recipe].sort_values("size"))
    return out


def _ordered_inits(inits: list[str]) -> list[str]:
    known = [i for i in ("pretrained", "scratch") if i in inits]
    return known + [i for i in inits if i not in known]


def read_data_efficiency(table: pd.DataFrame) -> str:
    """How many images per class each initialisation needs for the same accuracy.

    The first initialisation (``pretrained`` when present) is read where its best curve
    levels off (within 2 points of its best); the others are asked how many images any of
    their recipes needs to reach that accuracy.
    """
    summary = summarize(table)
    if summary.empty:
        return "No finished runs yet."
    best = _best_curves(summary)
    inits = _ordered_inits(list(best))
    lead, others = inits[0], inits[1:]
    recipe, curve = best[lead]
    top = curve["mean"].max()
    at = curve[curve["mean"] >= top - _PLATEAU].iloc[0]
    target, size = float(at["mean"]), int(at["size"])
    largest = int(summary["size"].max())
    parts = [f"With {size} image{'s' if size != 1 else ''} per class {_init_label(lead)} "
             f"({recipe_label(recipe)}) reaches {pct(target)}"]
    for other in others:
        # any of its recipes may get there first: the smallest size where one does
        o_all = summary[summary["init"] == other].sort_values(["size", "mean"],
                                                              ascending=[True, False])
        reached = o_all[o_all["mean"] >= target - 1e-9]
        name = _init_label(other)
        if len(reached):
            r = reached.iloc[0]
            parts.append(f"{name} ({recipe_label(r['recipe'])}) needs {int(r['size'])} to "
                         "get there")
        else:
            b = o_all.loc[o_all["mean"].idxmax()]
            parts.append(
                f"{name} needs more than {largest} to get there (its best: {pct(b['mean'])} "
                f"with {int(b['size'])}, {recipe_label(b['recipe'])})"
            )
    text = "; ".join(parts) + "."
    runs = int(summary["runs"].max())
    if runs > 1:
        text += (f" Lines are means of {runs} repeats with other images; bands span lowest to "
                 "highest.")
    return text


def read_compute(table: pd.DataFrame, x: str = "seconds") -> str:
    """How much training time (``x``: seconds, epochs or steps) each initialisation needs to
    reach the accuracy that all of them reach."""
    curve = compute_curve(table, x)
    if curve.empty:
        return "No finished runs yet."
    inits = _ordered_inits(list(dict.fromkeys(curve["init"])))
    best_acc = curve.groupby("init")["accuracy"].max()
    target = float(best_acc.min())
    unit = {"seconds": "s", "epochs": "epochs", "steps": "steps"}[x]
    found = {}
    for init in inits:
        ok = curve[(curve["init"] == init) & (curve["accuracy"] >= target - 1e-9)]
        found[init] = ok.loc[ok[x].idxmin()]
    parts = []
    for init in inits:
        r = found[init]
        amount = f"{r[x]:.1f} {unit}" if x == "seconds" else f"{r[x]:.0f} {unit}"
        parts.append(f"{_init_label(init)} took {amount} ({recipe_label(r['recipe'])}, "
                     f"{int(r['size'])} per class)")
    text = f"To reach {pct(target)} " + "; ".join(parts) + "."
    if len(inits) > 1:
        first, second = inits[0], inits[1]
        a, b = float(found[first][x]), float(found[second][x])
        less = {"seconds": "less training time", "epochs": "fewer epochs",
                "steps": "fewer steps"}[x]
        if a > 0 and b > 0:
            winner, ratio = (first, b / a) if b >= a else (second, a / b)
            if ratio < 1.15:
                text += " About the same for both."
            else:
                text += f" That is {ratio:.1f}× {less} for {_init_label(winner)}."
    return text


def read_generalization(table: pd.DataFrame) -> str:
    """Training versus validation accuracy at the smallest size, and the average gap."""
    summary = summarize(table, "gap")
    acc = summarize(table, "accuracy")
    if summary.empty:
        return "No finished runs yet."
    train = summarize(table, "train_accuracy")
    best = _best_curves(acc)
    inits = _ordered_inits(list(best))
    smallest = int(acc["size"].min())
    parts = []
    for init in inits:
        recipe, _ = best[init]
        key = (train["init"] == init) & (train["recipe"] == recipe) & (train["size"] == smallest)
        k2 = (acc["init"] == init) & (acc["recipe"] == recipe) & (acc["size"] == smallest)
        mean_gap = summary[(summary["init"] == init) & (summary["recipe"] == recipe)]["mean"].mean()
        parts.append(
            f"{_init_label(init)} ({recipe_label(recipe)}) scores "
            f"{pct(float(train.loc[key, 'mean'].iloc[0]))} on its own training images and "
            f"{pct(float(acc.loc[k2, 'mean'].iloc[0]))} on new ones "
            f"(gap {_points(mean_gap)} on average over all sizes)"
        )
    return (f"With {smallest} image{'s' if smallest != 1 else ''} per class, "
            + "; ".join(parts) + ".")


def read_robustness(table: pd.DataFrame) -> str:
    """Mean corruption accuracy per model beside its clean accuracy, and its worst corruption."""
    if table is None or len(table) == 0:
        return "No results yet."
    summary = mean_corruption_accuracy(table)
    bad = table[table["severity"] > 0]
    if bad.empty:
        return "Only clean accuracy so far: " + "; ".join(
            f"{m} {pct(r['clean'])}" for m, r in summary.iterrows()) + "."
    n_c, n_s = bad["corruption"].nunique(), bad["severity"].nunique()
    parts = [
        f"{m} keeps {pct(r['mean_corruption_accuracy'])} (clean {pct(r['clean'])}; worst: "
        f"{r['worst']}, {pct(r['worst_accuracy'])})"
        for m, r in summary.iterrows()
    ]
    text = (f"Averaged over {n_c} corruption{'s' if n_c != 1 else ''} × {n_s} "
            f"severit{'ies' if n_s != 1 else 'y'}, " + "; ".join(parts) + ".")
    if len(summary) > 1 and summary["mean_corruption_accuracy"].notna().all():
        top = summary["mean_corruption_accuracy"].idxmax()
        low = summary["mean_corruption_accuracy"].idxmin()
        if top != low:
            mca = summary["mean_corruption_accuracy"]
            d = mca[top] - mca[low]
            text += f" {top} is ahead by {_points(d)} on corrupted images."
    return text


def read_calibration(calibrations: Mapping[str, Calibration] | Calibration) -> str:
    """Expected calibration error per model, and whether each is over- or underconfident."""
    if isinstance(calibrations, Calibration):
        calibrations = {"the model": calibrations}
    if not calibrations:
        return "No results yet."
    parts = []
    for label, cal in calibrations.items():
        diff = cal.confidence - cal.accuracy
        lean = ("overconfident" if diff > 0.005 else "underconfident" if diff < -0.005
                else "confidence matches accuracy")
        how = f" by {_points(abs(diff))}" if lean != "confidence matches accuracy" else ""
        parts.append(f"{label}: ECE {cal.ece:.3f}, mean confidence {pct(cal.confidence)} for "
                     f"{pct(cal.accuracy)} right ({lean}{how})")
    return ("Expected calibration error (0 = a model's confidence is how often it is right): "
            + "; ".join(parts) + ".")

