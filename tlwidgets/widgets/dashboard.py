"""The live training dashboard: bqplot curves, run controls, progress, epochs and evaluation.

The trainer's thread never touches a widget. It calls :meth:`TrainingDashboard._on_event`, which
only appends to buffers; a publisher thread flushes them to the widgets a few times a second
inside ``hold_sync()`` and once more when the run ends. Plotted series are decimated so what
travels to the browser stays bounded however long the run is, and arrays travel as binary
(bqplot's array serialization).

>>> import tlwidgets as tlw
>>> model = tlw.create_model("tf_efficientnet_lite0", num_classes=4)      # doctest: +SKIP
>>> trainer = tlw.Trainer(model, tlw.sample_data(model=model), epochs=2)  # doctest: +SKIP
>>> tlw.TrainingDashboard(trainer)                                       # doctest: +SKIP
"""

from __future__ import annotations

import html
import io
import itertools
import math
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np

from ..errors import ConfigError
from ._series import LossSeries, decimate_minmax, decimate_stride
from .run_controls import STATES, RunControls

__all__ = ["TrainingDashboard", "RunRecord", "recorded_runs"]

TERMINAL = ("finished", "stopped", "failed")
_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


@dataclass
class RunRecord:
    """The curves of one run, kept so later runs can be overlaid on them."""

    label: str
    step_x: np.ndarray
    smooth_loss: np.ndarray
    epoch_step: np.ndarray
    epoch: np.ndarray
    valid_loss: np.ndarray
    accuracy: np.ndarray
    run_id: int = field(default_factory=lambda: next(_RUN_IDS))

    @classmethod
    def from_trainer(cls, trainer: Any, label: str | None = None, beta: float = 0.9) -> RunRecord:
        """Build a record from a trainer's ``steps`` and ``history`` DataFrames."""
        steps, hist = trainer.steps, trainer.history
        series = LossSeries(beta)
        for s, loss in zip(_col(steps, "step"), _col(steps, "loss")):
            series.append(float(s), float(loss))
        x, _, smooth = series.arrays()
        epoch_step = _col(hist, "step") if "step" in getattr(hist, "columns", ()) else np.array([])
        return cls(
            label=label or _default_label(trainer),
            step_x=x,
            smooth_loss=smooth,
            epoch_step=np.asarray(epoch_step, dtype=float),
            epoch=np.asarray(_col(hist, "epoch"), dtype=float),
            valid_loss=np.asarray(_col(hist, "valid_loss"), dtype=float),
            accuracy=np.asarray(_col(hist, "accuracy"), dtype=float),
        )


_RUN_IDS = itertools.count(1)
_RUNS: list[RunRecord] = []  # the runs this kernel session has seen end, newest last
_MAX_RUNS = 20


def recorded_runs() -> list[RunRecord]:
    """The runs that ended in this session (newest last), which dashboards can overlay."""
    return list(_RUNS)


def _col(df: Any, name: str) -> np.ndarray:
    if df is None or name not in getattr(df, "columns", ()):
        return np.array([], dtype=float)
    return df[name].to_numpy(dtype=float, na_value=np.nan)


def _default_label(trainer: Any) -> str:
    name = getattr(trainer, "name", None)
    if name:
        return str(name)
    model = getattr(trainer, "model", None)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    return str(cfg.get("architecture") or type(model).__name__)


def _fmt_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _fmt_bytes(n: float | None) -> str:
    if n is None or not math.isfinite(n):
        return "–"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


class _Buffers:
    """What the trainer's thread appends and the publisher reads; every access under ``lock``."""

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
        self.step_version = 0
        self.epoch_version = 0
        self.state_version = 0

    def reset(self) -> None:
        self.loss.clear()
        self.lr_steps.clear()
        self.lrs.clear()
        self.epochs.clear()
        self.error = None
        self.last_step = -1.0
        self.step_version += 1
        self.epoch_version += 1


