"""The CUDA paths (issue 17): AMP bf16/fp16 training and resume, the grad scaler's state across a
resume, channels-last predictions equal to the loop's validation. Skipped without a CUDA GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import tlwidgets as tlw
from tlwidgets.training import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def data(n: int = 64, size: int = 32) -> tlw.ImageData:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % 2
    images = rng.random((n, size, size, 3)).astype(np.float32) * 0.5
    images[labels == 1] += 0.4
    return tlw.ImageData.from_arrays(images, labels, batch_size=8, img_size=size)


def resnet() -> torch.nn.Module:
    import timm

    torch.manual_seed(0)
    return timm.create_model("resnet18", pretrained=False, num_classes=2)


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_trains_and_resumes_on_the_gpu(tmp_path: Path, amp: str) -> None:
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    ref: list[Trainer] = []
    t = Trainer(resnet(), data(), epochs=3, lr=1e-3, amp=amp, device="cuda", run_dir=tmp_path,
                verbose=False, callbacks=[lambda e: e.kind == "epoch" and e.data["epoch"] == 1
                                          and ref[0].stop()])
    ref.append(t)
    t.fit()
    assert t.device_context.amp_dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    assert t.device_context.channels_last
    resumed = Trainer.resume(tmp_path, resnet(), data(), device="cuda")
    resumed.fit()
    assert resumed.history["epoch"].tolist() == [1, 2, 3]
    assert np.isfinite(resumed.history["train_loss"]).all()


def test_the_grad_scalers_state_is_saved_and_restored(tmp_path: Path) -> None:
    ref: list[Trainer] = []
    t = Trainer(resnet(), data(), epochs=2, amp="fp16", device="cuda", run_dir=tmp_path,
                verbose=False, callbacks=[lambda e: e.kind == "epoch" and ref[0].stop()])
    ref.append(t)
    t.fit()
    saved = t.run.scaler.state_dict()
    state = torch.load(tmp_path / "checkpoints" / "last.state.pt", weights_only=True)
    assert state["scaler"]["scale"] == pytest.approx(saved["scale"])
    resumed = Trainer.resume(tmp_path, resnet(), data(), device="cuda")
    assert resumed.run.scaler.state_dict()["scale"] == pytest.approx(saved["scale"])
    assert resumed.run.scaler.state_dict()["_growth_tracker"] == saved["_growth_tracker"]


def test_channels_last_predict_equals_the_loops_validation_on_the_gpu(tmp_path: Path) -> None:
    from tlwidgets.evaluation import validation_metrics

    d = data(size=64)
    epochs: list[dict] = []
    t = Trainer(resnet(), d, epochs=1, device="cuda", amp=False, run_dir=tmp_path,
                verbose=False, callbacks=[lambda e: e.kind == "epoch" and epochs.append(e.data)])
    t.fit()
    assert t.device_context.channels_last
    ev = t.evaluate()
    assert ev.loss == pytest.approx(epochs[0]["valid_loss"], rel=1e-4)
    loss, acc = validation_metrics(t.model, d.valid_loader(), t.device_context, t.model)
    assert ev.accuracy == pytest.approx(acc)
    x = torch.stack([d.valid_ds[i][0] for i in range(4)])
    table = t.predict(x, k=2, preprocessed=True)
    np.testing.assert_allclose(table["prob_1"].to_numpy(), np.sort(ev.probs[:4], 1)[:, -1],
                               rtol=1e-4)


def test_the_loss_is_read_one_step_late_without_waiting_much(tmp_path: Path) -> None:
    t = Trainer(resnet(), data(n=256), epochs=1, device="cuda", run_dir=tmp_path, verbose=False)
    t.fit()
    total = float(t.steps["time"].iloc[-1])
    assert t.step_loop.sync_seconds < total  # the readback overlapped queued work


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_a_text_model_trains_under_amp_on_the_gpu(tmp_path: Path, amp: str) -> None:
    # issue 14: the same Trainer with AMP for a BERT-family encoder (dict batches), top layer
    # and head trained, then resumed
    from .test_text_helpers import reviews_frame, tiny_bert

    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")

    def make():
        model = tiny_bert(seed=0)
        return model, tlw.TextData.from_dataframe(reviews_frame(), model=model, batch_size=4,
                                                  valid_pct=0.25)

    model, text = make()
    tlw.freeze_to(model, -2)
    ref: list[Trainer] = []
    t = Trainer(model, text, epochs=3, lr=1e-3, amp=amp, device="cuda", run_dir=tmp_path,
                verbose=False, cache_features=False,
                callbacks=[lambda e: e.kind == "epoch" and e.data["epoch"] == 1 and ref[0].stop()])
    ref.append(t)
    t.fit()
    assert t.device_context.amp_dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    model2, text2 = make()
    tlw.freeze_to(model2, -2)
    resumed = Trainer.resume(tmp_path, model2, text2, device="cuda")
    resumed.fit()
    assert resumed.history["epoch"].tolist() == [1, 2, 3]
    assert np.isfinite(resumed.history["train_loss"]).all()
    top = resumed.predict(["a wonderful film", "dull and lazy"], k=1)
    assert len(top) == 2
