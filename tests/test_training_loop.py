"""One training loop (issue 10): what the panel shows is what trains, lr_find sweeps the same
optimization, hook state survives a resume, inference agrees with validation, divergence is
caught, paused time is not counted, scripts print progress."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

import tlwidgets as tlw
from tlwidgets.training import Trainer, TrainerEvent
from tlwidgets.training import loop as loop_module

from .tiny_model import Tiny

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parent.parent


def make_data(n: int = 64, batch_size: int = 8, size: int = 16, classes: int = 2) -> tlw.ImageData:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % classes
    images = rng.random((n, size, size, 3)).astype(np.float32) * 0.5
    images += labels[:, None, None, None] * (0.4 / max(classes - 1, 1))
    return tlw.ImageData.from_arrays(images, labels, classes=[f"c{i}" for i in range(classes)],
                                     batch_size=batch_size, img_size=size, augment="none")


def small_timm(num_classes: int = 2) -> nn.Module:
    import timm

    torch.manual_seed(0)
    return timm.create_model("resnet18", pretrained=False, num_classes=num_classes)


def test_a_multiplier_of_10_on_the_head_trains_it_10x_and_0_leaves_a_group_unchanged(tmp_path):
    model = small_timm()
    tlw.set_lr_multipliers(model, {"head": 10, "layer1": 0})
    before = {n: p.detach().clone() for n, p in model.layer1.named_parameters()}
    trainer = Trainer(model, make_data(size=32), lr=1e-3, epochs=1, run_dir=tmp_path,
                      schedule="constant", verbose=False)
    trainer.fit()
    peaks = {name: g["lr"] for name, g in zip(trainer.param_group_names,
                                               trainer.optimizer.param_groups)}
    assert peaks["head"] == pytest.approx(10 * peaks["layer2"])
    assert peaks["layer2"] == pytest.approx(1e-3)
    assert not any(n.startswith("layer1") for n in trainer.param_group_names)
    for n, p in model.layer1.named_parameters():
        assert torch.equal(p, before[n]), n  # bit-identical
    assert not torch.equal(model.layer2[0].conv1.weight, small_timm().layer2[0].conv1.weight)


def test_the_studio_trains_what_its_panel_shows():
    from tlwidgets.widgets._traffic import record_traffic

    with record_traffic():
        studio = tlw.Studio(epochs=1, img_size=32)
        try:
            studio.use_data(make_data(size=32))
            studio.use_model(small_timm())
            panel = tlw.FreezePanel(studio.model)
            panel.lr_multipliers = {**panel.lr_multipliers, "head": 10.0}
            trainer = studio.prepare_training()
            trainer.fit()
            named = dict(zip(trainer.param_group_names, trainer.run.cycle.peak_lrs))
            assert named["head"] == pytest.approx(10 * 2e-3)  # the Studio's rate, times 10
            panel.close()
        finally:
            if studio.dashboard is not None:
                studio.dashboard.close()
            if studio.panel is not None:
                studio.panel.close()


def test_lr_find_takes_the_optimizer_steps_fit_takes_with_accumulation_and_clipping(
        tmp_path, monkeypatch):
    steps: list[int] = []
    clips: list[int] = []
    real_clip = loop_module._clip
    monkeypatch.setattr(loop_module, "_clip", lambda opt, v: (clips.append(1), real_clip(opt, v)))
    handle = register_optimizer_step_post_hook(
        lambda opt, args, kwargs: steps.append(1))
    try:
        data = make_data(n=80, batch_size=4)  # 64 train images: 16 batches an epoch
        model = Tiny()
        trainer = Trainer(model, data, lr=1e-2, epochs=1, grad_accum=4, clip_grad=0.5,
                          run_dir=tmp_path, verbose=False)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        result = trainer.lr_find(num_it=4, stop_div=False)
        sweep_steps, sweep_clips = len(steps), len(clips)
        assert sweep_steps == 4 == result.extra["optimizer_steps"] == len(result.df)
        assert sweep_clips == sweep_steps  # clipped like fit
        for k, v in model.state_dict().items():
            assert torch.equal(v, before[k]), k
        steps.clear()
        clips.clear()
        trainer.fit()  # 16 batches at grad_accum=4: the same 4 optimizer steps, each clipped
        assert len(steps) == sweep_steps and len(clips) == sweep_clips
    finally:
        handle.remove()


def test_lr_find_sweeps_each_group_at_its_multiplier(tmp_path):
    model = small_timm()
    tlw.set_lr_multipliers(model, {"head": 10})
    trainer = Trainer(model, make_data(size=32), run_dir=tmp_path, verbose=False)
    seen: list[list[float]] = []
    handle = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: seen.append([g["lr"] for g in opt.param_groups]))
    try:
        trainer.lr_find(num_it=3, stop_div=False)
    finally:
        handle.remove()
    # the head (last group) gets the sweep's rate, the rest a tenth of it
    assert all(lrs[-1] == pytest.approx(10 * lrs[0]) for lrs in seen)


def test_a_resumed_run_with_early_stopping_keeps_its_patience(tmp_path):
    es = {"patience": 3, "metric": "valid_loss", "min_delta": 10.0}  # never improves after 1
    ref: list[Trainer] = []
    first = Trainer(Tiny(), make_data(), lr=1e-3, epochs=6, run_dir=tmp_path, early_stopping=es,
                    verbose=False,
                    callbacks=[lambda e: e.kind == "epoch" and e.data["epoch"] == 3
                               and ref[0].stop()])
    ref.append(first)
    first.fit()
    assert first.state == "stopped" and len(first.history) == 3  # 2 epochs without improvement
    resumed = Trainer.resume(tmp_path, Tiny(), make_data())
    assert resumed.run.hooks["early_stopping"].bad_epochs == 2
    logs: list[str] = []
    resumed.subscribe(lambda e: e.kind == "log" and logs.append(e.data["message"]))
    resumed.fit()
    assert len(resumed.history) == 4  # one more bad epoch reaches the patience of 3
    assert any("early stopping after epoch 4" in m for m in logs)


def test_predict_and_evaluate_agree_with_the_loops_validation_for_a_channels_last_model(tmp_path):
    model = small_timm(num_classes=3).to(memory_format=torch.channels_last)
    data = make_data(n=48, size=32, classes=3)
    seen: list[dict] = []
    trainer = Trainer(model, data, epochs=1, run_dir=tmp_path, verbose=False,
                      callbacks=[lambda e: e.kind == "epoch" and seen.append(e.data)])
    trainer.fit()
    assert trainer.device_context.channels_last is False  # CPU: "auto" stays NCHW ...
    from tlwidgets._runtime import DeviceContext
    from tlwidgets.evaluation import evaluate, predict, validation_metrics

    ctx = DeviceContext.for_model(model)
    assert ctx.channels_last  # ... but the model's own layout is found
    ev = evaluate(model, data)
    loss, acc = validation_metrics(model, data.valid_loader(), ctx, model)
    assert ev.loss == pytest.approx(seen[0]["valid_loss"], rel=1e-5)
    assert ev.loss == pytest.approx(loss, rel=1e-6) and ev.accuracy == pytest.approx(acc)
    x = torch.stack([data.valid_ds[i][0] for i in range(4)])
    table = predict(model, data, x, k=3, preprocessed=True)
    probs = np.array([[row[f"prob_{r}"] for r in (1, 2, 3)] for _, row in table.iterrows()])
    np.testing.assert_allclose(np.sort(ev.probs[:4], axis=1)[:, ::-1], probs, rtol=1e-5)


def test_a_divergent_run_ends_failed_with_the_model_put_back_to_its_best_checkpoint(tmp_path):
    from safetensors.torch import load_file

    model = small_timm()
    trainer = Trainer(model, make_data(size=32), lr=1e-3, epochs=1, run_dir=tmp_path,
                      verbose=False)
    trainer.fit()
    trainer.wait()  # the last epoch's checkpoint is written in the background
    best = load_file(tmp_path / "checkpoints" / "best.safetensors")
    with pytest.raises(tlw.TrainingError, match=r"diverged.*learning rate .*peak 10.*lr_find") as info:
        trainer.fit(epochs=3, lr=10.0)
    assert trainer.state == "failed" and "best" in str(info.value)
    now = model.state_dict()
    for k, v in best.items():
        assert torch.equal(now[k], v), k


def test_a_diverging_run_before_any_checkpoint_keeps_its_starting_weights(tmp_path):
    model = small_timm()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(model, make_data(size=32), lr=1e9, epochs=2, run_dir=tmp_path,
                      verbose=False)
    with pytest.raises(tlw.TrainingError) as info:
        trainer.fit()
    assert "started this run with" in str(info.value) or "last finite" in str(info.value)
    for k, v in model.state_dict().items():
        assert torch.isfinite(v.float()).all(), k
    assert all(torch.equal(model.state_dict()[k], v) for k, v in start.items()) \
        or "last finite" in str(info.value)


def test_paused_time_is_not_counted_in_the_epoch_seconds_or_elapsed(tmp_path):
    ref: list[Trainer] = []

    def slow(event: TrainerEvent) -> None:
        if event.kind == "step":
            time.sleep(0.02)

    trainer = Trainer(Tiny(), make_data(), epochs=1, run_dir=tmp_path, verbose=False,
                      callbacks=[slow])
    ref.append(trainer)
    paused_at: list[float] = []
    trainer.start()
    deadline = time.monotonic() + 30
    while trainer.progress()["step"] < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    trainer.pause()
    while trainer.state != "paused" and time.monotonic() < deadline:
        time.sleep(0.005)
    paused_at.append(trainer.progress()["elapsed"])
    time.sleep(2.0)
    during = trainer.progress()["elapsed"]
    trainer.resume()
    assert trainer.wait(timeout=60) == "finished"
    assert during - paused_at[0] < 0.5  # the clock stands still while paused
    seconds = trainer.history["seconds"].iloc[0]
    unpaused = Trainer(Tiny(), make_data(), epochs=1, run_dir=tmp_path / "b", verbose=False,
                       callbacks=[slow])
    unpaused.fit()
    assert seconds < unpaused.history["seconds"].iloc[0] + 1.5  # not + 2 s
    assert trainer.steps["img_s"].min() > 0 and trainer.steps["time"].iloc[-1] < seconds + 1.0


def test_a_second_trainer_on_a_busy_model_says_it_is_waiting(tmp_path):
    from tlwidgets._runtime import model_lock

    model = Tiny()
    states: list[str] = []
    trainer = Trainer(model, make_data(), epochs=1, run_dir=tmp_path, verbose=False,
                      callbacks=[lambda e: e.kind == "state" and states.append(e.data["state"])])
    lock = model_lock(model)
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    trainer.start()
    deadline = time.monotonic() + 10
    while trainer.state != "waiting" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert trainer.state == "waiting" and trainer.progress()["step"] == 0
    release.set()
    t.join()
    assert trainer.wait(timeout=60) == "finished"
    assert states[:3] == ["running", "waiting", "running"]


def test_fit_in_a_script_prints_a_bar_and_one_line_per_epoch(tmp_path):
    script = textwrap.dedent(f"""
        import sys, numpy as np, torch
        sys.path.insert(0, {str(REPO)!r})
        import tlwidgets as tlw
        from tests.tiny_model import Tiny
        torch.set_num_threads(1)
        rng = np.random.default_rng(0)
        labels = np.arange(48) % 2
        images = rng.random((48, 16, 16, 3)).astype(np.float32)
        data = tlw.ImageData.from_arrays(images, labels, batch_size=8, img_size=16)
        tlw.Trainer(Tiny(), data, epochs=2, run_dir={str(tmp_path / 'run')!r}).fit()
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].split() == ["epoch", "train_loss", "valid_loss", "accuracy", "seconds"]
    assert [line.split()[0] for line in lines[1:]] == ["1", "2"]
    assert "epoch 1/2" in out.stderr and "loss=" in out.stderr and "img_s=" in out.stderr


