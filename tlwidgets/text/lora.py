"""LoRA as the other way to freeze: low-rank adapters from ``peft``, the base weights frozen.

:func:`add_lora` injects peft's LoRA layers into a :class:`~tlwidgets.text.model.TextClassifier`
in place (peft's ``LoraModel`` tuner, the same layers ``get_peft_model`` builds), freezes every
base weight and leaves the adapters and the fresh head trainable. The model stays a
``TextClassifier``: the Trainer, ``layer_groups`` (the adapters sit inside their encoder layer's
group, which shows as ``partial``), ``trainable_summary`` and the FreezePanel see it as any other
model. :func:`merge_lora` folds the adapters into the base weights (peft's
``merge_and_unload``) for export: the merged model computes the same logits with plain
``nn.Linear`` layers.

>>> import tlwidgets as tlw
>>> model = tlw.create_model("sentence-transformers/all-MiniLM-L6-v2", 2)     # doctest: +SKIP
>>> tlw.add_lora(model, r=8)                                                # doctest: +SKIP
>>> print(tlw.lora_summary(model))                                          # doctest: +SKIP
trainable params: 74,498 || all params: 22,639,874 || trainable%: 0.3291
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ..errors import ConfigError, FreezeError

__all__ = ["add_lora", "has_lora", "lora_summary", "lora_targets", "merge_lora"]

_TUNER_ATTR = "_tlw_lora_tuner"
# attention projections, by family: BERT/RoBERTa/ELECTRA/ALBERT, DistilBERT, DeBERTa, MPNet
_QUERY_VALUE = ("query", "value", "q_lin", "v_lin", "query_proj", "value_proj", "q", "v")


def _is_tuner_layer(module: nn.Module) -> bool:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return isinstance(module, BaseTunerLayer)


def has_lora(model: nn.Module) -> bool:
    """Whether ``model`` holds LoRA adapters (added by :func:`add_lora`).

    >>> has_lora(model)                                     # doctest: +SKIP
    False
    """
    if model.__dict__.get(_TUNER_ATTR) is not None:
        return True
    try:
        return any(_is_tuner_layer(m) for m in model.modules())
    except ImportError:
        return False


def lora_targets(model: nn.Module) -> list[str]:
    """The names of the linear layers LoRA adapts by default: the attention's query and value
    projections (peft's defaults for BERT, RoBERTa, ELECTRA, DeBERTa; the same roles for
    DistilBERT's ``q_lin``/``v_lin`` and MPNet's ``q``/``v``).

    >>> lora_targets(model)                                  # doctest: +SKIP
    ['query', 'value']
    """
    found: list[str] = []
    for name, module in model.named_modules():
        last = name.rsplit(".", 1)[-1]
        if isinstance(module, nn.Linear) and last in _QUERY_VALUE and last not in found:
            found.append(last)
    # "q"/"v" only for models without the longer names (MPNet), never both families
    long_names = [n for n in found if len(n) > 1]
    return long_names or found


def add_lora(
    model: nn.Module,
    r: int = 8,
    alpha: float | None = None,
    dropout: float = 0.1,
    target_modules: Sequence[str] | str | None = None,
    train_head: bool = True,
) -> nn.Module:
    """Add LoRA adapters (rank ``r``) to ``model`` in place and freeze everything else.

    ``alpha`` defaults to ``r`` (scale 1, peft's default ``lora_alpha=8`` for ``r=8``);
    ``target_modules`` to :func:`lora_targets` (query and value projections). With
    ``train_head`` (default) the classifier stays trainable, as a fresh head must. Returns the
    model (the same object) for chaining.

    >>> import tlwidgets as tlw
    >>> model = tlw.create_model("sentence-transformers/all-MiniLM-L6-v2", 2)  # doctest: +SKIP
    >>> model = tlw.add_lora(model)                                            # doctest: +SKIP
    >>> [g.state for g in tlw.layer_groups(model)][:3]                         # doctest: +SKIP
    ['frozen', 'partial', 'partial']
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(f"add_lora needs a torch model, got {type(model).__name__}.")
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ConfigError(f"r (the LoRA rank) must be a positive integer, got {r!r}; 8 is usual.")
    if not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}.")
    if has_lora(model):
        raise FreezeError(
            "this model already has LoRA adapters; add them once (merge_lora(model) returns a "
            "copy with the adapters folded in)."
        )
    try:
        from peft import LoraConfig
        from peft.tuners.lora import LoraModel
    except ImportError as err:
        raise ConfigError(
            "add_lora needs the peft package: pip install 'tlwidgets[text]' (or pip install peft)."
        ) from err
    targets = [target_modules] if isinstance(target_modules, str) else target_modules
    targets = list(targets) if targets is not None else lora_targets(model)
    names = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if name}
    unknown = [t for t in targets if t not in names]
    if not targets or unknown:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                         if isinstance(m, nn.Linear)})
        raise ConfigError(
            f"LoRA target modules {unknown or targets} are not in this "
            f"{type(model).__name__}; its linear layers are named {', '.join(linear)}. Pass "
            "target_modules=[...] with some of those."
        )
    config = LoraConfig(r=r, lora_alpha=float(alpha if alpha is not None else r),
                        lora_dropout=float(dropout), target_modules=targets, bias="none")
    from ..freeze import freeze, unfreeze

    tuner = LoraModel(model, config, "default")  # injects the adapters into model in place
    object.__setattr__(model, _TUNER_ATTR, tuner)  # not a submodule: model.modules() unchanged
    # peft already froze the base; say it through freeze's own calls too, so panels and the
    # trainer (freeze_version) see the change and frozen parts keep their eval policy
    trained: list[Any] = [p for n, p in model.named_parameters() if "lora_" in n]
    head = getattr(model, "get_classifier", lambda: None)()
    if train_head and isinstance(head, nn.Module):
        trained.append(head)
    freeze(model)
    unfreeze(model, trained)
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with its LoRA adapters folded into the base weights (peft's
    ``merge_and_unload``): plain ``nn.Linear`` layers again, the same outputs.

    >>> merged = tlw.merge_lora(model)                        # doctest: +SKIP
    >>> merged.save_pretrained("out/sentiment")              # doctest: +SKIP
    """
    tuner = model.__dict__.get(_TUNER_ATTR)
    if tuner is None:
        raise ConfigError("this model has no LoRA adapters to merge; add them with tlw.add_lora.")
    from .model import TextClassifier, copy_model

    dup = copy_model(model) if isinstance(model, TextClassifier) else _deepcopy(model)
    dup_tuner = dup.__dict__.pop(_TUNER_ATTR)
    merged = dup_tuner.merge_and_unload()
    return merged


def _deepcopy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model)


def lora_summary(model: nn.Module) -> str:
    """PEFT's ``print_trainable_parameters`` line for ``model`` (any model, LoRA or not).

    >>> lora_summary(model)                                   # doctest: +SKIP
    'trainable params: 74,498 || all params: 22,639,874 || trainable%: 0.3291'
    """
    trainable, total = trainable_counts(model)
    pct = 100.0 * trainable / total if total else 0.0
    return f"trainable params: {trainable:,d} || all params: {total:,d} || trainable%: {pct:.4f}"


def trainable_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable, all) parameter counts, each shared tensor once (peft's count)."""
    trainable = total = 0
    for p in model.parameters():  # parameters() yields a tied tensor once
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total

