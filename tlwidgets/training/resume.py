"""Continue a run from its folder: weights, optimizer, schedule position, history, hook state.

>>> state = read_run("runs/20250101-resnet18")          # doctest: +SKIP
>>> state["epochs_done"]                                # doctest: +SKIP
3
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from .._runtime import atomic_write
from ..errors import TrainingError
from .checkpoints import load_checkpoint
from .state import HISTORY_COLUMNS, Cycle, RunState

__all__ = ["apply_freeze_state", "read_run", "restore_run"]


def read_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The trainer state saved with the run's ``last`` checkpoint."""
    return load_checkpoint(Path(run_dir) / "checkpoints", "last", None)


def apply_freeze_state(model: Any, trainable: list[str] | None, bn_policy: str) -> None:
    """Make ``model``'s freeze state match a checkpoint's, through ``tlwidgets.freeze`` so its
    version, BN policy and listeners follow."""
    if trainable is None:
        return
    fz = importlib.import_module("tlwidgets.freeze")
    keep = set(trainable)
    if all(n in keep for n, _ in model.named_parameters()):
        fz.unfreeze(model)
        return
    # freeze the topmost modules whose parameters are all frozen
    frozen: list[str] = []
    for name, module in model.named_modules():
        if not name or any(name.startswith(f + ".") for f in frozen):
            continue
        params = [f"{name}.{n}" for n, _ in module.named_parameters()]
        if params and all(p not in keep for p in params):
            frozen.append(name)
    fz.unfreeze(model)
    fz.freeze(model, frozen, bn=bn_policy)


def restore_run(run_dir: str | os.PathLike[str], run: RunState, hooks: list[Any],
                rebuild_optimizer: Callable[[], None]) -> bool:
    """Load the run's ``last`` checkpoint into ``run`` (and its model and hooks); rewrite
    ``history.csv``/``steps.csv`` to match it. Returns whether a cycle is left to finish."""
    fz = importlib.import_module("tlwidgets.freeze")
    folder = Path(run_dir) / "checkpoints"
    state = load_checkpoint(folder, "last", None)
    saved_classes = state.get("classes")
    if saved_classes and list(saved_classes) != run.classes:
        raise TrainingError(
            f"this data's classes {run.classes} differ from the run's {list(saved_classes)}; "
            "resume with the same data (same class folders), or start a new run in a new folder.")
    apply_freeze_state(run.model, state.get("trainable"), state.get("bn_policy", "eval"))
    if state.get("lr_multipliers"):
        known = set(fz.lr_multipliers(run.model))
        fz.set_lr_multipliers(run.model, {k: v for k, v in state["lr_multipliers"].items()
                                          if k in known})
    load_checkpoint(folder, "last", run.model, device=str(run.ctx.device))
    run.history = [dict(r) for r in state["history"]]
    run.global_step = int(state["global_step"])
    run.epochs_done = int(state["epochs_done"])
    run.cycle = Cycle.from_dict(state["cycle"]) if state.get("cycle") else None
    saved_hooks = state.get("hooks") or {}
    if "checkpoints" not in saved_hooks and "best" in state:  # format 1
        saved_hooks = {**saved_hooks, "checkpoints": {"best": state["best"]}}
    for h in hooks:
        if h.name in saved_hooks:
            h.load_state_dict(saved_hooks[h.name])
    hist = pd.DataFrame(run.history, columns=HISTORY_COLUMNS)
    atomic_write(Path(run_dir) / "history.csv", lambda tmp: hist.to_csv(tmp, index=False))
    steps_csv = Path(run_dir) / "steps.csv"
    if steps_csv.exists():
        try:
            df = pd.read_csv(steps_csv)
            df = df[df["step"] <= run.global_step]
        except Exception as exc:  # noqa: BLE001 - a damaged log never blocks a resume
            run.warn(f"steps.csv in {run_dir} could not be read ({exc}); the step table starts "
                     "again from this checkpoint")
            df = pd.DataFrame(columns=["step"])
        run.steps = df.to_dict("records")
        # rewrite so rows logged after the checkpoint (a crash mid-epoch) do not duplicate
        atomic_write(steps_csv, lambda tmp: df.to_csv(tmp, index=False))
    more = False
    if run.cycle is not None:
        rebuild_optimizer()
        assert run.optimizer is not None
        if state.get("optimizer"):
            run.optimizer.load_state_dict(state["optimizer"])
        if run.scaler is not None and state.get("scaler"):
            run.scaler.load_state_dict(state["scaler"])
        more = run.epochs_done - run.cycle.start_epoch < run.cycle.epochs
    run.log(f"restored run {run_dir} at epoch {run.epochs_done}, step {run.global_step}")
    return more