def test_with_a_dashboard_attached_nothing_extra_is_printed(tmp_path, capsys):
    from tlwidgets.widgets._traffic import record_traffic

    with record_traffic():
        trainer = Trainer(Tiny(), make_data(), epochs=1, run_dir=tmp_path)
        dash = tlw.TrainingDashboard(trainer, evaluate=False)
        trainer.fit()
        dash.close()
    captured = capsys.readouterr()
    assert "train_loss" not in captured.out and "epoch 1/1" not in captured.err


def test_log_events_reach_the_tlwidgets_logger(tmp_path, caplog):
    with caplog.at_level("INFO", logger="tlwidgets"):
        Trainer(Tiny(), make_data(), epochs=1, run_dir=tmp_path, verbose=False).fit()
    assert any("feature cache" in r.getMessage() for r in caplog.records)


def test_the_default_name_tells_runs_apart(tmp_path):
    pretrained_like = small_timm()
    tlw.apply_preset(pretrained_like, "head")
    a = Trainer(pretrained_like, make_data(size=32), run_dir=tmp_path / "a", verbose=False)
    b = Trainer(small_timm(), make_data(size=32), run_dir=tmp_path / "b", verbose=False)
    assert a.name == "resnet18 · random init · head"
    assert b.name == "resnet18 · random init · all"
    assert Trainer(Tiny(), make_data(), name="mine", run_dir=tmp_path / "c").name == "mine"


