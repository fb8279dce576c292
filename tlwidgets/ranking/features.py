"""Features of a frozen backbone on a capped, stratified sample of a dataset.

:func:`backbone_features` is the **one** place ranking computes features, and it keeps them in
the training feature store on disk (``tlwidgets/training/feature_store.py``, keyed by the
model's weights, the data's files, the transform and the sample), so ranking the same
candidates on the same data again — ``rank_models``, ``imagenet_similarity`` — reads them
instead of recomputing (per-layer passes of ``rank_layers`` are not stored).

The features are the classifier's input, exactly what a head trained on the frozen model sees:
timm's ``forward_head(forward_features(x), pre_logits=True)``; for another module with a
``get_classifier()``, the input of that classifier; for a module without one (a backbone you
cut yourself), its output, globally averaged when it is a feature map. They are computed in
eval mode under ``torch.inference_mode`` with the data's deterministic eval transform, derived
from the model's own pretrained config (``data.with_model(model)``).

>>> import tlwidgets as tlw
>>> from tlwidgets.ranking.features import backbone_features, stratified_sample
>>> data = tlw.sample_data(img_size=64)                                   # doctest: +SKIP
>>> idx = stratified_sample([y for _, y in data.train_items], per_class=10)  # doctest: +SKIP
>>> out = backbone_features(tlw.create_model("tf_efficientnet_lite0", 4), data, idx)  # doctest: +SKIP
>>> out.features.shape                                                    # doctest: +SKIP
(40, 1280)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from ..errors import ConfigError, DataError
from .progress import Progress

__all__ = [
    "Features", "backbone_features", "check_data", "is_channels_last", "load_for_features",
    "pool", "stratified_sample", "valid_sample",
]


@dataclass
class Features:
    """What one pass of a backbone over a sample produced (all numpy, on the CPU)."""

    features: np.ndarray  # (N, D) float32: the classifier's input
    labels: np.ndarray  # (N,) int64 class indices of the data
    indices: np.ndarray  # (N,) positions in the split's items
    logits: np.ndarray | None = None  # (N, C) the model's own head, when asked for
    layers: dict[str, np.ndarray] = field(default_factory=dict)  # group name -> (N, C_g) pooled
    seconds: float = 0.0
    from_store: bool = False  # read from the feature store on disk (computed by an earlier call)


def check_data(data: Any, split: str = "train") -> list[int]:
    """The labels of ``split`` of an ImageData-like object; ConfigError if it is not one."""
    if split not in ("train", "valid"):
        raise ConfigError(f"split must be 'train' or 'valid'; got {split!r}.")
    items = getattr(data, f"{split}_items", None)
    if items is None or not hasattr(data, "with_model") or not hasattr(data, "classes"):
        raise ConfigError(
            f"data must be a tlw.ImageData (from tlw.ImageData.from_folder, from_arrays or "
            f"tlw.sample_data); got {type(data).__name__}. To score features you already "
            "have, call tlw.logme(features, labels) or tlw.knn_accuracy(features, labels)."
        )
    labels = [int(y) for _, y in items]
    if len(set(labels)) < 2:
        raise DataError(
            f"The {split} split has images of {len(set(labels))} class(es); ranking needs at "
            "least two classes with images."
        )
    return labels


def stratified_sample(labels: Sequence[int], per_class: int | None, seed: int = 0) -> np.ndarray:
    """Sorted positions of at most ``per_class`` items of each class, drawn at random
    (reproducibly from ``seed``); all items when ``per_class`` is None.

    >>> stratified_sample([0, 0, 0, 1, 1], per_class=2).tolist()
    [1, 2, 3, 4]
    """
    if per_class is not None and (
        isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 2
    ):
        raise ConfigError(
            f"per_class must be an integer >= 2 (images per class to score on) or None for "
            f"all; got {per_class!r}."
        )
    y = np.asarray(labels, dtype=np.int64)
    if per_class is None:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    chosen = []
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        if len(members) > per_class:
            members = rng.choice(members, size=per_class, replace=False)
        chosen.append(members)
    return np.sort(np.concatenate(chosen))


def valid_sample(data: Any, per_class: int | None, seed: int = 0) -> np.ndarray | None:
    """Positions of at most ``per_class`` validation items per class (as
    :func:`stratified_sample`), for held-out k-NN; None when ``data`` has no validation split
    with images of at least two classes (the ranking then falls back to leave-one-out).

    >>> valid_sample(tlw.sample_data(), per_class=5)             # doctest: +SKIP
    """
    labels = [int(y) for _, y in (getattr(data, "valid_items", None) or [])]
    if len(set(labels)) < 2:
        return None
    return stratified_sample(labels, per_class, seed)


def pool(t: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """One vector per image: feature maps averaged over space (NCHW, or NHWC when
    ``channels_last``), token sequences (B, N, C) over tokens, other shapes flattened."""
    if isinstance(t, (tuple, list)):
        t = t[0]
    if t.ndim == 4:
        return t.mean(dim=(1, 2)) if channels_last else t.mean(dim=(2, 3))
    if t.ndim == 3:
        return t.mean(dim=1)
    return t.reshape(t.shape[0], -1)


def _classifier(model: nn.Module) -> nn.Module | None:
    get = getattr(model, "get_classifier", None)
    if not callable(get):
        return None
    try:
        head = get()
    except Exception:  # noqa: BLE001 - no usable head: fall back to the model's output
        return None
    return head if isinstance(head, nn.Module) else None


def is_channels_last(model: nn.Module) -> bool:
    """Whether the model's first spatial convolution weight is stored channels-last."""
    for p in model.parameters():
        if p.ndim == 4 and p.shape[2] * p.shape[3] > 1:
            return p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
    return False


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


