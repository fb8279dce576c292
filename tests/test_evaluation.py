"""Evaluation: metrics from known predictions, top losses with paths, predictions from every
kind of input, and export to safetensors / TorchScript / ONNX."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import tlwidgets as tlw
from tlwidgets.evaluation import Evaluation
from tlwidgets.training import Trainer

from .tiny_model import Tiny

torch.set_num_threads(1)


COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real PNG files, one folder per class, so the evaluation can point back at paths."""
    root = tmp_path_factory.mktemp("colors")
    rng = np.random.default_rng(0)
    for name, rgb in COLORS.items():
        (root / name).mkdir()
        for i in range(10):
            arr = np.clip(np.array(rgb) + rng.normal(0, 25, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def trained(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Trainer:
    torch.manual_seed(0)
    data = tlw.ImageData.from_folder(folder, valid_pct=0.3, img_size=16, batch_size=8,
                                     augment="none")
    trainer = Trainer(Tiny(3), data, lr=3e-2, epochs=6,
                      run_dir=tmp_path_factory.mktemp("run"))
    trainer.fit()
    return trainer


def test_metrics_from_known_predictions() -> None:
    # rows: true cat predicted cat, true dog predicted cat, true dog predicted dog x2
    logits = torch.tensor([[3.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 5.0]])
    ev = Evaluation(logits, torch.tensor([0, 1, 1, 1]), ["cat", "dog"], ["a", "b", "c", "d"])
    assert ev.accuracy == pytest.approx(0.75)
    assert ev.confusion.to_numpy().tolist() == [[1, 0], [1, 2]]
    assert ev.confusion.index.name == "true" and ev.confusion.columns.name == "predicted"
    pc = ev.per_class
    assert pc.loc["cat", "precision"] == pytest.approx(0.5)
    assert pc.loc["cat", "recall"] == pytest.approx(1.0)
    assert pc.loc["dog", "precision"] == pytest.approx(1.0)
    assert pc.loc["dog", "recall"] == pytest.approx(2 / 3)
    assert pc.loc["dog", "f1"] == pytest.approx(0.8)
    assert pc["support"].tolist() == [1, 3]
    top = ev.top_losses(2)
    assert list(top.columns) == ["index", "path", "true", "predicted", "probability", "loss"]
    assert top["index"].tolist() == [1, 2]  # the mistake first, then the least sure right answer
    assert top.loc[0, "path"] == "b" and top.loc[0, "predicted"] == "cat"
    assert top["loss"].is_monotonic_decreasing
    with pytest.raises(tlw.ConfigError):
        ev.top_losses(0)


def test_evaluate_a_trained_model(trained: Trainer) -> None:
    ev = trained.evaluate()
    data = trained.data
    assert len(ev) == len(data.valid_items)
    assert ev.accuracy >= 0.8  # three clearly different colours
    assert ev.accuracy == pytest.approx(trained.history["accuracy"].iloc[-1])
    assert list(ev.confusion.index) == data.classes == list(ev.confusion.columns)
    assert ev.confusion.to_numpy().sum() == len(ev)
    top = ev.top_losses(3)
    for _, row in top.iterrows():
        assert Path(row["path"]).exists()
        assert Path(row["path"]) == Path(data.valid_items[row["index"]][0])
        assert row["true"] == data.classes[data.valid_items[row["index"]][1]]


def test_predict_accepts_paths_pil_images_arrays_and_tensors(trained: Trainer, folder: Path) -> None:
    path = folder / "green" / "0.png"
    pil = Image.open(folder / "red" / "1.png")
    arr = np.array(Image.open(folder / "blue" / "2.png"))
    df = trained.predict([str(path), pil, arr, torch.from_numpy(arr).permute(2, 0, 1)], k=2)
    assert list(df.columns) == ["input", "class_1", "prob_1", "class_2", "prob_2"]
    assert df.loc[0, "input"] == str(path)
    assert df["class_1"].tolist() == ["green", "red", "blue", "blue"]
    assert (df["prob_1"] >= df["prob_2"]).all() and df["prob_1"].le(1).all()
    # a batch tensor is many images; k is capped at the number of classes
    batch = torch.stack([trained.data.valid_ds[i][0] for i in range(3)])
    df2 = trained.predict(batch, k=10, preprocessed=True)
    assert len(df2) == 3 and "class_3" in df2.columns and "class_4" not in df2.columns


def test_predict_explains_a_missing_file(trained: Trainer, tmp_path: Path) -> None:
    with pytest.raises(tlw.DataError, match="No image file"):
        trained.predict(tmp_path / "nope.jpg")


def test_export_safetensors_with_classes_and_preprocessing(trained: Trainer, tmp_path: Path) -> None:
    from safetensors.torch import load_model

    path = trained.export(tmp_path / "model")
    assert path.name == "model.safetensors"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["classes"] == trained.data.classes
    assert meta["input_size"] == [3, 16, 16]
    assert {"mean", "std", "interpolation", "crop_pct"} <= set(meta)
    fresh = Tiny(3)
    load_model(fresh, path)
    x = torch.rand(2, 3, 16, 16)
    trained.model.eval(), fresh.eval()
    torch.testing.assert_close(fresh(x), trained.model(x))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_export_torchscript_runs_without_the_class(trained: Trainer, tmp_path: Path) -> None:
    path = trained.export(tmp_path / "model.pt", format="torchscript")
    loaded = torch.jit.load(str(path))
    x = torch.rand(2, 3, 16, 16)
    trained.model.eval()
    torch.testing.assert_close(loaded(x), trained.model(x))
    assert json.loads(path.with_suffix(".json").read_text())["format"] == "torchscript"


@pytest.mark.skipif(importlib.util.find_spec("onnx") is not None, reason="onnx is installed")
def test_export_onnx_without_the_package_says_what_to_install(trained: Trainer,
                                                              tmp_path: Path) -> None:
    with pytest.raises(tlw.ConfigError, match="pip install onnx"):
        trained.export(tmp_path / "m.onnx", format="onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_export_rejects_an_unknown_format(trained: Trainer, tmp_path: Path) -> None:
    with pytest.raises(tlw.ConfigError, match="safetensors, torchscript, onnx"):
        trained.export(tmp_path / "m", format="pickle")


def test_two_threads_evaluating_one_model_get_its_eval_results_and_leave_it_intact() -> None:
    # The dashboard evaluates in its publisher thread when a run ends while the next cell calls
    # trainer.evaluate(). Events force the bad interleaving: B starts while A is mid-evaluation,
    # and B's first batch waits until A has returned (and, unserialised, restored train mode).
    import threading

    from tlwidgets.evaluation import evaluate

    a_in, b_started, a_done = threading.Event(), threading.Event(), threading.Event()
    seen: set[str] = set()

    class Gate(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            name = threading.current_thread().name
            if name not in seen:
                seen.add(name)
                if name == "A":
                    a_in.set()
                    b_started.wait(5)
                elif name == "B":
                    a_done.wait(5)
            return x

    torch.manual_seed(0)
    data = tlw.ImageData.from_arrays(torch.rand(16, 3, 16, 16), [0, 1] * 8, batch_size=4,
                                     valid_pct=0.5)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), Gate(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 2))
    model.train()  # as a trainer leaves it
    stats = model[1].running_mean.clone()
    seen.add(threading.current_thread().name)
    expected = evaluate(model, data).probs
    results: dict[str, np.ndarray] = {}

    def run_a() -> None:
        results["A"] = evaluate(model, data).probs
        a_done.set()

    def run_b() -> None:
        a_in.wait(5)
        b_started.set()
        results["B"] = evaluate(model, data).probs

    threads = [threading.Thread(target=run_a, name="A"), threading.Thread(target=run_b, name="B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    np.testing.assert_allclose(results["A"], expected, atol=1e-6)
    np.testing.assert_allclose(results["B"], expected, atol=1e-6)
    assert torch.equal(model[1].running_mean, stats), "an evaluation changed BatchNorm statistics"
    assert model.training and model[1].training, "the model was not left in train mode"


def test_a_run_started_during_another_threads_evaluation_waits_for_it(tmp_path: Path) -> None:
    # The dashboard's end-of-run evaluation (publisher thread) and `trainer.start()` in the next
    # cell: no training step may run while the evaluation has the model in eval mode.
    import threading

    from tlwidgets.evaluation import evaluate

    evaluating, release, stepped = threading.Event(), threading.Event(), threading.Event()

    class Gate(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if threading.current_thread().name == "dashboard" and not evaluating.is_set():
                evaluating.set()
                release.wait(10)
            return x

    torch.manual_seed(0)
    data = tlw.ImageData.from_arrays(torch.rand(16, 3, 16, 16), [0, 1] * 8, batch_size=4,
                                     valid_pct=0.5)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), Gate(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 2))
    trainer = Trainer(model, data, epochs=1, run_dir=tmp_path, cache_features=False)
    during_evaluation: list[bool] = []

    def on_step(event: tlw.TrainerEvent) -> None:
        if event.kind == "step":
            during_evaluation.append(not release.is_set())
            stepped.set()

    trainer.subscribe(on_step)
    dashboard = threading.Thread(target=lambda: evaluate(model, data), name="dashboard")
    dashboard.start()
    assert evaluating.wait(10)
    trainer.start()
    stepped.wait(1.0)  # unserialised, steps arrive here; serialised, the run waits for release
    release.set()
    dashboard.join(10)
    assert trainer.wait(30) == "finished"
    assert during_evaluation and not any(during_evaluation), (
        "training steps ran while another thread was evaluating the model")
