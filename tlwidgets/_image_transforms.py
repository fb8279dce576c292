"""Transforms and data configs: the preprocessing a model's pretrained config asks for
(timm's ``resolve_model_data_config``), the augment levels and the ``img_size`` check.

>>> from PIL import Image
>>> cfg = resolve_data_config(None, img_size=64)
>>> build_transform(cfg, "none", train=False)(Image.new("RGB", (80, 60))).shape
torch.Size([3, 64, 64])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .errors import DataError

__all__ = [
    "AUGMENT_CHOICES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MAX_IMG_SIZE",
    "build_transform",
    "check_augment",
    "check_img_size",
    "resolve_data_config",
]

#: Accepted values of ``augment``.
AUGMENT_CHOICES: tuple[str, ...] = ("none", "light", "standard")

#: The largest ``img_size`` accepted: one 4096 px RGB image is 200 MB as a float tensor.
MAX_IMG_SIZE: int = 4096

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def resolve_data_config(model: Any = None, img_size: int | None = None) -> dict[str, Any]:
    """The preprocessing config for ``model``: ``input_size``, ``interpolation``, ``mean``,
    ``std``, ``crop_pct``, ``crop_mode``.

    ``model`` is a timm model (its ``pretrained_cfg`` is used), a timm model name, a dict of
    those keys, or None (ImageNet mean/std, 224 px, bicubic). ``img_size`` overrides the size.

    >>> cfg = resolve_data_config(None, img_size=64)
    >>> cfg["input_size"], cfg["mean"]
    ((3, 64, 64), (0.485, 0.456, 0.406))
    """
    import timm.data

    img_size = check_img_size(img_size)
    if model is None:
        cfg: dict[str, Any] = {
            "input_size": (3, 224, 224),
            "interpolation": "bicubic",
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
            "crop_pct": 0.875,
            "crop_mode": "center",
        }
    elif isinstance(model, dict):
        cfg = timm.data.resolve_data_config(args={}, pretrained_cfg=dict(model))
    elif isinstance(model, str):
        import timm.models

        try:
            pretrained_cfg = timm.models.get_pretrained_cfg(model)
        except Exception:
            pretrained_cfg = None
        if pretrained_cfg is None:
            raise DataError(
                f"No timm model or pretrained config is named {model!r}; pass a timm model, "
                "its name (e.g. 'resnet18.a1_in1k') or None for ImageNet defaults."
            )
        cfg = timm.data.resolve_data_config(args={}, pretrained_cfg=pretrained_cfg.to_dict())
    elif isinstance(model, torch.nn.Module):
        if getattr(model, "pretrained_cfg", None):
            cfg = timm.data.resolve_model_data_config(model)
        else:
            # a plain torch module without timm's cfg: the ImageNet defaults are the best guess
            cfg = resolve_data_config(None)
    else:
        raise DataError(
            f"model must be a timm model, a timm model name, a config dict or None; "
            f"got {type(model).__name__}."
        )
    cfg = dict(cfg)
    cfg["mean"] = tuple(float(v) for v in cfg["mean"])
    cfg["std"] = tuple(float(v) for v in cfg["std"])
    cfg["input_size"] = tuple(int(v) for v in cfg["input_size"])
    fixed = _fixed_input_size(model)
    if fixed is not None:
        # a ViT-style model built with img_size=N accepts only N x N, whatever its pretrained
        # cfg says; feeding it the cfg's size would fail deep inside the patch embedding
        if img_size is not None and (int(img_size), int(img_size)) != fixed:
            raise DataError(
                f"img_size={img_size} does not fit the model, which accepts only "
                f"{fixed[0]}x{fixed[1]} images; pass img_size={fixed[0]} or create the model "
                "with dynamic_img_size=True."
            )
        cfg["input_size"] = (cfg["input_size"][0], *fixed)
    if img_size is not None:
        cfg["input_size"] = (cfg["input_size"][0], int(img_size), int(img_size))
    return cfg


def check_img_size(img_size: Any) -> int | None:
    """``img_size`` as an int in [1, MAX_IMG_SIZE], or None; a DataError naming the fix.

    >>> check_img_size(128), check_img_size(None)
    (128, None)
    """
    if img_size is None:
        return None
    if isinstance(img_size, (bool, np.bool_)) or not isinstance(img_size, (int, np.integer)):
        hint = ""
        if isinstance(img_size, (float, np.floating)) and math.isfinite(img_size):
            hint = f" (img_size={round(img_size)}?)"
        raise DataError(
            f"img_size must be a whole number of pixels, e.g. img_size=224{hint}, or None for "
            f"the model's own size; got {img_size!r} ({type(img_size).__name__})."
        )
    size = int(img_size)
    if size < 1:
        raise DataError(
            f"img_size={size} is not a size: pass a positive number of pixels (e.g. 224, most "
            "pretrained models' size; 64-128 trains faster on a CPU), or None."
        )
    if size > MAX_IMG_SIZE:
        raise DataError(
            f"img_size={size} is too large: one {size} px image alone is "
            f"{size * size * 12 / 2**30:.1f} GiB as a float tensor. Use at most {MAX_IMG_SIZE} "
            "(pretrained models use 224-518)."
        )
    return size



def _fixed_input_size(model: Any) -> tuple[int, int] | None:
    """(H, W) when a timm model only accepts one input size (strict patch embedding)."""
    embed = getattr(model, "patch_embed", None) if isinstance(model, torch.nn.Module) else None
    if embed is None or not getattr(embed, "strict_img_size", False):
        return None
    if getattr(embed, "dynamic_img_pad", False):
        return None
    size = getattr(embed, "img_size", None)
    if size is None:
        return None
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    return int(h), int(w)


def check_augment(augment: Any) -> str:
    """``augment`` as one of :data:`AUGMENT_CHOICES` (None/False -> "none", True -> "light");
    a DataError naming the choices for anything else.

    >>> check_augment(True), check_augment(None), check_augment("standard")
    ('light', 'none', 'standard')
    """
    if augment is None or augment is False:
        return "none"
    if augment is True:
        return "light"
    if isinstance(augment, str) and augment in AUGMENT_CHOICES:
        return augment
    raise DataError(
        f"augment={augment!r} is not understood; use one of "
        f"{', '.join(map(repr, AUGMENT_CHOICES))} (or False for no augmentation)."
    )


def build_transform(
    cfg: dict[str, Any], augment: str, train: bool
) -> Callable[[Any], torch.Tensor]:
    """PIL RGB image -> normalised CHW float tensor, following ``cfg`` (timm's
    ``create_transform``); ``augment`` applies only when ``train``.

    >>> tf = build_transform(resolve_data_config(None, img_size=32), "light", train=True)
    """
    from timm.data import create_transform

    size = cfg["input_size"]
    common = dict(
        input_size=size,
        interpolation=cfg.get("interpolation", "bicubic"),
        mean=cfg["mean"],
        std=cfg["std"],
    )
    if not train or augment == "none":
        return create_transform(
            **common,
            is_training=False,
            crop_pct=cfg.get("crop_pct"),
            crop_mode=cfg.get("crop_mode"),
        )
    if augment == "light":
        # mild crops and flips only: strong enough to help small datasets, gentle enough that a
        # few epochs of head training still converge
        return create_transform(
            **common, is_training=True, scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3), hflip=0.5,
            color_jitter=None,
        )
    return create_transform(**common, is_training=True)