class _Forward:
    """Runs a batch and returns (pre-logits features, logits or None)."""

    def __init__(self, model: nn.Module, want_logits: bool) -> None:
        self.model = model
        self.want_logits = want_logits
        self.timm_style = callable(getattr(model, "forward_features", None)) and callable(
            getattr(model, "forward_head", None)
        )
        self.head = None if self.timm_style else _classifier(model)
        self._captured: list[torch.Tensor] = []
        self._handle = None
        if self.head is not None:
            self._handle = self.head.register_forward_pre_hook(
                lambda _m, args: self._captured.append(args[0])
            )

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        m = self.model
        if self.timm_style:
            ff = m.forward_features(x)
            feats = m.forward_head(ff, pre_logits=True)
            logits = m.forward_head(ff) if self.want_logits else None
            return pool(feats), logits
        out = m(x)
        if self.head is not None and self._captured:
            feats = self._captured.pop()
            self._captured.clear()
            return pool(feats), (out if self.want_logits else None)
        return pool(out), None

    def close(self) -> None:
        if self._handle is not None:
            self._handle.remove()


def load_for_features(name: str, num_classes: int, device: Any = None) -> nn.Module:
    """A catalog model made for feature extraction only: ``create_model(name, num_classes)``,
    eval mode, on ``device``, stored channels-last (faster convolutions)."""
    from ..weights import create_model

    model = create_model(name, num_classes=num_classes)
    if device is not None:
        model = model.to(device)
    return model.eval().to(memory_format=torch.channels_last)


def _layer_hooks(
    model: nn.Module, layers: Sequence[tuple[str, Sequence[str]]], store: dict[str, Any]
) -> list[Any]:
    """Hooks keeping, per group, the output of its module that ran last in the batch."""
    modules = dict(model.named_modules())
    channels_last = str(getattr(model, "output_fmt", "NCHW")).upper().startswith("NHWC")
    handles = []
    for name, paths in layers:
        for path in paths:
            module = modules.get(path)
            if module is None:  # a parameter-only path (a ViT's cls_token): nothing runs
                continue

            def hook(_m: nn.Module, _args: Any, out: Any, name: str = name) -> None:
                store[name] = pool(out, channels_last)

            handles.append(module.register_forward_hook(hook))
    return handles


