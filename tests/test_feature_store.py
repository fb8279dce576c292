"""Head-only training at its limit (issue 18): checkpoints hold only what trains, the feature cache
outlives a run and is recomputed exactly when what it depends on changes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import tlwidgets as tlw
from tlwidgets.training import Trainer

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TLWIDGETS_CACHE_DIR", str(tmp_path / "cache"))


def photo_folder(root: Path, per_class: int = 6) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(["dark", "light"]):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = (rng.random((40, 40, 3)) * 120 + c * 120).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"{i}.png")
    return root


def lite0() -> torch.nn.Module:
    torch.manual_seed(0)
    return tlw.create_model("tf_efficientnet_lite0", num_classes=2, weights="none")


def head_only(tmp_path: Path, model=None, img_size: int = 32, epochs: int = 2,
              run: str = "run") -> Trainer:
    model = model if model is not None else lite0()
    tlw.apply_preset(model, "head")
    data = tlw.ImageData.from_folder(tmp_path / "photos", model=model, img_size=img_size,
                                     augment="none", valid_pct=0.25, batch_size=4)
    t = Trainer(model, data, epochs=epochs, lr=1e-2, run_dir=tmp_path / run, verbose=False)
    t.fit()
    t.wait()  # the last epoch's checkpoint is written in the background
    assert t.feature_cache is not None
    return t


def test_a_head_only_checkpoint_is_kilobytes_and_resumes_and_exports_bit_for_bit(tmp_path):
    photo_folder(tmp_path / "photos")
    t = head_only(tmp_path)
    ckpt = tmp_path / "run" / "checkpoints"
    for name in ("last", "best"):
        size = (ckpt / f"{name}.safetensors").stat().st_size + (ckpt / f"{name}.state.pt").stat().st_size
        assert size <= 1_000_000, f"{name}: {size} bytes"
    frozen = list(ckpt.glob("frozen-*.safetensors"))
    assert len(frozen) == 1 and frozen[0].stat().st_size > 10_000_000  # written once
    fresh = lite0()
    resumed = Trainer.resume(tmp_path / "run", fresh, t.data)
    trained_state = t.model.state_dict()
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, trained_state[k]), k
    a = t.export(tmp_path / "a" / "model")
    b = resumed.export(tmp_path / "b" / "model")
    assert a.read_bytes() == b.read_bytes()


def test_a_full_fine_tunes_checkpoint_still_holds_the_whole_model(tmp_path):
    from safetensors.torch import load_file

    photo_folder(tmp_path / "photos")
    model = lite0()
    data = tlw.ImageData.from_folder(tmp_path / "photos", model=model, img_size=32,
                                     augment="none", batch_size=4)
    t = Trainer(model, data, epochs=1, run_dir=tmp_path / "run", verbose=False)
    t.fit()
    t.wait()
    ckpt = tmp_path / "run" / "checkpoints"
    assert not list(ckpt.glob("frozen-*"))
    weights = load_file(ckpt / "last.safetensors")
    assert set(weights) == set(model.state_dict())


def test_the_second_run_on_the_same_data_and_model_skips_extraction(tmp_path):
    photo_folder(tmp_path / "photos")
    first = head_only(tmp_path, run="one")
    assert not first.feature_cache.from_disk
    logs: list[str] = []
    model = lite0()
    tlw.apply_preset(model, "head")
    data = tlw.ImageData.from_folder(tmp_path / "photos", model=model, img_size=32,
                                     augment="none", valid_pct=0.25, batch_size=4)
    second = Trainer(model, data, epochs=2, lr=1e-2, run_dir=tmp_path / "two", verbose=False,
                     callbacks=[lambda e: e.kind == "log" and logs.append(e.data["message"])])
    second.fit()
    assert second.feature_cache.from_disk
    assert any("read from the feature store" in m for m in logs)
    assert torch.equal(second.feature_cache.train_x, first.feature_cache.train_x)
    # the head trained on stored features learns as on fresh ones
    assert second.history["train_loss"].tolist() == pytest.approx(
        first.history["train_loss"].tolist(), rel=1e-5)


@pytest.mark.parametrize("change", ["weights", "freeze", "file", "transform"])
def test_the_stored_features_are_recomputed_when_what_they_depend_on_changes(tmp_path, change):
    photo_folder(tmp_path / "photos")
    head_only(tmp_path, run="one")
    model = lite0()
    img_size = 32
    if change == "weights":
        with torch.no_grad():
            model.conv_stem.weight.add_(0.01)
    if change == "file":
        time.sleep(0.01)
        path = tmp_path / "photos" / "dark" / "0.png"
        Image.fromarray(np.zeros((40, 40, 3), dtype=np.uint8)).save(path)
        os.utime(path, None)
    if change == "transform":
        img_size = 48
    tlw.apply_preset(model, "head")
    if change == "freeze":
        # the same weights, another frozen state (the head's bias frozen too)
        model.classifier.bias.requires_grad_(False)
    data = tlw.ImageData.from_folder(tmp_path / "photos", model=model, img_size=img_size,
                                     augment="none", valid_pct=0.25, batch_size=4)
    t = Trainer(model, data, epochs=1, run_dir=tmp_path / "two", verbose=False)
    t.fit()
    assert t.feature_cache is not None and not t.feature_cache.from_disk


def test_the_store_is_bounded_and_can_be_cleared(tmp_path):
    from tlwidgets.training.feature_store import FeatureStore

    store = FeatureStore(tmp_path / "s", max_bytes=3000)
    for i in range(4):
        assert store.save(f"k{i}", {"train_x": torch.zeros(250), "train_y": torch.zeros(1),
                                    "valid_x": torch.zeros(1), "valid_y": torch.zeros(1)})
        time.sleep(0.01)
    assert store.size_bytes() <= 3000 and store.load("k3", torch.device("cpu")) is not None
    assert store.load("k0", torch.device("cpu")) is None  # the oldest went first
    assert store.clear() >= 1 and store.size_bytes() == 0


# ---- text: keyed on the token ids, labels, max_length and tokenizer ------------------------------


def text_head_only(tmp_path: Path, run: str, texts=None, max_length: int = 32,
                   pooling: str = "mean", logs: list | None = None) -> Trainer:
    from tests.test_text_helpers import reviews_frame, tiny_bert

    model = tiny_bert(pooling=pooling)
    tlw.freeze_to(model, -1)
    frame = reviews_frame()
    if texts is not None:
        frame["text"] = texts
    data = tlw.TextData.from_dataframe(frame, model=model, batch_size=4, valid_pct=0.25,
                                       max_length=max_length)
    callbacks = [lambda e: e.kind == "log" and logs.append(e.data["message"])] if logs is not None \
        else []
    t = Trainer(model, data, epochs=2, lr=1e-2, run_dir=tmp_path / run, verbose=False, seed=0,
                callbacks=callbacks)
    t.fit()
    t.wait()
    assert t.feature_cache is not None
    return t


def test_a_second_head_only_text_run_on_the_same_sentences_reads_the_store(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    first = text_head_only(tmp_path, "one")
    assert not first.feature_cache.from_disk
    logs: list[str] = []
    second = text_head_only(tmp_path, "two", logs=logs)
    assert second.feature_cache.from_disk
    assert any("read from the feature store" in m for m in logs)
    assert torch.equal(second.feature_cache.train_x, first.feature_cache.train_x)
    assert second.history["train_loss"].tolist() == pytest.approx(
        first.history["train_loss"].tolist(), rel=1e-5)


@pytest.mark.parametrize("change", ["text", "max_length", "pooling"])
def test_stored_text_features_are_recomputed_when_the_text_the_length_or_the_pooling_change(
        tmp_path, monkeypatch, change):
    from tests.test_text_helpers import NEGATIVE, POSITIVE

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    text_head_only(tmp_path, "one")
    texts = POSITIVE + NEGATIVE
    if change == "text":
        texts = ["an altogether different opening sentence", *texts[1:]]
    t = text_head_only(tmp_path, "two", texts=texts,
                       max_length=6 if change == "max_length" else 32,
                       pooling="cls" if change == "pooling" else "mean")
    assert not t.feature_cache.from_disk
