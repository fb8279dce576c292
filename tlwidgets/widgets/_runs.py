"""Runs a dashboard can overlay: :class:`RunRecord` and this session's list of ended runs.

One run is recorded once. A dashboard records its trainer's run when it ends; ``compare=[trainer]``
or :meth:`RunRecord.from_trainer` on the same trainer, at the same step, returns that same record
instead of a second copy, so a run never appears twice in a comparison. Labels are unique within
the session: a second run labelled like an earlier one becomes ``"<label> #2"``.

No widgets here: the dashboard draws what these records hold.
"""

from __future__ import annotations

import itertools
import math
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._series import LossSeries

__all__ = [
    "RunRecord",
    "find_label",
    "find_record",
    "next_run_id",
    "recorded_runs",
    "register",
    "run_label",
    "unique_label",
    "weak_ref",
]

_RUN_IDS = itertools.count(1)
_RUNS: list[RunRecord] = []  # the runs this kernel session has recorded, oldest first
MAX_RUNS = 20


def next_run_id() -> int:
    """A new run id, unique in this session (records and live dashboards share the counter)."""
    return next(_RUN_IDS)


def run_label(trainer: Any) -> str:
    """The label a run is shown under by default: the trainer's ``name``.

    The core's default ``Trainer.name`` tells runs apart (architecture, pretrained or random
    weights, what was trained); a model without one falls back to its architecture.

    >>> run_label(trainer)          # doctest: +SKIP
    'tf_efficientnet_lite0 · pretrained · head'
    """
    name = getattr(trainer, "name", None)
    if name:
        return str(name)
    model = getattr(trainer, "model", None)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return str(cfg.get("architecture") or type(model).__name__)


def _col(df: Any, name: str) -> np.ndarray:
    if df is None or name not in getattr(df, "columns", ()):
        return np.array([], dtype=float)
    return df[name].to_numpy(dtype=float, na_value=np.nan)


def weak_ref(obj: Any) -> Any:
    """A weak reference to ``obj`` (a callable returning it while it lives)."""
    try:
        return weakref.ref(obj)
    except TypeError:  # an object without weakref support: compare by identity while alive
        return lambda: obj


@dataclass(eq=False)
class RunRecord:
    """The curves of one run, kept so later runs can be overlaid on them.

    ``last_step`` is the global step the run had reached when it was recorded; together with the
    trainer it identifies the run, so recording the same run twice gives the same record.

    >>> rec = RunRecord.from_trainer(trainer, label="from scratch")   # doctest: +SKIP
    >>> TrainingDashboard(other_trainer, compare=[rec])               # doctest: +SKIP
    """

    label: str
    step_x: np.ndarray
    smooth_loss: np.ndarray
    epoch_step: np.ndarray
    epoch: np.ndarray
    valid_loss: np.ndarray
    accuracy: np.ndarray
    run_id: int = field(default_factory=next_run_id)
    last_step: float = math.nan
    trainer_ref: Any = field(default=None, repr=False)

    @classmethod
    def from_trainer(cls, trainer: Any, label: str | None = None, beta: float = 0.9) -> RunRecord:
        """The record of ``trainer``'s run so far: its ``steps`` and ``history``.

        When this run (same trainer, same last step) is recorded already, by its dashboard or an
        earlier call, that record is returned, relabelled if ``label`` is given, so one run never
        appears twice in a comparison.

        >>> RunRecord.from_trainer(trainer, label="pretrained").label   # doctest: +SKIP
        'pretrained'
        """
        steps, hist = trainer.steps, trainer.history
        step_col = _col(steps, "step")
        last = float(np.nanmax(step_col)) if len(step_col) else math.nan
        existing = find_record(trainer, last)
        if existing is not None:
            if label and label != existing.label:
                existing.label = unique_label(label, existing.run_id)
            return existing
        series = LossSeries(beta)
        for s, loss in zip(step_col, _col(steps, "loss")):
            series.append(float(s), float(loss))
        x, _, smooth = series.arrays()
        rec = cls(
            label=label or run_label(trainer),
            step_x=x,
            smooth_loss=smooth,
            epoch_step=_col(hist, "step"),
            epoch=_col(hist, "epoch"),
            valid_loss=_col(hist, "valid_loss"),
            accuracy=_col(hist, "accuracy"),
            last_step=last,
            trainer_ref=weak_ref(trainer),
        )
        return register(rec)

    def is_of(self, trainer: Any, last_step: float) -> bool:
        """Whether this records ``trainer``'s run as it stood at ``last_step``."""
        if self.trainer_ref is None or self.trainer_ref() is not trainer:
            return False
        a, b = self.last_step, last_step
        return (math.isnan(a) and math.isnan(b)) or a == b


def recorded_runs() -> list[RunRecord]:
    """The runs recorded in this session (oldest first), which dashboards can overlay.

    >>> [r.label for r in recorded_runs()]      # doctest: +SKIP
    ['tf_efficientnet_lite0 · random · all', 'tf_efficientnet_lite0 · pretrained · head']
    """
    return list(_RUNS)


def find_record(trainer: Any, last_step: float) -> RunRecord | None:
    """The recorded run of ``trainer`` that ended at ``last_step``, if there is one."""
    for rec in reversed(_RUNS):
        if rec.is_of(trainer, last_step):
            return rec
    return None


def find_label(label: str) -> RunRecord | None:
    """The newest recorded run labelled ``label``."""
    matches = [r for r in _RUNS if r.label == label]
    return matches[-1] if matches else None


def unique_label(label: str, run_id: int) -> str:
    """``label``, or ``label #k`` when another recorded run already has it."""
    taken = {r.label for r in _RUNS if r.run_id != run_id}
    if label not in taken:
        return label
    k = 2
    while f"{label} #{k}" in taken:
        k += 1
    return f"{label} #{k}"


def register(rec: RunRecord) -> RunRecord:
    """Add ``rec`` to the session's list (once; labels made unique); returns the record kept."""
    for known in _RUNS:
        if known.run_id == rec.run_id:
            return known
    trainer = rec.trainer_ref() if rec.trainer_ref is not None else None
    if trainer is not None:
        same = find_record(trainer, rec.last_step)
        if same is not None:
            return same
    rec.label = unique_label(rec.label, rec.run_id)
    _RUNS[:] = _RUNS[-(MAX_RUNS - 1):] + [rec]
    return rec