def backbone_features(
    model: nn.Module,
    data: Any,
    indices: Sequence[int] | None = None,
    *,
    split: str = "train",
    logits: bool = False,
    layers: Sequence[tuple[str, Sequence[str]]] = (),
    batch_size: int = 64,
    progress: Progress | None = None,
    label: str = "",
) -> Features:
    """Features of ``model`` (frozen, eval mode) on items ``indices`` of ``split`` of ``data``.

    ``logits=True`` also keeps the model's own head output (for ImageNet similarity);
    ``layers`` (``[(name, module paths), ...]``, e.g. from ``tlw.layer_groups``) also keeps the
    globally pooled output of each named group. The model's device is used; module modes are
    restored afterwards, and the model's evaluation lock is held throughout (a trainer's run
    of the same model waits). ``progress`` advances by the images done (and cancels).

    >>> out = backbone_features(model, data, logits=True)        # doctest: +SKIP
    >>> out.features.shape, out.logits.shape                     # doctest: +SKIP
    """
    from ..evaluation import model_lock

    start_all = time.perf_counter()
    labels_all = check_data(data, split)
    idx = np.arange(len(labels_all)) if indices is None else np.asarray(indices, dtype=np.int64)
    view = data.with_model(model)
    ds = view.train_loader(augment=False, shuffle=False).dataset if split == "train" else (
        view.valid_ds
    )
    loader = DataLoader(
        Subset(ds, idx.tolist()), batch_size=batch_size, shuffle=False,
        num_workers=getattr(data, "num_workers", 0),
    )
    key = _store_key(model, view, idx, split, logits) if not layers else None
    if key is not None:
        stored = _store().load(key, torch.device("cpu"), required=("features",))
        if stored is not None:
            if progress is not None:
                progress.advance(len(idx), label)
            return Features(
                features=stored["features"].numpy(),
                labels=np.asarray(labels_all, dtype=np.int64)[idx], indices=idx,
                logits=stored["logits"].numpy() if "logits" in stored else None,
                seconds=time.perf_counter() - start_all, from_store=True)
    device = _model_device(model)
    # a model stored channels-last (rank_models converts the ones it loads: ~1.3x faster
    # convolutions on the CPU) gets its input in the same layout
    channels_last = is_channels_last(model)
    start = time.perf_counter()
    feats: list[torch.Tensor] = []
    outs: list[torch.Tensor] = []
    per_layer: dict[str, list[torch.Tensor]] = {name: [] for name, _ in layers}
    store: dict[str, torch.Tensor] = {}
    with model_lock(model):
        modes = [(m, m.training) for m in model.modules()]
        forward = _Forward(model, logits)
        handles = _layer_hooks(model, layers, store)
        try:
            model.eval()
            with torch.inference_mode():
                for x, _ in loader:
                    store.clear()
                    x = x.to(device)
                    if channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    f, out = forward(x)
                    feats.append(f.float().cpu())
                    if out is not None:
                        outs.append(out.float().cpu())
                    for name, kept in per_layer.items():
                        if name in store:
                            kept.append(store[name].float().cpu())
                    if progress is not None:
                        progress.advance(len(x), label)
        finally:
            forward.close()
            for h in handles:
                h.remove()
            for m, was_training in modes:
                m.training = was_training
    result = Features(
        features=torch.cat(feats).numpy(),
        labels=np.asarray(labels_all, dtype=np.int64)[idx],
        indices=idx,
        logits=torch.cat(outs).numpy() if outs else None,
        layers={k: torch.cat(v).numpy() for k, v in per_layer.items() if v},
        seconds=time.perf_counter() - start,
    )
    if key is not None:
        kept = {"features": torch.from_numpy(result.features)}
        if result.logits is not None:
            kept["logits"] = torch.from_numpy(result.logits)
        _store().save(key, kept)
    return result


def _store() -> Any:
    """The feature store (made per call: its folder follows ``TLWIDGETS_CACHE_DIR``)."""
    from ..training.feature_store import FeatureStore

    return FeatureStore()


def _store_key(model: nn.Module, view: Any, idx: np.ndarray, split: str, logits: bool
               ) -> str | None:
    """The feature store's key of this pass (the training feature cache's key, plus the sample,
    the split and whether logits are kept), or None when the data has no files to key on."""
    import hashlib

    from .._runtime import DeviceContext
    from ..training.feature_store import feature_key

    base = feature_key(model, None, view, "ranking", DeviceContext.for_model(model))
    if base is None:
        return None
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{base}|{split}|{logits}|".encode())
    h.update(np.asarray(idx, dtype=np.int64).tobytes())
    return "rank-" + h.hexdigest()
