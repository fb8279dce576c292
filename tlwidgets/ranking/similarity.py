"""How close is my data to ImageNet: what a pretrained model's own 1,000-class head says about
the user's images.

Three figures from the softmax of the model's ImageNet head on a sample of the images:

- ``mean_max_prob``: the mean of the top probability (1.0: every image looks like some
  ImageNet class for sure; near 0.001: like nothing it knows);
- ``normalised_entropy``: the mean entropy of the prediction divided by ``log(1000)`` (0 =
  certain, 1 = uniform);
- ``top_classes``: the ImageNet classes the images map to most often (argmax), with their
  share, e.g. "your images look most like: honeycomb, chain mail, ...".

Data far from ImageNet (X-rays, spectrograms, satellite tiles) gives low confidence and high
entropy; it does not mean the features will not transfer (they often do), but it says that the
later layers, which encode ImageNet's classes, are the ones to retrain.

>>> import tlwidgets as tlw
>>> card = tlw.imagenet_similarity("tf_efficientnet_lite0", tlw.sample_data())  # doctest: +SKIP
>>> print(card)                                                             # doctest: +SKIP
Your images look most like: honeycomb (31%), ...
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from ..errors import ConfigError
from ..weights import is_random_init
from .features import backbone_features, check_data, load_for_features, stratified_sample
from .progress import Progress

__all__ = ["ImageNetSimilarity", "class_names", "imagenet_similarity", "similarity_from_logits"]


@functools.lru_cache(maxsize=8)
def class_names(num_classes: int = 1000) -> tuple[str, ...] | None:
    """Readable names of an ImageNet head's classes (timm's ``ImageNetInfo``: 1k, 12k, 21k,
    22k heads), or None for a head of another size.

    >>> class_names(1000)[967]
    'espresso'
    """
    from timm.data import ImageNetInfo, infer_imagenet_subset

    subset = infer_imagenet_subset({"num_classes": int(num_classes)})
    if subset is None:
        return None
    info = ImageNetInfo(subset)
    # WordNet lemmas are comma-separated synonyms ("espresso", "tabby, tabby cat"): keep the first
    return tuple(d.split(",")[0].strip() for d in info.label_descriptions())


@dataclass
class ImageNetSimilarity:
    """The "how close is my data to ImageNet" card (see the module docstring).

    ``top_classes``: columns ``imagenet_index``, ``imagenet_class``, ``images`` (how many
    images have it as their top prediction), ``share`` (of all images), ``mean_prob`` (its
    mean probability over all images). ``per_class``: one row per class of the data:
    ``class``, ``images``, ``looks_like`` (its most frequent ImageNet class), ``share`` (of
    that class's images), ``mean_max_prob``.
    """

    model: str
    n_images: int
    num_imagenet_classes: int
    mean_max_prob: float
    normalised_entropy: float
    top_classes: pd.DataFrame
    per_class: pd.DataFrame

    def looks_like(self, n: int = 5) -> list[str]:
        """The ``n`` ImageNet classes the images map to most often."""
        return self.top_classes["imagenet_class"].head(n).tolist()

    def to_dict(self, n: int = 5) -> dict[str, Any]:
        """Plain numbers and strings (for a widget or JSON)."""
        return {
            "model": self.model,
            "n_images": self.n_images,
            "mean_max_prob": self.mean_max_prob,
            "normalised_entropy": self.normalised_entropy,
            "looks_like": [
                {"imagenet_class": r.imagenet_class, "share": float(r.share)}
                for r in self.top_classes.head(n).itertuples()
            ],
        }

    def __str__(self) -> str:
        top = ", ".join(
            f"{r.imagenet_class} ({r.share:.0%})" for r in self.top_classes.head(5).itertuples()
        )
        return (
            f"Your images look most like: {top}.\n"
            f"{self.model} on {self.n_images} images: mean top probability "
            f"{self.mean_max_prob:.2f}, normalised entropy {self.normalised_entropy:.2f} "
            f"(0 = certain, 1 = no idea)."
        )


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def similarity_from_logits(
    logits: np.ndarray, labels: np.ndarray, classes: list[str], model: str = "model"
) -> ImageNetSimilarity:
    """The card from an ImageNet head's ``logits`` (N, C) on images with ``labels`` (N,).

    >>> import numpy as np
    >>> card = similarity_from_logits(np.eye(1000)[[967, 967, 1]] * 20, np.array([0, 0, 1]),
    ...                               ["cup", "fish"])
    >>> card.looks_like(2)
    ['espresso', 'goldfish']
    """
    names = class_names(logits.shape[1])
    if names is None:
        raise ConfigError(
            f"The model's head has {logits.shape[1]} classes, not an ImageNet head (1,000; or "
            "the 12k/21k/22k variants); pass a model with its pretrained ImageNet classifier."
        )
    p = _softmax(logits)
    n, c = p.shape
    top = p.argmax(axis=1)
    max_p = p.max(axis=1)
    entropy = -(p * np.log(np.clip(p, 1e-300, None))).sum(axis=1) / math.log(c)
    counts = np.bincount(top, minlength=c)
    order = np.lexsort((-p.mean(axis=0), -counts))  # most images first, then mean probability
    order = order[counts[order] > 0]
    top_classes = pd.DataFrame(
        {
            "imagenet_index": order.astype(np.int64),
            "imagenet_class": [names[i] for i in order],
            "images": counts[order].astype(np.int64),
            "share": counts[order] / n,
            "mean_prob": p.mean(axis=0)[order],
        }
    )
    rows = []
    for cls in np.unique(labels):
        members = labels == cls
        cls_counts = np.bincount(top[members], minlength=c)
        best = int(cls_counts.argmax())
        rows.append(
            {
                "class": classes[int(cls)] if int(cls) < len(classes) else str(cls),
                "images": int(members.sum()),
                "looks_like": names[best],
                "share": cls_counts[best] / members.sum(),
                "mean_max_prob": float(max_p[members].mean()),
            }
        )
    return ImageNetSimilarity(
        model=model,
        n_images=int(n),
        num_imagenet_classes=int(c),
        mean_max_prob=float(max_p.mean()),
        normalised_entropy=float(entropy.mean()),
        top_classes=top_classes,
        per_class=pd.DataFrame(rows),
    )


def imagenet_head_classes(model: nn.Module) -> int | None:
    """The size of the model's classifier when it is a pretrained ImageNet head loaded from
    its weights (tlwidgets' load report says so), else None."""
    head = getattr(model, "get_classifier", None)
    head = head() if callable(head) else None
    out = getattr(head, "out_features", None)
    if out is None or class_names(int(out)) is None:
        return None
    if is_random_init(model):  # weights="none": a random head says nothing about ImageNet
        return None
    report = getattr(model, "tlw_load_report", None)
    if report is not None and getattr(report, "skipped", None):
        return None  # the classifier was replaced by a fresh one
    return int(out)


def _imagenet_model(model_or_name: Any) -> tuple[nn.Module, str]:
    from ..weights import create_model

    if isinstance(model_or_name, str):
        from .models import head_classes_of

        return load_for_features(model_or_name, head_classes_of(model_or_name)), model_or_name
    if not isinstance(model_or_name, nn.Module):
        raise ConfigError(
            f"model_or_name must be a catalog name (e.g. 'tf_efficientnet_lite0.in1k') or a "
            f"torch module; got {type(model_or_name).__name__}."
        )
    model = model_or_name
    cfg = getattr(model, "pretrained_cfg", None) or {}
    name = ".".join(x for x in (cfg.get("architecture"), cfg.get("tag")) if x) or type(
        model
    ).__name__
    if imagenet_head_classes(model) is not None:
        return model, name
    if is_random_init(model):
        raise ConfigError(
            f"{name} has random weights (weights='none'); its head says nothing about "
            "ImageNet. Pass the catalog name to load the pretrained model with its head."
        )
    if cfg.get("architecture") and class_names(int(cfg.get("num_classes") or 0)):
        # the user's fine-tuning model has a new head: load the pretrained one beside it
        return create_model(name, num_classes=int(cfg["num_classes"])), name
    raise ConfigError(
        f"{name} has no pretrained ImageNet classifier (its head was replaced and its "
        "pretrained config names no ImageNet head); pass a catalog name instead."
    )


def imagenet_similarity(
    model_or_name: Any,
    data: Any,
    per_class: int | None = 50,
    *,
    split: str = "train",
    seed: int = 0,
    batch_size: int = 64,
    progress: Any = True,
    cancel: Any = None,
) -> ImageNetSimilarity:
    """How close ``data`` is to ImageNet, as the pretrained model's own ImageNet head sees it.

    ``model_or_name``: a catalog name (the model is loaded with its 1,000-class head, offline
    when possible), a model with its pretrained ImageNet head, or your fine-tuning model made
    by ``tlw.create_model`` (its pretrained head is loaded beside it). Uses at most
    ``per_class`` images of each class of ``split``. ``progress``/``cancel``: see
    :mod:`tlwidgets.ranking.progress`.

    >>> import tlwidgets as tlw
    >>> card = tlw.imagenet_similarity("tf_efficientnet_lite0", tlw.sample_data())  # doctest: +SKIP
    >>> card.looks_like(3), round(card.mean_max_prob, 2)                            # doctest: +SKIP
    """
    labels = check_data(data, split)
    idx = stratified_sample(labels, per_class, seed)
    model, name = _imagenet_model(model_or_name)
    with Progress(len(idx), progress, cancel, desc=f"ImageNet similarity {name}") as bar:
        out = backbone_features(
            model, data, idx, split=split, logits=True, batch_size=batch_size, progress=bar,
            label=name,
        )
    assert out.logits is not None
    return similarity_from_logits(out.logits, out.labels, list(data.classes), name)
