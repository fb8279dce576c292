"""What a model is, in words: its name, the label of a run on it, its BN policy.

>>> import timm
>>> run_label(timm.create_model("resnet18", pretrained=False, num_classes=2))
'resnet18 · random init · all'
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from torch import nn

from .._runtime import preserved

__all__ = ["model_name", "run_label", "bn_policy_now"]


def _fz() -> Any:
    return importlib.import_module("tlwidgets.freeze")  # the package binds `freeze` to the function


def model_name(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    name = cfg.get("architecture") if isinstance(cfg, dict) else None
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name or type(model).__name__))


def run_label(model: nn.Module) -> str:
    """A label that tells runs apart: architecture, where its weights came from, what trains.

    >>> import timm
    >>> m = timm.create_model("resnet18", pretrained=False, num_classes=2)
    >>> run_label(m)
    'resnet18 · random init · all'
    """
    report = getattr(model, "tlw_load_report", None)
    weights = "pretrained" if report is not None and getattr(report, "matched", None) \
        else "random init"
    try:
        groups = _fz().layer_groups(model)
        trainable = [g.trainable_params > 0 for g in groups]
    except Exception:  # noqa: BLE001 - a label must never fail
        trainable = []
    if not trainable or all(trainable):
        what = "all"
    elif trainable[-1] and not any(trainable[:-1]):
        what = "head"
    elif len(trainable) > 2 and all(trainable[-2:]) and not any(trainable[:-2]):
        what = "last stage + head"
    elif not any(trainable):
        what = "nothing"
    else:
        what = f"{sum(trainable)} of {len(trainable)} groups"
    return f"{model_name(model)} · {weights} · {what}"


def bn_policy_now(model: nn.Module) -> str:
    """``"frozen"`` (timm's FrozenBatchNorm layers), ``"eval"`` (frozen BN held in eval mode) or
    ``"train"``: the BN policy a checkpoint records, read from the model as it is."""
    with preserved(model):
        model.train()
        frozen = any("FrozenBatchNorm" in type(m).__name__ for m in model.modules())
        held = any(isinstance(m, nn.modules.batchnorm._NormBase) and not m.training
                   for m in model.modules())
    return "frozen" if frozen else ("eval" if held else "train")
