"""Layer groups of Hugging Face encoders: embeddings, each encoder layer, pooler, head.

A layer below both ``tlwidgets.freeze`` (which asks :func:`hf_group_matcher` for a transformers
model used directly) and ``tlwidgets.text`` (whose ``TextClassifier.group_matcher`` is built
here); torch only, no transformers import. ``tlwidgets.text.groups`` re-exports it.

:func:`encoder_group_matcher` gives a timm-style ``group_matcher`` (a function from parameter
name to an ordinal) for any BERT-family encoder, found from the module tree rather than from
per-family names:

- the **layers** are the ``nn.ModuleList`` of the encoder with the most parameters
  (``encoder.layer`` in BERT, RoBERTa, ELECTRA, DeBERTa; ``transformer.layer`` in DistilBERT;
  ``encoder.albert_layer_groups`` in ALBERT, whose one shared layer is one group);
- the **pooler** is the encoder's ``pooler`` child (BERT's tanh dense, when it is built);
- everything else inside the encoder is **embeddings** (word/position/type embeddings, their
  LayerNorm, ELECTRA's ``embeddings_project``, DeBERTa's shared relative position embeddings,
  MPNet's relative attention bias), the first group;
- everything outside the encoder (the classifier) is the head, last.

``tlwidgets.freeze.layer_groups`` asks a model for ``group_matcher`` (timm's protocol), so a
:class:`~tlwidgets.text.model.TextClassifier` gets ``freeze_to``, presets, LR multipliers,
``trainable_summary`` and the FreezePanel without any text-specific code in ``freeze``.
A parameter shared by two modules (tied weights) appears once, under its first name, so it is
counted once and frozen with its group.

>>> import tlwidgets as tlw                                   # doctest: +SKIP
>>> [g.name for g in tlw.layer_groups(model)]                 # doctest: +SKIP
['bert.embeddings', 'bert.encoder.layer.0', ..., 'bert.encoder.layer.5', 'head']
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

__all__ = [
    "EncoderLayout", "encoder_group_matcher", "encoder_layout", "frozen_units", "hf_group_matcher",
]


@dataclass(frozen=True)
class EncoderLayout:
    """Where the parts of an encoder are, as dotted paths from the model's root."""

    encoder: str  # the transformer backbone ("" when the model is the backbone)
    layers: str  # its ModuleList of layers
    num_layers: int
    pooler: str | None  # its pooler, if it has one with parameters


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def encoder_layout(model: nn.Module, encoder_path: str = "") -> EncoderLayout | None:
    """Find the layer list and pooler inside ``model.get_submodule(encoder_path)``.

    None when there is no ``nn.ModuleList`` of layers with parameters (not an encoder).

    >>> encoder_layout(model, "bert").layers                   # doctest: +SKIP
    'bert.encoder.layer'
    """
    encoder = model.get_submodule(encoder_path) if encoder_path else model
    prefix = f"{encoder_path}." if encoder_path else ""
    best: tuple[int, str, int] | None = None
    for path, module in encoder.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            size = _params(module)
            # ties go to the outermost list (named_modules lists parents first)
            if size > 0 and (best is None or size > best[0]):
                best = (size, path, len(module))
    if best is None:
        return None
    pooler = getattr(encoder, "pooler", None)
    pooler_path = f"{prefix}pooler" if isinstance(pooler, nn.Module) and _params(pooler) else None
    return EncoderLayout(encoder_path, prefix + best[1], best[2], pooler_path)


def _under(name: str, path: str) -> bool:
    return not path or name == path or name.startswith(path + ".")


def encoder_group_matcher(layout: EncoderLayout) -> Callable[[str], tuple[float, ...]]:
    """A timm ``group_matcher`` for ``layout``: parameter name -> ordinal (lower = nearer input).

    >>> matcher = encoder_group_matcher(encoder_layout(model, "bert"))   # doctest: +SKIP
    >>> matcher("bert.encoder.layer.3.output.dense.weight")              # doctest: +SKIP
    (1.0, 3.0)
    """
    layers_prefix = layout.layers + "."

    def ordinal(name: str) -> tuple[float, ...]:
        if name.startswith(layers_prefix):
            index = name[len(layers_prefix):].split(".", 1)[0]
            if index.isdigit():
                return (1.0, float(index))
        if layout.pooler is not None and _under(name, layout.pooler):
            return (2.0,)
        if _under(name, layout.encoder):
            return (0.0,)
        return (math.inf,)

    return ordinal


def frozen_units(model: nn.Module, layout: EncoderLayout) -> list[nn.Module]:
    """The encoder's units (each layer, the pooler, the rest as embeddings) with no trainable
    parameter now: the parts that :class:`TextClassifier` keeps in eval mode while training, so
    a frozen part computes the same features every epoch (no dropout), as frozen BatchNorm
    stays in eval under ``tlwidgets.freeze``'s default policy.

    >>> [type(u).__name__ for u in frozen_units(model, layout)]         # doctest: +SKIP
    ['BertEmbeddings', 'BertLayer', ...]
    """
    layers = model.get_submodule(layout.layers)
    units: list[nn.Module] = list(layers)
    if layout.pooler is not None:
        units.append(model.get_submodule(layout.pooler))
    encoder = model.get_submodule(layout.encoder) if layout.encoder else model
    skip = {id(layers), *(id(u) for u in units)}
    # the embeddings side: every child of the path from the encoder down to the layer list that
    # is not on that path (embeddings, embeddings_project, rel_embeddings, LayerNorm, ...)
    rel = layout.layers[len(layout.encoder) + 1:] if layout.encoder else layout.layers
    parts = rel.split(".")
    node = encoder
    chain = [encoder]
    for part in parts[:-1]:
        node = getattr(node, part)
        chain.append(node)
    for parent in chain:
        for child in parent.children():
            if id(child) in skip or child in chain:
                continue
            units.append(child)
    return [u for u in units if not any(p.requires_grad for p in u.parameters())]


def hf_group_matcher(model: nn.Module) -> Callable[..., Any] | None:
    """A ``group_matcher(coarse=...)`` for a transformers model used directly (say an
    ``AutoModelForSequenceClassification``), or None for any other module.

    ``tlwidgets.freeze.layer_groups`` asks for it when a model has no ``group_matcher`` of its
    own: the encoder's embeddings, each layer and its pooler become groups, and everything
    outside the encoder (the task head) the last group.

    >>> from transformers import AutoConfig, BertForSequenceClassification     # doctest: +SKIP
    >>> [g.name for g in tlw.layer_groups(BertForSequenceClassification(cfg))]  # doctest: +SKIP
    ['bert.embeddings', 'bert.encoder.layer.0', ..., 'bert.pooler', 'classifier']
    """
    if not type(model).__module__.startswith("transformers.") or not hasattr(model, "config"):
        return None
    prefix = getattr(model, "base_model_prefix", "") or ""
    path = prefix if prefix and isinstance(getattr(model, prefix, None), nn.Module) else ""
    layout = encoder_layout(model, path)
    if layout is None:
        return None

    def group_matcher(coarse: bool = True) -> Callable[[str], tuple[float, ...]]:
        return encoder_group_matcher(layout)

    return group_matcher

