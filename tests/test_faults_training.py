"""Faults in runs and run folders (issue 11, items 1-7, 10-12, 14): nothing lost, nothing silent."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import tlwidgets as tlw
from tlwidgets.training import Trainer
from tlwidgets.training import checkpoints as ckpt

from .tiny_model import Tiny

torch.set_num_threads(1)


def make_data(n: int = 48, classes: tuple[str, ...] = ("dark", "light"), size: int = 16
              ) -> tlw.ImageData:
    rng = np.random.default_rng(0)
    labels = np.arange(n) % len(classes)
    images = rng.random((n, size, size, 3)).astype(np.float32) * 0.5
    images[labels == 1] += 0.4
    return tlw.ImageData.from_arrays(images, labels, classes=list(classes), batch_size=8,
                                     img_size=size)


def trained(run_dir: Path, epochs: int = 2) -> Trainer:
    t = Trainer(Tiny(), make_data(), epochs=epochs, run_dir=run_dir, verbose=False)
    t.fit()
    t.wait()  # the last epoch's checkpoint is written in the background
    return t


@contextlib.contextmanager
def tiny_filesystem(path: Path, size: str = "2m", readonly: bool = False):
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if readonly else "")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                      capture_output=True, check=False).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


# ---- 1. a checkpoint is one unit ------------------------------------------------------------


def test_a_pair_torn_by_a_kill_between_its_files_is_refused_naming_both(tmp_path):
    trained(tmp_path, epochs=1)
    folder = tmp_path / "checkpoints"
    keep = tmp_path / "epoch1"
    keep.mkdir()
    shutil.copy(folder / "last.state.pt", keep / "last.state.pt")
    t = Trainer.resume(tmp_path, Tiny(), make_data())
    t.fit(epochs=1)  # epoch 2: a new pair
    # as if killed between the two moves: a new file (a new inode, as os.replace makes; best may
    # be a hard link to the old one)
    (folder / "last.state.pt").unlink()
    shutil.copy(keep / "last.state.pt", folder / "last.state.pt")
    with pytest.raises(tlw.CheckpointError) as info:
        Trainer.resume(tmp_path, Tiny(), make_data())
    msg = str(info.value)
    assert "last.safetensors (epoch 2)" in msg and "last.state.pt (epoch 1)" in msg
    assert "killed" in msg and "'best'" in msg  # what can still be recovered


def test_killed_during_the_first_checkpoint_says_what_it_found(tmp_path):
    trained(tmp_path, epochs=1)
    (tmp_path / "checkpoints" / "last.state.pt").unlink()
    (tmp_path / "checkpoints" / "best.state.pt").unlink()
    with pytest.raises(tlw.CheckpointError, match=r"last.state.pt is missing.*history.csv holds 1"):
        Trainer.resume(tmp_path, Tiny(), make_data())


def test_orphaned_temporary_files_are_removed_on_the_next_start(tmp_path):
    t = trained(tmp_path, epochs=1)
    orphan = tmp_path / "checkpoints" / ".last.state.pt.abc123.tmp"
    orphan.write_bytes(b"x" * 1000)
    logs: list[str] = []
    t.subscribe(lambda e: e.kind == "log" and logs.append(e.data["message"]))
    t.fit(epochs=1)
    assert not orphan.exists() and any("killed run left" in m for m in logs)


def test_a_write_interrupted_half_way_leaves_the_previous_pair_intact(tmp_path, monkeypatch):
    t = trained(tmp_path, epochs=1)
    real = ckpt._save_state

    def dies(state, path):
        real(state, path)
        raise KeyboardInterrupt  # a kill after the temp files, before they move into place

    monkeypatch.setattr(ckpt, "_save_state", dies)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(tmp_path / "checkpoints", "last", t.model, {"epochs_done": 9})
    monkeypatch.setattr(ckpt, "_save_state", real)
    assert ckpt.checkpoint_info(tmp_path / "checkpoints", "last")["epochs_done"] == 1
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


# ---- 2. full, read-only, file-instead-of-folder run_dir -------------------------------------


def test_a_full_disk_fails_the_run_instead_of_losing_checkpoints_silently(tmp_path):
    with tiny_filesystem(tmp_path / "small", size="300k") as small:
        import timm

        model = timm.create_model("resnet18", pretrained=False, num_classes=2)
        with pytest.raises(tlw.RunFolderError, match=r"MB free.*needs about"):
            Trainer(model, make_data(size=32), epochs=1, run_dir=small / "run",
                    verbose=False).fit()


def test_a_checkpoint_that_cannot_be_written_fails_the_run_with_the_model_intact(tmp_path,
                                                                                 monkeypatch):
    real = ckpt.save_file

    def enospc(*args, **kwargs):
        raise OSError(28, "No space left on device")

    t = Trainer(Tiny(), make_data(), epochs=3, run_dir=tmp_path, verbose=False)
    monkeypatch.setattr(ckpt, "save_file", enospc)
    with pytest.raises(tlw.TrainingError, match=r"No space left.*model in memory is intact"):
        t.fit()
    monkeypatch.setattr(ckpt, "save_file", real)
    assert t.state == "failed" and len(t.history) <= 2
    assert all(torch.isfinite(p).all() for p in t.model.parameters())


def test_a_read_only_or_file_run_dir_is_refused_before_training(tmp_path):
    with tiny_filesystem(tmp_path / "ro", readonly=True) as ro:
        t = Trainer(Tiny(), make_data(), epochs=1, run_dir=ro, verbose=False)
        with pytest.raises(tlw.RunFolderError, match="cannot be written"):
            t.fit()
        assert t.steps.empty  # not a single step trained
    afile = tmp_path / "afile"
    afile.write_text("x")
    t = Trainer(Tiny(), make_data(), epochs=1, run_dir=afile, verbose=False)
    with pytest.raises(tlw.RunFolderError, match="is a file"):
        t.fit()


# ---- 3. one run per folder ------------------------------------------------------------------


def test_a_new_trainer_on_a_folder_holding_a_run_is_refused_with_the_way_out(tmp_path):
    trained(tmp_path, epochs=2)
    before = pd.read_csv(tmp_path / "history.csv")
    t = Trainer(Tiny(), make_data(), epochs=1, run_dir=tmp_path, verbose=False)
    with pytest.raises(tlw.RunFolderError, match=r"already holds a run.*Trainer.resume"):
        t.fit()
    assert pd.read_csv(tmp_path / "history.csv").equals(before)  # nothing mixed in
    resumed = Trainer.resume(tmp_path, Tiny(), make_data())
    resumed.fit(epochs=1)
    assert resumed.history["epoch"].tolist() == [1, 2, 3]


# ---- 4. a second Ctrl-C while the final checkpoint is written -------------------------------


def test_an_interrupt_during_the_final_write_still_reaches_a_final_state(tmp_path, monkeypatch):
    ref: list[Trainer] = []
    t = Trainer(Tiny(), make_data(), epochs=3, run_dir=tmp_path, verbose=False,
                callbacks=[lambda e: e.kind == "epoch" and e.data["epoch"] == 1
                           and ref[0].stop()])
    ref.append(t)
    real = ckpt.save_checkpoint
    calls = {"n": 0}

    def second_ctrl_c(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= 2:  # the stop's own checkpoint, after epoch 1's
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ckpt, "save_checkpoint", second_ctrl_c)
    import tlwidgets.training.hooks as hooks

    monkeypatch.setattr(hooks, "save_checkpoint", second_ctrl_c)
    t.fit()
    assert t.state == "stopped"
    monkeypatch.setattr(hooks, "save_checkpoint", real)
    state = ckpt.load_checkpoint(tmp_path / "checkpoints", "last", Tiny())
    assert state["epochs_done"] == 1  # the last completed epoch's checkpoint exists
    t.fit(epochs=1)  # and the trainer is usable
    assert t.state == "finished"


# ---- 6. damaged run folders -----------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncate-state", "truncate-weights", "empty-state"])
def test_a_damaged_checkpoint_is_named_with_what_can_be_recovered(tmp_path, damage):
    trained(tmp_path, epochs=2)
    folder = tmp_path / "checkpoints"
    # best is a hard link to an earlier last; make it a copy so only "last" is damaged
    for ext in ("safetensors", "state.pt"):
        b = folder / f"best.{ext}"
        data = b.read_bytes()
        b.unlink()
        b.write_bytes(data)
    target = folder / ("last.safetensors" if damage == "truncate-weights" else "last.state.pt")
    data = target.read_bytes()
    target.write_bytes(b"" if damage == "empty-state" else data[: len(data) // 2])
    with pytest.raises(tlw.CheckpointError) as info:
        Trainer.resume(tmp_path, Tiny(), make_data())
    msg = str(info.value)
    assert target.name in msg and "damaged" in msg
    assert "'best' checkpoint" in msg and "history.csv holds 2 epoch(s)" in msg


def test_a_damaged_step_log_never_blocks_a_resume(tmp_path):
    trained(tmp_path, epochs=2)
    (tmp_path / "steps.csv").write_bytes(os.urandom(3000))
    t = Trainer.resume(tmp_path, Tiny(), make_data())
    assert len(t.history) == 2 and any("steps.csv" in w for w in t.warnings)
    t.fit(epochs=1)
    assert t.history["epoch"].tolist() == [1, 2, 3]


# ---- 7, 10. data that does not fit the run or the model -------------------------------------


def test_resuming_with_other_class_names_is_refused_showing_both(tmp_path):
    trained(tmp_path, epochs=1)
    with pytest.raises(tlw.TrainingError, match=r"\['cat', 'dog'\].*\['dark', 'light'\]"):
        Trainer.resume(tmp_path, Tiny(), make_data(classes=("cat", "dog")))


@pytest.mark.parametrize("outputs", [3, 1])
def test_a_head_that_does_not_fit_the_classes_is_refused_when_the_trainer_is_made(outputs):
    with pytest.raises(tlw.ConfigError, match=rf"predicts {outputs} classes but the data has 2"):
        Trainer(Tiny(num_classes=outputs), make_data())


# ---- 11, 12, 14 ------------------------------------------------------------------------------


def test_system_exit_in_a_callback_under_start_is_a_failure(tmp_path):
    def exits(event):
        if event.kind == "step" and event.data["step"] == 2:
            raise SystemExit(3)

    t = Trainer(Tiny(), make_data(), epochs=2, run_dir=tmp_path, verbose=False, callbacks=[exits])
    t.start()
    assert t.wait(timeout=60) == "failed"
    assert "SystemExit" in str(t.error)


@pytest.mark.parametrize("shape", [(4, 16, 16), (3, 7, 7), (16, 16)])
def test_predict_refuses_preprocessed_tensors_of_the_wrong_shape(tmp_path, shape):
    t = trained(tmp_path, epochs=1)
    with pytest.raises(tlw.DataError, match="input size"):
        t.predict(torch.rand(*shape), preprocessed=True)


def test_two_exports_with_one_base_name_keep_both_in_the_sidecar(tmp_path):
    import json

    t = trained(tmp_path / "run", epochs=1)
    a = t.export(tmp_path / "out" / "model")
    b = t.export(tmp_path / "out" / "model", format="torchscript")
    meta = json.loads((tmp_path / "out" / "model.json").read_text())
    assert meta["files"] == {"safetensors": a.name, "torchscript": b.name}
    other = Trainer(Tiny(num_classes=3), make_data(classes=("a", "b", "c")),
                    run_dir=tmp_path / "r2", verbose=False)
    with pytest.raises(tlw.ExportError, match="another exported model"):
        other.export(tmp_path / "out" / "model")


def test_export_to_a_read_only_disk_or_under_a_file_is_a_clear_error(tmp_path):
    t = trained(tmp_path / "run", epochs=1)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(tlw.ExportError, match="is a part of the path a file"):
        t.export(tmp_path / "afile" / "model")
    with tiny_filesystem(tmp_path / "ro", readonly=True) as ro:
        with pytest.raises(tlw.ExportError):
            t.export(ro / "model")
