"""The Trainer under torchrun (CPU, gloo, 2 processes), launched from here with tlw.launch and
followed through its run folder: what each rank saw, who wrote the folder, the loss against one
process with the same global batches, Stop through control.json, a killed worker."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import numpy as np
import pytest

import tlwidgets as tlw
from tlwidgets.training.run_follower import RunFollower
from tlwidgets.training.run_reader import RunReader

from . import ddp_recipe

ROOT = Path(__file__).resolve().parent.parent
TRAINER = {"epochs": 2, "lr": 0.01, "device": "cpu", "cache_features": False, "seed": 0,
           "verbose": False}
RECIPE = {"name": "ddp-test", "function": "tests.ddp_recipe:build", "trainer": TRAINER}
STEPS_PER_EPOCH = 4  # 64 training images, 8 per rank per step: a global batch of 16
# epoch 1 trains the head only, epoch 2 everything at discriminative rates: the DDP wrapper is
# made again when the freeze state changes
FINE_TUNE = {"epochs": 1, "freeze_epochs": 1}

pytestmark = pytest.mark.timeout(300)


def job_env(trace: Path, **extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {"PYTHONPATH": path, "TLW_TEST_TRACE": str(trace), "OMP_NUM_THREADS": "1", **extra}


def wait_for(cond, timeout: float, what: str, job=None) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached in {timeout} s\n"
                                 + (job.log()[-3000:] if job is not None else ""))
        time.sleep(0.05)


def follow(job, events: list) -> RunFollower:
    """What a dashboard does: load what is there, subscribe, then watch (``events`` gets a
    ``("loaded", steps)`` entry first)."""
    wait_for(lambda: (job.run_dir / "recipe.json").exists(), 30, "run folder")
    follower = RunFollower(job.run_dir, live=False, poll_interval=0.05)
    follower.subscribe(events.append)
    events.insert(0, ("loaded", follower.steps["step"].tolist()))
    follower.watch()
    return follower


def steps_received(events: list) -> list[int]:
    return events[0][1] + [e.data["step"] for e in events[1:] if e.kind == "step"]


def batches_seen(trace: Path, rank: int) -> list[list[int]]:
    text = (trace / f"seen-rank{rank}.txt").read_text()
    return [[int(v) for v in line.split()] for line in text.splitlines()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_process_same_batches(tmp_path: Path, monkeypatch) -> tlw.Trainer:
    """One process, world size 1, batch 16: the same global batches as 2 ranks of 8 (and the
    same fine_tune and grad_accum=2)."""
    for k, v in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                 "MASTER_PORT": str(free_port())}.items():
        monkeypatch.setenv(k, v)
    data = ddp_recipe.make_data(batch_size=2 * ddp_recipe.BATCH)
    trainer = tlw.Trainer(ddp_recipe.make_model(data), data, run_dir=tmp_path / "one",
                          **TRAINER, grad_accum=2)
    try:
        trainer.fine_tune(**FINE_TUNE)
    finally:
        trainer.distributed.close()
    return trainer


def test_two_processes_train_as_one_run(tmp_path: Path, monkeypatch) -> None:
    trace = tmp_path / "trace"
    trace.mkdir()
    events: list = []
    recipe = {**RECIPE, "fine_tune": FINE_TUNE, "trainer": {**TRAINER, "grad_accum": 2}}
    job = tlw.launch(recipe, nproc=2, run_dir=tmp_path / "run", env=job_env(trace))
    follower = follow(job, events)
    assert job.wait(timeout=240) == "finished", job.log()[-3000:]
    assert job.returncode == 0, job.log()[-4000:]
    wait_for(lambda: any(e.kind == "state" and e.data["state"] == "finished"
                         for e in events[1:]), 30, "the follower's final state")
    follower.close()

    steps = [r.data for r in RunReader(job.run_dir).poll() if r.kind == "step"]
    n = 2 * STEPS_PER_EPOCH
    assert [s["step"] for s in steps] == list(range(1, n + 1))
    assert all(s["world_size"] == 2 for s in steps)
    assert follower.info["world_size"] == 2
    assert [s["epoch"] for s in steps] == [1] * STEPS_PER_EPOCH + [2] * STEPS_PER_EPOCH

    # each rank saw a disjoint half of the training set, a new half each epoch
    data = ddp_recipe.make_data()
    train_ids = {ddp_recipe.decode(x[None], float(data.mean[2]), float(data.std[2]))[0]
                 for x, _ in data.train_ds}
    seen = {r: batches_seen(trace, r) for r in (0, 1)}
    assert all(len(b) == n and all(len(x) == ddp_recipe.BATCH for x in b) for b in seen.values())
    halves = []
    for e in range(2):
        part = slice(e * STEPS_PER_EPOCH, (e + 1) * STEPS_PER_EPOCH)
        a = {i for b in seen[0][part] for i in b}
        b = {i for b in seen[1][part] for i in b}
        assert a.isdisjoint(b) and a | b == train_ids and len(a) == len(b) == len(train_ids) // 2
        halves.append(a)
    assert halves[0] != halves[1]  # reshuffled for the second epoch

    # grad_accum=2: the gradients were all-reduced once per optimizer step (the first
    # micro-batch of each runs under DDP's no_sync), not once per batch; one bucket a step
    for r in (0, 1):
        syncs = (trace / f"syncs-rank{r}.txt").read_text().split()
        assert len(syncs) == n // 2, (r, syncs)

    # only rank 0 wrote the folder: rank 1 could not, and never tried
    assert not (trace / "writes-rank1.txt").exists()
    assert follower.info["writer"]["rank"] == 0
    assert (job.run_dir / "checkpoints" / "last.safetensors").exists()

    # a follower (what a dashboard subscribes to) received every step once, in order
    assert steps_received(events) == list(range(1, n + 1))
    assert follower.history["epoch"].tolist() == [1, 2]


    # the loss curve is one process's with the same global batches, through fine_tune's freeze
    # change and grad_accum=2 (no BatchNorm, so exact up to float summation order: the stated
    # tolerance is 1e-4 relative)
    one = one_process_same_batches(tmp_path, monkeypatch)
    np.testing.assert_allclose([s["loss"] for s in steps], one.steps["loss"], rtol=1e-4)
    np.testing.assert_allclose([s["lrs"][-1] for s in steps], one.steps["lr"], rtol=1e-9)
    # epoch 1 trained the head alone; epoch 2 every group, at discriminative rates
    first, last = steps[0]["lrs"], steps[-1]["lrs"]
    assert len(last) > len(first) and last[0] < last[-1]
    np.testing.assert_allclose(follower.history[["valid_loss", "accuracy"]].to_numpy(float),
                               one.history[["valid_loss", "accuracy"]].to_numpy(float), rtol=1e-4)


def test_stop_through_the_control_file_ends_both_processes(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    trace.mkdir()
    events: list = []
    recipe = {**RECIPE, "trainer": {**TRAINER, "epochs": 100}}
    job = tlw.launch(recipe, nproc=2, run_dir=tmp_path / "run",
                     env=job_env(trace, TLW_TEST_SLEEP="0.05"))
    follower = follow(job, events)
    dash = tlw.TrainingDashboard.follow(job.run_dir, poll_interval=0.05)
    wait_for(lambda: len(follower.steps) >= 3, 240, "three steps", job)
    asked_at = int(follower.steps["step"].iloc[-1])
    follower.stop()
    assert job.wait(timeout=120) == "stopped", job.log()[-3000:]
    assert job.returncode == 0  # both workers ended normally
    follower.refresh()
    last = int(follower.steps["step"].iloc[-1])
    assert last - asked_at <= 5, (asked_at, last)
    states = [e.data["state"] for e in events[1:] if e.kind == "state"]
    assert states[-2:] == ["stopping", "stopped"]
    # both ranks stopped at the same step: each ran as many training batches as rank 0 logged
    assert len(batches_seen(trace, 0)) == len(batches_seen(trace, 1)) == last
    follower.close()
    # a dashboard made with TrainingDashboard.follow plotted every step of it
    wait_for(lambda: dash.trainer.state == "stopped", 30, "the dashboard's follower")
    dash.flush()
    assert np.asarray(dash.raw_line.x).tolist() == list(range(1, last + 1))
    dash.close()


def test_a_killed_worker_leaves_a_failed_run_whose_checkpoint_resumes(tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    trace.mkdir()
    recipe = {**RECIPE, "trainer": {**TRAINER, "epochs": 3}}
    kill_at = STEPS_PER_EPOCH + 2  # rank 1's second step of epoch 2
    job = tlw.launch(recipe, nproc=2, run_dir=tmp_path / "run",
                     env=job_env(trace, TLW_TEST_KILL=f"1:{kill_at}"))
    assert job.wait(timeout=240) == "failed", job.log()[-3000:]
    assert job.returncode != 0
    follower = RunFollower(job.run_dir, live=False)
    errors = [r.data for r in RunReader(job.run_dir).poll() if r.kind == "error"]
    killed = [e for e in errors if e.get("rank") == 1]
    assert killed and "SIGKILL" in killed[-1]["message"], errors
    assert follower.state == "failed" and "rank 1" in follower.error
    assert follower.history["epoch"].tolist()[:1] == [1]

    # the last checkpoint loads, and the run goes on in one process (another world size)
    data = ddp_recipe.make_data(batch_size=2 * ddp_recipe.BATCH)
    trainer = tlw.Trainer.resume(job.run_dir, ddp_recipe.make_model(data), data)
    assert trainer.run.epochs_done >= 1
    trainer.fit()
    assert trainer.state == "finished" and trainer.history["epoch"].tolist() == [1, 2, 3]
    again = RunFollower(job.run_dir, live=False)
    assert again.state == "finished" and again.history["epoch"].tolist() == [1, 2, 3]


# ---------------------------------------------------------------------- recipes, checked up front
@pytest.mark.parametrize("recipe, message", [
    ({"model": {"name": "resnet18"}, "data": {"root": "."}, "trainr": {}},
     "unknown recipe key 'trainr' \\(did you mean 'trainer'\\?\\)"),
    ({"model": {"name": "resnet18"}, "data": {"root": ".", "img_sise": 64}},
     "recipe\\['data'\\] has 'img_sise'.*did you mean 'img_size'"),
    ({"model": {"name": "resnet18"}, "data": {"root": "."}, "trainer": {"run_dir": "x"}},
     "cannot set 'run_dir'.*tlw.launch"),
    ({"model": {"name": "resnet18"}, "data": {"root": "."}, "freeze": "heads"},
     "recipe\\['freeze'\\] must be a preset"),
    ({"model": {"weights": "none"}, "data": {"root": "."}}, "recipe\\['model'\\] needs 'name'"),
    ({"data": {"root": "."}}, "needs 'model'"),
    ({"function": "no_such_package_xyz.recipes:build"}, "cannot find the module"),
    ({"function": "tests.ddp_recipe:build", "model": {"name": "resnet18"}}, "drop 'model'"),
    ({"model": {"name": "resnet18"}, "data": {"root": "."}, "trainer": {"lr": object()}},
     "plain JSON values"),
    ("no/such/recipe.json", "no recipe file"),
])
def test_a_bad_recipe_is_refused_before_any_process_starts(recipe, message, tmp_path) -> None:
    with pytest.raises(tlw.RecipeError, match=message):
        tlw.launch(recipe, nproc=2, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_launch_refuses_a_folder_that_holds_a_run(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(tlw.RunFolderError, match="already holds a run.*resume=True"):
        tlw.launch(RECIPE, nproc=2, run_dir=tmp_path)
    with pytest.raises(tlw.ConfigError, match="nproc must be an integer >= 1"):
        tlw.launch(RECIPE, nproc=0, run_dir=tmp_path / "x")


def test_torchrun_failure_report_is_read() -> None:
    from tlwidgets.launch import torchrun_failure

    report = """
Root Cause (first observed failure):
[0]:
  time      : 2026-12-01_09:29:58
  host      : node3
  rank      : 5 (local_rank: 1)
  exitcode  : 1 (pid: 854)
  error_file: /tmp/err.json
  traceback : Traceback (most recent call last):
    File "x.py", line 1, in <module>
  ValueError: bad batch
============================================================
"""
    got = torchrun_failure(report)
    assert got["rank"] == 5 and got["exitcode"] == 1 and got["host"] == "node3"
    assert got["message"] == "rank 5 failed: ValueError: bad batch"


def test_the_same_recipe_runs_from_a_terminal_in_one_process(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({**RECIPE, "trainer": {**TRAINER, "epochs": 1}}))
    env = {**os.environ, **job_env(tmp_path)}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(k, None)
    done = subprocess.run([sys.executable, "-m", "tlwidgets.run", str(recipe), "--run-dir",
                           str(tmp_path / "run")], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    follower = RunFollower(tmp_path / "run", live=False)
    assert follower.state == "finished" and follower.info["world_size"] == 1
    # one process, batch 8: twice the steps of a 2-rank epoch
    assert follower.steps["step"].tolist() == list(range(1, 2 * STEPS_PER_EPOCH + 1))
