"""Crash test (issue 11): runs killed with SIGKILL at random moments, half of them aimed at a
checkpoint being written, each then resumed. Every run folder must either resume to the same
schedule with a history that has no repeated or missing epoch, or be refused with a message
naming what is missing: none inconsistent. Bounded: 20 runs of a tiny model."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import tlwidgets as tlw
from tlwidgets.training import Trainer

from .tiny_model import Tiny

REPO = Path(__file__).resolve().parent.parent
EPOCHS = 6
RUNS = 20

WORKER = textwrap.dedent("""
    import sys, time, numpy as np, torch
    sys.path.insert(0, {repo!r})
    torch.set_num_threads(1)
    import tlwidgets as tlw
    from tlwidgets.training import Trainer, checkpoints, hooks
    from tests.test_faults_crash import make_data
    from tests.tiny_model import Tiny

    real = checkpoints.save_checkpoint
    def announced(*args, **kwargs):
        print("CKPT", flush=True)
        time.sleep(0.02)  # a slower disk: the kill has something to hit
        return real(*args, **kwargs)
    hooks.save_checkpoint = announced
    torch.manual_seed(0)
    trainer = Trainer(Tiny(), make_data(), epochs={epochs}, run_dir=sys.argv[1], verbose=False,
                      schedule="one_cycle", seed=0,
                      callbacks=[lambda e: e.kind == "epoch" and print("EPOCH", flush=True)])
    print("START", flush=True)
    trainer.fit()
    print("DONE", flush=True)
""")


def make_data() -> tlw.ImageData:
    rng = np.random.default_rng(0)
    labels = np.arange(96) % 2
    images = rng.random((96, 16, 16, 3)).astype(np.float32) * 0.5
    images[labels == 1] += 0.4
    return tlw.ImageData.from_arrays(images, labels, classes=["dark", "light"], batch_size=8,
                                     img_size=16)


def _kill_at_random(run_dir: Path, aim_at_checkpoint: bool, rng: random.Random) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER.format(repo=str(REPO), epochs=EPOCHS), str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    started = False
    kill_at = None
    target_ckpt = rng.randint(1, EPOCHS - 1)
    seen_ckpt = 0
    # random moments spread over the run: after a random number of epochs, a random delay
    target_epochs = rng.randint(0, EPOCHS - 2)
    seen_epochs = 0
    try:
        while time.monotonic() < deadline:
            if kill_at is not None and time.monotonic() >= kill_at:
                break
            ready, _, _ = select.select([proc.stdout], [], [], 0.005)
            if not ready:
                if proc.poll() is not None:
                    return "finished before the kill"
                continue
            line = proc.stdout.readline().strip()
            if line == "START":
                started = True
                if not aim_at_checkpoint and target_epochs == 0:
                    kill_at = time.monotonic() + rng.uniform(0.0, 0.3)
            elif line == "EPOCH" and not aim_at_checkpoint:
                seen_epochs += 1
                if seen_epochs == target_epochs:
                    kill_at = time.monotonic() + rng.uniform(0.0, 0.3)
            elif line == "CKPT" and aim_at_checkpoint and started:
                seen_ckpt += 1
                if seen_ckpt >= target_ckpt:
                    kill_at = time.monotonic() + rng.uniform(0.0, 0.04)  # inside the write
            elif line == "DONE":
                return "finished before the kill"
        proc.send_signal(signal.SIGKILL)
        return "killed"
    finally:
        proc.kill()
        proc.wait(timeout=30)


def _reference_lrs(tmp: Path) -> list[float]:
    torch.manual_seed(0)
    full = Trainer(Tiny(), make_data(), epochs=EPOCHS, run_dir=tmp, verbose=False, seed=0)
    full.fit()
    return full.steps["lr"].tolist()


@pytest.mark.slow
def test_runs_killed_at_random_moments_resume_consistently_or_are_refused(tmp_path, capsys):
    torch.set_num_threads(1)
    reference = _reference_lrs(tmp_path / "reference")
    rng = random.Random(1234)
    tally = {"resumed": 0, "refused": 0, "finished before the kill": 0,
             "killed after its last epoch": 0, "inconsistent": 0}
    problems: list[str] = []
    for i in range(RUNS):
        run_dir = tmp_path / f"run{i}"
        aimed = i % 2 == 1
        outcome = _kill_at_random(run_dir, aimed, rng)
        if outcome != "killed":
            tally[outcome] += 1
            continue
        try:
            trainer = Trainer.resume(run_dir, Tiny(), make_data(), verbose=False)
        except tlw.TrainingError as err:
            msg = str(err)
            # refused, naming what is missing or damaged
            if "no checkpoint" in msg or "missing" in msg or "damaged" in msg or "killed" in msg:
                tally["refused"] += 1
                continue
            problems.append(f"run {i}: refused without naming what is missing: {msg}")
            tally["inconsistent"] += 1
            continue
        if trainer.run.epochs_done == EPOCHS:
            # killed after its last epoch (the checkpoint written, the process not yet out):
            # nothing is left to train, and what is on disk must be the whole run
            outcome = "killed after its last epoch"
        else:
            trainer.fit()
            outcome = "resumed"
        history = trainer.history["epoch"].tolist()
        on_disk = pd.read_csv(run_dir / "history.csv")["epoch"].tolist()
        steps = trainer.steps
        ok = (history == list(range(1, EPOCHS + 1)) and on_disk == history
              and steps["step"].tolist() == list(range(1, len(reference) + 1))
              and np.allclose(steps["lr"].to_numpy(), reference, rtol=1e-9))
        if ok:
            tally[outcome] += 1
        else:
            tally["inconsistent"] += 1
            problems.append(f"run {i} ({'aimed' if aimed else 'random'}): history {history}, "
                            f"on disk {on_disk}, {len(steps)} steps")
    with capsys.disabled():
        print(f"\ncrash test: {RUNS} runs killed with SIGKILL ({RUNS // 2} aimed at checkpoint "
              f"writes): " + ", ".join(f"{k} {v}" for k, v in tally.items()))
    assert tally["inconsistent"] == 0, "\n".join(problems)
    assert tally["resumed"] + tally["refused"] >= RUNS // 2  # the kills really happened
