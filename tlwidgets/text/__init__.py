"""Text transfer learning: Hugging Face encoders with the same freezing, loop and evaluation.

- :class:`TextData` (``from_csv``, ``from_dataframe``, ``from_folder``) and
  :func:`sample_text_data`: labelled texts tokenized by the model's fast tokenizer;
- :class:`TextClassifier`: an encoder, mean pooling and a fresh linear head, which
  ``tlw.create_model("<org/name>" or a folder, num_classes)`` returns (the rule is in
  :mod:`tlwidgets.text.sources`);
- :func:`add_lora`, :func:`merge_lora`, :func:`lora_summary`: LoRA adapters through ``peft``.

Layer groups (embeddings, each encoder layer, pooler, head) come through the timm
``group_matcher`` protocol (:mod:`tlwidgets.text.groups`), so ``tlw.freeze_to``, the presets,
LR multipliers, ``trainable_summary`` and the FreezePanel work on these models unchanged.

>>> import tlwidgets as tlw
>>> model = tlw.create_model("sentence-transformers/all-MiniLM-L6-v2", 2)  # doctest: +SKIP
>>> data = tlw.sample_text_data(model=model)                                # doctest: +SKIP
>>> tlw.freeze_to(model, -1)                                                # doctest: +SKIP
"""

from __future__ import annotations

from .._lazy import lazy_getattr
from .sources import PACKAGED_TEXT_MODELS, is_text_model, offline_text_models

_LAZY = {
    "TextData": ".data",
    "sample_text_data": ".samples",
    "TextClassifier": ".model",
    "create_text_model": ".loading",
    "add_lora": ".lora",
    "merge_lora": ".lora",
    "has_lora": ".lora",
    "lora_summary": ".lora",
    "text_catalog": ".catalog",
}

__all__ = [
    "PACKAGED_TEXT_MODELS",
    "TextClassifier",
    "TextData",
    "add_lora",
    "create_text_model",
    "has_lora",
    "is_text_model",
    "lora_summary",
    "merge_lora",
    "offline_text_models",
    "sample_text_data",
    "text_catalog",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(__all__)
