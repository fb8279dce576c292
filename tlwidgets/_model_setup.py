"""Checks and settings around building a model in :func:`tlwidgets.create_model`: whether it
fits in memory at all (before anything is allocated), what trains (``freeze=``), and that in
words for the load report; and :func:`load_weights`, whose report says it too. These sit above
:mod:`tlwidgets.freeze`; the reading and fitting below it (``_weights_io``, ``_weights_fit``).

>>> from tlwidgets._model_setup import check_freeze
>>> check_freeze("head")  # a preset name, an int, or None pass; anything else is ConfigError
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ._weights_fit import LoadReport, load_into, model_label
from .errors import ConfigError, TLWidgetsError

# tlwidgets.freeze (and pandas with it) is imported by the functions that need it, so importing
# tlwidgets.weights stays as cheap as torch and timm make it

__all__ = [
    "check_fits_in_memory",
    "check_freeze",
    "describe_trainable",
    "freeze_and_watch",
    "load_weights",
]

# Class counts above this are checked against memory before the model is built: real ones stay
# far below it (ImageNet-21k has 21,843), and the check builds the model on the meta device.
_CHECKED_NUM_CLASSES = 100_000


def _size_text(n_bytes: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n_bytes >= size:
            return f"{n_bytes / size:,.1f} {unit}"
    return f"{n_bytes:,.0f} bytes"


def check_fits_in_memory(timm_name: str, num_classes: int, kwargs: dict[str, Any]) -> None:
    """Refuse a model whose parameters would take more than half of this machine's memory
    (a classifier of num_classes=10**9 is terabytes), before anything is allocated."""
    if num_classes <= _CHECKED_NUM_CLASSES:
        return
    import timm

    try:
        with torch.device("meta"):  # shapes only: nothing is allocated
            meta = timm.create_model(timm_name, num_classes=num_classes, **kwargs)
    except Exception:  # noqa: BLE001 - the real build reports bad arguments itself
        return
    n_bytes = sum(t.numel() * t.element_size() for t in meta.state_dict().values())
    get = getattr(meta, "get_classifier", None)
    head = get() if callable(get) else None
    head_params = sum(p.numel() for p in head.parameters()) if isinstance(head, nn.Module) else 0
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): assume 64 GB
        memory = 64 * 10**9
    if n_bytes <= memory / 2:
        return
    raise ConfigError(
        f"num_classes={num_classes:,} would give {model_label(meta)} a classifier of "
        f"{head_params:,} weights: the model would take {_size_text(n_bytes)}, and this "
        f"machine has {_size_text(memory)} of memory (tlwidgets refuses a model larger than half "
        f"of it before allocating anything). A classifier has one output per class of your "
        f"data: use num_classes=len(data.classes)."
    )


def _short_count(n: int) -> str:
    for unit, size in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:,}"


def describe_trainable(model: nn.Module) -> str:
    """What trains in ``model`` now, in words: ``"5,124 of 3.4M parameters (head only)"``.

    Counts come from :func:`tlwidgets.freeze.parameters_with_owners`/``param_counts`` (a
    ``"frozen"``-policy BatchNorm counts as frozen), the words from its layer groups.

    >>> import timm, tlwidgets as tlw
    >>> model = timm.create_model("resnet18", pretrained=False)
    >>> tlw.apply_preset(model, "head")
    >>> from tlwidgets._model_setup import describe_trainable
    >>> describe_trainable(model)
    '513,000 of 11.7M parameters (head only)'
    """
    from .freeze import layer_groups, param_counts, parameters_with_owners

    total = trainable = 0
    for _, p, owner in parameters_with_owners(model):
        n, t = param_counts(p, owner)
        total, trainable = total + n, trainable + t
    if trainable == 0:
        what = "nothing: every layer is frozen"
    elif trainable == total:
        what = "everything"
    else:
        try:
            states = [(g.name, g.state) for g in layer_groups(model)]
        except TLWidgetsError:
            states = []
        training = [i for i, (_, state) in enumerate(states) if state != "frozen"]
        if not training:
            what = "partly frozen"
        elif training == [len(states) - 1]:
            what = "head only" if states[-1][1] == "trainable" else "part of the head"
        elif training == [len(states) - 2, len(states) - 1]:
            what = f"{states[-2][0]} and the head; the layers before are frozen"
        elif training == list(range(training[0], len(states))):
            what = f"from {states[training[0]][0]} to the head; the layers before are frozen"
        else:
            names = [states[i][0] for i in training]
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            what = f"the groups {shown}; the rest is frozen"
    return f"{trainable:,} of {_short_count(total)} parameters ({what})"


def check_freeze(freeze: Any) -> None:
    """Refuse a ``freeze=`` that is not None, a preset name or an int, before any model is built
    (an int out of range is for :func:`tlwidgets.freeze_to` to refuse, naming the groups)."""
    from .freeze import PRESETS

    if freeze is None or type(freeze) is int or (isinstance(freeze, str) and freeze in PRESETS):
        return
    presets = "; ".join(f"{k!r}: {v}" for k, v in PRESETS.items())
    raise ConfigError(
        f"freeze must be None (everything trains), a preset name or a layer-group index for "
        f"tlw.freeze_to (-1: the head only), not {freeze!r}. The presets: {presets}."
    )


def freeze_and_watch(model: nn.Module, freeze: str | int | None) -> nn.Module:
    """Apply ``freeze`` and let the load report say what trains."""
    from .freeze import apply_preset, freeze_to

    if isinstance(freeze, str):
        apply_preset(model, freeze)
    elif freeze is not None:
        freeze_to(model, freeze)
    report = getattr(model, "tlw_load_report", None)
    if isinstance(report, LoadReport):
        report.watch(model, describe_trainable)
    return model


def load_weights(
    model: nn.Module,
    path_or_state_dict: str | os.PathLike[str] | Mapping[str, Any],
    strict_shapes: bool = True,
) -> LoadReport:
    """Load a weights file (or state dict) into ``model`` and report what went where.

    ``.safetensors`` is read with safetensors; ``.pth/.pt/.bin`` with
    ``torch.load(weights_only=True)`` only, so a pickle that would run code raises
    :class:`~tlwidgets.errors.UnsafeWeightsError` unexecuted. Wrapped checkpoints
    (``{"state_dict": ...}``, ``{"model": ...}``, ``{"ema": ...}``) are unwrapped. Keys match by
    name, then by name without ``module.``/``model.``/``backbone.``/``_orig_mod.``, then by order
    with every shape checked. A classifier of another class count is skipped (``report.skipped``).
    Other shape differences raise :class:`~tlwidgets.errors.WeightsMismatchError` naming the
    first ones, unless ``strict_shapes=False``, which skips them instead. A file with many
    tensors the model has no place for (weights for another architecture, e.g. resnet34's for a
    resnet18: every resnet18 name is in it) still loads what fits, and says so in
    ``report.warnings`` and a ``UserWarning``, naming the file's architecture when it is a
    near one in timm.

    >>> import tlwidgets as tlw
    >>> model = tlw.create_model("resnet18", num_classes=3, weights="none")  # doctest: +SKIP
    >>> report = tlw.load_weights(model, "checkpoints/best.pth")            # doctest: +SKIP
    >>> print(report)                                                        # doctest: +SKIP
    Loaded 122 of 122 model tensors by name from checkpoints/best.pth
      trainable: 11,178,051 of 11.2M parameters (everything)

    ``report.trainable`` (a line of ``str(report)``) says what trains in ``model`` now.
    """
    report = load_into(model, path_or_state_dict, strict_shapes)
    report.watch(model, describe_trainable)
    return report
