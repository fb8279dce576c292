"""Feature cache: run a frozen backbone once, then train only the head on stored features.

When everything but the classifier is frozen and the frozen part's batch-norm layers do not
update (the BN policy of ``tlwidgets.freeze`` keeps them in eval), the backbone computes the same
features for an image every epoch. Computing them once and training the head on them gives the
same head as training through the whole model (a test checks it) at a fraction of the cost.

The features are the classifier's input, captured by a forward hook on
``model.get_classifier()`` while the model runs in eval mode: for timm models that is exactly
``forward_head(forward_features(x), pre_logits=True)``. timm applies its ``drop_rate`` dropout
functionally just before the classifier, so the cached path applies the same dropout to the
stored features during training.

>>> from tlwidgets.training.feature_cache import cache_decision
>>> decision = cache_decision(model, data, "auto")      # doctest: +SKIP
>>> decision.use, decision.reason                        # doctest: +SKIP
(False, 'the training transform is random (augment="light") ...')
"""

from __future__ import annotations

from collections.abc import Iterator
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .._runtime import DeviceContext, preserved
from .feature_store import FeatureStore, feature_key

__all__ = ["CacheDecision", "FeatureCache", "cache_decision", "classifier_of", "extract_features"]


def classifier_of(model: nn.Module) -> nn.Module | None:
    """The model's classifier module (timm's ``get_classifier()``), or ``None``."""
    get = getattr(model, "get_classifier", None)
    if get is None:
        return None
    try:
        head = get()
    except Exception:  # noqa: BLE001 - a model without a usable head simply cannot be cached
        return None
    return head if isinstance(head, nn.Module) and any(True for _ in head.parameters()) else None


_DROPOUTS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)


def _is_random_in_train(module: nn.Module) -> bool:
    if isinstance(module, _DROPOUTS):
        return float(module.p) > 0
    # timm's DropPath / DropBlock: class name and a drop probability attribute
    name = type(module).__name__.lower()
    if "drop" in name:
        prob = getattr(module, "drop_prob", getattr(module, "p", 0.0))
        return bool(prob and float(prob) > 0)
    return False


@dataclass(frozen=True)
class CacheDecision:
    """Whether to cache, why (said in a ``log`` event), and which train loader to use."""

    use: bool
    reason: str
    augment: Any = None  # passed to data.train_loader(augment=...) for the cached features


def cache_decision(model: nn.Module, data: Any, mode: Any) -> CacheDecision:
    """Decide whether the feature cache applies to ``model`` as it is frozen now.

    ``mode`` is the trainer's ``cache_features``: ``"auto"`` caches only when the training
    transform is deterministic; ``True`` also caches when it is random, by using the
    deterministic (``augment=False``) train loader; ``False`` never caches.

    >>> cache_decision(model, data, False).use               # doctest: +SKIP
    False
    """
    if mode is False:
        return CacheDecision(False, "feature cache off (cache_features=False)")
    head = classifier_of(model)
    if head is None:
        return CacheDecision(
            False, "feature cache off: the model has no get_classifier() head to train alone"
        )
    head_params = {id(p) for p in head.parameters()}
    trainable_outside = [
        n for n, p in model.named_parameters() if p.requires_grad and id(p) not in head_params
    ]
    if trainable_outside:
        return CacheDecision(
            False,
            f"feature cache off: {len(trainable_outside)} parameters outside the head are "
            f"trainable (e.g. {trainable_outside[0]}); it applies when only the head trains",
        )
    if not any(p.requires_grad for p in head.parameters()):
        return CacheDecision(False, "feature cache off: the head is frozen too")
    # What would the backbone do in training mode? Ask the modules after model.train(), which
    # is where the BN policy of tlwidgets.freeze shows (frozen BN stays in eval), then put every
    # module back exactly as it was.
    head_modules = {id(m) for m in head.modules()}
    with preserved(model):
        model.train()
        for name, module in model.named_modules():
            if id(module) in head_modules or not module.training:
                continue
            if isinstance(module, nn.modules.batchnorm._NormBase) and module.track_running_stats:
                return CacheDecision(
                    False,
                    f"feature cache off: batch-norm layer {name!r} outside the head updates its "
                    "statistics in training (BN policy 'train'); freeze with bn='eval' to cache",
                )
            if _is_random_in_train(module):
                return CacheDecision(
                    False,
                    f"feature cache off: {name!r} ({type(module).__name__}) outside the head is "
                    "random in training, so features differ every epoch",
                )
    if getattr(data, "augment_is_random", False):
        aug = getattr(data, "augment", "?")
        if mode is True:
            return CacheDecision(
                True,
                f"feature cache on, without augmentation: the training transform is random "
                f"(augment={aug!r}) and cache_features=True caches the deterministic "
                "(augment=False) images instead",
                augment=False,
            )
        return CacheDecision(
            False,
            f"feature cache off: the training transform is random (augment={aug!r}); pass "
            "cache_features=True to cache the un-augmented images, or augment='none'",
        )
    return CacheDecision(True, "feature cache on: only the head trains and the backbone is fixed")


