"""Console progress for ``fit()`` in a script: a tqdm bar per epoch and one line per epoch.

Like Keras (a bar, then a line) and fastai (an epoch table): the bar shows the loss, images/s and
the ETA (tqdm's own); each finished epoch prints ``epoch``, ``train_loss``, ``valid_loss``, the
metric and the seconds. A trainer prints it when ``verbose=True``, or with the default
``verbose="auto"`` unless a view that shows progress itself (a ``TrainingDashboard``) subscribed.
``log`` events go to ``logging.getLogger("tlwidgets")`` either way.

>>> hook = ConsoleProgress(lambda: True, steps_per_epoch=lambda: 8)   # doctest: +SKIP
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from .hooks import Hook
from .state import RunState

__all__ = ["ConsoleProgress"]


class ConsoleProgress(Hook):
    """The tqdm bar and epoch lines (see the module docstring)."""

    name, order = "progress", 100

    def __init__(self, active: Callable[[], bool], steps_per_epoch: Callable[[], int | None],
                 file: Any = None) -> None:
        self.active = active
        self.steps_per_epoch = steps_per_epoch
        self.file = file
        self.bar: Any = None
        self.header_done = False
        self.on = False

    def on_run_start(self, run: RunState) -> None:
        self.on = bool(self.active())
        self.header_done = False

    def on_epoch_start(self, run: RunState) -> None:
        if not self.on:
            return
        from tqdm import tqdm

        cyc = run.cycle
        total_epochs = (cyc.start_epoch + cyc.epochs) if cyc else run.epochs_done + 1
        done = cyc.batch_in_epoch if cyc else 0
        self.bar = tqdm(total=self.steps_per_epoch(), initial=done, leave=False,
                        desc=f"epoch {run.epochs_done + 1}/{total_epochs}", unit="step",
                        file=self.file or sys.stderr, dynamic_ncols=True)

    def on_step(self, run: RunState, row: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{row['loss']:.4f}", img_s=f"{row['img_s']:.0f}",
                                 refresh=False)
            self.bar.update(1)

    def on_epoch_end(self, run: RunState, row: dict[str, Any]) -> None:
        if not self.on:
            return
        self._close_bar()
        out = self.file or sys.stdout
        if not self.header_done:
            print(f"{'epoch':>5}  {'train_loss':>10}  {'valid_loss':>10}  {'accuracy':>8}  "
                  f"{'seconds':>7}", file=out, flush=True)
            self.header_done = True
        print(f"{row['epoch']:>5}  {row['train_loss']:>10.4f}  {row['valid_loss']:>10.4f}  "
              f"{row['accuracy']:>8.4f}  {row['seconds']:>7.1f}", file=out, flush=True)

    def on_run_end(self, run: RunState, final: str) -> None:
        self._close_bar()
        if self.on and final != "finished":
            print(f"run {final} at step {run.global_step}", file=self.file or sys.stdout,
                  flush=True)

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.refresh()  # the last postfix (loss, img/s) is shown even on a short epoch
            self.bar.close()
            self.bar = None
