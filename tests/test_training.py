"""The training loop on CPU: learning, events, files on disk, schedules, checkpoints, resume,
fine_tune, lr_find and the feature cache. Tiny models and in-memory data keep it fast."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import tlwidgets as tlw
from tlwidgets.training import Schedule, Trainer, TrainerEvent
from tlwidgets.training.checkpoints import atomic_write

from .tiny_model import Tiny

torch.set_num_threads(1)


def make_data(n: int = 64, batch_size: int = 8, augment: str = "none", size: int = 16,
              seed: int = 0) -> tlw.ImageData:
    """Two classes told apart by brightness: separable, but not trivially for a random head."""
    rng = np.random.default_rng(seed)
    labels = np.array([0, 1] * (n // 2))
    images = rng.random((n, size, size, 3)).astype(np.float32) * 0.5
    images[labels == 1] += 0.4
    return tlw.ImageData.from_arrays(
        images, labels, classes=["dark", "light"], batch_size=batch_size, img_size=size,
        augment=augment,
    )


def make_model(seed: int = 0) -> Tiny:
    torch.manual_seed(seed)
    return Tiny()


def test_head_only_fine_tune_of_a_timm_model_learns_separable_data(tmp_path: Path) -> None:
    import timm

    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=2)
    tlw.freeze_to(model, -1)
    data = make_data(n=96, batch_size=16, size=32)
    trainer = Trainer(model, data, lr=3e-2, epochs=4, run_dir=tmp_path)
    history = trainer.fit()
    assert len(history) == 4
    assert history["accuracy"].iloc[-1] >= 0.9
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert trainer.state == "finished"


def test_events_carry_the_documented_fields(tmp_path: Path) -> None:
    events: list[TrainerEvent] = []
    trainer = Trainer(make_model(), make_data(), lr=1e-2, epochs=2, run_dir=tmp_path,
                      callbacks=[events.append])
    trainer.fit()
    kinds = [e.kind for e in events]
    assert set(kinds) >= {"state", "step", "epoch", "log"}
    states = [e.data["state"] for e in events if e.kind == "state"]
    assert states == ["running", "finished"]
    steps = [e.data for e in events if e.kind == "step"]
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1))
    assert set(steps[0]) == {"step", "epoch", "batch", "loss", "lrs", "img_s", "time"}
    n_groups = len(trainer.optimizer.param_groups)
    assert all(len(s["lrs"]) == n_groups for s in steps)
    epochs = [e.data for e in events if e.kind == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert set(epochs[0]) >= {"epoch", "train_loss", "valid_loss", "accuracy", "seconds", "lrs"}
    # the steps table mirrors the step events
    assert trainer.steps["loss"].tolist() == pytest.approx([s["loss"] for s in steps])


def test_unsubscribe_stops_delivery(tmp_path: Path) -> None:
    seen: list[str] = []
    trainer = Trainer(make_model(), make_data(), epochs=1, run_dir=tmp_path)
    unsubscribe = trainer.subscribe(lambda e: seen.append(e.kind))
    unsubscribe()
    trainer.fit()
    assert seen == []


def test_history_and_steps_are_on_disk_after_each_epoch(tmp_path: Path) -> None:
    on_disk: list[tuple[int, int]] = []

    def check(event: TrainerEvent) -> None:
        if event.kind == "epoch":
            hist = pd.read_csv(tmp_path / "history.csv")
            steps = pd.read_csv(tmp_path / "steps.csv")
            on_disk.append((len(hist), int(steps["step"].max())))

    trainer = Trainer(make_model(), make_data(), epochs=3, run_dir=tmp_path, callbacks=[check])
    trainer.fit()
    spe = trainer.progress()["steps_per_epoch"]
    assert on_disk == [(1, spe), (2, 2 * spe), (3, 3 * spe)]
    saved = pd.read_csv(tmp_path / "history.csv")
    pd.testing.assert_frame_equal(saved, trainer.history, check_dtype=False)


def test_default_run_dir_is_a_fresh_folder_under_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    trainer = Trainer(make_model(), make_data(), epochs=1)
    trainer.fit()
    assert trainer.run_dir.parent == (tmp_path / "runs").resolve()
    assert trainer.run_dir.name.endswith("-Tiny")
    assert (trainer.run_dir / "history.csv").exists()


def test_progress_reports_position_speed_device_and_memory(tmp_path: Path) -> None:
    trainer = Trainer(make_model(), make_data(), epochs=2, run_dir=tmp_path)
    trainer.fit()
    p = trainer.progress()
    assert p["epoch"] == 2 and p["epochs"] == 2
    assert p["steps_per_epoch"] == 7 and p["total_steps"] == 14 and p["step"] == 14
    assert p["device"] == "cpu" and p["memory"] > 0 and p["img_s"] > 0 and p["elapsed"] > 0


def test_one_cycle_schedule_rises_then_falls_per_step(tmp_path: Path) -> None:
    trainer = Trainer(make_model(), make_data(), lr=1e-2, epochs=4, run_dir=tmp_path)
    trainer.fit()
    lrs = trainer.steps["lr"].to_numpy()
    peak = int(lrs.argmax())
    assert lrs[peak] == pytest.approx(1e-2, rel=0.05)
    assert 0 < peak < len(lrs) - 1
    assert lrs[0] == pytest.approx(1e-2 / 25, rel=1e-6)
    assert lrs[-1] < 1e-5
    assert np.all(np.diff(lrs[: peak + 1]) > 0) and np.all(np.diff(lrs[peak:]) < 0)


@pytest.mark.parametrize("name", ["cosine", "constant"])
def test_other_schedules(name: str, tmp_path: Path) -> None:
    trainer = Trainer(make_model(), make_data(), lr=1e-2, epochs=2, schedule=name,
                      run_dir=tmp_path)
    trainer.fit()
    lrs = trainer.steps["lr"].to_numpy()
    if name == "constant":
        assert np.allclose(lrs, 1e-2)
    else:
        assert lrs.max() == pytest.approx(1e-2) and lrs[0] < lrs.max() and lrs[-1] < 1e-3


def test_schedule_is_a_pure_function_of_the_step() -> None:
    s = Schedule("one_cycle", total_steps=100, pct_start=0.3)
    assert s.factor(0) == pytest.approx(1 / 25)
    assert s.factor(30) == pytest.approx(1.0, abs=1e-3)
    assert s.momentum(0) == pytest.approx(0.95) and s.momentum(30) == pytest.approx(0.85, abs=1e-3)
    assert Schedule.from_dict(s.to_dict()) == s


@pytest.mark.parametrize("optimizer", ["adamw", "adam", "sgd"])
def test_every_optimizer_trains(optimizer: str, tmp_path: Path) -> None:
    model = make_model()
    before = model.fc.weight.detach().clone()
    Trainer(model, make_data(), optimizer=optimizer, epochs=1, run_dir=tmp_path,
            grad_accum=2, clip_grad=1.0).fit()
    assert not torch.equal(before, model.fc.weight)


def test_frozen_parameters_are_not_in_the_optimizer_and_do_not_change(tmp_path: Path) -> None:
    model = make_model()
    tlw.freeze_to(model, -1)
    conv = model.features[0].weight.detach().clone()
    bn_mean = model.features[1].running_mean.clone()
    trainer = Trainer(model, make_data(), epochs=1, run_dir=tmp_path, cache_features=False)
    trainer.fit()
    in_opt = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert id(model.features[0].weight) not in in_opt and id(model.fc.weight) in in_opt
    assert torch.equal(conv, model.features[0].weight)
    # freeze's BN policy "eval" is kept: frozen BN statistics did not move during training
    assert torch.equal(bn_mean, model.features[1].running_mean)


def test_bad_arguments_raise_config_errors() -> None:
    model, data = make_model(), make_data()
    for kwargs in ({"optimizer": "adagrad"}, {"schedule": "step"}, {"lr": -1},
                   {"epochs": 0}, {"grad_accum": 0}, {"metric": "f1"},
                   {"early_stopping": "soon"}, {"cache_features": "yes"}, {"amp": True},
                   {"device": "tpu9"}):
        with pytest.raises(tlw.ConfigError):
            Trainer(model, data, **kwargs)
    with pytest.raises(tlw.ConfigError, match="ImageData"):
        Trainer(model, [1, 2, 3])


def test_nothing_trainable_fails_with_advice(tmp_path: Path) -> None:
    model = make_model()
    tlw.freeze(model)
    trainer = Trainer(model, make_data(), epochs=1, run_dir=tmp_path)
    with pytest.raises(tlw.NothingTrainableError, match="[Uu]nfreeze"):
        trainer.fit()
    assert trainer.state == "failed"


def test_checkpoints_are_safetensors_and_weights_only_state(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    model = make_model()
    trainer = Trainer(model, make_data(), epochs=2, run_dir=tmp_path, metric="valid_loss")
    trainer.fit()
    trainer.wait()  # the last epoch's checkpoint is written in the background
    ckpt = tmp_path / "checkpoints"
    for name in ("best", "last"):
        weights = load_file(ckpt / f"{name}.safetensors")
        assert "features.1.running_mean" in weights
        state = torch.load(ckpt / f"{name}.state.pt", weights_only=True)
        assert {"optimizer", "cycle", "history", "global_step", "config"} <= set(state)
    last = load_file(ckpt / "last.safetensors")
    for k, v in model.state_dict().items():
        assert torch.equal(last[k], v)
    best_epoch = int(trainer.history["valid_loss"].idxmin()) + 1
    best_state = torch.load(ckpt / "best.state.pt", weights_only=True)
    assert best_state["epochs_done"] == best_epoch
    assert not list(ckpt.glob("*.tmp")), "temporary files were left behind"


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "x.txt"
    target.write_text("old")

    def broken(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]


def _stop_after_epoch(trainer_ref: list[Trainer], epoch: int):
    def fn(event: TrainerEvent) -> None:
        if event.kind == "epoch" and event.data["epoch"] == epoch:
            trainer_ref[0].stop()
    return fn


def test_resume_from_run_dir_continues_curves_and_schedule(tmp_path: Path) -> None:
    data = make_data()
    full = Trainer(make_model(), data, lr=1e-2, epochs=3, run_dir=tmp_path / "full")
    full.fit()

    ref: list[Trainer] = []
    first = Trainer(make_model(), make_data(), lr=1e-2, epochs=3, run_dir=tmp_path / "cut")
    ref.append(first)
    first.subscribe(_stop_after_epoch(ref, 1))
    first.fit()
    assert first.state == "stopped" and len(first.history) == 1

    resumed = Trainer.resume(tmp_path / "cut", make_model(seed=99), make_data())
    assert len(resumed.history) == 1
    resumed.fit()
    assert resumed.state == "finished"
    assert resumed.history["epoch"].tolist() == [1, 2, 3]
    assert resumed.steps["step"].tolist() == full.steps["step"].tolist()
    # the schedule continued exactly where it stopped
    np.testing.assert_allclose(resumed.steps["lr"], full.steps["lr"], rtol=1e-9)
    assert pd.read_csv(tmp_path / "cut" / "history.csv")["epoch"].tolist() == [1, 2, 3]


def test_instance_resume_with_run_dir_restores_into_this_trainer(tmp_path: Path) -> None:
    model = make_model()
    Trainer(model, make_data(), epochs=1, run_dir=tmp_path).fit()
    fresh = make_model(seed=5)
    trainer = Trainer(fresh, make_data(), epochs=1, run_dir=tmp_path / "other")
    trainer.resume(tmp_path)
    assert len(trainer.history) == 1
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v)


def test_training_again_continues_history_with_a_new_cycle(tmp_path: Path) -> None:
    trainer = Trainer(make_model(), make_data(), lr=1e-2, epochs=1, run_dir=tmp_path)
    trainer.fit()
    trainer.fit(epochs=2, lr=5e-3)
    assert trainer.history["epoch"].tolist() == [1, 2, 3]
    assert trainer.steps["step"].is_monotonic_increasing
    second = trainer.steps[trainer.steps["epoch"] > 1]
    assert second["lr"].max() == pytest.approx(5e-3, rel=0.05)
    assert len(pd.read_csv(tmp_path / "history.csv")) == 3


def test_early_stopping_ends_the_run_as_finished(tmp_path: Path) -> None:
    logs: list[str] = []
    trainer = Trainer(make_model(), make_data(), lr=1e-9, epochs=6, run_dir=tmp_path,
                      early_stopping={"patience": 2, "metric": "valid_loss", "min_delta": 1.0},
                      callbacks=[lambda e: e.kind == "log" and logs.append(e.data["message"])])
    trainer.fit()
    assert trainer.state == "finished"
    assert len(trainer.history) == 3
    assert any("early stopping" in m for m in logs)


def test_fine_tune_runs_fastai_recipe_with_discriminative_rates(tmp_path: Path) -> None:
    model = make_model()
    trainer = Trainer(model, make_data(), run_dir=tmp_path)
    lrs_seen: list[list[float]] = []
    trainer.subscribe(lambda e: e.kind == "step" and lrs_seen.append(e.data["lrs"]))
    trainer.fine_tune(1, freeze_epochs=1, base_lr=2e-3)
    assert trainer.history["epoch"].tolist() == [1, 2]
    spe = trainer.progress()["steps_per_epoch"]
    phase1, phase2 = lrs_seen[:spe], lrs_seen[spe:]
    # head only: every param group (weights, and biases without weight decay) of the head
    assert all(len(set(l)) == 1 for l in phase1) and len(phase2[0]) > len(phase1[0])
    peak2 = [max(l[i] for l in phase2) for i in range(len(phase2[0]))]
    assert peak2[-1] == pytest.approx(1e-3, rel=0.05)  # base_lr / 2 at the head
    assert peak2[0] == pytest.approx(1e-5, rel=0.05)  # base_lr / 2 / 100 at the stem
    assert all(p.requires_grad for p in model.parameters())


def test_fine_tune_in_the_background_runs_both_phases(tmp_path: Path) -> None:
    trainer = Trainer(make_model(), make_data(), run_dir=tmp_path)
    assert trainer.fine_tune(1, freeze_epochs=1, background=True) is trainer
    assert trainer.wait(timeout=60) == "finished"
    assert len(trainer.history) == 2


def test_lr_find_restores_everything_bit_for_bit(tmp_path: Path) -> None:
    model = make_model()
    trainer = Trainer(model, make_data(), epochs=1, run_dir=tmp_path)
    trainer.fit()  # so there is optimizer state to keep
    tlw.freeze(model, "features.0")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    modes = [m.training for m in model.modules()]
    opt_before = trainer.optimizer.state_dict()
    opt_before = {k: {kk: (vv.clone() if torch.is_tensor(vv) else vv) for kk, vv in v.items()}
                  for k, v in opt_before["state"].items()}
    version = tlw.freeze_version(model)

    result = trainer.lr_find(num_it=40)

    after = model.state_dict()
    assert before.keys() == after.keys()
    for k in before:
        assert torch.equal(before[k], after[k]), k  # BN running stats included
    assert [p.requires_grad for p in model.parameters()] == flags
    assert [m.training for m in model.modules()] == modes
    assert tlw.freeze_version(model) == version
    for k, v in trainer.optimizer.state_dict()["state"].items():
        for kk, vv in v.items():
            assert torch.equal(torch.as_tensor(vv), torch.as_tensor(opt_before[k][kk]))
    assert list(result.df.columns) == ["lr", "loss", "smoothed_loss"]
    assert 1e-7 <= result.suggestion <= 10 and math.isfinite(result.steep)
    assert result.method == "valley"
    assert result.df["lr"].is_monotonic_increasing


def test_lr_find_stops_when_the_loss_diverges(tmp_path: Path) -> None:
    trainer = Trainer(make_model(), make_data(), optimizer="sgd", run_dir=tmp_path)
    result = trainer.lr_find(start_lr=1e-4, end_lr=1e4, num_it=100)
    assert result.diverged
    assert len(result.df) < 100


def _head_after_training(cache: bool, tmp_path: Path) -> tuple[torch.Tensor, list[str]]:
    model = make_model(seed=3)
    tlw.freeze_to(model, -1)
    logs: list[str] = []
    trainer = Trainer(model, make_data(), lr=1e-2, epochs=2, cache_features=cache,
                      run_dir=tmp_path / str(cache), seed=0,
                      callbacks=[lambda e: e.kind == "log" and logs.append(e.data["message"])])
    trainer.fit()
    return torch.cat([model.fc.weight.detach().flatten(), model.fc.bias.detach()]), logs


def test_feature_cache_trains_the_same_head_as_the_full_model(tmp_path: Path) -> None:
    with_cache, logs_on = _head_after_training(True, tmp_path)
    without, logs_off = _head_after_training(False, tmp_path)
    assert any("feature cache on" in m for m in logs_on)
    assert any("feature cache off (cache_features=False)" in m for m in logs_off)
    torch.testing.assert_close(with_cache, without, rtol=1e-4, atol=1e-5)


def test_feature_cache_is_off_and_says_why_when_augmentation_is_random(tmp_path: Path) -> None:
    model = make_model()
    tlw.freeze_to(model, -1)
    logs: list[str] = []
    data = make_data(augment="light")
    trainer = Trainer(model, data, epochs=1, run_dir=tmp_path,
                      callbacks=[lambda e: e.kind == "log" and logs.append(e.data["message"])])
    trainer.fit()
    assert trainer.feature_cache is None
    assert any("random" in m and "cache_features=True" in m for m in logs)
    logs.clear()
    opted = Trainer(model, data, epochs=1, run_dir=tmp_path / "b", cache_features=True,
                    callbacks=[lambda e: e.kind == "log" and logs.append(e.data["message"])])
    opted.fit()
    assert opted.feature_cache is not None
    assert any("without augmentation" in m for m in logs)


def test_feature_cache_is_rebuilt_when_the_freeze_state_changes(tmp_path: Path) -> None:
    model = make_model()
    tlw.freeze_to(model, -1)
    trainer = Trainer(model, make_data(), epochs=1, run_dir=tmp_path)
    trainer.fit()
    first = trainer.feature_cache
    assert first is not None
    tlw.unfreeze(model)
    trainer.fit()
    assert trainer.feature_cache is None  # the backbone trains now: no cache
    tlw.freeze_to(model, -1)
    trainer.fit()
    assert trainer.feature_cache is not None and trainer.feature_cache is not first
    # the new cache holds the features of the backbone as it is now
    assert not torch.equal(trainer.feature_cache.valid_x, first.valid_x)


def test_resume_after_a_stop_mid_epoch_finishes_that_epoch_on_schedule(tmp_path: Path) -> None:
    full = Trainer(make_model(), make_data(), lr=1e-2, epochs=3, run_dir=tmp_path / "full")
    full.fit()

    ref: list[Trainer] = []
    cut = Trainer(make_model(), make_data(), lr=1e-2, epochs=3, run_dir=tmp_path / "cut",
                  callbacks=[lambda e: e.kind == "step" and e.data["step"] == 10
                             and ref[0].stop()])
    ref.append(cut)
    cut.fit()
    assert cut.state == "stopped" and cut.steps["step"].max() == 10

    resumed = Trainer.resume(tmp_path / "cut", make_model(seed=7), make_data())
    resumed.fit()
    assert resumed.history["epoch"].tolist() == [1, 2, 3]
    assert resumed.steps["step"].tolist() == full.steps["step"].tolist()
    assert resumed.steps["batch"].tolist() == full.steps["batch"].tolist()
    np.testing.assert_allclose(resumed.steps["lr"], full.steps["lr"], rtol=1e-9)
