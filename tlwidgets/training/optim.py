"""The optimizer a run trains with, built in one place (``fit``, ``fine_tune`` and ``lr_find``).

Param groups come from :func:`tlwidgets.param_groups`, so the model's LR multipliers (the
FreezePanel's LR column) and its freeze state decide what trains and how fast; ``lr`` as a slice
gives fastai's discriminative rates.

>>> import timm, tlwidgets as tlw
>>> from tlwidgets.training.optim import build_optimizer
>>> model = timm.create_model("resnet18", pretrained=False, num_classes=3)
>>> tlw.set_lr_multipliers(model, {"head": 10})
>>> opt, peaks, names = build_optimizer(model, "adamw", 1e-3, weight_decay=0.0, device_type="cpu")
>>> names[-1], peaks[-1]
('head', 0.01)
"""

from __future__ import annotations

import importlib
from typing import Any

import torch
from torch import nn

__all__ = ["build_optimizer", "new_optimizer"]


def _freeze_module() -> Any:
    # not `from .. import freeze`: the lazy package API binds that name to the function
    return importlib.import_module("tlwidgets.freeze")


def new_optimizer(name: str, groups: list[dict[str, Any]], lr: float,
                  device_type: str) -> torch.optim.Optimizer:
    """``"adamw"``, ``"adam"`` or ``"sgd"`` (momentum 0.9) over ``groups``: fused kernels on
    CUDA, the multi-tensor (``foreach``) path elsewhere."""
    kwargs: dict[str, Any] = {"fused": True} if device_type == "cuda" else {"foreach": True}
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, **kwargs)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, **kwargs)
    return torch.optim.SGD(groups, lr=lr, momentum=0.9, **kwargs)


def build_optimizer(model: nn.Module, name: str, lr: float | slice, *, weight_decay: float,
                    device_type: str) -> tuple[torch.optim.Optimizer, list[float], list[str]]:
    """The optimizer, the peak learning rate of each of its param groups, and their names.

    ``lr``: a float (every layer group, times its multiplier), ``slice(lo, hi)`` (geometric
    spread from the stem to the head) or ``slice(hi)`` (fastai's: the head at ``hi``, every other
    group at ``hi / 10``).
    """
    fz = _freeze_module()
    if isinstance(lr, slice) and lr.start is not None:
        groups = fz.param_groups(model, lr=lr.stop, lr_min=lr.start, weight_decay=weight_decay)
    elif isinstance(lr, slice):
        head = fz.layer_groups(model)[-1].name
        groups = fz.param_groups(model, lr=lr.stop, weight_decay=weight_decay)
        for g in groups:
            if g.get("group") != head:
                g["lr"] = g["lr"] / 10
    else:
        groups = fz.param_groups(model, lr=float(lr), weight_decay=weight_decay)
    peaks = [float(g["lr"]) for g in groups]
    names = [str(g.get("name", f"group {i}")) for i, g in enumerate(groups)]
    opt = new_optimizer(name, groups, peaks[-1], device_type)
    model.zero_grad(set_to_none=True)
    return opt, peaks, names
