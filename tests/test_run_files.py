"""The run folder as an interface: RunWriter writes it, RunReader/RunFollower read it while it
grows (whole lines only, damaged lines skipped, stale heartbeats noticed), control.json carries
pause/resume/stop back."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import tlwidgets as tlw
from tlwidgets.errors import ConfigError, RunFolderError, TrainerStateError
from tlwidgets.training import Trainer, TrainerEvent
from tlwidgets.training import run_files
from tlwidgets.training.run_files import FORMAT, VERSION, RunWriter
from tlwidgets.training.run_follower import RunFollower
from tlwidgets.training.run_reader import RunReader

from .tiny_model import Tiny

torch.set_num_threads(1)


def wait_for(cond, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def step_row(i: int, epoch: int = 1) -> dict:
    return {"step": i, "epoch": epoch, "batch": i, "loss": 1.0 / i, "lrs": [1e-3, 1e-2],
            "img_s": 100.0, "time": i * 0.01}


def epoch_row(epoch: int) -> dict:
    return {"epoch": epoch, "train_loss": 0.5, "valid_loss": 0.4, "accuracy": 0.75,
            "seconds": 1.5, "lr": 1e-2, "lrs": [1e-3, 1e-2]}


def open_writer(folder: Path, **kw) -> RunWriter:
    w = RunWriter(folder, **kw)
    w.open({"epochs": 2, "lr": 1e-3}, classes=["cat", "dog"], model="tiny", world_size=1)
    return w


def test_a_run_reads_back_in_order_with_its_run_json(tmp_path: Path) -> None:
    w = open_writer(tmp_path)
    w.state("running")
    for i in range(1, 121):
        w.step(step_row(i))
    w.log("feature cache off: the backbone trains")
    w.epoch(epoch_row(1))
    w.warning("checkpoint not written: disk full")
    w.state("finished")
    w.close()

    records = RunReader(tmp_path).poll()
    kinds = [r.kind for r in records]
    assert kinds == ["state"] + ["step"] * 120 + ["log", "epoch", "warning", "state"]
    assert [r.seq for r in records] == list(range(len(records)))
    assert [r.data["step"] for r in records if r.kind == "step"] == list(range(1, 121))
    assert records[-1].data["state"] == "finished" and records[-1].data["previous"] == "running"
    assert all(r.data["world_size"] == 1 for r in records if r.kind == "step")
    info = json.loads((tmp_path / "run.json").read_text())
    assert info["format"] == FORMAT and info["version"] == VERSION
    assert info["classes"] == ["cat", "dog"] and info["config"]["epochs"] == 2
    assert info["writer"]["pid"] == os.getpid()
    hb = json.loads((tmp_path / "heartbeat.json").read_text())
    assert hb["state"] == "finished" and hb["step"] == 120
    # every line a reader sees is one whole JSON object
    for name in ("steps.jsonl", "epochs.jsonl", "events.jsonl"):
        raw = (tmp_path / name).read_bytes()
        assert raw.endswith(b"\n")
        assert all(isinstance(json.loads(line), dict) for line in raw.splitlines())


def test_non_finite_numbers_are_written_as_standard_json(tmp_path: Path) -> None:
    w = open_writer(tmp_path)
    w.epoch({**epoch_row(1), "valid_loss": float("nan"), "accuracy": np.float32(0.5)})
    w.close()
    line = (tmp_path / "epochs.jsonl").read_text()
    assert "NaN" not in line
    row = json.loads(line)
    assert row["valid_loss"] is None and row["accuracy"] == 0.5


def test_steps_are_buffered_until_a_flush_is_due(tmp_path: Path) -> None:
    w = open_writer(tmp_path, flush_interval=1e9)
    w.step(step_row(1))  # the first step flushes (nothing was written yet)
    for i in range(2, 50):
        w.step(step_row(i))
    reader = RunReader(tmp_path)
    assert [r.data["step"] for r in reader.poll() if r.kind == "step"] == [1]
    w.epoch(epoch_row(1))  # an epoch writes everything before it
    got = reader.poll()
    assert [r.data["step"] for r in got if r.kind == "step"] == list(range(2, 50))
    assert got[-1].kind == "epoch"
    w.close()


def test_an_unterminated_line_waits_for_its_end(tmp_path: Path) -> None:
    w = open_writer(tmp_path)
    w.step(step_row(1))
    w.flush()
    reader = RunReader(tmp_path)
    assert len(reader.poll()) == 1
    line = json.dumps({"seq": 1, **step_row(2)}).encode()
    with open(tmp_path / "steps.jsonl", "ab") as fh:
        fh.write(line[:20])
    assert reader.poll() == []  # half a line: not a record, not damage
    assert reader.damaged["steps"] == 0
    with open(tmp_path / "steps.jsonl", "ab") as fh:
        fh.write(line[20:] + b"\n")
    (rec,) = reader.poll()
    assert rec.data["step"] == 2 and reader.damaged["steps"] == 0
    w.close()


def test_damaged_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    w = open_writer(tmp_path)
    w.step(step_row(1))
    w.flush()
    with open(tmp_path / "steps.jsonl", "ab") as fh:
        fh.write(b"\xff\xfe not json \x00\n")
        fh.write(b"[1, 2]\n")
        fh.write(b'{"seq": 1000, "step": 7}{"seq": 1001, "step": 8}\n')  # two glued records
    w.step(step_row(2))
    w.close()
    reader = RunReader(tmp_path)
    steps = [r.data["step"] for r in reader.poll() if r.kind == "step"]
    assert steps == [1, 2]
    assert reader.damaged["steps"] == 3


def test_a_terminal_state_is_never_read_before_the_steps_written_before_it(tmp_path: Path) -> None:
    w = open_writer(tmp_path, flush_interval=0.0)
    n = 3000

    def write() -> None:
        w.state("running")
        for i in range(1, n + 1):
            w.step(step_row(i))
            if i % 500 == 0:
                w.epoch(epoch_row(i // 500))
        w.state("finished")
        w.close()

    thread = threading.Thread(target=write)
    reader = RunReader(tmp_path, chunk_bytes=4096)  # small chunks: many partial reads
    seen: list = []
    thread.start()
    while True:
        got = reader.poll()
        seen.extend(got)
        if any(r.kind == "state" and r.data["state"] == "finished" for r in got):
            break
    thread.join()
    steps = [r.data["step"] for r in seen if r.kind == "step"]
    assert steps == list(range(1, n + 1))  # all of them, once, in order, before "finished"
    assert [r.seq for r in seen] == sorted(r.seq for r in seen)
    assert seen[-1].kind == "state" and reader.poll() == []


def test_small_chunks_read_everything_once(tmp_path: Path) -> None:
    w = open_writer(tmp_path)
    for i in range(1, 401):
        w.step(step_row(i))
        if i % 100 == 0:
            w.epoch(epoch_row(i // 100))
    w.close()
    reader = RunReader(tmp_path, chunk_bytes=700)
    seen = []
    polls = 0
    while True:
        seen.extend(reader.poll())
        polls += 1
        if not reader.behind:
            break
    assert polls > 10
    assert [r.seq for r in seen] == list(range(404))
    assert [r.data["epoch"] for r in seen if r.kind == "epoch"] == [1, 2, 3, 4]


def test_one_folder_one_writer(tmp_path: Path) -> None:
    w = open_writer(tmp_path)
    w.state("running")
    with pytest.raises(RunFolderError, match=f"pid {os.getpid()}.*is writing the run folder"):
        open_writer(tmp_path)
    w.close()
    with pytest.raises(RunFolderError, match="already holds a run.*Trainer.resume"):
        open_writer(tmp_path)
    again = RunWriter(tmp_path)
    again.open(append=True)  # resume / another cycle
    assert again.info["classes"] == ["cat", "dog"]  # kept from the first open
    again.close()


def test_a_folder_that_cannot_be_a_folder_is_refused_at_open(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="is a file, not a folder"):
        RunWriter(tmp_path / "file").open({})
    with pytest.raises(RunFolderError, match="cannot create the run folder"):
        RunWriter(tmp_path / "file" / "run").open({})


def test_reopening_cuts_a_half_written_line_and_continues_the_sequence(tmp_path: Path) -> None:
    w = open_writer(tmp_path)
    for i in range(1, 4):
        w.step(step_row(i))
    w.close()
    with open(tmp_path / "steps.jsonl", "ab") as fh:
        fh.write(b'{"seq": 17, "step": 4, "lo')  # killed mid-append
    w2 = RunWriter(tmp_path)
    w2.open(append=True)
    assert w2.repaired == {"steps": len(b'{"seq": 17, "step": 4, "lo')}
    w2.step(step_row(4))
    w2.close()
    reader = RunReader(tmp_path)
    recs = reader.poll()
    assert [r.data["step"] for r in recs] == [1, 2, 3, 4]
    assert [r.seq for r in recs] == [0, 1, 2, 3] and reader.damaged["steps"] == 0


def test_a_failed_append_leaves_whole_lines_and_is_reported(tmp_path: Path, monkeypatch) -> None:
    w = open_writer(tmp_path, flush_interval=0.0)
    w.step(step_row(1))
    real = run_files._write_all

    def disk_full(fd: int, data: bytes) -> None:
        os.write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(run_files, "_write_all", disk_full)
    w.step(step_row(2))  # a timed flush fails: the hot path does not raise
    with pytest.raises(RunFolderError, match="No space left on device"):
        w.flush()
    reader = RunReader(tmp_path)
    assert [r.data["step"] for r in reader.poll()] == [1]
    assert reader.damaged["steps"] == 0
    monkeypatch.setattr(run_files, "_write_all", real)
    w.close()  # the kept row is written once the disk takes it
    assert [r.data["step"] for r in reader.poll()] == [2]


def test_control_commands_reach_the_writer_once(tmp_path: Path) -> None:
    w = open_writer(tmp_path, control_interval=0.0)
    reader = RunReader(tmp_path)
    assert w.read_control() is None
    reader.send("pause")
    assert w.read_control() == "pause"
    assert w.read_control() is None
    reader.send("resume")
    reader.send("stop")  # two commands between looks: the last one counts
    assert w.read_control() == "stop"
    with pytest.raises(ConfigError, match="unknown run command 'halt'"):
        reader.send("halt")
    w.close()
    again = RunWriter(tmp_path, control_interval=0.0)
    again.open(append=True)
    assert again.read_control() is None  # an old life's "stop" does not stop a resumed run
    reader.send("pause")
    assert again.read_control() == "pause"
    again.close()


def test_a_stopped_heartbeat_is_stale_but_a_finished_run_is_not(tmp_path: Path) -> None:
    w = open_writer(tmp_path)
    w.state("running")
    reader = RunReader(tmp_path, stale_after=0.2)
    reader.poll()
    assert not reader.stale
    wait_for(lambda: reader.stale, timeout=10)  # nobody beats any more
    w.heartbeat(force=True)
    assert not reader.stale
    w.state("finished")
    w.close()
    reader.poll()
    time.sleep(0.3)
    assert not reader.stale


def test_a_run_that_died_long_ago_is_stale_at_once(tmp_path: Path) -> None:
    w = open_writer(tmp_path)
    w.state("running")
    w.close()  # no terminal state: the process died
    hb = json.loads((tmp_path / "heartbeat.json").read_text())
    run_files.write_json_atomic(tmp_path / "heartbeat.json", {**hb, "time": hb["time"] - 3600})
    follower = RunFollower(tmp_path, live=False)
    assert follower.state == "running" and follower.stale
    assert "the training process stopped answering" in follower.error


# ---------------------------------------------------------------------- the follower vs a Trainer
def make_data(n: int = 48, batch_size: int = 8) -> tlw.ImageData:
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * (n // 2))
    images = rng.random((n, 16, 16, 3)).astype(np.float32) * 0.5
    images[labels == 1] += 0.4
    return tlw.ImageData.from_arrays(images, labels, classes=["dark", "light"],
                                     batch_size=batch_size, img_size=16)


class WriterHook:
    """What the Trainer's run-files hook does with its events (until the loop calls it)."""

    def __init__(self, writer: RunWriter) -> None:
        self.writer = writer

    def __call__(self, event: TrainerEvent) -> None:
        d = dict(event.data)
        if event.kind == "step":
            self.writer.step(d)
        elif event.kind == "epoch":
            self.writer.epoch(d)
        elif event.kind == "state":
            self.writer.state(d["state"], d["previous"])
        elif event.kind == "log":
            self.writer.log(d["message"])
        elif event.kind == "error":
            self.writer.error(d["message"], d["type"], d["step"])