def test_config_is_one_frozen_validated_object_saved_with_the_run(tmp_path):
    import json

    trainer = Trainer(Tiny(), make_data(), epochs=1, lr=2e-3, run_dir=tmp_path, verbose=False)
    with pytest.raises(Exception):
        trainer.config.epochs = 5  # frozen
    trainer.fit()
    saved = json.loads((tmp_path / "run.json").read_text())["config"]
    assert saved["lr"] == 2e-3 and saved["epochs"] == 1
    for bad in ({"lr": None}, {"lr": slice(None, None)}, {"weight_decay": float("nan")},
                {"seed": "abc"}, {"verbose": "loud"}):
        with pytest.raises(tlw.ConfigError):
            Trainer(Tiny(), make_data(), **bad)
    with pytest.raises(tlw.ConfigError, match="lr_mult"):
        trainer.fine_tune(1, lr_mult=0)


# ------------------------------------------------------------------ a busy CPU


class _FakeRun:
    def __init__(self, device: str = "cpu") -> None:
        self.ctx = type("Ctx", (), {"device": torch.device(device)})()
        self.logged: list[str] = []
        self.log = self.logged.append


def _busy_cpu_run(hook, cpu_per_wall_second: float, seconds: int = 12, runs: int = 1) -> _FakeRun:
    run, clock = _FakeRun(), {"cpu": 0.0}
    hook.cpu_time = lambda: clock["cpu"]
    for _ in range(runs):
        hook.on_run_start(run)
        for step in range(1, seconds + 2):
            clock["cpu"] += cpu_per_wall_second
            hook.on_step(run, {"step": step, "time": float(step)})
    return run


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_a_run_that_does_not_get_its_cores_says_to_use_one_thread(two_threads):
    from tlwidgets.training.hooks import BusyCPUHint

    hook = BusyCPUHint(load=lambda: 4.6, cores=lambda: 2)
    run = _busy_cpu_run(hook, cpu_per_wall_second=0.5, runs=2)
    assert len(run.logged) == 1  # once per trainer, not once per fit()
    assert "got 0.5 of the 2 cores" in run.logged[0]
    assert "torch.set_num_threads(1)" in run.logged[0] and "load average 4.6" in run.logged[0]


def test_no_busy_cpu_hint_when_the_run_gets_its_cores_or_uses_one_thread(two_threads):
    from tlwidgets.training.hooks import BusyCPUHint

    # the cores are ours (the load is this run's own two threads)
    assert _busy_cpu_run(BusyCPUHint(load=lambda: 2.1, cores=lambda: 2), 1.9).logged == []
    # a low share of the cores but an idle machine (the run waits on something else)
    assert _busy_cpu_run(BusyCPUHint(load=lambda: 0.8, cores=lambda: 2), 0.5).logged == []
    # shorter than the window: nothing measured yet
    hook = BusyCPUHint(load=lambda: 5.0, cores=lambda: 2)
    assert _busy_cpu_run(hook, 0.5, seconds=5).logged == []
    torch.set_num_threads(1)
    assert _busy_cpu_run(BusyCPUHint(load=lambda: 5.0, cores=lambda: 2), 0.3).logged == []


def test_every_trainer_watches_for_a_busy_cpu():
    data = make_data()
    trainer = Trainer(Tiny(num_classes=2), data, epochs=1, device="cpu", verbose=False)
    assert type(trainer.run.hooks["busy-cpu"]).__name__ == "BusyCPUHint"
