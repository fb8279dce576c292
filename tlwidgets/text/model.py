"""A Hugging Face encoder with a pooling step and a fresh linear head, as one ``nn.Module``.

:class:`TextClassifier` is what ``tlw.create_model("<org/name or folder>", num_classes)``
returns. It speaks the protocol the rest of tlwidgets uses for timm models:

- ``forward(batch)`` takes the dict of tensors a :class:`~tlwidgets.text.data.TextData` loader
  yields (``input_ids``, ``attention_mask``, and ``token_type_ids`` where the model uses them)
  and returns logits ``(batch, num_classes)``;
- ``get_classifier()`` is the ``nn.Linear`` head, whose input is the pooled sentence vector (so
  the trainer's feature cache stores one vector per text when only the head trains);
- ``group_matcher()`` gives the layer groups (embeddings, each encoder layer, pooler, head: see
  :mod:`tlwidgets.text.groups`); ``pretrained_cfg``, ``num_classes``, ``tlw_load_report``;
- ``train()`` keeps fully frozen parts of the encoder in eval mode, so they run without dropout
  and a frozen encoder gives the same features every epoch (as frozen BatchNorm layers stay in
  eval under ``tlwidgets.freeze``'s default policy).

Pooling: ``"mean"`` (default) averages the last hidden states over the real tokens, which is how
all-MiniLM-L6-v2 was trained (its ``1_Pooling`` config): a logistic head on mean-pooled features
scored 0.95 on a 5-class news task where the CLS pooler's output scored 0.89-0.91
(DESIGN.md). ``"cls"`` takes the first token's hidden state; ``"pooler"`` the model's own
pooler output (BERT's tanh dense over ``[CLS]``; only for models that have one).

``layers``: ``-1`` (default) pools the last layer; ``"all"`` averages the pooled outputs of
every encoder layer, which a frozen encoder's head can read sentiment from better: MiniLM on
Rotten Tomatoes, 3,000 training sentences, logistic head, 0.730 from the last layer, 0.761 from
layer 5, 0.769 averaged over layers 1-6 (measured here, 2026-12-01).

>>> import tlwidgets as tlw
>>> model = tlw.create_model("sentence-transformers/all-MiniLM-L6-v2", 2)  # doctest: +SKIP
>>> model(model.tokenizer(["a fine film"], return_tensors="pt")).shape      # doctest: +SKIP
torch.Size([1, 2])
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._hf_groups import EncoderLayout, encoder_group_matcher, encoder_layout, frozen_units
from ..errors import (
    ConfigError,
)

__all__ = ["HEAD_FILE", "POOLINGS", "TEXT_CONFIG_FILE", "TextClassifier"]

POOLINGS = ("mean", "cls", "pooler")
#: Files save_pretrained writes beside the encoder's own config.json and model.safetensors.
HEAD_FILE = "tlwidgets_head.safetensors"
TEXT_CONFIG_FILE = "tlwidgets_text.json"
_RESERVED_PREFIXES = ("classifier", "tokenizer", "pooling", "training")


class TextClassifier(nn.Module):
    """``encoder`` (a Hugging Face base model) -> pooling -> dropout -> ``nn.Linear`` head.

    Build one with ``tlw.create_model(name, num_classes)`` or, from a config without weights,
    :meth:`from_config`. The encoder sits under its ``base_model_prefix`` (``bert``,
    ``distilbert``, ``roberta``, ...), so state-dict keys read like the Hugging Face
    ``...ForSequenceClassification`` ones (``bert.encoder.layer.0...``, ``classifier.weight``).

    >>> from transformers import AutoConfig
    >>> cfg = AutoConfig.for_model("bert", hidden_size=32, num_hidden_layers=2,
    ...                            num_attention_heads=2, intermediate_size=64, vocab_size=99)
    >>> model = TextClassifier.from_config(cfg, num_classes=3)
    >>> model({"input_ids": torch.tensor([[2, 5, 7]])}).shape
    torch.Size([1, 3])
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int,
        pooling: str = "mean",
        drop_rate: float | None = None,
        tokenizer: Any = None,
        name: str | None = None,
        layers: Any = -1,
    ) -> None:
        super().__init__()
        num_classes = check_num_classes(num_classes)
        if pooling not in POOLINGS:
            raise ConfigError(
                f"pooling must be one of {', '.join(map(repr, POOLINGS))}, not {pooling!r}; "
                "'mean' averages the token vectors (how sentence encoders are trained)."
            )
        config = getattr(encoder, "config", None)
        if config is None or not hasattr(config, "hidden_size"):
            raise ConfigError(
                f"TextClassifier needs a Hugging Face encoder (a transformers PreTrainedModel "
                f"with a config), got {type(encoder).__name__}."
            )
        if getattr(config, "is_encoder_decoder", False):
            raise ConfigError(
                f"{type(encoder).__name__} is an encoder-decoder model; text classification "
                "here needs an encoder such as BERT, RoBERTa, DeBERTa or a sentence-transformers "
                "model."
            )
        prefix = getattr(encoder, "base_model_prefix", "") or "encoder"
        if prefix in _RESERVED_PREFIXES or not prefix.isidentifier():
            prefix = "encoder"
        self.encoder_name = prefix
        self.add_module(prefix, encoder)
        if drop_rate is None:
            drop_rate = getattr(config, "classifier_dropout", None)
            if drop_rate is None:
                drop_rate = getattr(config, "hidden_dropout_prob", getattr(config, "dropout", 0.1))
        self.drop_rate = float(drop_rate or 0.0)
        self.pooling = pooling
        self.layers = check_layers(layers, config, pooling)
        self.num_classes = num_classes
        self.classifier = nn.Linear(int(config.hidden_size), num_classes)
        self.tokenizer = tokenizer
        self.tlw_load_report: Any = None
        self._layout = encoder_layout(self, prefix)
        if pooling == "pooler" and (self._layout is None or self._layout.pooler is None):
            raise ConfigError(
                f"pooling='pooler' needs a model with a pooler layer; {type(encoder).__name__} "
                "has none here. Use pooling='mean' (or 'cls')."
            )
        self._accepts = _forward_arguments(encoder)
        self.pretrained_cfg: dict[str, Any] = {
            "architecture": name or getattr(config, "_name_or_path", "") or type(encoder).__name__,
            "model_type": getattr(config, "model_type", ""),
            "num_classes": num_classes,
            "classifier": "classifier",
            "pooling": pooling,
            "layers": self.layers,
            "hidden_size": int(config.hidden_size),
            "max_length": _model_max_length(config, tokenizer),
            "modality": "text",
        }

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, config: Any, num_classes: int, tokenizer: Any = None,
                    pooling: str = "mean", drop_rate: float | None = None, layers: Any = -1,
                    **model_kwargs: Any) -> TextClassifier:
        """A randomly initialised classifier for a transformers config (no files, no network;
        under ``torch.device("meta")`` nothing is even allocated).

        >>> from transformers import AutoConfig
        >>> with torch.device("meta"):
        ...     big = TextClassifier.from_config(AutoConfig.for_model("bert"), num_classes=2)
        >>> sum(p.numel() for p in big.parameters())
        108893186
        """
        from transformers import AutoModel

        with quiet_transformers():
            kwargs = pooling_kwargs(AutoModel, config, pooling) | model_kwargs
            encoder = AutoModel.from_config(config, **kwargs)
        return cls(encoder, num_classes, pooling=pooling, drop_rate=drop_rate,
                   tokenizer=tokenizer, layers=layers)

    @property
    def encoder(self) -> nn.Module:
        """The Hugging Face base model (``BertModel``, ``RobertaModel``, ...)."""
        return getattr(self, self.encoder_name)

    @property
    def config(self) -> Any:
        """The encoder's transformers config (peft reads ``model_type`` from it)."""
        return self.encoder.config

    def get_classifier(self) -> nn.Module:
        """The linear head (its input: the pooled sentence vectors)."""
        return self.classifier

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the head by a fresh zero-initialised one with ``num_classes`` outputs.

        >>> model.reset_classifier(5)                            # doctest: +SKIP
        """
        num_classes = check_num_classes(num_classes)
        w = self.classifier.weight
        self.classifier = nn.Linear(w.shape[1], num_classes, device=w.device, dtype=w.dtype)
        if w.device.type != "meta":
            zero_head(self.classifier)
        self.num_classes = num_classes
        self.pretrained_cfg["num_classes"] = num_classes

    def group_matcher(self, coarse: bool = True) -> Any:
        """timm's protocol: parameter name -> group ordinal (embeddings, layers, pooler, head).

        One group per encoder layer at both granularities: a BERT has few, large layers.
        """
        if self._layout is None:
            return lambda name: (0.0,) if not name.startswith("classifier.") else (math.inf,)
        return encoder_group_matcher(self._layout)

    @property
    def layout(self) -> EncoderLayout | None:
        """Where the embeddings, layers and pooler are (dotted paths)."""
        return self._layout

    # ------------------------------------------------------------------ running
    def train(self, mode: bool = True) -> TextClassifier:
        """Set train/eval mode; fully frozen encoder parts stay in eval (no dropout) in training."""
        super().train(mode)
        if mode and self._layout is not None:
            for unit in frozen_units(self, self._layout):
                unit.eval()
        return self

    def _inputs(self, batch: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        if isinstance(batch, torch.Tensor):
            batch = {"input_ids": batch}
        if not isinstance(batch, Mapping) or "input_ids" not in batch:
            got = type(batch).__name__ if not isinstance(batch, Mapping) else sorted(batch)
            raise ConfigError(
                f"a TextClassifier takes a dict of tensors with 'input_ids' (and "
                f"'attention_mask'), as TextData's loaders yield, or a tensor of token ids; got "
                f"{got}. Tokenize first: model(model.tokenizer(texts, padding=True, "
                "return_tensors='pt'))."
            )
        inputs = {k: v for k, v in batch.items() if k in self._accepts and v is not None}
        ids = inputs["input_ids"]
        mask = inputs.get("attention_mask")
        if mask is None:
            pad = getattr(self.config, "pad_token_id", None)
            mask = (ids != pad).long() if pad is not None else torch.ones_like(ids)
            if "attention_mask" in self._accepts:
                inputs["attention_mask"] = mask
        return inputs, mask

    def pool(self, batch: Any) -> torch.Tensor:
        """The pooled sentence vectors ``(batch, hidden)``: what the head sees (before dropout).

        With ``layers`` other than ``-1`` the vector is the average over those layers' outputs
        of their own pooling (mean over the real tokens, or the first token).
        """
        inputs, mask = self._inputs(batch)
        several = self.layers != -1
        out = self.encoder(**inputs, output_hidden_states=True) if several else \
            self.encoder(**inputs)
        if self.pooling == "pooler":
            return out.pooler_output
        if several:
            states = out.hidden_states
            picked = range(1, len(states)) if self.layers == "all" else self.layers
            return torch.stack([self._pool_one(states[i], mask) for i in picked]).mean(0)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        return self._pool_one(hidden, mask)

    def _pool_one(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            return hidden[:, 0]
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)

    def forward(self, batch: Any) -> torch.Tensor:
        """Logits ``(batch, num_classes)`` for a dict of token tensors (or a tensor of ids)."""
        pooled = self.pool(batch)
        if self.drop_rate > 0:
            # functional, as timm's drop_rate: the feature cache re-applies it to stored vectors
            pooled = nn.functional.dropout(pooled, p=self.drop_rate, training=self.training)
        return self.classifier(pooled)

    @torch.no_grad()
    def embed(self, texts: str | Sequence[str], batch_size: int = 32,
              max_length: int | None = None, normalize: bool = False) -> torch.Tensor:
        """Pooled sentence vectors of ``texts`` in eval mode (sentence-transformers' encode).

        >>> v = model.embed(["A man is eating food.", "A man eats a meal."])   # doctest: +SKIP
        >>> float(torch.cosine_similarity(v[0], v[1], dim=0)) > 0.5          # doctest: +SKIP
        True
        """
        if self.tokenizer is None:
            raise ConfigError(
                "this TextClassifier has no tokenizer (built from a config); pass token tensors "
                "to model.pool(...) or build it with tlw.create_model(name, num_classes)."
            )
        if isinstance(texts, str):
            texts = [texts]
        limit = max_length or self.pretrained_cfg.get("max_length") or 512
        device = next(self.parameters()).device
        modes = [(m, m.training) for m in self.modules()]
        out = []
        try:
            self.eval()
            for i in range(0, len(texts), batch_size):
                enc = self.tokenizer(list(texts[i:i + batch_size]), padding=True,
                                     truncation=True, max_length=limit, return_tensors="pt")
                out.append(self.pool({k: v.to(device) for k, v in enc.items()}).float().cpu())
        finally:
            for m, was in modes:
                m.training = was
        vectors = torch.cat(out) if out else torch.zeros(0, self.classifier.in_features)
        return nn.functional.normalize(vectors, dim=1) if normalize else vectors

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, folder: str | os.PathLike[str], classes: Sequence[str] | None = None,
                        ) -> Path:
        """Write a Hugging Face folder: the encoder (``config.json``, ``model.safetensors``,
        LoRA adapters merged in), the tokenizer, the head (``tlwidgets_head.safetensors``) and
        ``tlwidgets_text.json`` (classes, pooling, dropout). ``tlw.create_model(folder, k)``
        loads it back, head included when ``k`` matches; ``AutoModel.from_pretrained(folder)``
        loads the encoder alone.

        >>> model.save_pretrained("out/sentiment", classes=data.classes)     # doctest: +SKIP
        PosixPath('out/sentiment')
        """
        from safetensors.torch import save_file

        from .lora import has_lora, merge_lora

        model = merge_lora(self) if has_lora(self) else self
        path = Path(folder).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        with quiet_transformers():
            model.encoder.save_pretrained(path)
            if model.tokenizer is not None:
                model.tokenizer.save_pretrained(path)
        head = {k: v.detach().cpu().contiguous() for k, v in model.classifier.state_dict().items()}
        save_file(head, str(path / HEAD_FILE))
        meta = {
            "num_classes": model.num_classes,
            "classes": list(classes) if classes is not None else None,
            "pooling": model.pooling,
            "layers": model.layers,
            "drop_rate": model.drop_rate,
            "architecture": model.pretrained_cfg.get("architecture"),
            "max_length": model.pretrained_cfg.get("max_length"),
        }
        (path / TEXT_CONFIG_FILE).write_text(json.dumps(meta, indent=2))
        return path

    def __repr__(self) -> str:
        return (
            f"TextClassifier({self.pretrained_cfg['architecture']!r}, "
            f"{type(self.encoder).__name__}, pooling={self.pooling!r}, "
            f"num_classes={self.num_classes})\n" + super().__repr__()
        )


# ------------------------------------------------------------------------------------------
# helpers


def check_layers(layers: Any, config: Any, pooling: str) -> Any:
    """``-1`` (the last layer), ``"all"`` (every encoder layer's output averaged) or a tuple of
    hidden-state indices (0 is the embeddings' output, ``num_hidden_layers`` the last)."""
    if layers == -1 or layers == "all":
        picked = layers
    elif isinstance(layers, int) and not isinstance(layers, bool):
        picked = (layers,)
    elif isinstance(layers, (list, tuple)) and layers and all(
            isinstance(i, int) and not isinstance(i, bool) for i in layers):
        picked = tuple(layers)
    else:
        picked = None
    n = int(getattr(config, "num_hidden_layers", 0) or getattr(config, "n_layers", 0))
    if picked is None or (isinstance(picked, tuple) and n and
                          not all(-(n + 1) <= i <= n for i in picked)):
        raise ConfigError(
            f"layers must be -1 (the last layer), 'all' (every encoder layer averaged) or hidden-"
            f"state indices 0..{n or 'L'} (0 = embeddings), got {layers!r}."
        )
    if picked != -1 and pooling == "pooler":
        raise ConfigError("pooling='pooler' reads the pooler's output; it takes no layers=.")
    return picked


def check_num_classes(num_classes: Any) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(
            f"num_classes must be a whole number of classes (1 or more), not {num_classes!r}. "
            "Use data.num_classes for your dataset."
        )
    return num_classes


def _forward_arguments(encoder: nn.Module) -> frozenset[str]:
    params = inspect.signature(encoder.forward).parameters
    varargs = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    return frozenset(n for n, p in params.items() if p.kind not in varargs)


def _model_max_length(config: Any, tokenizer: Any) -> int | None:
    limits = [getattr(config, "max_position_embeddings", None)]
    tok_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_max, int) and tok_max < 1_000_000:
        limits.append(tok_max)
    limits = [x for x in limits if isinstance(x, int) and x > 0]
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert") and limits:
        # RoBERTa's position ids start after the padding index: 514 positions hold 512 tokens
        limits = [min(limits[0], 512), *limits[1:]]
    return min(limits) if limits else None


def pooling_kwargs(auto_cls: Any, config: Any, pooling: str) -> dict[str, Any]:
    model_cls = auto_cls._model_mapping.get(type(config), None)
    if model_cls is None:
        return {}
    if "add_pooling_layer" in inspect.signature(model_cls.__init__).parameters:
        return {"add_pooling_layer": pooling == "pooler"}
    return {}


def zero_head(head: nn.Linear) -> None:
    """Zero a fresh head: the first logits are all 0 (loss ln k), as weights.create_model does."""
    with torch.no_grad():
        head.weight.zero_()
        if head.bias is not None:
            head.bias.zero_()


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bars for the duration (tlwidgets keeps
    its own report on ``model.tlw_load_report``)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def copy_model(model: TextClassifier) -> TextClassifier:
    """A deep copy (tokenizer shared: it holds no trainable state)."""
    tok = model.tokenizer
    model.tokenizer = None
    try:
        dup = copy.deepcopy(model)
    finally:
        model.tokenizer = tok
    dup.tokenizer = tok
    return dup