def test_a_follower_publishes_what_the_trainer_published(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    writer = RunWriter(folder, flush_interval=0.0)
    writer.open({"epochs": 2}, classes=["dark", "light"])
    trainer_events: list[TrainerEvent] = []
    follower = RunFollower(folder, poll_interval=0.01)
    followed: list[TrainerEvent] = []
    follower.subscribe(followed.append)
    torch.manual_seed(0)
    trainer = Trainer(Tiny(2), make_data(), epochs=2, lr=1e-2, run_dir=tmp_path / "own",
                      callbacks=[trainer_events.append, WriterHook(writer)])
    trainer.fit()
    writer.close()
    assert follower.wait(timeout=30) == "finished"
    wait_for(lambda: len(followed) == len(trainer_events))
    follower.close()
    assert [e.kind for e in followed] == [e.kind for e in trainer_events]
    for mine, theirs in zip(followed, trainer_events):
        assert set(theirs.data) <= set(mine.data), (mine, theirs)
        for k, v in theirs.data.items():
            assert mine.data[k] == pytest.approx(v, nan_ok=True), k
    # the same tables and the same progress keys
    assert follower.history.columns.tolist() == trainer.history.columns.tolist()
    np.testing.assert_allclose(follower.history.to_numpy(float), trainer.history.to_numpy(float))
    assert follower.steps.columns.tolist() == trainer.steps.columns.tolist()
    np.testing.assert_allclose(follower.steps.to_numpy(float), trainer.steps.to_numpy(float))
    assert set(follower.progress()) == set(trainer.progress())
    assert follower.progress()["step"] == trainer.progress()["step"]


def test_follower_on_a_finished_run_and_its_commands(tmp_path: Path) -> None:
    w = open_writer(tmp_path)
    w.state("running")
    for i in range(1, 11):
        w.step(step_row(i))
    w.epoch(epoch_row(1))
    w.state("finished")
    w.close()
    follower = RunFollower(tmp_path, live=False)
    assert follower.state == "finished" and follower.wait(timeout=0) == "finished"
    assert len(follower.steps) == 10 and follower.history["epoch"].tolist() == [1]
    assert follower.name == "tiny" and follower.epochs == 2
    assert follower.progress()["eta"] == 0.0
    with pytest.raises(TrainerStateError, match="cannot pause: the followed run is 'finished'"):
        follower.pause()
    follower.stop()  # a no-op once it ended
    assert not (tmp_path / "control.json").exists()
    with pytest.raises(TrainerStateError, match="started by its own process"):
        follower.start()
    with pytest.raises(TrainerStateError, match="lives in another process"):
        follower.evaluate()


def test_follower_commands_go_through_the_control_file(tmp_path: Path) -> None:
    w = open_writer(tmp_path, control_interval=0.0)
    w.state("running")
    follower = RunFollower(tmp_path, live=False)
    follower.pause()
    assert w.read_control() == "pause"
    w.state("paused")
    follower.refresh()
    follower.resume()
    assert w.read_control() == "resume"
    follower.stop()
    assert w.read_control() == "stop"
    w.state("stopped")
    w.close()


def test_follower_says_when_the_process_stops_answering(tmp_path: Path) -> None:
    w = open_writer(tmp_path)
    w.state("running")
    w.step(step_row(1))
    w.flush()
    follower = RunFollower(tmp_path, poll_interval=0.02, stale_after=0.2)
    events: list[TrainerEvent] = []
    follower.subscribe(events.append)
    wait_for(lambda: any(e.kind == "error" for e in events))
    (err,) = [e for e in events if e.kind == "error"]
    assert err.data["message"].startswith("the training process stopped answering")
    assert err.data["step"] == 1 and follower.stale
    w.heartbeat(force=True)
    wait_for(lambda: any(e.data.get("message") == "the training process answers again"
                         for e in events))
    assert not follower.stale
    follower.close()
    w.close()


def test_a_rewind_to_a_checkpoint_drops_the_steps_logged_after_it(tmp_path: Path) -> None:
    w = open_writer(tmp_path)
    w.state("running")
    for i in range(1, 11):
        w.step(step_row(i, epoch=1 if i <= 5 else 2))
        if i == 5:
            w.epoch(epoch_row(1))
    w.close()  # killed in epoch 2; the checkpoint is the one of epoch 1 (step 5)
    w2 = RunWriter(tmp_path)
    w2.open(append=True)
    assert w2.last_step == 10
    w2.rewind(5, 1)
    w2.state("running", previous="failed")
    for i in range(6, 9):
        w2.step(step_row(i, epoch=2))
    w2.close()
    follower = RunFollower(tmp_path, live=False)
    assert follower.steps["step"].tolist() == list(range(1, 9))
    assert follower.history["epoch"].tolist() == [1]
    assert any("went back to its checkpoint at step 5" in m for m in follower.logs)


# ---------------------------------------------------------------------- the Trainer's own folder
def slow_steps(event: TrainerEvent) -> None:
    if event.kind == "step":
        time.sleep(0.02)


def test_a_trainer_in_the_kernel_writes_the_folder_and_obeys_its_control_file(
        tmp_path: Path) -> None:
    folder = tmp_path / "run"
    trainer = Trainer(Tiny(2), make_data(), epochs=200, run_dir=folder, callbacks=[slow_steps],
                      verbose=False)
    trainer.start()
    wait_for(lambda: (folder / "run.json").exists())
    follower = RunFollower(folder, poll_interval=0.02)
    seen: list[TrainerEvent] = []
    follower.subscribe(seen.append)
    wait_for(lambda: len(follower.steps) >= 3)
    assert follower.info["classes"] == ["dark", "light"] and follower.info["world_size"] == 1
    follower.pause()
    wait_for(lambda: trainer.state == "paused")
    wait_for(lambda: follower.state == "paused")
    beat = follower.reader.heartbeat()["time"]
    wait_for(lambda: follower.reader.heartbeat()["time"] > beat)  # it beats while paused
    steps_paused = len(trainer.steps)
    follower.resume()
    wait_for(lambda: len(trainer.steps) > steps_paused)
    follower.stop()
    assert trainer.wait(timeout=30) == "stopped"
    assert follower.wait(timeout=30) == "stopped"
    wait_for(lambda: seen and seen[-1].data.get("state") == "stopped")
    follower.close()
    np.testing.assert_allclose(follower.steps.to_numpy(float), trainer.steps.to_numpy(float))
    states = [e.data["state"] for e in seen if e.kind == "state"]
    paused = states.index("paused")  # (a "running" may come first: the follower can be early)
    assert states[paused + 1] == "running" and states[-2:] == ["stopping", "stopped"]


def test_a_new_trainer_does_not_write_over_a_finished_run(tmp_path: Path) -> None:
    first = Trainer(Tiny(2), make_data(), epochs=1, run_dir=tmp_path, verbose=False)
    first.fit()
    before = (tmp_path / "steps.jsonl").read_bytes()
    second = Trainer(Tiny(2), make_data(), epochs=1, run_dir=tmp_path, verbose=False)
    with pytest.raises(tlw.TLWidgetsError, match="already holds a run.*Trainer.resume"):
        second.fit()
    assert (tmp_path / "steps.jsonl").read_bytes() == before
    first.fit(epochs=1)  # the same trainer goes on in its own folder
    follower = RunFollower(tmp_path, live=False)
    assert follower.history["epoch"].tolist() == [1, 2]
    assert follower.steps["step"].tolist() == list(range(1, len(follower.steps) + 1))


def test_a_failing_follower_subscriber_is_recorded_and_the_others_still_get_events(
        tmp_path: Path) -> None:
    w = open_writer(tmp_path)
    w.state("running")
    for i in range(1, 4):
        w.step(step_row(i))
    w.flush()
    follower = RunFollower(tmp_path, live=False)

    def broken(event: TrainerEvent) -> None:
        raise ValueError("plot exploded")

    seen: list[TrainerEvent] = []
    follower.subscribe(broken)
    follower.subscribe(seen.append)
    w.step(step_row(4))
    w.flush()
    follower.refresh()
    assert any(e.kind == "step" for e in seen)
    assert follower.subscriber_errors and "plot exploded" in follower.subscriber_errors[0]
    with pytest.raises(tlw.ConfigError, match="TrainerEvent"):
        follower.subscribe("not a function")
    w.close()