class _Indices(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def extract_features(model: nn.Module, head: nn.Module, loader: Any, ctx: DeviceContext,
                     progress: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The input of ``head`` for every batch of ``loader`` (model in eval mode, modes put back),
    and the labels, on ``ctx``'s device.

    >>> x, y = extract_features(model, model.get_classifier(), data.valid_loader(), ctx)  # doctest: +SKIP
    """
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, args: tuple[Any, ...]) -> None:
        captured.append(args[0].detach())

    handle = head.register_forward_pre_hook(hook)
    feats, labels = [], []
    try:
        with torch.inference_mode(), preserved(model):
            model.eval()
            for x, y in loader:
                with ctx.autocast():
                    model(ctx.move(x))
                feats.append(captured.pop().float())
                labels.append(ctx.move(y))
                if progress is not None:
                    progress.update(int(y.shape[0]))
    finally:
        handle.remove()
    # inference tensors cannot be saved for backward; the head trains on these
    return torch.cat(feats).clone(), torch.cat(labels).clone()


class FeatureCache:
    """Backbone features of the train and valid splits, kept on the training device.

    ``key`` records what the features depend on (freeze version, loader choice); the trainer
    rebuilds the cache when it changes.
    """

    def __init__(
        self, model: nn.Module, data: Any, decision: CacheDecision, ctx: DeviceContext,
        key: tuple, train_loader: DataLoader, store: FeatureStore | None = None,
        progress: bool = False,
    ) -> None:
        head = classifier_of(model)
        assert head is not None
        self.key = key
        self.head = head
        self.drop_rate = float(getattr(model, "drop_rate", 0.0) or 0.0)
        self.from_disk = False
        t0 = time.perf_counter()
        disk_key = feature_key(model, head, data, decision.augment, ctx) if store else None
        stored = store.load(disk_key, ctx.device) if store and disk_key else None
        if stored is not None:
            self.from_disk = True
            self.train_x, self.train_y = stored["train_x"], stored["train_y"]
            self.valid_x, self.valid_y = stored["valid_x"], stored["valid_y"]
        else:
            self._extract(model, head, data, ctx, train_loader, progress)
            if store is not None and disk_key is not None:
                store.save(disk_key, {"train_x": self.train_x, "train_y": self.train_y,
                                      "valid_x": self.valid_x, "valid_y": self.valid_y})
        self.seconds = time.perf_counter() - t0
        # An index loader sharing the real loader's batch sampler and generator draws the random
        # numbers in the same order as iterating the real loader would, so the cached run sees
        # the batches in the same order as an uncached one.
        self._index_loader = DataLoader(
            _Indices(len(self.train_y)), batch_sampler=train_loader.batch_sampler,
            generator=train_loader.generator, num_workers=0,
        )

    def _extract(self, model: nn.Module, head: nn.Module, data: Any, ctx: DeviceContext,
                 train_loader: DataLoader, progress: bool) -> None:
        # Features in dataset order: the same images the train loader would produce, unshuffled,
        # in batches sized for the device (inference keeps no activations for backward).
        bs = max(train_loader.batch_size or getattr(data, "batch_size", 1) or 1,
                 256 if ctx.device.type == "cuda" else 64)
        workers = getattr(data, "num_workers", 0)
        valid = data.valid_loader()
        # the loaders' own collate (text pads per batch) and their own generator: a loader
        # without one draws its base seed from the global RNG, which would shift the head's
        # dropout masks away from an uncached run's
        splits = [DataLoader(loader.dataset, batch_size=bs, shuffle=False, num_workers=workers,
                             collate_fn=loader.collate_fn, generator=torch.Generator())
                  for loader in (train_loader, valid)]
        bar = None
        if progress:
            from tqdm import tqdm

            total = sum(len(s.dataset) for s in splits)  # type: ignore[arg-type]
            bar = tqdm(total=total, desc="features", unit="img", leave=False, delay=1.0)
        try:
            (self.train_x, self.train_y), (self.valid_x, self.valid_y) = (
                extract_features(model, head, split, ctx, bar) for split in splits)
        finally:
            if bar is not None:
                bar.close()

    def __len__(self) -> int:
        return len(self._index_loader)

    def train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in self._index_loader:
            idx = idx.to(self.train_x.device)
            yield self.train_x[idx], self.train_y[idx]

    def valid_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(0, len(self.valid_y), batch_size):
            yield self.valid_x[i : i + batch_size], self.valid_y[i : i + batch_size]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """The head on cached features, with timm's pre-classifier dropout in training."""
        if self.drop_rate > 0 and self.head.training:
            features = nn.functional.dropout(features, p=self.drop_rate, training=True)
        return self.head(features)