class TrainingDashboard(widgets.VBox):
    """Live curves, controls and evaluation for a :class:`tlwidgets.Trainer`.

    Parameters
    ----------
    trainer:
        The trainer to watch and control. The dashboard holds no training state of its own.
    label:
        Name of this run in comparisons (default: the trainer's name or the architecture).
    compare:
        Earlier runs to overlay: trainers, :class:`RunRecord`\\ s, or labels of runs that ended in
        this session (see :func:`recorded_runs`).
    refresh_hz:
        How often the publisher pushes to the browser while training (2–5 is sensible).
    max_points:
        Upper bound on points per plotted series; longer series are decimated.
    smoothing:
        Beta of the debiased moving average of the training loss. 0.9 follows a short
        workshop run closely; fastai's 0.98 lags by ~50 steps, longer than many such runs.
    evaluate:
        Compute the confusion matrix and the worst mistakes when a run ends.

    >>> dash = TrainingDashboard(trainer)          # doctest: +SKIP
    >>> dash                                      # doctest: +SKIP
    """

    def __init__(
        self,
        trainer: Any,
        *,
        label: str | None = None,
        compare: Iterable[Any] = (),
        refresh_hz: float = 2.5,
        max_points: int = 1000,
        smoothing: float = 0.9,
        evaluate: bool = True,
        mistakes: int = 8,
    ) -> None:
        if not hasattr(trainer, "subscribe"):
            raise ConfigError(
                f"TrainingDashboard needs a tlwidgets.Trainer, got {type(trainer).__name__}. "
                "Create one with tlw.Trainer(model, data) and pass it in."
            )
        if not 0.2 <= refresh_hz <= 20:
            raise ConfigError(f"refresh_hz must be between 0.2 and 20, got {refresh_hz}.")
        if max_points < 10:
            raise ConfigError(f"max_points must be at least 10, got {max_points}.")
        if not 0.0 <= smoothing < 1.0:
            raise ConfigError(f"smoothing must be in [0, 1), got {smoothing}.")
        self.trainer = trainer
        self.label = label or _default_label(trainer)
        self.max_points = int(max_points)
        self.refresh_hz = float(refresh_hz)
        self.evaluate_on_end = evaluate
        self.mistakes = int(mistakes)
        self.evaluation: Any = None
        self._buf = _Buffers(smoothing)
        self._sent = {"step": -1, "epoch": -1, "state": -1, "compare": -1}
        self._compare_version = 0
        # not "_compare": that name is the Widget method traitlets uses to compare values (repr)
        self._overlays: list[RunRecord] = []
        self._run_id = next(_RUN_IDS)
        self._evaluated_run: int | None = None
        self._flush_lock = threading.Lock()
        self._lr_pushed = -math.inf
        self._lr_sent_n = 0

        self._build_widgets()
        self._load_existing()
        for item in compare:
            self.compare(item)

        self._publisher = _Publisher(self, self.refresh_hz)
        # display=True: the dashboard shows progress, so the trainer prints none to the console
        self._unsubscribe = trainer.subscribe(self._on_event, display=True)
        self.controls.on_action(self._on_action)
        super().__init__(children=self._layout(), layout=widgets.Layout(width="100%"))
        self.add_class("tlw-dashboard")
        self.flush()

    # ----------------------------------------------------------------- building the view
    def _build_widgets(self) -> None:
        t = self.trainer
        self.controls = RunControls(state=str(getattr(t, "state", "idle")))
        epochs0 = int(getattr(t, "epochs", 1) or 1)
        lr = getattr(t, "lr", 1e-3) or 1e-3
        lr0 = float(lr.stop if isinstance(lr, slice) else lr)  # discriminative: the head's rate
        self._inputs_shown = (epochs0, lr0)
        # The bounds include the trainer's own values: a bounded field clamps its value, and
        # Start copies the fields into the trainer, so a tighter bound would change the run.
        self.epochs_input = widgets.BoundedIntText(
            value=epochs0, min=1, max=max(10_000, epochs0), description="Epochs",
            layout=widgets.Layout(width="150px"), style={"description_width": "50px"},
        )
        self.lr_input = widgets.BoundedFloatText(
            value=lr0, min=min(1e-8, lr0), max=max(10.0, lr0), step=1e-4,
            description="LR", layout=widgets.Layout(width="170px"),
            style={"description_width": "30px"},
        )
        self.log_toggle = widgets.ToggleButton(
            value=False, description="log loss", tooltip="Log scale for the loss axis",
            layout=widgets.Layout(width="90px"),
        )
        self.log_toggle.observe(self._on_log_toggle, "value")
        self.progress = widgets.IntProgress(
            value=0, min=0, max=1, layout=widgets.Layout(width="260px"), bar_style="info"
        )
        self.progress_label = widgets.Label("")
        self.error_box = widgets.HTML("", layout=widgets.Layout(display="none"))

        # loss per step: raw (faint), smoothed, validation per epoch, epoch marks, comparisons
        self._x_steps = bq.LinearScale()
        self._y_loss_lin = bq.LinearScale()
        self._y_loss_log = bq.LogScale()
        self._y_marks = bq.LinearScale(min=0.0, max=1.0)
        ys = {"x": self._x_steps, "y": self._y_loss_lin}
        self.raw_line = bq.Lines(
            x=[], y=[], scales=ys, colors=[_COLORS[0]], opacities=[0.25], stroke_width=1,
            labels=["train (raw)"],
        )
        self.smooth_line = bq.Lines(
            x=[], y=[], scales=ys, colors=[_COLORS[0]], stroke_width=2, labels=["train"],
            display_legend=True,
        )
        self.valid_line = bq.Lines(
            x=[], y=[], scales=ys, colors=[_COLORS[1]], marker="circle", marker_size=24,
            labels=["valid"], display_legend=True,
        )
        self.epoch_marks = bq.Lines(
            x=[], y=[], scales={"x": self._x_steps, "y": self._y_marks}, colors=["#999999"],
            line_style="dashed", stroke_width=1, opacities=[0.6],
        )
        self.compare_loss = bq.Lines(
            x=[], y=[], scales=ys, line_style="dashed", stroke_width=1.5, display_legend=True,
            colors=_COLORS[2:],
        )
        self._x_axis_loss = bq.Axis(scale=self._x_steps, label="step")
        self._y_axis_loss = bq.Axis(
            scale=self._y_loss_lin, side="left", label="loss", tick_format=".3g",
            label_offset="45px",
        )
        self.loss_figure = bq.Figure(
            marks=[self.compare_loss, self.raw_line, self.smooth_line, self.valid_line,
                   self.epoch_marks],
            axes=[self._x_axis_loss, self._y_axis_loss], title="Loss",
            legend_location="top-right", animation_duration=0,
            fig_margin={"top": 40, "bottom": 40, "left": 65, "right": 15},
            layout=widgets.Layout(width="100%", height="300px", min_width="320px"),
        )

        # accuracy per epoch
        self._x_epochs = bq.LinearScale(min=0.0)
        self._x_axis_epochs = bq.Axis(scale=self._x_epochs, label="epoch", tick_format="d")
        self._y_acc = bq.LinearScale(min=0.0, max=1.0)
        acc_scales = {"x": self._x_epochs, "y": self._y_acc}
        self.acc_line = bq.Lines(
            x=[], y=[], scales=acc_scales, colors=[_COLORS[1]], marker="circle", marker_size=24,
            labels=["accuracy"], display_legend=True,
        )
        self.compare_acc = bq.Lines(
            x=[], y=[], scales=acc_scales, line_style="dashed", stroke_width=1.5,
            display_legend=True, colors=_COLORS[2:], marker="circle", marker_size=16,
        )
        self.acc_figure = bq.Figure(
            marks=[self.compare_acc, self.acc_line],
            axes=[self._x_axis_epochs,
                  bq.Axis(scale=self._y_acc, side="left", label="valid accuracy",
                          tick_format=".0%", label_offset="40px")],
            title="Validation accuracy", legend_location="bottom-right", animation_duration=0,
            fig_margin={"top": 40, "bottom": 40, "left": 55, "right": 15},
            layout=widgets.Layout(width="100%", height="300px", min_width="280px"),
        )

        # learning rate per parameter group
        self._y_lr = bq.LinearScale(min=0.0)
        self.lr_line = bq.Lines(
            x=[], y=[], scales={"x": self._x_steps, "y": self._y_lr}, stroke_width=1.5,
            colors=_COLORS, display_legend=True,
        )
        self.lr_figure = bq.Figure(
            marks=[self.lr_line],
            axes=[bq.Axis(scale=self._x_steps, label="step"),
                  bq.Axis(scale=self._y_lr, side="left", label="learning rate",
                          tick_format=".1e", label_offset="55px")],
            title="Learning rate per group", legend_location="top-right", animation_duration=0,
            fig_margin={"top": 40, "bottom": 40, "left": 75, "right": 15},
            layout=widgets.Layout(width="100%", height="240px", min_width="280px"),
        )

        self.epoch_table = widgets.HTML("<i>No epoch finished yet.</i>")
        self.compare_select = widgets.SelectMultiple(
            options=[], rows=5, description="Overlay", layout=widgets.Layout(width="420px"),
        )
        self.compare_select.observe(self._on_compare_select, "value")
        self._refresh_compare_options()

        self.eval_status = widgets.HTML("<i>The evaluation appears here when a run ends.</i>")
        self.eval_box = widgets.VBox([self.eval_status])
        self.tabs = widgets.Tab(children=[
            self.epoch_table,
            widgets.VBox([self.compare_select, widgets.HTML(
                "<small>Overlay earlier runs of this session (dashed): pretrained vs from "
                "scratch, frozen vs unfrozen.</small>")]),
            self.eval_box,
        ])
        for i, title in enumerate(["Epochs", "Compare runs", "Evaluation"]):
            self.tabs.set_title(i, title)

    def _layout(self) -> list[widgets.Widget]:
        header = widgets.HBox(
            [self.controls, self.epochs_input, self.lr_input, self.log_toggle],
            layout=widgets.Layout(align_items="center", flex_flow="row wrap"),
        )
        status = widgets.HBox(
            [self.progress, self.progress_label],
            layout=widgets.Layout(align_items="center", flex_flow="row wrap"),
        )
        plots = widgets.GridBox(
            [self.loss_figure, self.acc_figure],
            layout=widgets.Layout(grid_template_columns="3fr 2fr", width="100%"),
        )
        return [header, status, self.error_box, plots, self.lr_figure, self.tabs]

    def _load_existing(self) -> None:
        """Show what the trainer already has (created after or between runs, or resumed)."""
        steps = getattr(self.trainer, "steps", None)
        hist = getattr(self.trainer, "history", None)
        b = self._buf
        for s, loss in zip(_col(steps, "step"), _col(steps, "loss")):
            b.loss.append(float(s), float(loss))
            b.last_step = float(s)
        if hist is not None and len(getattr(hist, "index", ())):
            for row in hist.to_dict("records"):
                b.epochs.append(self._epoch_row(row))
        b.state = str(getattr(self.trainer, "state", "idle"))
        b.step_version += 1
        b.epoch_version += 1
        b.state_version += 1

    # ----------------------------------------------------------------- events (trainer thread)
    def _on_event(self, event: Any) -> None:
        """Called on the trainer's thread: append to buffers, never touch a widget."""
        kind = getattr(event, "kind", None)
        data = getattr(event, "data", None) or {}
        b = self._buf
        with b.lock:
            if kind == "step":
                step = float(data.get("step", b.last_step + 1))
                if step < b.last_step:  # a new run restarted the step count
                    self._archive_locked()
                    b.reset()
                loss = data.get("loss")
                if loss is not None:
                    b.loss.append(step, float(loss))
                lrs = data.get("lrs")
                if lrs:
                    b.lr_steps.append(step)
                    b.lrs.append([float(v) for v in lrs])
                if data.get("img_s") is not None:
                    b.img_s = float(data["img_s"])
                b.last_step = step
                b.step_version += 1
            elif kind == "epoch":
                row = self._epoch_row(data)
                if not math.isfinite(row["step"]):
                    row["step"] = b.last_step
                b.epochs.append(row)
                b.epoch_version += 1
            elif kind == "state":
                new = str(data.get("state", b.state))
                if new == "running" and b.state in TERMINAL:
                    b.error = None
                b.state = new
                b.state_version += 1
            elif kind == "error":
                b.error = str(data.get("message") or data.get("error") or "training failed")
                b.state_version += 1
            else:
                return
        final = kind == "state" and b.state in TERMINAL
        self._publisher.kick(final=final)

    @staticmethod
    def _epoch_row(data: dict[str, Any]) -> dict[str, float]:
        def num(key: str) -> float:
            v = data.get(key)
            try:
                return float(v) if v is not None else math.nan
            except (TypeError, ValueError):
                return math.nan

        return {k: num(k) for k in ("epoch", "step", "train_loss", "valid_loss", "accuracy",
                                    "seconds")}

    def _archive_locked(self) -> RunRecord | None:
        """Keep the current run's curves for comparisons (caller holds the buffer lock)."""
        b = self._buf
        if len(b.loss) == 0 and not b.epochs:
            return None
        x, _, smooth = b.loss.arrays()
        ep = b.epochs
        rec = RunRecord(
            label=f"{self.label} #{self._run_id}",
            step_x=x, smooth_loss=smooth,
            epoch_step=np.array([r["step"] for r in ep], dtype=float),
            epoch=np.array([r["epoch"] for r in ep], dtype=float),
            valid_loss=np.array([r["valid_loss"] for r in ep], dtype=float),
            accuracy=np.array([r["accuracy"] for r in ep], dtype=float),
            run_id=self._run_id,
        )
        _RUNS[:] = [r for r in _RUNS if r.run_id != rec.run_id][-(_MAX_RUNS - 1):] + [rec]
        self._run_id = next(_RUN_IDS)
        return rec

    # ----------------------------------------------------------------- commands (kernel thread)
    def _on_action(self, action: str) -> None:
        t = self.trainer
        try:
            if action == "start":
                self._apply_inputs()
                t.start()
            elif action == "pause":
                t.pause()
            elif action == "resume":
                t.resume()
            elif action == "stop":
                t.stop()
        except Exception as err:  # shown in the dashboard; the kernel keeps going
            with self._buf.lock:
                self._buf.error = f"{type(err).__name__}: {err}"
                self._buf.state_version += 1
            self._publisher.kick()

    def _apply_inputs(self) -> None:
        # Only what the user edited goes to the trainer, so a value set in code (a slice of
        # discriminative rates, say) survives a press of Start.
        t = self.trainer
        epochs, lr = int(self.epochs_input.value), float(self.lr_input.value)
        shown_epochs, shown_lr = self._inputs_shown
        if hasattr(t, "epochs") and epochs != shown_epochs:
            t.epochs = epochs
        if hasattr(t, "lr") and lr != shown_lr:
            old = t.lr
            if isinstance(old, slice) and old.start and old.stop:
                t.lr = slice(old.start * lr / old.stop, lr)  # keep the ratio between groups
            else:
                t.lr = lr
        self._inputs_shown = (epochs, lr)

    def _on_log_toggle(self, change: dict[str, Any]) -> None:
        y = self._y_loss_log if change["new"] else self._y_loss_lin
        for mark in (self.raw_line, self.smooth_line, self.valid_line, self.compare_loss):
            mark.scales = {"x": self._x_steps, "y": y}
        self._y_axis_loss.scale = y

    # ----------------------------------------------------------------- comparisons
    def compare(self, run: Any) -> RunRecord:
        """Overlay another run: a trainer, a :class:`RunRecord`, or the label of an ended run.

        >>> dash.compare(scratch_trainer)   # doctest: +SKIP
        """
        if isinstance(run, RunRecord):
            rec = run
        elif isinstance(run, str):
            matches = [r for r in _RUNS if r.label == run]
            if not matches:
                known = ", ".join(r.label for r in _RUNS) or "none yet"
                raise ConfigError(f"No ended run is labelled {run!r}. Runs in this session: {known}.")
            rec = matches[-1]
        elif hasattr(run, "steps") and hasattr(run, "history"):
            rec = RunRecord.from_trainer(run, beta=self._buf.loss.beta)
        else:
            raise ConfigError(
                f"compare() takes a Trainer, a RunRecord or a run label, not {type(run).__name__}."
            )
        if all(r.run_id != rec.run_id for r in self._overlays):
            self._overlays.append(rec)
        if all(r.run_id != rec.run_id for r in _RUNS):
            _RUNS.append(rec)
        self._refresh_compare_options()
        self._compare_version += 1
        self._publisher_kick()
        return rec

    def _publisher_kick(self) -> None:
        pub = getattr(self, "_publisher", None)
        if pub is not None:
            pub.kick()

    def _refresh_compare_options(self) -> None:
        shown = (self._run_id, getattr(self, "_shown_run", None))
        options = [(r.label, r.run_id) for r in _RUNS if r.run_id not in shown]
        chosen = tuple(r.run_id for r in self._overlays if any(o[1] == r.run_id for o in options))
        self.compare_select.unobserve(self._on_compare_select, "value")
        try:
            self.compare_select.options = options
            self.compare_select.value = chosen
        finally:
            self.compare_select.observe(self._on_compare_select, "value")

    def _on_compare_select(self, change: dict[str, Any]) -> None:
        ids = set(change["new"])
        self._overlays = [r for r in _RUNS if r.run_id in ids]
        self._compare_version += 1
        self._publisher_kick()

    # ----------------------------------------------------------------- publishing
    def flush(self, final: bool = True) -> None:
        """Push everything that changed to the widgets (the publisher calls this)."""
        with self._flush_lock:
            b = self._buf
            with b.lock:
                versions = (b.step_version, b.epoch_version, b.state_version)
                # the learning rate is sent at most once a second: the final flush sends the
                # rest even when the steps themselves went out already
                lr_behind = final and len(b.lr_steps) != self._lr_sent_n
                step_changed = versions[0] != self._sent["step"] or lr_behind
                epoch_changed = versions[1] != self._sent["epoch"]
                state_changed = versions[2] != self._sent["state"]
                if step_changed:
                    x, raw, smooth = b.loss.arrays()
                    lr_x = np.array(b.lr_steps, dtype=float)
                    lrs = np.array(b.lrs, dtype=float) if b.lrs else np.empty((0, 0))
                if epoch_changed:
                    epochs = [dict(r) for r in b.epochs]
                state, error, img_s = b.state, b.error, b.img_s
            compare_changed = self._compare_version != self._sent["compare"]

            if step_changed:
                self._push_steps(x, raw, smooth, lr_x, lrs, final=final)
            if epoch_changed:
                self._push_epochs(epochs)
            if state_changed:
                self._push_state(state, error)
            if compare_changed:
                self._push_compare()
            self._push_progress(img_s)
            self._sent.update(step=versions[0], epoch=versions[1], state=versions[2],
                              compare=self._compare_version)

    def _push_steps(self, x: np.ndarray, raw: np.ndarray, smooth: np.ndarray,
                    lr_x: np.ndarray, lrs: np.ndarray, final: bool = False) -> None:
        # Budgets per flush keep kernel->browser traffic bounded however long the run is:
        # the faint raw loss keeps min/max envelopes (spikes stay visible) at max_points, the
        # smoothed line needs half that, and the learning-rate curves (smooth by construction)
        # a quarter, refreshed at most once a second.
        ok = np.isfinite(raw)
        xr, yr = decimate_minmax(x[ok], raw[ok], self.max_points)
        ok_s = np.isfinite(smooth)
        xs, ys = decimate_stride(x[ok_s], smooth[ok_s], max(self.max_points // 2, 10))
        with self.raw_line.hold_sync():
            self.raw_line.x, self.raw_line.y = _f32(xr), _f32(yr)
        with self.smooth_line.hold_sync():
            self.smooth_line.x, self.smooth_line.y = _f32(xs), _f32(ys)
        now = time.monotonic()
        if lrs.size and (final or now - self._lr_pushed >= 1.0):
            self._lr_pushed = now
            n = len(lr_x)
            self._lr_sent_n = n
            idx = decimate_stride(np.arange(n), np.arange(n), max(self.max_points // 4, 10))[0]
            ys, names = lrs[idx].T, self._group_names(lrs.shape[1])
            if len(ys) > 1 and np.allclose(ys, ys[:1], rtol=1e-6, atol=0):
                # groups on one schedule are one line: a legend of identical curves hides the plot
                ys, names = ys[:1], [f"all {len(names)} groups" if len(names) > 1 else names[0]]
            with self.lr_line.hold_sync():
                self.lr_line.x = _f32(lr_x[idx])
                # one line goes as 1-D: bqplot squeezes a 1x1 array and then rejects it
                self.lr_line.y = _f32(ys[0] if len(ys) == 1 else ys)
                if list(self.lr_line.labels) != names:
                    self.lr_line.labels = names
                legend = len(names) <= 6
                if self.lr_line.display_legend != legend:
                    self.lr_line.display_legend = legend

    def _group_names(self, n: int) -> list[str]:
        names = getattr(self.trainer, "param_group_names", None)
        if callable(names):
            names = names()
        if names and len(names) == n:
            return [str(v) for v in names]
        return [f"group {i}" for i in range(n)]

    def _push_epochs(self, epochs: list[dict[str, float]]) -> None:
        steps = np.array([r["step"] for r in epochs], dtype=float)
        vloss = np.array([r["valid_loss"] for r in epochs], dtype=float)
        acc = np.array([r["accuracy"] for r in epochs], dtype=float)
        ep = np.array([r["epoch"] for r in epochs], dtype=float)
        ok = np.isfinite(steps) & np.isfinite(vloss)
        with self.valid_line.hold_sync():
            self.valid_line.x, self.valid_line.y = _f32(steps[ok]), _f32(vloss[ok])
        ok = np.isfinite(ep) & np.isfinite(acc)
        with self.acc_line.hold_sync():
            self.acc_line.x, self.acc_line.y = _f32(ep[ok]), _f32(acc[ok])
        marks = steps[np.isfinite(steps)]
        with self.epoch_marks.hold_sync():
            if len(marks):
                self.epoch_marks.x = _f32(np.repeat(marks[:, None], 2, axis=1))
                self.epoch_marks.y = _f32(np.tile([0.0, 1.0], (len(marks), 1)))
            else:
                self.epoch_marks.x, self.epoch_marks.y = [], []
        self.epoch_table.value = _epoch_table_html(epochs)

    def _push_state(self, state: str, error: str | None) -> None:
        self.controls.state = state if state in STATES else "idle"
        editable = state not in ("running", "paused", "stopping")
        self.epochs_input.disabled = not editable
        self.lr_input.disabled = not editable
        self.progress.bar_style = {"failed": "danger", "finished": "success",
                                   "stopped": "warning"}.get(state, "info")
        if error:
            self.error_box.value = (
                "<div style='color:var(--jp-error-color1,#d32f2f);border:1px solid "
                "var(--jp-error-color1,#d32f2f);padding:6px 10px;border-radius:4px;"
                "white-space:pre-wrap'><b>Training failed.</b> "
                f"{html.escape(error)}</div>"
            )
            self.error_box.layout.display = "block"
        else:
            self.error_box.value = ""
            self.error_box.layout.display = "none"
        if state in TERMINAL:
            with self._buf.lock:
                self._archive_terminal()
            self._refresh_compare_options()

    def _archive_terminal(self) -> None:
        if not any(r.run_id == self._run_id for r in _RUNS):
            rec = self._archive_locked()
            if rec is not None:
                self._shown_run = rec.run_id  # still on screen: not offered as an overlay

    def _push_compare(self) -> None:
        recs = self._overlays
        with self.compare_loss.hold_sync():
            if recs:
                xs, ys = zip(*(_pad_series(*decimate_stride(r.step_x, r.smooth_loss,
                                                            self.max_points // 2))
                               for r in recs))
                n = max(2, max(len(v) for v in xs))  # bqplot squeezes a 1x1 array to a scalar
                self.compare_loss.x = _f32(np.stack([_pad_to(v, n) for v in xs]))
                self.compare_loss.y = _f32(np.stack([_pad_to(v, n) for v in ys]))
                self.compare_loss.labels = [r.label for r in recs]
            else:
                self.compare_loss.x, self.compare_loss.y = [], []
        with self.compare_acc.hold_sync():
            accs = [r for r in recs if len(r.accuracy)]
            if accs:
                n = max(2, max(len(r.accuracy) for r in accs))
                self.compare_acc.x = _f32(np.stack([_pad_to(r.epoch, n) for r in accs]))
                self.compare_acc.y = _f32(np.stack([_pad_to(r.accuracy, n) for r in accs]))
                self.compare_acc.labels = [r.label for r in accs]
            else:
                self.compare_acc.x, self.compare_acc.y = [], []

    def _push_progress(self, img_s: float) -> None:
        try:
            p = dict(self.trainer.progress())
        except Exception:  # a view must never break because a number is missing
            p = {}
        total = int(p.get("total_steps") or 0)
        step = int(p.get("step") or 0)
        with self.progress.hold_sync():
            self.progress.max = max(total, 1)
            self.progress.value = min(step, max(total, 1))
        # progress()["epoch"] is 1-based while a run is active and the count done otherwise
        ep, eps, spe = int(p.get("epoch") or 0), p.get("epochs"), p.get("steps_per_epoch")
        if eps and self._x_epochs.max != float(eps):
            self._x_epochs.max = float(eps)
            # whole epochs only: d3's own ticks (1.5, 4.5, ...) printed as integers mislead
            every = next(k for k in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, int(eps))
                         if int(eps) / k <= 8)
            self._x_axis_epochs.tick_values = np.arange(0, int(eps) + 1, every, dtype=float)
        parts = []
        if eps:
            parts.append(f"epoch {min(ep, int(eps))}/{int(eps)}")
        if spe and step:
            in_epoch = (step - 1) % int(spe) + 1
            parts.append(f"step {in_epoch}/{int(spe)}")
        parts.append(f"elapsed {_fmt_duration(p.get('elapsed'))}")
        parts.append(f"ETA {_fmt_duration(p.get('eta'))}")
        rate = p.get("img_s", img_s)
        parts.append(f"{rate:,.0f} img/s" if rate is not None and math.isfinite(rate)
                     else "– img/s")
        parts.append(f"{p.get('device', '?')} · memory {_fmt_bytes(p.get('memory'))}")
        text = " · ".join(parts)  # one label, so one message per refresh
        if self.progress_label.value != text:
            self.progress_label.value = text

    # ----------------------------------------------------------------- evaluation view
    def show_evaluation(self) -> None:
        """Evaluate the trainer's model on the validation set and show the results."""
        self.eval_status.value = "<i>Evaluating…</i>"
        try:
            ev = self.trainer.evaluate()
        except Exception as err:
            self.eval_status.value = (
                f"<span style='color:var(--jp-error-color1,#d32f2f)'>Evaluation failed: "
                f"{html.escape(f'{type(err).__name__}: {err}')}</span>"
            )
            return
        # the view first: code that waits for .evaluation (another thread) then finds it built
        self.eval_box.children = _evaluation_view(ev, self.trainer, self.mistakes)
        self.evaluation = ev

    def _maybe_evaluate(self) -> None:
        with self._buf.lock:
            state = self._buf.state
        if (self.evaluate_on_end and state in ("finished", "stopped")
                and self._evaluated_run != self._run_id):
            self._evaluated_run = self._run_id
            # The run's thread publishes its last state just before it exits, and evaluate()
            # refuses while that thread is alive: let it end first (this is the publisher's
            # thread, never the trainer's).
            wait = getattr(self.trainer, "wait", None)
            if callable(wait):
                wait(timeout=10)
            self.show_evaluation()

    def close(self) -> None:
        """Stop listening to the trainer and stop the publisher; the trainer is not touched."""
        unsubscribe = getattr(self, "_unsubscribe", None)
        if unsubscribe is not None:
            unsubscribe()
            self._unsubscribe = None
        pub = getattr(self, "_publisher", None)
        if pub is not None:
            pub.close()
        super().close()


def _pad_to(a: np.ndarray, n: int) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    if len(a) >= n:
        return a[:n]
    if len(a) == 0:
        return np.full(n, np.nan)
    return np.concatenate([a, np.full(n - len(a), a[-1])])


def _pad_series(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ok = np.isfinite(y)
    return x[ok], y[ok]


def _epoch_table_html(epochs: list[dict[str, float]]) -> str:
    if not epochs:
        return "<i>No epoch finished yet.</i>"

    def cell(v: float, fmt: str) -> str:
        return html.escape(format(v, fmt)) if math.isfinite(v) else "–"

    rows = "".join(
        "<tr>"
        f"<td>{cell(r['epoch'], '.0f')}</td>"
        f"<td>{cell(r['train_loss'], '.4f')}</td><td>{cell(r['valid_loss'], '.4f')}</td>"
        f"<td>{cell(r['accuracy'] * 100, '.1f')}%</td><td>{cell(r['seconds'], '.1f')} s</td>"
        "</tr>"
        for r in epochs
    )
    return (
        "<style>.tlw-epochs th, .tlw-epochs td {padding: 2px 12px}</style>"
        "<table class='tlw-epochs' style='border-collapse:collapse;text-align:right'>"
        "<thead><tr><th>epoch</th><th>train loss</th><th>valid loss</th><th>accuracy</th>"
        f"<th>time</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _evaluation_view(ev: Any, trainer: Any, k: int) -> list[widgets.Widget]:
    confusion = ev.confusion
    classes = [str(c) for c in confusion.index]
    matrix = confusion.to_numpy(dtype=float)
    acc = float(getattr(ev, "accuracy", math.nan))
    header = widgets.HTML(
        f"<b>Validation accuracy: {acc * 100:.1f}%</b> over {int(matrix.sum())} images."
    )
    heat = bq.GridHeatMap(
        color=matrix, row=np.array(classes), column=np.array(classes),
        scales={"row": bq.OrdinalScale(reverse=True), "column": bq.OrdinalScale(),
                "color": bq.ColorScale(scheme="Blues")},
    )
    heat_fig = bq.Figure(
        marks=[heat],
        axes=[bq.Axis(scale=heat.scales["column"], label="predicted"),
              bq.Axis(scale=heat.scales["row"], side="left", label="true")],
        title="Confusion matrix", padding_y=0.0, animation_duration=0,
        fig_margin={"top": 40, "bottom": 60, "left": 90, "right": 10},
        layout=widgets.Layout(width="420px", height="380px"),
    )
    per_class = getattr(ev, "per_class", None)
    recall = (per_class["recall"].to_numpy(dtype=float) if per_class is not None
              and "recall" in per_class else np.diag(matrix) / np.maximum(matrix.sum(1), 1))
    xs = bq.OrdinalScale()
    bars = bq.Bars(x=np.array(classes), y=_f32(recall),
                   scales={"x": xs, "y": bq.LinearScale(min=0.0, max=1.0)}, colors=[_COLORS[2]])
    bars_fig = bq.Figure(
        marks=[bars],
        axes=[bq.Axis(scale=xs), bq.Axis(scale=bars.scales["y"], side="left",
                                          tick_format=".0%")],
        title="Per-class accuracy", animation_duration=0,
        fig_margin={"top": 40, "bottom": 60, "left": 50, "right": 10},
        layout=widgets.Layout(width="380px", height="380px"),
    )
    gallery = _mistakes_gallery(ev, trainer, k)
    return [header, widgets.HBox([heat_fig, bars_fig], layout=widgets.Layout(
        flex_flow="row wrap")), gallery]


def _mistakes_gallery(ev: Any, trainer: Any, k: int) -> widgets.Widget:
    try:
        top = ev.top_losses(k * 3)
    except Exception as err:
        return widgets.Label(f"Worst mistakes unavailable: {err}")
    if "predicted" in top and "true" in top:
        top = top[top["predicted"] != top["true"]].head(k)
    if not len(top):
        return widgets.HTML("<b>No mistakes on the validation set.</b>")
    data = getattr(trainer, "data", None)
    cards = []
    for row in top.to_dict("records"):
        image = widgets.Label("(no image)")
        idx = row.get("index")
        if data is not None and idx is not None and hasattr(data, "raw_image"):
            try:
                pil = data.raw_image("valid", int(idx)).copy()
                pil.thumbnail((112, 112))
                png = io.BytesIO()
                pil.save(png, format="PNG")
                image = widgets.Image(value=png.getvalue(), format="png",
                                      layout=widgets.Layout(width="112px", height="auto"))
            except Exception as err:
                image = widgets.Label(f"(image unavailable: {type(err).__name__})")
        prob = row.get("probability", math.nan)
        cards.append(widgets.VBox(
            [image,
             widgets.Label(f"true: {row.get('true')}"),
             widgets.Label(f"predicted: {row.get('predicted')}"),
             widgets.Label(f"p = {prob:.2f}" if isinstance(prob, float) else f"p = {prob}")],
            layout=widgets.Layout(width="130px", margin="4px"),
        ))
    return widgets.VBox([
        widgets.HTML("<b>Worst mistakes</b> (highest loss first)"),
        widgets.HBox(cards, layout=widgets.Layout(flex_flow="row wrap")),
    ])


class _Publisher:
    """Flushes a dashboard at most ``hz`` times a second while events arrive, then once more.

    Holds the dashboard weakly so an unused dashboard can be garbage collected; sleeps without
    waking when nothing happens.
    """

    def __init__(self, dash: TrainingDashboard, hz: float) -> None:
        self._dash = weakref.ref(dash)
        self._period = 1.0 / hz
        self._cond = threading.Condition()
        self._dirty = False
        self._final = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="tlw-dashboard-publisher",
                                         daemon=True)
        self._thread.start()

    def kick(self, final: bool = False) -> None:
        with self._cond:
            self._dirty = True
            self._final = self._final or final
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        last = 0.0
        while True:
            with self._cond:
                while not self._dirty and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                final = self._final
                wait = 0.0 if final else self._period - (time.monotonic() - last)
            if wait > 0:
                time.sleep(wait)
            with self._cond:
                self._dirty = False
                final = final or self._final
                self._final = False
            dash = self._dash()
            if dash is None:
                return
            try:
                dash.flush(final=final)
                if final:
                    dash._maybe_evaluate()
            except Exception as err:  # keep publishing; show the problem instead of dying
                try:
                    dash.error_box.value = html.escape(f"Dashboard update failed: {err!r}")
                    dash.error_box.layout.display = "block"
                except Exception:
                    pass
            del dash
            last = time.monotonic()
