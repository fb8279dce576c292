"""Backbone features kept on disk, so the next head-only run on the same data skips extraction.

The feature cache (:mod:`.feature_cache`) computes the frozen backbone's output once per run; this
store keeps it between runs and sessions: the next head-only ``fit()``, an ``lr_find`` on the head,
the Studio's next run and a ranking of backbones reuse it. An entry is keyed by everything the
features depend on, and is recomputed when any of it changes:

- the backbone's weights (a hash of every tensor outside the classifier) and which parameters
  are frozen;
- the data's files (path, size and modification time of every training and validation image,
  and its label) — data made from arrays in memory is not stored; for text data
  (``modality == "text"``) its ``fingerprint()`` instead: the token ids and labels of both
  splits, ``max_length`` and the tokenizer, so the same sentences tokenized alike read the store
  and a changed text, label, split or ``max_length`` does not;
- the transform (the eval transform's description and the data's preprocessing config, the
  augmentation choice), the model's class and architecture, and the device type and autocast
  dtype the features were computed with.

Entries are safetensors files under ``$TLWIDGETS_CACHE_DIR/features`` (default
``~/.cache/tlwidgets/features``), at most ``TLWIDGETS_FEATURE_CACHE_MB`` megabytes in all (default
2,048): the least recently used go first. ``FeatureStore().clear()`` empties it.

>>> store = FeatureStore()                  # doctest: +SKIP
>>> store.size_bytes(), store.clear()       # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .._runtime import DeviceContext, atomic_write

__all__ = ["FeatureStore", "feature_key"]

_FORMAT = "1"


def _cache_root() -> Path:
    env = os.environ.get("TLWIDGETS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "tlwidgets"


def feature_key(model: nn.Module, head: nn.Module | None, data: Any, augment: Any,
                ctx: DeviceContext) -> str | None:
    """The store key of these features, or ``None`` when the data has no files to key on (and
    is not text, which is keyed on its token ids: ``data.fingerprint()``).
    The weights of ``head`` are left out (a head that trains does not change its input); with
    ``head=None`` every weight counts (features that include the model's own logits)."""
    # text data names its own content (token ids, labels, max_length, tokenizer); image data
    # is keyed on its files
    fingerprint = getattr(data, "fingerprint", None) \
        if getattr(data, "modality", None) == "text" else None
    items = [] if callable(fingerprint) else \
        list(getattr(data, "train_items", [])) + list(getattr(data, "valid_items", []))
    if not callable(fingerprint) and (not items or any(path is None for path, _ in items)):
        return None
    h = hashlib.blake2b(digest_size=16)
    h.update(f"format {_FORMAT}|{type(model).__qualname__}|".encode())
    cfg = getattr(model, "pretrained_cfg", None) or {}
    h.update(f"{cfg.get('architecture', '') if isinstance(cfg, dict) else ''}|".encode())
    head_path = next((n for n, m in model.named_modules() if m is head), "")
    prefix = f"{head_path}." if head_path else ""
    for name, t in model.state_dict().items():
        if head_path and (name == head_path or name.startswith(prefix)):
            continue
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    h.update(bytes(p.requires_grad for p in model.parameters()))
    if callable(fingerprint):
        # and how the encoder's output becomes the head's input (not in its weights)
        h.update(f"text {fingerprint()}|{getattr(model, 'pooling', None)}|"
                 f"{getattr(model, 'layers', None)}\n".encode())
    for path, label in items:
        try:
            st = os.stat(path)
            h.update(f"{path}|{st.st_size}|{st.st_mtime_ns}|{label}\n".encode())
        except OSError:
            return None
    h.update(repr(getattr(data, "eval_transform", None)).encode())
    h.update(repr(sorted((getattr(data, "data_config", {}) or {}).items())).encode())
    h.update(f"|{augment!r}|{ctx.device.type}|{ctx.amp_dtype}".encode())
    return h.hexdigest()


class FeatureStore:
    """The on-disk store of backbone features (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str] | None = None,
                 max_bytes: int | None = None) -> None:
        self.root = Path(root) if root is not None else _cache_root() / "features"
        if max_bytes is None:
            mb = os.environ.get("TLWIDGETS_FEATURE_CACHE_MB", "2048")
            try:
                max_bytes = int(float(mb) * 1024 * 1024)
            except ValueError:
                max_bytes = 2048 * 1024 * 1024
        self.max_bytes = max_bytes

    def path(self, key: str) -> Path:
        return self.root / f"{key}.safetensors"

    def load(self, key: str, device: torch.device,
             required: tuple[str, ...] = ("train_x", "train_y", "valid_x", "valid_y")
             ) -> dict[str, torch.Tensor] | None:
        """The stored tensors of ``key`` on ``device``, or ``None`` (missing, unreadable, or
        without the ``required`` names)."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            tensors = load_file(str(path), device=str(device))
            os.utime(path)  # recently used
        except Exception:  # noqa: BLE001 - a damaged entry is recomputed, never fatal
            path.unlink(missing_ok=True)
            return None
        if not set(required) <= set(tensors):
            return None
        return tensors

    def save(self, key: str, tensors: dict[str, torch.Tensor]) -> bool:
        """Store ``tensors`` under ``key`` (atomically), then evict the least recently used
        entries beyond the size bound. Returns False when it could not write (never raises)."""
        cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        size = sum(v.numel() * v.element_size() for v in cpu.values())
        if size > self.max_bytes:
            return False
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path(key), lambda tmp: save_file(cpu, tmp))
        except OSError:
            return False
        self.evict(keep=key)
        return True

    def entries(self) -> list[Path]:
        return sorted(self.root.glob("*.safetensors"), key=lambda p: p.stat().st_mtime) \
            if self.root.is_dir() else []

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.entries())

    def evict(self, keep: str | None = None) -> None:
        entries = self.entries()
        total = sum(p.stat().st_size for p in entries)
        for p in entries:  # oldest first
            if total <= self.max_bytes:
                break
            if keep is not None and p.stem == keep:
                continue
            total -= p.stat().st_size
            p.unlink(missing_ok=True)

    def clear(self) -> int:
        """Remove every stored entry; returns how many."""
        entries = self.entries()
        for p in entries:
            p.unlink(missing_ok=True)
        return len(entries)
