"""LoRA through peft: adapters trainable and the base frozen (bit-identical after training),
PEFT's trainable share, the merge exact to 1e-5, export merged, errors."""

from __future__ import annotations

import pytest
import torch

import tlwidgets as tlw
from tests.test_text_helpers import MINILM, offline, tiny_bert, tiny_config
from tlwidgets.text import has_lora
from tlwidgets.text.model import TextClassifier


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    offline(monkeypatch)


def batch(n=6, width=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 5000, (n, width), generator=g)
    mask = torch.ones(n, width, dtype=torch.long)
    mask[0, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def train_steps(model, steps=4, lr=1e-2):
    opt = torch.optim.AdamW(tlw.param_groups(model, lr=lr))
    model.train()
    for step in range(steps):
        x = batch(seed=step)
        loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1] * 3))
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_adapters_train_the_base_stays_bit_identical_and_the_merge_is_exact():
    model = tiny_bert()
    base_before = {n: p.detach().clone() for n, p in model.named_parameters()}
    tlw.add_lora(model, r=4, dropout=0.0)
    assert has_lora(model)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("classifier.") for n in trainable)
    assert {"classifier.weight", "classifier.bias"} <= trainable
    assert [g.state for g in tlw.layer_groups(model)] == ["frozen", "partial", "partial",
                                                          "trainable"]
    rows = tlw.trainable_summary(model).set_index("path")
    query = "bert.encoder.layer.0.attention.self.query"
    assert rows.loc[f"{query}.lora_A.default", "state"] == "trainable"
    assert rows.loc[f"{query}.base_layer", "state"] == "frozen"
    train_steps(model)
    for name, p in model.named_parameters():
        if "lora_" in name or name.startswith("classifier."):
            continue
        original = name.replace(".base_layer.", ".")
        assert torch.equal(p, base_before[original]), name
    lora_b = model.get_submodule(f"{query}.lora_B.default").weight
    assert lora_b.abs().sum() > 0  # B starts at zero: it moved
    merged = tlw.merge_lora(model)
    assert not has_lora(merged) and has_lora(model)  # a copy: the trained model keeps adapters
    assert isinstance(merged.get_submodule(query), torch.nn.Linear)
    model.eval(), merged.eval()
    x = batch(seed=99)
    assert torch.allclose(model(x), merged(x), atol=1e-5, rtol=0)
    assert (model(x) - merged(x)).abs().max() < 1e-5
    a = model.get_submodule(f"{query}.lora_A.default").weight
    scale = model.get_submodule(query).scaling["default"]
    expected = base_before[f"{query}.weight"] + scale * lora_b @ a
    assert torch.allclose(merged.get_submodule(query).weight, expected, atol=1e-6)


def test_peft_share_on_minilm_is_a_third_of_a_percent():
    model = tlw.create_model(MINILM, num_classes=2)
    tlw.add_lora(model, r=8)
    # 6 layers x (query, value) x (A: 8x384 + B: 384x8), plus the 384x2 + 2 head
    adapters = 6 * 2 * (8 * 384 + 384 * 8)
    total = 22_565_376 + 770 + adapters
    assert tlw.lora_summary(model) == (
        f"trainable params: {adapters + 770:,d} || all params: {total:,d} || "
        f"trainable%: {100 * (adapters + 770) / total:.4f}"
    )
    assert f"{100 * (adapters + 770) / total:.2f}" == "0.33"


def test_save_pretrained_of_a_lora_model_writes_the_merged_encoder(tmp_path):
    model = tiny_bert()
    tlw.add_lora(model, r=2, dropout=0.0)
    train_steps(model, steps=2)
    folder = model.save_pretrained(tmp_path / "merged")
    back = tlw.create_model(folder, num_classes=2)
    assert not has_lora(back)
    model.eval(), back.eval()
    x = batch(seed=5)
    assert torch.allclose(model(x), back(x), atol=1e-5)


def test_targets_by_family_and_errors():
    distil = TextClassifier.from_config(tiny_config("distilbert"), 2)
    tlw.add_lora(distil, r=2)
    names = {n.split(".")[-4] for n, _ in distil.named_parameters() if "lora_A" in n}
    assert names == {"q_lin", "v_lin"}
    with pytest.raises(tlw.FreezeError, match="already has LoRA adapters"):
        tlw.add_lora(distil)
    model = tiny_bert()
    with pytest.raises(tlw.ConfigError, match="LoRA rank"):
        tlw.add_lora(model, r=0)
    with pytest.raises(tlw.ConfigError, match=r"\['qkv'\] are not in this TextClassifier.*query"):
        tlw.add_lora(model, target_modules=["qkv"])
    with pytest.raises(tlw.ConfigError, match="no LoRA adapters to merge"):
        tlw.merge_lora(model)
    tlw.add_lora(model, r=2, target_modules="query", train_head=False)
    assert not model.classifier.weight.requires_grad
    assert all(".query." in n for n, p in model.named_parameters() if p.requires_grad)
