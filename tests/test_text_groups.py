"""Layer groups and freezing on text encoders: complete and ordered groups on MiniLM and on BERT,
DistilBERT, RoBERTa, DeBERTa-v2 and ELECTRA (built from their configs on the meta device), the
freeze machinery unchanged on them, frozen parts deterministic and bit-identical after training,
tied weights counted once."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig

import tlwidgets as tlw
from tests.test_text_helpers import MINILM, offline, tiny_bert, tiny_config
from tlwidgets.text.model import TextClassifier
from tlwidgets.training.feature_cache import cache_decision


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    offline(monkeypatch)


FAMILIES = {
    # model type -> (config overrides, the layer list's path, what the first group holds)
    "bert": ({}, "bert.encoder.layer", ["bert.embeddings"]),
    "distilbert": ({}, "distilbert.transformer.layer", ["distilbert.embeddings"]),
    "roberta": ({}, "roberta.encoder.layer", ["roberta.embeddings"]),
    # DeBERTa-v3 style: relative attention with shared, normalised position embeddings and the
    # convolution after the first layer, all of which belong to the input side
    "deberta-v2": (dict(relative_attention=True, position_biased_input=False,
                        norm_rel_ebd="layer_norm", conv_kernel_size=3, pos_att_type=["p2c", "c2p"]),
                   "deberta.encoder.layer",
                   ["deberta.embeddings", "deberta.encoder.rel_embeddings",
                    "deberta.encoder.LayerNorm", "deberta.encoder.conv"]),
    "electra": ({}, "electra.encoder.layer", ["electra.embeddings", "electra.embeddings_project"]),
}


def check_groups(model, layers_path, first_paths, pooler=None):
    groups = tlw.layer_groups(model)
    names = [n for n, _ in model.named_parameters()]
    owned = [n for g in groups for n in g.param_names]
    assert sorted(owned) == sorted(names)  # every parameter in exactly one group
    assert sum(g.params for g in groups) == sum(p.numel() for p in model.parameters())
    n_layers = len(model.get_submodule(layers_path))
    expected = [*[f"{layers_path}.{i}" for i in range(n_layers)], *([pooler] if pooler else [])]
    assert sorted(groups[0].paths) == sorted(first_paths)
    assert [g.paths for g in groups[1:-1]] == [[p] for p in expected]
    assert [g.name for g in groups[1:-1]] == expected
    assert groups[-1].name == "head" and groups[-1].paths == ["classifier"]
    return groups


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_groups_complete_and_ordered_on_full_size_configs_on_meta(model_type):
    overrides, layers_path, first = FAMILIES[model_type]
    with torch.device("meta"):
        model = TextClassifier.from_config(AutoConfig.for_model(model_type, **overrides), 3)
    assert next(model.parameters()).device.type == "meta"
    groups = check_groups(model, layers_path, first)
    config = model.config
    assert len(groups) == getattr(config, "num_hidden_layers", getattr(config, "n_layers", 0)) + 2
    # the fine grouping is the same one-group-per-layer; trainable_summary works on meta
    assert [g.name for g in tlw.layer_groups(model, fine=True)] == [g.name for g in groups]
    summary = tlw.trainable_summary(model, depth=1)
    assert summary["params"].sum() == sum(p.numel() for p in model.parameters())


def test_groups_with_the_bert_pooler_and_on_the_real_minilm():
    with torch.device("meta"):
        model = TextClassifier.from_config(AutoConfig.for_model("bert"), 2, pooling="pooler")
    check_groups(model, "bert.encoder.layer", ["bert.embeddings"], pooler="bert.pooler")
    minilm = tlw.create_model(MINILM, num_classes=2)
    groups = check_groups(minilm, "bert.encoder.layer", ["bert.embeddings"])
    assert len(groups) == 8 and groups[-1].params == 384 * 2 + 2


def test_freeze_to_presets_and_summary_work_unchanged_on_a_bert():
    model = tiny_bert()
    tlw.freeze_to(model, -1)
    assert [g.state for g in tlw.layer_groups(model)] == ["frozen"] * 3 + ["trainable"]
    tlw.apply_preset(model, "last-stage")
    assert [g.state for g in tlw.layer_groups(model)] == ["frozen"] * 2 + ["trainable"] * 2
    rows = tlw.trainable_summary(model).set_index("path")
    assert rows.loc["bert.encoder.layer.0", "state"] == "frozen"
    assert rows.loc["bert.encoder.layer.1.attention", "state"] == "trainable"
    assert rows.loc["bert.encoder.layer.1", "group"] == "bert.encoder.layer.1"
    assert rows.loc["bert", "state"] == "partial"
    # LayerNorm is not BatchNorm: no BN policy column value, and its weights freeze with the layer
    assert rows.loc["bert.embeddings.LayerNorm", "bn"] == ""
    assert not model.bert.embeddings.LayerNorm.weight.requires_grad
    with pytest.raises(tlw.FreezeError, match="between -4 and 4"):
        tlw.freeze_to(model, 5)


def test_discriminative_rates_and_multipliers_follow_the_groups():
    model = tiny_bert()
    tlw.apply_preset(model, "all")
    groups = tlw.param_groups(model, lr=1e-3, lr_min=1e-5)
    rates = {g["group"]: g["lr"] for g in groups}
    order = [g.name for g in tlw.layer_groups(model)]
    assert [rates[n] for n in order] == sorted(rates[n] for n in order)
    assert rates["bert.embeddings"] == pytest.approx(1e-5) and rates["head"] == pytest.approx(1e-3)
    tlw.set_lr_multipliers(model, {"bert.encoder.layer.0": 0.1})
    assert tlw.lr_multipliers(model)["bert.encoder.layer.0"] == pytest.approx(0.1)


def test_frozen_encoder_runs_without_dropout_in_training_so_the_feature_cache_applies():
    model = tiny_bert()
    batch = {"input_ids": torch.randint(1000, 2000, (4, 9)), "attention_mask": torch.ones(4, 9,
                                                                                           dtype=torch.long)}
    tlw.apply_preset(model, "all")
    model.train()
    assert not torch.equal(model.pool(batch), model.pool(batch))  # dropout in a trained encoder
    tlw.freeze_to(model, -1)
    model.train()
    assert model.training and model.classifier.training
    assert not model.bert.encoder.layer[0].training and not model.bert.embeddings.training
    assert torch.equal(model.pool(batch), model.pool(batch))
    data = type("Data", (), {"augment_is_random": False})()
    assert cache_decision(model, data, "auto").use
    tlw.freeze_to(model, -2)
    model.train()
    assert model.bert.encoder.layer[1].training and not model.bert.encoder.layer[0].training
    assert not cache_decision(model, data, "auto").use
    model.eval()
    assert not any(m.training for m in model.modules())


def test_frozen_parameters_are_bit_identical_after_training():
    model = tiny_bert()
    tlw.freeze_to(model, -2)  # the last layer and the head train
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(tlw.param_groups(model, lr=1e-2, weight_decay=0.01))
    torch.manual_seed(0)
    model.train()
    for _ in range(3):
        batch = {"input_ids": torch.randint(1000, 5000, (8, 12))}
        loss = torch.nn.functional.cross_entropy(model(batch), torch.randint(0, 2, (8,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    trained = {g.name for g in tlw.layer_groups(model) if g.state == "trainable"}
    assert trained == {"bert.encoder.layer.1", "head"}
    for name, p in model.named_parameters():
        if name.startswith(("bert.encoder.layer.1.", "classifier.")):
            continue
        assert torch.equal(p, before[name]), name
    assert not torch.equal(model.bert.encoder.layer[1].output.dense.weight,
                           before["bert.encoder.layer.1.output.dense.weight"])


def test_tied_weights_are_counted_once_and_frozen_together():
    from transformers import BertForMaskedLM

    model = BertForMaskedLM(tiny_config("bert", vocab_size=500))
    decoder, embedding = model.cls.predictions.decoder, model.bert.embeddings.word_embeddings
    assert decoder.weight is embedding.weight
    unique = sum(p.numel() for p in model.parameters())
    groups = tlw.layer_groups(model)
    assert [g.name for g in groups][:2] == ["bert.embeddings", "bert.encoder.layer.0"]
    assert sum(g.params for g in groups) == unique
    summary = tlw.trainable_summary(model, depth=1)
    assert summary["params"].sum() == unique
    tlw.freeze(model, groups[0])
    assert not decoder.weight.requires_grad  # the same tensor: frozen with the embeddings
    assert tlw.trainable_summary(model, depth=1).set_index("path").loc["bert", "state"] == "partial"


def test_hf_sequence_classifier_used_directly_gets_encoder_groups():
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification(tiny_config("bert", vocab_size=500))
    names = [g.name for g in tlw.layer_groups(model)]
    assert names == ["bert.embeddings", "bert.encoder.layer.0", "bert.encoder.layer.1",
                     "bert.pooler", "classifier"]
