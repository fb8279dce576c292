"""Controlling a run and surviving its failures: start/pause/resume/stop from another thread,
state events, non-finite loss, out of memory, a failing callback, Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import tlwidgets as tlw
from tlwidgets.training import Trainer, TrainerEvent

from .tiny_model import Tiny

torch.set_num_threads(1)


def make_data(n: int = 64, batch_size: int = 8) -> tlw.ImageData:
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * (n // 2))
    images = rng.random((n, 16, 16, 3)).astype(np.float32) * 0.5
    images[labels == 1] += 0.4
    return tlw.ImageData.from_arrays(images, labels, classes=["dark", "light"],
                                     batch_size=batch_size, img_size=16)


def wait_for(cond, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def slow_steps(event: TrainerEvent) -> None:
    # keeps a background run going long enough to be steered from the test thread
    if event.kind == "step":
        time.sleep(0.01)


def clone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    now = model.state_dict()
    for k, v in state.items():
        assert torch.equal(now[k], v), k


def assert_usable(trainer: Trainer) -> None:
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    df = trainer.predict(torch.rand(2, 3, 16, 16), k=1)
    assert len(df) == 2 and df["prob_1"].between(0, 1).all()


def test_start_pause_resume_stop_from_another_thread(tmp_path: Path) -> None:
    states: list[str] = []
    trainer = Trainer(Tiny(), make_data(), epochs=200, run_dir=tmp_path,
                      callbacks=[slow_steps,
                                 lambda e: e.kind == "state" and states.append(e.data["state"])])
    assert trainer.state == "idle"
    t0 = time.monotonic()
    trainer.start()
    assert time.monotonic() - t0 < 5  # returned at once, not after 200 epochs
    assert trainer.state == "running"
    wait_for(lambda: len(trainer.steps) >= 3)

    trainer.pause()
    wait_for(lambda: trainer.state == "paused")
    paused_at = len(trainer.steps)
    cpu0 = sum(os.times()[:2])
    time.sleep(0.4)
    assert len(trainer.steps) == paused_at  # the step counter stopped
    # a paused loop blocks on an Event: it does not burn a core while waiting
    assert sum(os.times()[:2]) - cpu0 < 0.2

    trainer.resume()
    wait_for(lambda: len(trainer.steps) > paused_at + 2)
    assert trainer.state == "running"

    trainer.stop()
    stop_called_at = len(trainer.steps)
    assert trainer.wait(timeout=30) == "stopped"
    assert len(trainer.steps) <= stop_called_at + 1  # within one step
    assert states == ["running", "paused", "running", "stopping", "stopped"]
    assert_usable(trainer)


def test_second_start_while_running_is_a_clear_error(tmp_path: Path) -> None:
    trainer = Trainer(Tiny(), make_data(), epochs=200, run_dir=tmp_path, callbacks=[slow_steps])
    trainer.start()
    try:
        with pytest.raises(tlw.TrainerStateError, match="stop"):
            trainer.start()
        with pytest.raises(tlw.TrainerStateError):
            trainer.fit()
        with pytest.raises(tlw.TrainerStateError):
            trainer.lr_find()
    finally:
        trainer.stop()
        trainer.wait(timeout=30)
    assert trainer.state == "stopped"
    with pytest.raises(tlw.TrainerStateError, match="not paused"):
        trainer.resume()


def test_stop_from_a_callback_takes_effect_before_the_next_step(tmp_path: Path) -> None:
    ref: list[Trainer] = []

    def stop_at_5(event: TrainerEvent) -> None:
        if event.kind == "step" and event.data["step"] == 5:
            ref[0].stop()

    trainer = Trainer(Tiny(), make_data(), epochs=3, run_dir=tmp_path, callbacks=[stop_at_5])
    ref.append(trainer)
    trainer.start()
    assert trainer.wait(timeout=30) == "stopped"
    assert trainer.steps["step"].tolist() == [1, 2, 3, 4, 5]
    # the stopped run left a resumable checkpoint and the steps on disk
    assert (tmp_path / "checkpoints" / "last.state.pt").exists()
    assert len(np.loadtxt(tmp_path / "steps.csv", delimiter=",", skiprows=1, ndmin=2)) == 5


def test_non_finite_loss_fails_naming_step_and_lr_and_keeps_last_finite_weights(
    tmp_path: Path,
) -> None:
    model = Tiny(fail_at=3)
    saved: dict[int, dict[str, torch.Tensor]] = {}
    errors: list[dict] = []

    def keep(event: TrainerEvent) -> None:
        if event.kind == "step":
            saved[event.data["step"]] = clone_state(model)
        if event.kind == "error":
            errors.append(event.data)

    trainer = Trainer(model, make_data(), lr=1e-2, epochs=2, run_dir=tmp_path, callbacks=[keep])
    with pytest.raises(tlw.TrainingError, match=r"step 3 \(learning rate") as info:
        trainer.fit()
    assert "nan" in str(info.value)
    assert trainer.state == "failed" and trainer.error is info.value
    assert errors and "step 3" in errors[0]["message"]
    assert_same_state(model, saved[2])  # BN statistics included
    assert_usable(trainer)


def test_out_of_memory_fails_with_advice_and_the_model_intact(tmp_path: Path) -> None:
    model = Tiny(fail_at=4, exc=torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    saved: dict[int, dict[str, torch.Tensor]] = {}
    trainer = Trainer(model, make_data(), epochs=2, run_dir=tmp_path,
                      callbacks=[lambda e: e.kind == "step"
                                 and saved.__setitem__(e.data["step"], clone_state(model))])
    trainer.start()
    assert trainer.wait(timeout=30) == "failed"
    message = str(trainer.error)
    assert "out of memory" in message and "batch_size" in message and "freeze" in message
    assert isinstance(trainer.error.__cause__, torch.OutOfMemoryError)
    assert_same_state(model, saved[3])
    assert all(p.grad is None for p in model.parameters())
    assert_usable(trainer)


def test_a_failing_callback_stops_the_run_cleanly_and_is_reported(tmp_path: Path) -> None:
    def broken_view(event: TrainerEvent) -> None:
        if event.kind == "epoch" and event.data["epoch"] == 2:
            raise ValueError("plot exploded")

    errors: list[dict] = []
    states: list[str] = []
    trainer = Trainer(Tiny(), make_data(), epochs=5, run_dir=tmp_path,
                      callbacks=[lambda e: e.kind == "error" and errors.append(e.data),
                                 lambda e: e.kind == "state" and states.append(e.data["state"]),
                                 broken_view])
    with pytest.raises(tlw.TrainingError, match="broken_view.*plot exploded"):
        trainer.fit()
    assert trainer.state == "failed" and states[-1] == "failed"
    assert errors and errors[0]["type"] == "ValueError"
    assert trainer.history["epoch"].tolist() == [1, 2]  # kept, and on disk
    assert len(np.loadtxt(tmp_path / "history.csv", delimiter=",", skiprows=1, ndmin=2)) == 2
    assert_usable(trainer)

    # in the background the same failure ends in state failed with the error kept
    bg = Trainer(Tiny(), make_data(), epochs=5, run_dir=tmp_path / "bg", callbacks=[broken_view])
    bg.start()
    assert bg.wait(timeout=30) == "failed"
    assert isinstance(bg.error, tlw.TrainingError) and "plot exploded" in str(bg.error)


def test_keyboard_interrupt_during_fit_stops_cleanly_without_raising(tmp_path: Path) -> None:
    model = Tiny()
    saved: list[dict[str, torch.Tensor]] = []

    def interrupt_at_10(event: TrainerEvent) -> None:
        if event.kind == "step" and event.data["step"] == 10:
            saved.append(clone_state(model))
            raise KeyboardInterrupt

    trainer = Trainer(model, make_data(), epochs=3, run_dir=tmp_path, callbacks=[interrupt_at_10])
    history = trainer.fit()  # nothing escapes
    assert trainer.state == "stopped" and trainer.error is None
    assert len(history) == 1  # the first epoch (7 steps) is complete and kept
    assert trainer.steps["step"].max() == 10
    assert_same_state(model, saved[0])
    assert_usable(trainer)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signal handlers need the main thread")
def test_ctrl_c_during_fit_stops_after_the_current_step(tmp_path: Path) -> None:
    def ctrl_c_at_4(event: TrainerEvent) -> None:
        if event.kind == "step" and event.data["step"] == 4:
            os.kill(os.getpid(), signal.SIGINT)

    handler_before = signal.getsignal(signal.SIGINT)
    trainer = Trainer(Tiny(), make_data(), epochs=3, run_dir=tmp_path, callbacks=[ctrl_c_at_4])
    trainer.fit()
    assert trainer.state == "stopped"
    assert trainer.steps["step"].max() <= 5
    assert signal.getsignal(signal.SIGINT) is handler_before
    assert_usable(trainer)


def test_after_a_stop_training_can_start_again(tmp_path: Path) -> None:
    ref: list[Trainer] = []
    trainer = Trainer(Tiny(), make_data(), epochs=2, run_dir=tmp_path,
                      callbacks=[lambda e: e.kind == "step" and e.data["step"] == 3
                                 and ref[0].stop()])
    ref.append(trainer)
    trainer.fit()
    assert trainer.state == "stopped"
    trainer.fit(epochs=1)
    assert trainer.state == "finished"
    assert trainer.steps["step"].is_monotonic_increasing
