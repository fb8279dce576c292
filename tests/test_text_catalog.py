"""text_catalog: the packaged encoder, encoders in the local Hugging Face cache (sized from their
configs on the meta device, and loadable offline by create_model), and the curated list."""

from __future__ import annotations

import pytest
import torch

import tlwidgets as tlw
from tests.test_text_helpers import MINILM, minilm_tokenizer, offline, tiny_bert
from tlwidgets.text.catalog import CURATED_TEXT_MODELS


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    offline(monkeypatch)


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An HF hub cache in its real layout holding one tiny BERT, 'tiny-org/tiny-bert'."""
    import huggingface_hub.constants as hub_constants

    cache = tmp_path / "hub"
    repo = cache / "models--tiny-org--tiny-bert"
    snap = repo / "snapshots" / "0123abcd"
    model = tiny_bert()
    model.encoder.save_pretrained(snap)
    minilm_tokenizer().save_pretrained(snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))  # read at its import
    return model


def test_packaged_cached_and_curated_rows(hf_cache):
    df = tlw.text_catalog().set_index("name")
    assert df.loc[MINILM, "source"] == "packaged" and df.loc[MINILM, "available_offline"]
    assert df.loc[MINILM, "params"] == 22_713_216 and df.loc[MINILM, "licence"] == "Apache-2.0"
    tiny = df.loc["tiny-org/tiny-bert"]
    assert tiny["source"] == "hf cache" and tiny["available_offline"]
    pooler = 32 * 32 + 32  # the base model as transformers builds it has BERT's pooler
    assert tiny["params"] == sum(p.numel() for p in hf_cache.encoder.parameters()) + pooler
    assert (tiny["layers"], tiny["hidden"]) == (2, 32)
    curated = df[df.source == "curated"]
    assert set(curated.index) == set(CURATED_TEXT_MODELS) - {MINILM}
    assert not curated["available_offline"].any()
    assert df.loc["google-bert/bert-base-uncased", "params"] == 109_482_240
    assert df.loc["distilbert/distilbert-base-uncased", "params"] == 66_362_880
    assert df.loc["FacebookAI/xlm-roberta-base", "languages"] == "100 languages"
    assert all(u == f"https://huggingface.co/{n}" for n, u in df["url"].items())


def test_a_cached_encoder_loads_offline_from_the_cache(hf_cache):
    model = tlw.create_model("tiny-org/tiny-bert", num_classes=3)
    assert model.tlw_load_report.source == "the Hugging Face cache (tiny-org/tiny-bert)"
    assert torch.equal(model.bert.encoder.layer[1].output.dense.weight,
                       hf_cache.bert.encoder.layer[1].output.dense.weight)
