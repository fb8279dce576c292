"""What a :class:`~tlwidgets.widgets.dashboard.TrainingDashboard` has received from its trainer:
the loss series, the learning rates, the epoch rows, the state, under one lock.

The trainer's thread calls :meth:`RunBuffers.ingest` for each event (it only appends, never
touches a widget); the dashboard's publisher reads the buffers under ``lock`` and draws them.
:meth:`RunBuffers.load` fills them from what a trainer (or a ``RunFollower``) already has, so a
dashboard made after a run, or following a run folder, shows it from step 1.

>>> from tlwidgets.training import TrainerEvent
>>> b = RunBuffers(beta=0.9)
>>> b.ingest(TrainerEvent("step", {"step": 1, "loss": 2.0, "lrs": [0.01]}), on_restart=print)
(True, False)
>>> len(b.loss), b.last_step
(1, 1.0)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ._series import LossSeries

__all__ = ["TERMINAL", "RunBuffers", "column", "epoch_row", "ragged"]

TERMINAL = ("finished", "stopped", "failed")


def column(df: Any, name: str) -> np.ndarray:
    """Column ``name`` of a DataFrame as floats (NaN for missing values), empty when absent."""
    if df is None or name not in getattr(df, "columns", ()):
        return np.array([], dtype=float)
    return df[name].to_numpy(dtype=float, na_value=np.nan)


def epoch_row(data: dict[str, Any]) -> dict[str, float]:
    """The numbers of an epoch event (or a history row) the dashboard shows; NaN where missing."""
    def num(key: str) -> float:
        v = data.get(key)
        try:
            return float(v) if v is not None else math.nan
        except (TypeError, ValueError):
            return math.nan

    return {k: num(k) for k in ("epoch", "step", "train_loss", "valid_loss", "accuracy",
                                "seconds")}


def ragged(rows: list[list[float]]) -> np.ndarray:
    """Learning rates per step as a 2-d array; rows of fewer groups padded with NaN on the left.

    Param groups run from the stem to the head and freezing leaves the first ones out, so a row
    of fewer groups (fine_tune's head-only epoch, a recorded step's single rate) is the last
    groups'.

    >>> ragged([[1.0], [2.0, 3.0]]).tolist()
    [[nan, 1.0], [2.0, 3.0]]
    """
    if not rows:
        return np.empty((0, 0))
    width = max(len(r) for r in rows)
    if all(len(r) == width for r in rows):
        return np.array(rows, dtype=float)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, width - len(r):] = r
    return out


class RunBuffers:
    """What the trainer's thread appends and the publisher reads; every access under ``lock``.

    The ``*_version`` counters grow when their part changes, so the publisher redraws only what
    changed since it last looked.
    """

    def __init__(self, beta: float) -> None:
        self.lock = threading.Lock()
        self.loss = LossSeries(beta)
        self.lr_steps: list[float] = []
        self.lrs: list[list[float]] = []
        self.epochs: list[dict[str, float]] = []
        self.state = "idle"
        self.error: str | None = None
        self.img_s = math.nan
        self.last_step = -1.0
        self.last_epoch = 0  # the epoch (1-based) and batch of the last step event
        self.last_batch = 0
        self.step_version = 0
        self.epoch_version = 0
        self.state_version = 0

    def reset(self) -> None:
        """Forget the curves (a new run restarted the step count); the caller holds ``lock``."""
        self.loss.clear()
        self.lr_steps.clear()
        self.lrs.clear()
        self.epochs.clear()
        self.error = None
        self.last_step = -1.0
        self.last_epoch = self.last_batch = 0
        self.step_version += 1
        self.epoch_version += 1

    def load(self, trainer: Any) -> None:
        """What ``trainer`` already has (``steps``, ``history``, ``state``): a dashboard made
        after or between runs, of a resumed run, or following a run folder."""
        steps = getattr(trainer, "steps", None)
        hist = getattr(trainer, "history", None)
        with self.lock:
            for s, loss in zip(column(steps, "step"), column(steps, "loss")):
                self.loss.append(float(s), float(loss))
                self.last_step = float(s)
            # the recorded steps keep the last param group's rate (the head's): shown as that
            # group, so the LR is drawn from step 1 too
            for s, lr in zip(column(steps, "step"), column(steps, "lr")):
                if math.isfinite(lr):
                    self.lr_steps.append(float(s))
                    self.lrs.append([float(lr)])
            for key, attr in (("epoch", "last_epoch"), ("batch", "last_batch")):
                col = column(steps, key)
                if len(col) and math.isfinite(col[-1]):
                    setattr(self, attr, int(col[-1]))
            if hist is not None and len(getattr(hist, "index", ())):
                for row in hist.to_dict("records"):
                    self.epochs.append(epoch_row(row))
            self.state = str(getattr(trainer, "state", "idle"))
            self.step_version += 1
            self.epoch_version += 1
            self.state_version += 1

    def ingest(self, event: Any, on_restart: Callable[[], Any]) -> tuple[bool, bool]:
        """Append one trainer event (on the trainer's thread). ``on_restart`` is called, with
        ``lock`` held, before the buffers are cleared for a run that restarted the step count.
        Returns ``(changed, final)``: whether anything was taken, and whether the run ended."""
        kind = getattr(event, "kind", None)
        data = getattr(event, "data", None) or {}
        with self.lock:
            if kind == "step":
                step = float(data.get("step", self.last_step + 1))
                if step < self.last_step:  # a new run restarted the step count
                    on_restart()
                    self.reset()
                loss = data.get("loss")
                if loss is not None:
                    self.loss.append(step, float(loss))
                lrs = data.get("lrs")
                if lrs:
                    self.lr_steps.append(step)
                    self.lrs.append([float(v) for v in lrs])
                if data.get("img_s") is not None:
                    self.img_s = float(data["img_s"])
                for key, attr in (("epoch", "last_epoch"), ("batch", "last_batch")):
                    if data.get(key) is not None:
                        setattr(self, attr, int(data[key]))
                self.last_step = step
                self.step_version += 1
            elif kind == "epoch":
                row = epoch_row(data)
                if not math.isfinite(row["step"]):
                    row["step"] = self.last_step
                self.epochs.append(row)
                self.epoch_version += 1
            elif kind == "state":
                new = str(data.get("state", self.state))
                if new == "running" and self.state in TERMINAL:
                    self.error = None
                self.state = new
                self.state_version += 1
            elif kind == "error":
                self.error = str(data.get("message") or data.get("error") or "training failed")
                self.state_version += 1
            else:
                return False, False
            return True, kind == "state" and self.state in TERMINAL

    def set_error(self, message: str) -> None:
        """Show ``message`` as the run's error (a command that failed in the kernel)."""
        with self.lock:
            self.error = message
            self.state_version += 1
