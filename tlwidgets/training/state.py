"""What a run has done so far, shared by the trainer and its hooks.

A :class:`RunState` holds the history, the step table, the counters, the cycle in progress, the
live optimizer and the feature cache; hooks (``tlwidgets/training/hooks.py``) read and update it
through these public attributes, so no hook reaches into the :class:`~tlwidgets.Trainer`.

>>> cyc = Cycle.new(epochs=2, start_epoch=0, lr=1e-3, peak_lrs=[1e-3], schedule="constant",
...                 total_steps=10)
>>> Cycle.from_dict(cyc.to_dict()).epochs
2
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._runtime import DeviceContext
from .config import TrainerConfig, lr_from_plain, lr_to_plain
from .schedules import Schedule

__all__ = ["HISTORY_COLUMNS", "STEP_COLUMNS", "Cycle", "RunState"]

HISTORY_COLUMNS = ["epoch", "train_loss", "valid_loss", "accuracy", "seconds", "lr"]
STEP_COLUMNS = ["step", "epoch", "batch", "loss", "lr", "img_s", "time"]


@dataclass
class Cycle:
    """One call of fit(): a schedule over ``epochs`` epochs starting at ``start_epoch``."""

    epochs: int
    start_epoch: int  # epochs completed before this cycle
    lr: float | slice  # as given: a float, or a slice for discriminative rates
    peak_lrs: list[float]
    schedule: Schedule
    opt_step: int = 0  # optimizer steps done in this cycle
    batch_in_epoch: int = 0  # batches done in the epoch in progress (for resume mid-epoch)
    epoch_loss_sum: float = 0.0
    epoch_loss_n: int = 0

    @classmethod
    def new(cls, epochs: int, start_epoch: int, lr: float | slice, peak_lrs: list[float],
            schedule: str, total_steps: int, **schedule_kwargs: Any) -> Cycle:
        return cls(epochs=epochs, start_epoch=start_epoch, lr=lr, peak_lrs=list(peak_lrs),
                   schedule=Schedule(schedule, total_steps=max(total_steps, 1), **schedule_kwargs))

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs, "start_epoch": self.start_epoch, "lr": lr_to_plain(self.lr),
            "peak_lrs": list(self.peak_lrs), "schedule": self.schedule.to_dict(),
            "opt_step": self.opt_step, "batch_in_epoch": self.batch_in_epoch,
            "epoch_loss_sum": self.epoch_loss_sum, "epoch_loss_n": self.epoch_loss_n,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Cycle:
        return cls(
            epochs=int(d["epochs"]), start_epoch=int(d["start_epoch"]), lr=lr_from_plain(d["lr"]),
            peak_lrs=[float(x) for x in d["peak_lrs"]], schedule=Schedule.from_dict(d["schedule"]),
            opt_step=int(d["opt_step"]), batch_in_epoch=int(d["batch_in_epoch"]),
            epoch_loss_sum=float(d["epoch_loss_sum"]), epoch_loss_n=int(d["epoch_loss_n"]),
        )

    def set_lr(self, optimizer: torch.optim.Optimizer) -> None:
        """Learning rate (and one-cycle momentum) of the coming optimizer step."""
        f = self.schedule.factor(self.opt_step)
        mom = self.schedule.momentum(self.opt_step)
        for g, peak in zip(optimizer.param_groups, self.peak_lrs):
            g["lr"] = peak * f
            if mom is not None:
                if "betas" in g:
                    g["betas"] = (mom, g["betas"][1])
                elif "momentum" in g:
                    g["momentum"] = mom


@dataclass
class RunState:
    """The mutable state of a trainer's runs (see the module docstring)."""

    model: nn.Module
    data: Any
    config: TrainerConfig
    ctx: DeviceContext
    run_dir: Callable[[], Path]
    log: Callable[[str], None]
    publish: Callable[[str, dict[str, Any]], None]
    history: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    global_step: int = 0
    epochs_done: int = 0
    cycle: Cycle | None = None
    optimizer: torch.optim.Optimizer | None = None
    scaler: Any = None
    group_names: list[str] = field(default_factory=list)
    optimizer_freeze_version: int | None = None
    feature_cache: Any = None
    #: set by a hook to end the cycle after this epoch (early stopping): the run finishes
    end_cycle: str | None = None
    #: problems that did not stop the run (a checkpoint that could not be written, ...)
    warnings: list[str] = field(default_factory=list)
    #: the torchrun job this process is part of (training/distributed.py), or None
    dist: Any = None
    #: hooks by name, so one hook can ask another (the divergence guard asks the checkpoints)
    hooks: dict[str, Any] = field(default_factory=dict)

    def warn(self, message: str) -> None:
        """Record a problem that did not stop the run; it is logged and kept in ``warnings``."""
        if message not in self.warnings:
            self.warnings.append(message)
        self.log(message)

    @property
    def classes(self) -> list[str]:
        return list(getattr(self.data, "classes", []))
