"""What the text tests share: the real MiniLM tokenizer, tiny random encoders, small labelled
text. (No tests here; the module is imported by tests/test_text_*.py.)"""

from __future__ import annotations

import functools

import pytest
import torch

MINILM = "sentence-transformers/all-MiniLM-L6-v2"

POSITIVE = [
    "a warm, funny and moving film", "the best performance of the year", "i loved every minute",
    "a beautiful, clever story", "sharp writing and a great cast", "delightful from start to end",
    "an absolute joy to watch", "smart, tender and surprising", "wonderful music and acting",
    "a triumph of a movie", "charming and heartfelt", "brilliantly made and very entertaining",
]
NEGATIVE = [
    "a dull, lifeless mess", "the worst film i have seen", "boring from the first scene",
    "clumsy writing and a wasted cast", "painfully slow and silly", "an ugly, pointless sequel",
    "i wanted my money back", "tedious, loud and empty", "flat acting and a stupid plot",
    "a complete disaster", "lazy and predictable", "awful dialogue and no story",
]


def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@functools.lru_cache(maxsize=1)
def minilm_tokenizer():
    from tlwidgets.text.batching import resolve_tokenizer

    return resolve_tokenizer(MINILM)


def reviews_frame():
    import pandas as pd

    texts = POSITIVE + NEGATIVE
    labels = ["pos"] * len(POSITIVE) + ["neg"] * len(NEGATIVE)
    return pd.DataFrame({"text": texts, "label": labels})


def tiny_config(model_type: str = "bert", vocab_size: int = 30522, **overrides):
    from transformers import AutoConfig

    kw = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
              vocab_size=vocab_size, max_position_embeddings=128)
    if model_type == "distilbert":
        kw = dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64, vocab_size=vocab_size,
                  max_position_embeddings=128)
    kw.update(overrides)
    return AutoConfig.for_model(model_type, **kw)


def tiny_bert(num_classes: int = 2, seed: int = 0, pooling: str = "mean", layers=-1, **config):
    """A 2-layer, 32-wide random BERT with the real MiniLM tokenizer (its 30,522-token vocab)."""
    from tlwidgets.text.model import TextClassifier

    torch.manual_seed(seed)
    return TextClassifier.from_config(tiny_config("bert", **config), num_classes,
                                      tokenizer=minilm_tokenizer(), pooling=pooling, layers=layers)
