"""Hooks: what happens around the step loop, each a small object with its own state.

The trainer calls every hook, in ``order``, at these points of a run:

- ``on_run_start(run)`` — a ``fit()``/``start()``/``fine_tune()`` begins;
- ``on_cycle_start(run)`` — a new schedule cycle begins (not when an interrupted one continues);
- ``on_epoch_start(run)`` — before the epoch's first step;
- ``on_step(run, row)`` — after each step, with its row of the step table (and ``lrs``);
- ``on_epoch_end(run, row)`` — after validation, with the epoch's history row;
- ``on_run_end(run, final)`` — always, with the final state (``finished``/``stopped``/``failed``).

A hook with state has ``state_dict()``/``load_state_dict()``: the checkpoint stores them and
``Trainer.resume`` gives them back (early stopping keeps its patience across a resume). The public
``callbacks=`` of a Trainer stay observers of events; hooks are the trainer's own parts. A new
behaviour around the loop is a new hook here (see docs/ARCHITECTURE.md), never a second loop.

>>> EarlyStopping({"patience": 2, "metric": "valid_loss", "min_delta": 0.0}).state_dict()
{'ref': None, 'bad_epochs': 0}
"""

from __future__ import annotations

import csv
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .._runtime import preserved
from ..errors import TrainingError
from .checkpoints import (
    clean_folder,
    link_checkpoint,
    load_checkpoint,
    save_checkpoint,
    snapshot_weights,
    write_frozen,
    write_in_background,
)
from .config import METRICS
from .state import HISTORY_COLUMNS, STEP_COLUMNS, RunState

__all__ = [
    "Checkpoints",
    "Diverged",
    "DivergenceGuard",
    "EarlyStopping",
    "Hook",
    "OptimizerRebuild",
    "RunFiles",
    "improves",
]


def improves(value: float, ref: float | None, mode: str, delta: float = 0.0) -> bool:
    """Whether ``value`` is better than ``ref`` by more than ``delta`` (NaN never is).

    >>> improves(0.5, 0.6, "min"), improves(0.5, None, "max"), improves(float("nan"), 1, "min")
    (True, True, False)
    """
    if value != value:
        return False
    if ref is None:
        return True
    return value < ref - delta if mode == "min" else value > ref + delta


class Hook:
    """Base class: every method does nothing. See the module docstring for when each runs."""

    name = "hook"
    order = 50

    def on_run_start(self, run: RunState) -> None: ...

    def on_cycle_start(self, run: RunState) -> None: ...

    def on_epoch_start(self, run: RunState) -> None: ...

    def on_step(self, run: RunState, row: dict[str, Any]) -> None: ...

    def on_epoch_end(self, run: RunState, row: dict[str, Any]) -> None: ...

    def on_run_end(self, run: RunState, final: str) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class OptimizerRebuild(Hook):
    """Rebuild the optimizer's param groups when the freeze state (or an LR multiplier) changed
    between epochs — say, in the FreezePanel — at the cycle's current schedule position."""

    name, order = "optimizer", 0

    def __init__(self, rebuild: Callable[[], None], version: Callable[[], int]) -> None:
        self.rebuild, self.version = rebuild, version

    def on_epoch_start(self, run: RunState) -> None:
        if run.optimizer is not None and run.optimizer_freeze_version != self.version():
            run.log("freeze state changed: rebuilding the optimizer's param groups")
            self.rebuild()


