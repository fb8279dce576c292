"""trainer.export of a text model: a Hugging Face folder (encoder with LoRA merged, tokenizer, head,
classes) and a sidecar that describes text; reloaded with tlw.create_model it predicts what the
trainer's predict did; TorchScript takes the tokenizer's tensors; ONNX and clashes are refused."""

from __future__ import annotations

import json

import pytest
import torch

import tlwidgets as tlw
from tests.test_text_helpers import offline, reviews_frame, tiny_bert
from tlwidgets.errors import ConfigError, ExportError

SENTENCES = ["a wonderful, moving film", "dull and lifeless",
             "the plot made no sense but the music was lovely and the cast seemed to enjoy it"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    offline(monkeypatch)
    monkeypatch.chdir(tmp_path)


def trained(lora: bool = False, max_length: int = 16):
    model = tiny_bert(num_classes=2)
    data = tlw.TextData.from_dataframe(reviews_frame(), model=model, batch_size=4,
                                       valid_pct=0.25, max_length=max_length)
    if lora:
        tlw.add_lora(model, r=2)
    else:
        tlw.freeze_to(model, -2)
    t = tlw.Trainer(model, data, epochs=1, lr=1e-2, verbose=False, seed=0)
    t.fit()
    return t


def probs_of(model, meta, texts):
    batch = model.tokenizer(texts, truncation=True, max_length=meta["max_length"],
                            padding=True, return_tensors="pt")
    with torch.no_grad():
        return model.eval()(dict(batch)).softmax(1)


def trainer_probs(t, texts):
    out = t.predict(texts, k=t.data.num_classes)
    k = t.data.num_classes
    probs = torch.zeros(len(texts), k)
    for i, row in out.iterrows():
        for r in range(1, k + 1):
            probs[i, t.data.classes.index(row[f"class_{r}"])] = row[f"prob_{r}"]
    return probs


@pytest.mark.parametrize("lora", [False, True], ids=["top-layer", "lora"])
def test_export_reloads_with_create_model_and_predicts_as_the_trainer(tmp_path, lora):
    t = trained(lora=lora)
    folder = t.export(tmp_path / "out" / "sentiment")
    assert folder == tmp_path / "out" / "sentiment" and folder.is_dir()
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tlwidgets_head.safetensors",
            "tlwidgets_text.json", "tlwidgets_export.json"} <= names
    meta = json.loads((folder / "tlwidgets_export.json").read_text())
    assert meta["modality"] == "text" and meta["classes"] == t.data.classes
    assert meta["max_length"] == 16 and meta["pooling"] == "mean"
    assert meta["files"] == {"safetensors": "model.safetensors"}
    assert meta["lora_merged"] is lora
    assert not {"mean", "std", "input_size"} & set(meta)  # no image keys
    again = tlw.create_model(folder, num_classes=len(meta["classes"]))
    assert again.tlw_load_report.skipped == {}
    assert not tlw.text.has_lora(again)
    # the long sentence is cut at max_length by both
    assert torch.allclose(probs_of(again, meta, SENTENCES), trainer_probs(t, SENTENCES),
                          atol=1e-5)


def test_torchscript_export_takes_the_tokenizers_tensors_at_any_batch_and_length(tmp_path):
    t = trained(lora=True)
    folder = t.export(tmp_path / "ts.pt", format="torchscript")  # the suffix names the folder
    assert folder == tmp_path / "ts"
    meta = json.loads((folder / "tlwidgets_export.json").read_text())
    assert meta["files"] == {"safetensors": "model.safetensors", "torchscript": "model.pt"}
    scripted = torch.jit.load(str(folder / "model.pt"))
    tok = t.data.tokenizer
    expected = trainer_probs(t, SENTENCES)
    for texts, rows in ((SENTENCES, slice(None)), (SENTENCES[2:], slice(2, None))):
        enc = tok(texts, truncation=True, max_length=meta["max_length"], padding=True,
                  return_tensors="pt")
        with torch.no_grad():
            probs = scripted(*[enc[n] for n in meta["inputs"]]).softmax(1)
        assert torch.allclose(probs, expected[rows], atol=1e-5)
    # the same folder takes the safetensors export again and keeps both files listed
    t.export(folder)
    meta = json.loads((folder / "tlwidgets_export.json").read_text())
    assert set(meta["files"]) == {"safetensors", "torchscript"}


def test_text_export_refuses_onnx_a_clash_and_a_foreign_model_folder(tmp_path):
    t = trained()
    with pytest.raises(ExportError, match="optimum"):
        t.export(tmp_path / "m", format="onnx")
    with pytest.raises(ConfigError, match="not supported"):
        t.export(tmp_path / "m", format="pickle")
    folder = t.export(tmp_path / "m")
    other = tlw.TextData.from_dataframe(reviews_frame(), model=t.model, max_length=16,
                                        classes=["pos", "neg"])  # another class order
    with pytest.raises(ExportError, match="another exported model"):
        tlw.evaluation.export(t.model, other, folder)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "config.json").write_text("{}")
    with pytest.raises(ExportError, match="did not export"):
        t.export(foreign)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ExportError, match="is a file"):
        t.export(tmp_path / "file")
