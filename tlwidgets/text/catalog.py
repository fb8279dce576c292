"""Text encoders to choose from: the packaged one, those in the local Hugging Face cache, and a
short curated list of well-known encoders, with their size from their configs (built on the
meta device, so nothing is downloaded or allocated).

>>> import tlwidgets as tlw
>>> tlw.text_catalog()[["name", "params", "licence", "available_offline"]]   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pandas as pd

from . import sources

__all__ = ["CURATED_TEXT_MODELS", "text_catalog"]

_CARD = "https://huggingface.co/{}"

#: Well-known encoders: hub id -> (licence, languages, the config's architecture fields as
#: published in that repo's config.json). Sources: each model's card and config.json on the hub.
CURATED_TEXT_MODELS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "sentence-transformers/all-MiniLM-L6-v2": (
        "Apache-2.0", "English",
        dict(model_type="bert", vocab_size=30522, hidden_size=384, num_hidden_layers=6,
             num_attention_heads=12, intermediate_size=1536)),
    "sentence-transformers/all-mpnet-base-v2": (
        "Apache-2.0", "English",
        dict(model_type="mpnet", vocab_size=30527, hidden_size=768, num_hidden_layers=12,
             num_attention_heads=12, intermediate_size=3072, max_position_embeddings=514)),
    "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2": (
        "Apache-2.0", "50+ languages",
        dict(model_type="bert", vocab_size=250037, hidden_size=384, num_hidden_layers=12,
             num_attention_heads=12, intermediate_size=1536)),
    "BAAI/bge-small-en-v1.5": (
        "MIT", "English",
        dict(model_type="bert", vocab_size=30522, hidden_size=384, num_hidden_layers=12,
             num_attention_heads=12, intermediate_size=1536)),
    "google-bert/bert-base-uncased": (
        "Apache-2.0", "English",
        dict(model_type="bert", vocab_size=30522, hidden_size=768, num_hidden_layers=12,
             num_attention_heads=12, intermediate_size=3072)),
    "distilbert/distilbert-base-uncased": (
        "Apache-2.0", "English",
        dict(model_type="distilbert", vocab_size=30522, dim=768, n_layers=6, n_heads=12,
             hidden_dim=3072)),
    "FacebookAI/roberta-base": (
        "MIT", "English",
        dict(model_type="roberta", vocab_size=50265, hidden_size=768, num_hidden_layers=12,
             num_attention_heads=12, intermediate_size=3072, max_position_embeddings=514,
             type_vocab_size=1)),
    "FacebookAI/xlm-roberta-base": (
        "MIT", "100 languages",
        dict(model_type="xlm-roberta", vocab_size=250002, hidden_size=768, num_hidden_layers=12,
             num_attention_heads=12, intermediate_size=3072, max_position_embeddings=514,
             type_vocab_size=1)),
    "microsoft/deberta-v3-base": (
        "MIT", "English",
        dict(model_type="deberta-v2", vocab_size=128100, hidden_size=768, num_hidden_layers=12,
             num_attention_heads=12, intermediate_size=3072, relative_attention=True,
             position_buckets=256, norm_rel_ebd="layer_norm", share_att_key=True,
             pos_att_type=["p2c", "c2p"], position_biased_input=False, max_relative_positions=-1,
             type_vocab_size=0)),
    "google/electra-small-discriminator": (
        "Apache-2.0", "English",
        dict(model_type="electra", vocab_size=30522, embedding_size=128, hidden_size=256,
             num_hidden_layers=12, num_attention_heads=4, intermediate_size=1024)),
}


def _config_from_fields(fields: dict[str, Any]) -> Any:
    from transformers import AutoConfig

    fields = dict(fields)
    return AutoConfig.for_model(fields.pop("model_type"), **fields)


def _size(config: Any) -> dict[str, Any]:
    """Parameters of the base model (no head) built on the meta device, and its shape."""
    import torch
    from transformers import AutoModel

    from .model import quiet_transformers

    with quiet_transformers(), torch.device("meta"):
        model = AutoModel.from_config(config)
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", None)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "layers": int(layers or 0),
        "hidden": int(config.hidden_size),
        "model_type": config.model_type,
    }


@functools.cache
def _curated_size(name: str) -> tuple[tuple[str, Any], ...]:
    return tuple(_size(_config_from_fields(CURATED_TEXT_MODELS[name][2])).items())


def _folder_size(folder: Path) -> dict[str, Any] | None:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
        return _size(config)
    except (OSError, ValueError, json.JSONDecodeError):
        return None


def text_catalog(include_cache: bool = True) -> pd.DataFrame:
    """One row per text encoder: ``name``, ``source`` (``packaged``, ``hf cache``, ``curated``),
    ``params`` (the encoder without a head), ``layers``, ``hidden``, ``model_type``,
    ``licence``, ``languages``, ``available_offline``, ``url`` (its model card).

    Packaged and cached models are sized from their own ``config.json``; curated ones from the
    published config fields kept here. All are built on the meta device: no download, no memory.

    >>> df = tlw.text_catalog()                                         # doctest: +SKIP
    >>> df[df.available_offline].name.tolist()                          # doctest: +SKIP
    ['sentence-transformers/all-MiniLM-L6-v2']
    """
    offline = sources.offline_text_models() if include_cache else {
        n: p for n in sources.PACKAGED_TEXT_MODELS
        if (p := sources.packaged_text_model_path(n)) is not None}
    rows = []
    for name, folder in offline.items():
        size = _folder_size(folder)
        if size is None:
            continue
        curated = CURATED_TEXT_MODELS.get(name)
        packaged = name in sources.PACKAGED_TEXT_MODELS
        rows.append({
            "name": name, "source": "packaged" if packaged else "hf cache", **size,
            "licence": sources.PACKAGED_TEXT_MODELS[name][3] if packaged else
            (curated[0] if curated else ""),
            "languages": curated[1] if curated else "",
            "available_offline": True, "url": _CARD.format(name),
        })
    seen = {r["name"] for r in rows}
    for name, (licence, languages, _) in CURATED_TEXT_MODELS.items():
        if name in seen:
            continue
        rows.append({"name": name, "source": "curated", **dict(_curated_size(name)),
                     "licence": licence, "languages": languages, "available_offline": False,
                     "url": _CARD.format(name)})
    columns = ["name", "source", "params", "layers", "hidden", "model_type", "licence",
               "languages", "available_offline", "url"]
    return pd.DataFrame(rows, columns=columns)