class BusyCPUHint(Hook):
    """Say once per trainer when a CPU run with several torch threads does not get its cores.

    On a shared CPU torch's OpenMP threads wait for each other: with other processes using the
    cores, a two-thread run can be many times slower than a one-thread run (measured in
    ``docs/benchmarks.md``: 0.22-0.32 against 3.11 training steps/s at load 4.6 on 2 cores).
    After ``window`` seconds of training (paused time left out) the hook compares this
    process's CPU seconds with the wall seconds: when the process got less than ``share`` of
    ``threads`` cores and the load average is above the cores, it logs a hint (a ``log`` event:
    the dashboard's log, the ``tlwidgets`` logger). It changes nothing itself. ``load``,
    ``cores`` and ``cpu_time`` are for tests."""

    name, order = "busy-cpu", 1

    def __init__(self, window: float = 10.0, share: float = 0.6,
                 load: Callable[[], float] | None = None, cores: Callable[[], int] | None = None,
                 cpu_time: Callable[[], float] | None = None) -> None:
        self.window, self.share = window, share
        self.load = load or (lambda: os.getloadavg()[0])
        self.cores = cores or (lambda: os.cpu_count() or 1)
        self.cpu_time = cpu_time or time.process_time
        self.said = False
        self.start: tuple[float, float] | None = None
        self.watching = False

    def on_run_start(self, run: RunState) -> None:
        self.start = None
        self.watching = (not self.said and run.ctx.device.type == "cpu"
                         and torch.get_num_threads() > 1)

    def on_step(self, run: RunState, row: dict[str, Any]) -> None:
        if not self.watching:
            return
        if self.start is None:  # from the second step on: the first carries warm-up costs
            self.start = (row["time"], self.cpu_time()) if row["step"] > 1 else None
            return
        wall = row["time"] - self.start[0]
        if wall < self.window:
            return
        self.watching = False
        threads = torch.get_num_threads()
        used = (self.cpu_time() - self.start[1]) / wall
        try:
            load, cores = float(self.load()), int(self.cores())
        except (OSError, AttributeError):  # no load average on this system
            return
        if used < self.share * min(threads, cores) and load > cores:
            self.said = True
            run.log(f"the CPU is shared: this run got {used:.1f} of the {threads} cores its "
                    f"{threads} torch threads want (load average {load:.1f} on {cores} cores). "
                    "On a busy CPU torch.set_num_threads(1) before training can be several "
                    "times faster.")


class Diverged(TrainingError):
    """The smoothed training loss rose far above where the run started."""


class DivergenceGuard(Hook):
    """End a run whose loss explodes, before it overwrites a good model.

    Rule (documented in docs/ARCHITECTURE.md): the training loss smoothed as fastai's LR finder
    does (exponential average, beta 0.9, debiased) is compared from the cycle's third step on with
    its value at that step, ``ref``; the run diverged when it exceeds ``4 * max(ref, ln(C))``
    (``C`` the number of classes, ``ln(C)`` the loss of a uniform guess: a loss that high is worse
    than guessing, whatever the start). fastai's LR finder stops at 4x its best loss. Non-finite
    losses are caught by the step loop itself.
    """

    name, order = "divergence", 5
    beta, warmup, factor = 0.9, 3, 4.0

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.avg, self.n, self.ref = 0.0, 0, None

    def on_cycle_start(self, run: RunState) -> None:
        self.reset()

    def on_run_start(self, run: RunState) -> None:
        self.reset()

    def on_step(self, run: RunState, row: dict[str, Any]) -> None:
        self.n += 1
        self.avg = self.beta * self.avg + (1 - self.beta) * row["loss"]
        smooth = self.avg / (1 - self.beta ** self.n)
        if self.n < self.warmup:
            return
        if self.ref is None:
            self.ref = smooth
            return
        chance = math.log(max(len(run.classes), 2))
        limit = self.factor * max(self.ref, chance)
        if smooth > limit:
            now = row.get("lrs", [row.get("lr", float("nan"))])[-1]
            peak = run.cycle.peak_lrs[-1] if run.cycle and run.cycle.peak_lrs else now
            raise Diverged(
                f"training diverged at step {row['step']}: the smoothed loss reached "
                f"{smooth:.3g}, over 4x where it started ({self.ref:.3g}), at learning rate "
                f"{now:.3g} (peak {peak:.3g}). Lower the learning rate: trainer.lr_find() "
                "suggests one."
            )


class EarlyStopping(Hook):
    """End the cycle after ``patience`` epochs without improvement of ``metric``."""

    name, order = "early_stopping", 20

    def __init__(self, config: dict[str, Any]) -> None:
        self.patience, self.metric = int(config["patience"]), str(config["metric"])
        self.min_delta = float(config["min_delta"])
        self.ref: float | None = None
        self.bad_epochs = 0

    def on_cycle_start(self, run: RunState) -> None:
        self.bad_epochs = 0

    def on_epoch_end(self, run: RunState, row: dict[str, Any]) -> None:
        value = row[self.metric]
        if improves(value, self.ref, METRICS[self.metric], self.min_delta):
            self.ref, self.bad_epochs = value, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            run.end_cycle = (f"early stopping after epoch {row['epoch']}: {self.metric} did not "
                             f"improve for {self.bad_epochs} epochs")

    def state_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ref = state.get("ref")
        self.bad_epochs = int(state.get("bad_epochs", 0))


