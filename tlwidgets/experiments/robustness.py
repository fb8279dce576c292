"""Robustness: accuracy of trained models on corrupted validation images.

:func:`robustness` corrupts every validation image with each corruption at each severity
(:mod:`tlwidgets.experiments.corruptions`: ImageNet-C's noise, blur, JPEG, brightness,
contrast and pixelation), scores every model on the same corrupted images, and returns one tidy
row per model, corruption and severity, plus each model's clean accuracy (corruption
``"none"``, severity 0). :func:`mean_corruption_accuracy` reduces it to one figure per model:
the mean accuracy over all corruptions and severities (ImageNet-C's mCE is the same average
of errors, there normalised by AlexNet's; here the clean accuracy is given beside it instead).

>>> import tlwidgets as tlw
>>> table = tlw.experiments.robustness({"pretrained": t1, "scratch": t2}, data)   # doctest: +SKIP
>>> tlw.experiments.mean_corruption_accuracy(table)                                # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch import nn

from ..errors import ConfigError, DataError
from ._evalset import EvalSet
from .calibration import calibration
from .corruptions import SEVERITIES, check_corruptions, check_severities, corrupt

__all__ = ["robustness", "mean_corruption_accuracy", "DEFAULT_CORRUPTIONS", "ROBUSTNESS_COLUMNS",
           "corrupted_eval_set"]

DEFAULT_CORRUPTIONS = ("noise", "blur", "jpeg", "brightness", "contrast", "pixelate")
#: Columns of the table :func:`robustness` returns.
ROBUSTNESS_COLUMNS = ("model", "corruption", "severity", "accuracy", "loss", "ece")


def _label(obj: Any, index: int) -> str:
    name = getattr(obj, "name", None)
    if isinstance(name, str) and name:
        return name
    model = getattr(obj, "model", obj)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return str(cfg.get("architecture") or f"model {index + 1}")


def _models(trainer_or_model: Any) -> list[tuple[str, nn.Module, Any]]:
    """``(label, model, trainer-or-None)`` for a Trainer, a model, a dict or a list of them."""
    if isinstance(trainer_or_model, Mapping):
        items = [(str(k), v) for k, v in trainer_or_model.items()]
    elif isinstance(trainer_or_model, (list, tuple)):
        items = [(None, v) for v in trainer_or_model]
    else:
        items = [(None, trainer_or_model)]
    if not items:
        raise ConfigError("robustness() got no models; pass a Trainer, a model, or a dict of them.")
    out: list[tuple[str, nn.Module, Any]] = []
    seen: dict[str, int] = {}
    for i, (label, obj) in enumerate(items):
        model = obj if isinstance(obj, nn.Module) else getattr(obj, "model", None)
        if not isinstance(model, nn.Module):
            raise ConfigError(
                f"robustness() needs Trainers or torch models; got {type(obj).__name__}."
            )
        label = label or _label(obj, i)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label} ({seen[label]})"
        out.append((label, model, None if obj is model else obj))
    return out


def _split_eval_transform(data: Any) -> tuple[Callable[[Image.Image], Image.Image],
                                              Callable[[Image.Image], torch.Tensor]]:
    """The eval transform cut where the PIL image becomes a tensor: (resize + crop, the rest).

    The corruptions act between the two, on the image the model sees, before normalisation.
    """
    from torchvision import transforms as T

    tf = data.eval_transform
    steps = list(getattr(tf, "transforms", ()))
    cut = next((i for i, t in enumerate(steps)
                if type(t).__name__ in ("ToTensor", "MaybeToTensor", "PILToTensor")), None)
    if cut is None:
        # not a Compose we know: corrupt at the model's input size, then apply it whole
        side = int(data.img_size)
        return (lambda img: img.resize((side, side), Image.Resampling.BICUBIC)), tf
    return T.Compose(steps[:cut]), T.Compose(steps[cut:])


def _clean_images(data: Any) -> list[Image.Image]:
    geometric, _ = _split_eval_transform(data)
    return [geometric(data.raw_image("valid", i)) for i in range(len(data.valid_items))]


def corrupted_eval_set(data: Any, corruption: str, severity: int, seed: int = 0,
                       images: Sequence[Image.Image] | None = None,
                       batch_size: int | None = None) -> EvalSet:
    """``data``'s validation images with one corruption, ready for
    ``tlwidgets.evaluation.evaluate(model, ...)``; ``images`` are the resized and cropped
    clean images if already made (they are made from ``data`` otherwise).

    >>> from tlwidgets.evaluation import evaluate
    >>> evaluate(model, corrupted_eval_set(data, "blur", 3)).accuracy      # doctest: +SKIP
    """
    check_corruptions((corruption,))
    (severity,) = check_severities((severity,))
    _, tensorize = _split_eval_transform(data)
    clean = list(images) if images is not None else _clean_images(data)
    base = int(seed) * 1_000_003
    xs = torch.stack([tensorize(corrupt(img, corruption, severity, seed=base + i))
                      for i, img in enumerate(clean)])
    ys = torch.tensor([y for _, y in data.valid_items], dtype=torch.long)
    bs = int(batch_size or getattr(data, "batch_size", 32) or 32)
    batches = [(xs[i:i + bs], ys[i:i + bs]) for i in range(0, len(xs), bs)]
    return EvalSet(data.classes, data.valid_items, lambda: iter(batches))


def robustness(
    trainer_or_model: Any,
    data: Any = None,
    corruptions: Sequence[str] = DEFAULT_CORRUPTIONS,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    stop: threading.Event | None = None,
    on_result: Callable[[dict[str, Any]], Any] | None = None,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """Accuracy of one or more trained models on corrupted copies of the validation images.

    ``trainer_or_model``: a Trainer, a model, or a dict ``{label: trainer or model}`` (or a
    list; labels then come from ``trainer.name`` or the architecture). ``data``: the
    ImageData whose validation split is corrupted (default: the first trainer's data); its
    eval transform must suit every model. Each ``(corruption, severity)`` set is made once and
    scored by every model. ``seed`` fixes the noise. ``stop`` (a ``threading.Event``) ends
    early with the rows so far; ``on_result(row)`` is called with each row as it is scored.

    Columns :data:`ROBUSTNESS_COLUMNS`: ``model``, ``corruption`` (``"none"`` for the clean
    images, at severity 0), ``severity``, ``accuracy``, ``loss``, ``ece``.

    >>> import tlwidgets as tlw
    >>> table = tlw.experiments.robustness(trainer, severities=(1, 3, 5))     # doctest: +SKIP
    >>> table.pivot_table("accuracy", "corruption", "severity")                 # doctest: +SKIP
    """
    from ..evaluation import evaluate

    models = _models(trainer_or_model)
    corruptions = check_corruptions(corruptions)
    severities = tuple(s for s in check_severities(severities) if s > 0)
    if data is None:
        data = next((t.data for _, _, t in models if t is not None and hasattr(t, "data")), None)
        if data is None:
            raise ConfigError("robustness() needs data= (an ImageData) when given bare models.")
    if len(getattr(data, "valid_items", ())) == 0:
        raise DataError("data has no validation images to corrupt; build it with valid_pct > 0.")
    if stop is not None and not hasattr(stop, "is_set"):
        raise ConfigError("stop must be a threading.Event (or None).")
    for _, _, trainer in models:
        state = getattr(trainer, "state", None)
        if state in ("running", "paused", "stopping"):
            raise ConfigError(
                f"a trainer is {state}; score it after its run ends (trainer.wait())."
            )

    clean = _clean_images(data)
    rows: list[dict[str, Any]] = []
    jobs = [("none", 0)] + [(c, s) for c in corruptions for s in severities]
    for corruption, severity in jobs:
        if stop is not None and stop.is_set():
            break
        evalset = corrupted_eval_set(data, "noise" if severity == 0 else corruption, severity,
                                     seed, clean, batch_size)
        for label, model, _ in models:
            if stop is not None and stop.is_set():
                break
            ev = evaluate(model, evalset)
            row = dict(model=label, corruption=corruption, severity=severity,
                       accuracy=ev.accuracy, loss=ev.loss, ece=calibration(ev).ece)
            rows.append(row)
            if on_result is not None:
                on_result(dict(row))
    df = pd.DataFrame(rows, columns=list(ROBUSTNESS_COLUMNS))
    return df.astype({"severity": "int64", "accuracy": "float64", "loss": "float64",
                      "ece": "float64", "model": object, "corruption": object})


def mean_corruption_accuracy(table: pd.DataFrame) -> pd.DataFrame:
    """Per model: ``clean`` accuracy, ``mean_corruption_accuracy`` (over every corruption and
    severity > 0 in the table), ``relative`` (= mean / clean), and the ``worst`` corruption
    (lowest mean accuracy over its severities) with that ``worst_accuracy``.

    >>> tlw.experiments.mean_corruption_accuracy(table)                 # doctest: +SKIP
    """
    if not isinstance(table, pd.DataFrame) or not set(ROBUSTNESS_COLUMNS[:4]) <= set(table.columns):
        raise ConfigError("expected the table of tlw.experiments.robustness().")
    rows = []
    for model, g in table.groupby("model", sort=False):
        clean = g.loc[g["severity"] == 0, "accuracy"]
        bad = g[g["severity"] > 0]
        per = bad.groupby("corruption", sort=False)["accuracy"].mean()
        mca = float(bad["accuracy"].mean()) if len(bad) else np.nan
        c = float(clean.iloc[0]) if len(clean) else np.nan
        rows.append(dict(
            model=model, clean=c, mean_corruption_accuracy=mca,
            relative=mca / c if c and np.isfinite(c) else np.nan,
            worst=per.idxmin() if len(per) else None,
            worst_accuracy=float(per.min()) if len(per) else np.nan,
        ))
    return pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame(
        columns=["clean", "mean_corruption_accuracy", "relative", "worst", "worst_accuracy"])