def _append_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` (a header first when the file is new) and close: what pandas reads back,
    without building a DataFrame every epoch."""
    header = not path.exists() or path.stat().st_size == 0
    with open(path, "a", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        if header:
            writer.writerow(columns)
        writer.writerows([[("" if r.get(c) is None else repr(r[c]) if isinstance(r[c], float)
                            else r[c]) for c in columns] for r in rows])


class RunFiles(Hook):
    """``history.csv`` (a row per epoch) and ``steps.csv`` (every 50 steps and at epoch end) in
    the run folder, appended and closed at once, so a dead kernel loses at most the steps since
    the last flush. (``run.json`` and the JSON-lines files are the ``RunFolder`` hook's.)"""

    name, order = "run_files", 30
    flush_every = 50

    def __init__(self) -> None:
        self.steps_written = 0

    def flush_steps(self, run: RunState) -> None:
        new = run.steps[self.steps_written:]
        if not new:
            return
        _append_csv(run.run_dir() / "steps.csv", STEP_COLUMNS, new)
        self.steps_written = len(run.steps)

    def on_step(self, run: RunState, row: dict[str, Any]) -> None:
        if len(run.steps) - self.steps_written >= self.flush_every:
            self._guard(run, lambda: self.flush_steps(run))

    def on_epoch_end(self, run: RunState, row: dict[str, Any]) -> None:
        def write() -> None:
            self.flush_steps(run)
            _append_csv(run.run_dir() / "history.csv", HISTORY_COLUMNS, [row])

        self._guard(run, write)

    def on_run_end(self, run: RunState, final: str) -> None:
        self._guard(run, lambda: self.flush_steps(run))

    @staticmethod
    def _guard(run: RunState, write: Callable[[], None]) -> None:
        try:
            write()
        except OSError as exc:
            run.warn(f"could not write the run files to {run.run_dir()}: {exc}")


def changing_names(model: torch.nn.Module) -> set[str]:
    """The ``state_dict`` names a training step can change: trainable parameters and the buffers
    of modules that train (BN statistics under the ``"train"`` policy)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    with preserved(model):
        model.train()
        for path, module in model.named_modules():
            if module.training:
                prefix = f"{path}." if path else ""
                names.update(prefix + b for b, _ in module.named_buffers(recurse=False))
    return names


class Checkpoints(Hook):
    """``checkpoints/last`` after every epoch (and when a run stops or fails), ``checkpoints/best``
    when ``metric`` improves; the starting weights kept in memory until the first checkpoint, so a
    run never ends with worse weights than it began with.

    A checkpoint holds what can change (:func:`changing_names`); the frozen rest is written once
    a run (``frozen-<digest>.safetensors``) and referenced. The tensors are copied to CPU memory
    at the epoch boundary and written by a background thread while the next epoch trains (one
    write in flight at most); the run's end waits for the last one, and so do ``trainer.wait()``
    and any reader of the folder in this process (``load_checkpoint``). A checkpoint that cannot
    be written (a full disk) fails the run at the next epoch boundary, with the model in memory
    intact.
    """

    name, order = "checkpoints", 40

    def __init__(self, metric: str, payload: Callable[[], dict[str, Any]],
                 version: Callable[[], int]) -> None:
        self.metric, self.payload, self.version = metric, payload, version
        self.best: float | None = None
        self.start_weights: dict[str, torch.Tensor] | None = None
        self._writer: threading.Thread | None = None
        self._writer_error: BaseException | None = None
        self._split: tuple[Any, set[str], str | None] | None = None  # (key, changing, frozen file)
        self._runs = 0

    def folder(self, run: RunState) -> Path:
        return run.run_dir() / "checkpoints"

    def on_run_start(self, run: RunState) -> None:
        self.join(run)
        self._runs += 1
        self._split = None
        removed = clean_folder(self.folder(run))
        if removed:
            run.log(f"removed {len(removed)} file(s) a killed run left in {self.folder(run)}")
        if not run.history and self.start_weights is None:
            self.start_weights = snapshot_weights(run.model)

    def on_epoch_end(self, run: RunState, row: dict[str, Any]) -> None:
        value = row[self.metric]
        better = improves(value, self.best, METRICS[self.metric])
        if better:
            self.best = value
        self.save(run, "last", link_best=better, background=True)

    def on_run_end(self, run: RunState, final: str) -> None:
        # When fit() returns (or the thread of start() ends) the files are complete on disk: a
        # run that left its last write in flight raced a `with TemporaryDirectory()` around it,
        # and whoever copies the folder next. A stopped or failed run writes its own "last".
        try:
            self.join(run, fail=False)
        finally:
            if final in ("stopped", "failed") and run.cycle is not None:
                self.save(run, "last")

    def _changing(self, run: RunState) -> tuple[dict[str, torch.Tensor], str | None]:
        """The live tensors the checkpoints hold (the same objects every epoch: training
        updates them in place), and the frozen file beside them (written once a run and again
        after a freeze change)."""
        key = (self._runs, self.version())
        if self._split is None or self._split[0] != key:
            changing = changing_names(run.model)
            state = run.model.state_dict()
            rest = {k: v for k, v in state.items() if k not in changing}
            frozen = write_frozen(self.folder(run), rest) if rest else None
            live = state if frozen is None else {k: v for k, v in state.items() if k in changing}
            self._split = (key, live, frozen)
        return self._split[1], self._split[2]

    def save(self, run: RunState, name: str, link_best: bool = False,
             background: bool = False) -> None:
        """Write checkpoint ``name`` (and make "best" a hard link to it when ``link_best``)."""
        self.join(run)
        folder = self.folder(run)
        try:
            changing, frozen = self._changing(run)
        except OSError as exc:
            raise self._unwritable(folder, exc) from exc
        state = self.payload()
        weights = snapshot_weights(changing)

        def write() -> None:
            save_checkpoint(folder, name, weights, state, frozen=frozen)
            if link_best:
                # "best" is this epoch's "last": a hard link costs no second write (the next
                # "last" is a new file, so the link keeps these bytes).
                link_checkpoint(folder, name, "best")
            self.start_weights = None  # a checkpoint on disk is now the last good state

        if not background:
            try:
                write()
            except OSError as exc:
                run.warn(f"could not write checkpoint {name!r} to {folder}: {exc}")
            return

        def work() -> None:
            try:
                write()
            except BaseException as exc:  # noqa: BLE001 - reported by join()
                self._writer_error = exc

        self._writer = write_in_background(folder, work)

    @staticmethod
    def _unwritable(folder: Path, exc: BaseException) -> TrainingError:
        return TrainingError(
            f"could not write a checkpoint to {folder} ({type(exc).__name__}: {exc}); the run was "
            "stopped so that no more work goes unsaved. The model in memory is intact: "
            "trainer.export('elsewhere/model') saves it; free space (or pass run_dir= on another "
            "disk) and train again.")

    def join(self, run: RunState | None = None, fail: bool = True) -> None:
        """Wait for the checkpoint being written in the background; its failure fails the run
        (``fail``) or is kept as a warning."""
        writer = self._writer
        if writer is not None:
            writer.join()
            self._writer = None
        if self._writer_error is not None:
            exc, self._writer_error = self._writer_error, None
            folder = self.folder(run) if run is not None else "the run folder"
            if fail and isinstance(exc, OSError):
                raise self._unwritable(Path(folder), exc) from exc
            if run is not None:
                run.warn(f"could not write a checkpoint to {folder}: {exc}")

    def restore(self, run: RunState, which: str) -> str:
        """Put checkpoint ``which`` ("best" or "last") back into the model; says what it did.
        Before any checkpoint exists, the starting weights are the fallback."""
        self.join(run, fail=False)
        try:
            load_checkpoint(self.folder(run), which, run.model, device=str(run.ctx.device))
            return f"the model was put back to its {which!r} checkpoint"
        except TrainingError:
            if self.start_weights is None:
                raise
            with torch.no_grad():
                run.model.load_state_dict(self.start_weights, strict=False)
            return "the model was put back to the weights it started this run with"

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = state.get("best")
