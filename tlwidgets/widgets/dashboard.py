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
import inspect
import math
import os
import threading
import time
from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets
import numpy as np

from ..errors import ConfigError
from ._charts import Charts
from ._evaluation_view import ConfusionMatrixView, evaluation_widgets
from ._inputs import RunInputs, check_int, check_number
from ._publisher import Publisher
from ._run_buffers import TERMINAL, RunBuffers, ragged
from ._runs import RunRecord, find_label, next_run_id, recorded_runs, register, run_label, weak_ref
from ._series import decimate_minmax, decimate_stride
from ._status_text import epoch_table_html, fmt_bytes, fmt_duration, where_parts
from .run_controls import STATES, RunControls

__all__ = ["RunRecord", "TrainingDashboard", "recorded_runs"]



def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _error_div(title: str, text: str) -> str:
    return (
        "<div style='color:var(--jp-error-color1,#d32f2f);border:1px solid "
        "var(--jp-error-color1,#d32f2f);padding:6px 10px;border-radius:4px;"
        f"white-space:pre-wrap'><b>{html.escape(title)}</b> {html.escape(text)}</div>"
    )


class TrainingDashboard(widgets.VBox):
    """Live curves, controls and evaluation for a :class:`tlwidgets.Trainer`.

    Parameters
    ----------
    trainer:
        The trainer to watch and control. The dashboard holds no training state of its own.
    label:
        Name of this run in legends and comparisons (default: the trainer's ``name``, which
        tells runs apart: architecture, pretrained or random weights, what is trained).
    compare:
        Earlier runs to overlay: trainers, :class:`RunRecord`\\ s, or labels of runs that ended in
        this session (see :func:`recorded_runs`). A run already recorded is not added twice.
    refresh_hz:
        How often the publisher pushes to the browser while training (0.2–20; 2–5 is sensible).
    max_points:
        Upper bound on points per plotted series (an int, at least 10); longer series are
        decimated.
    smoothing:
        Beta of the debiased moving average of the training loss. 0.9 follows a short
        workshop run closely; fastai's 0.98 lags by ~50 steps, longer than many such runs.
    evaluate:
        Compute the confusion matrix and the worst mistakes when a run ends.
    mistakes:
        How many of the worst mistakes the Evaluation tab shows.

    >>> dash = TrainingDashboard(trainer, compare=[scratch_trainer])   # doctest: +SKIP
    >>> dash                                                         # doctest: +SKIP
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
        self.refresh_hz = check_number("refresh_hz", refresh_hz, 0.2, 20, 2.5)
        self.max_points = check_int("max_points", max_points, 10, 1000)
        smoothing = check_number("smoothing", smoothing, 0.0, 1.0, 0.9, hi_open=True)
        self.mistakes = check_int("mistakes", mistakes, 0, 8)
        if not isinstance(evaluate, bool):
            raise ConfigError(f"evaluate must be True or False, got {evaluate!r}.")
        if label is not None and not isinstance(label, str):
            raise ConfigError(f"label must be a string such as 'pretrained, head only', "
                              f"got {label!r}.")
        if isinstance(compare, (str, RunRecord)) or hasattr(compare, "subscribe"):
            compare = [compare]  # one run given on its own
        self.trainer = trainer
        self.label = label or run_label(trainer)
        self.evaluate_on_end = evaluate
        self.evaluation: Any = None
        self.confusion_view: ConfusionMatrixView | None = None
        self._buf = RunBuffers(smoothing)
        self._sent = {"step": -1, "epoch": -1, "state": -1, "compare": -1}
        self._compare_version = 0
        # not "_compare": that name is the Widget method traitlets uses to compare values (repr)
        self._overlays: list[RunRecord] = []
        self._run_id = next_run_id()
        self._shown_run: int | None = None
        self._evaluated_run: int | None = None
        self._flush_lock = threading.Lock()
        self._lr_pushed = -math.inf
        self._lr_sent_n = 0

        self._build_widgets()
        self._load_existing()
        for item in compare:
            self.compare(item)

        self._publisher = Publisher(self, self.refresh_hz, on_final=TrainingDashboard._maybe_evaluate)
        # display=True: the dashboard shows the progress, so the trainer's console bar and
        # epoch lines (verbose="auto") stay out of the notebook
        if "display" in inspect.signature(trainer.subscribe).parameters:
            self._unsubscribe = trainer.subscribe(self._on_event, display=True)
        else:  # a trainer-like object without the flag
            self._unsubscribe = trainer.subscribe(self._on_event)
        self.controls.on_action(self._on_action)
        super().__init__(children=self._layout(), layout=widgets.Layout(width="100%"))
        self.add_class("tlw-dashboard")
        self._draw_legends()
        self.flush()

    @classmethod
    def follow(cls, run_dir: str | os.PathLike[str], *, compare: Iterable[Any] = (),
               poll_interval: float = 0.25, stale_after: float = 20.0,
               **kwargs: Any) -> TrainingDashboard:
        """A dashboard fed only by a run folder: one another process is writing (``tlw.launch``,
        ``python -m tlwidgets.run``, torchrun on a cluster, a Trainer in another kernel) or one
        that ended (yesterday's run). Pause / Resume / Stop reach the training process through
        the folder's ``control.json``; a heartbeat that stops for ``stale_after`` seconds shows
        "the training process stopped answering". ``compare`` takes run folders too.
        (:class:`tlwidgets.RunFollower` reads the folder; ``evaluate`` is off by default: the
        model is in the other process.)

        >>> tlw.TrainingDashboard.follow("runs/pets-ddp")                          # doctest: +SKIP
        >>> tlw.TrainingDashboard.follow("runs/today", compare=["runs/yesterday"])  # doctest: +SKIP
        """
        from ..training.run_follower import RunFollower

        runs = [RunFollower(r, live=False) if isinstance(r, (str, os.PathLike)) else r
                for r in compare]
        kwargs.setdefault("evaluate", False)
        follower = RunFollower(run_dir, live=False, poll_interval=poll_interval,
                               stale_after=stale_after)
        dash = cls(follower, compare=runs, **kwargs)
        follower.watch()  # after the dashboard loaded what is there and subscribed: no gap
        return dash

    # ----------------------------------------------------------------- building the view
    def _build_widgets(self) -> None:
        t = self.trainer
        self.controls = RunControls(state=str(getattr(t, "state", "idle")))
        self.inputs = RunInputs(t)
        self.epochs_input, self.lr_input = self.inputs.epochs_input, self.inputs.lr_input
        self.inputs_message = self.inputs.message
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

        # Legends are HTML rows under each figure: bqplot's sit inside the plot, on the data.
        self.charts = Charts()
        for name in ("raw_line", "smooth_line", "valid_line", "epoch_marks", "compare_loss",
                     "loss_figure", "loss_legend", "acc_line", "compare_acc", "acc_figure",
                     "acc_legend", "lr_line", "lr_figure", "lr_legend"):
            setattr(self, name, getattr(self.charts, name))

        self.epoch_table = widgets.HTML("<i>No epoch finished yet.</i>")
        self.compare_select = widgets.SelectMultiple(
            options=[], rows=5, description="Overlay", layout=widgets.Layout(width="520px"),
        )
        self.compare_select.observe(self._on_compare_select, "value")
        self._refresh_compare_options()

        self.eval_status = widgets.HTML("<i>The evaluation appears here when a run ends.</i>")
        self.eval_box = widgets.VBox([self.eval_status])
        self.tabs = widgets.Tab(children=[
            self.epoch_table,
            widgets.VBox([self.compare_select, widgets.HTML(
                "<small>Overlay earlier runs of this session (dashed), each once, under its "
                "label: pretrained vs from scratch, head only vs all layers. "
                "<code>TrainingDashboard(trainer, compare=[other_trainer])</code> does the same "
                "from code.</small>")]),
            self.eval_box,
        ])
        for i, title in enumerate(["Epochs", "Compare runs", "Evaluation"]):
            self.tabs.set_title(i, title)

    def _layout(self) -> list[widgets.Widget]:
        header = widgets.HBox(
            [self.controls, self.epochs_input, self.lr_input, self.log_toggle,
             self.inputs_message],
            layout=widgets.Layout(align_items="center", flex_flow="row wrap"),
        )
        status = widgets.HBox(
            [self.progress, self.progress_label],
            layout=widgets.Layout(align_items="center", flex_flow="row wrap"),
        )
        plots = widgets.GridBox(
            [widgets.VBox([self.loss_figure, self.loss_legend]),
             widgets.VBox([self.acc_figure, self.acc_legend])],
            layout=widgets.Layout(grid_template_columns="3fr 2fr", width="100%"),
        )
        lr = widgets.VBox([self.lr_figure, self.lr_legend])
        return [header, status, self.error_box, plots, lr, self.tabs]

    def _draw_legends(self) -> None:
        self.charts.draw_legends(self.label, list(self._overlays))

    def _load_existing(self) -> None:
        """Show what the trainer already has (created after or between runs, or resumed)."""
        self._buf.load(self.trainer)

    # ----------------------------------------------------------------- events (trainer thread)
    def _on_event(self, event: Any) -> None:
        """Called on the trainer's thread: append to buffers, never touch a widget."""
        changed, final = self._buf.ingest(event, on_restart=self._archive_locked)
        if changed:
            self._publisher.kick(final=final)

    def _archive_locked(self) -> RunRecord | None:
        """Record the current run's curves for comparisons (caller holds the buffer lock)."""
        b = self._buf
        if len(b.loss) == 0 and not b.epochs:
            return None
        x, _, smooth = b.loss.arrays()
        ep = b.epochs
        rec = register(RunRecord(
            label=self.label,
            step_x=x, smooth_loss=smooth,
            epoch_step=np.array([r["step"] for r in ep], dtype=float),
            epoch=np.array([r["epoch"] for r in ep], dtype=float),
            valid_loss=np.array([r["valid_loss"] for r in ep], dtype=float),
            accuracy=np.array([r["accuracy"] for r in ep], dtype=float),
            run_id=self._run_id, last_step=b.last_step, trainer_ref=weak_ref(self.trainer),
        ))
        self._run_id = next_run_id()
        return rec

    # ----------------------------------------------------------------- commands (kernel thread)
    def _on_action(self, action: str) -> None:
        t = self.trainer
        try:
            if action == "start":
                if not self._apply_inputs():
                    return  # the message beside the fields says why; nothing started
                t.start()
            elif action == "pause":
                t.pause()
            elif action == "resume":
                t.resume()
            elif action == "stop":
                t.stop()
        except Exception as err:  # noqa: BLE001 - shown in the dashboard; the kernel keeps going
            self._buf.set_error(f"{type(err).__name__}: {err}")
            self._publisher.kick()

    def _apply_inputs(self) -> bool:
        return self.inputs.apply(self.trainer)

    def _on_log_toggle(self, change: dict[str, Any]) -> None:
        self.charts.set_log(bool(change["new"]))

    # ----------------------------------------------------------------- comparisons
    def compare(self, run: Any) -> RunRecord:
        """Overlay another run: a trainer, a :class:`RunRecord`, or the label of an ended run.

        A run shows once however it is given (its dashboard's record, a trainer, a record).

        >>> dash.compare(scratch_trainer)   # doctest: +SKIP
        """
        if isinstance(run, RunRecord):
            rec = register(run)
        elif isinstance(run, str):
            found = find_label(run)
            if found is None:
                known = ", ".join(r.label for r in recorded_runs()) or "none yet"
                raise ConfigError(f"No ended run is labelled {run!r}. Runs in this session: {known}.")
            rec = found
        elif hasattr(run, "steps") and hasattr(run, "history"):
            rec = RunRecord.from_trainer(run, beta=self._buf.loss.beta)
        else:
            raise ConfigError(
                f"compare() takes a Trainer, a RunRecord or a run label, not {type(run).__name__}."
            )
        if rec.run_id in (self._run_id, self._shown_run):
            return rec  # the run this dashboard shows itself
        if all(r.run_id != rec.run_id for r in self._overlays):
            self._overlays.append(rec)
        self._refresh_compare_options()
        self._compare_version += 1
        self._publisher_kick()
        return rec

    def _publisher_kick(self) -> None:
        pub = getattr(self, "_publisher", None)
        if pub is not None:
            pub.kick()

    def _refresh_compare_options(self) -> None:
        shown = (self._run_id, self._shown_run)
        options = [(r.label, r.run_id) for r in recorded_runs() if r.run_id not in shown]
        chosen = tuple(r.run_id for r in self._overlays if any(o[1] == r.run_id for o in options))
        self.compare_select.unobserve(self._on_compare_select, "value")
        try:
            self.compare_select.options = options
            self.compare_select.value = chosen
        finally:
            self.compare_select.observe(self._on_compare_select, "value")

    def _on_compare_select(self, change: dict[str, Any]) -> None:
        ids = set(change["new"])
        self._overlays = [r for r in recorded_runs() if r.run_id in ids]
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
                    lrs = ragged(b.lrs)
                if epoch_changed:
                    epochs = [dict(r) for r in b.epochs]
                state, error, img_s = b.state, b.error, b.img_s
                where = (b.last_epoch, b.last_batch)
            compare_changed = self._compare_version != self._sent["compare"]

            if step_changed:
                self._push_steps(x, raw, smooth, lr_x, lrs, final=final)
            if epoch_changed:
                self._push_epochs(epochs)
            if state_changed:
                self._push_state(state, error)
            if compare_changed:
                self._push_compare()
            self._push_progress(img_s, state, where)
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
        self.charts.loss_range("raw", yr)
        self.charts.loss_range("smooth", ys)
        now = time.monotonic()
        if lrs.size and (final or now - self._lr_pushed >= 1.0):
            self._lr_pushed = now
            n = len(lr_x)
            self._lr_sent_n = n
            idx = decimate_stride(np.arange(n), np.arange(n), max(self.max_points // 4, 10))[0]
            ys, names = lrs[idx].T, self._group_names(lrs.shape[1])
            if len(ys) > 1 and np.allclose(ys, ys[:1], rtol=1e-6, atol=0, equal_nan=True):
                # groups on one schedule are one line: a legend of identical curves hides the plot
                ys, names = ys[:1], [f"all {len(names)} groups" if len(names) > 1 else names[0]]
            self.charts.lr_range(ys)
            with self.lr_line.hold_sync():
                self.lr_line.x = _f32(lr_x[idx])
                # one line goes as 1-D: bqplot squeezes a 1x1 array and then rejects it
                self.lr_line.y = _f32(ys[0] if len(ys) == 1 else ys)
                if list(self.lr_line.labels) != names:
                    self.lr_line.labels = names
            self.charts.draw_lr_legend(names)

    def _group_names(self, n: int) -> list[str]:
        # the current optimizer's groups; a run whose group count changed (fine_tune: the head,
        # then every layer group) keeps its earlier points as the last groups' (see _ragged)
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
        self.charts.loss_range("valid", vloss[ok])
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
        self.epoch_table.value = epoch_table_html(epochs)

    def _push_state(self, state: str, error: str | None) -> None:
        self.controls.state = state if state in STATES else "idle"
        editable = state not in ("running", "paused", "stopping")
        self.inputs.set_disabled(not editable)
        self.progress.bar_style = {"failed": "danger", "finished": "success",
                                   "stopped": "warning"}.get(state, "info")
        if error:
            self.error_box.value = _error_div("Training failed.", error)
            self.error_box.layout.display = "block"
        else:
            self.error_box.value = ""
            self.error_box.layout.display = "none"
        if state in TERMINAL:
            with self._buf.lock:
                self._archive_terminal()
            self._refresh_compare_options()

    def _archive_terminal(self) -> None:
        if not any(r.run_id == self._run_id for r in recorded_runs()):
            rec = self._archive_locked()
            if rec is not None:
                self._shown_run = rec.run_id  # still on screen: not offered as an overlay
                self._overlays = [r for r in self._overlays if r.run_id != rec.run_id]

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
        self.charts.loss_range("compare", self.compare_loss.y if recs else [])
        with self.compare_acc.hold_sync():
            accs = [r for r in recs if len(r.accuracy)]
            if accs:
                n = max(2, max(len(r.accuracy) for r in accs))
                self.compare_acc.x = _f32(np.stack([_pad_to(r.epoch, n) for r in accs]))
                self.compare_acc.y = _f32(np.stack([_pad_to(r.accuracy, n) for r in accs]))
                self.compare_acc.labels = [r.label for r in accs]
            else:
                self.compare_acc.x, self.compare_acc.y = [], []
        self._draw_legends()

    def _push_progress(self, img_s: float, state: str = "", where: tuple[int, int] = (0, 0)
                       ) -> None:
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
        x_epochs = self.charts.x_epochs
        if eps and x_epochs.max != float(eps):
            x_epochs.max = float(eps)
            # whole epochs only: d3's own ticks (1.5, 4.5, ...) printed as integers mislead
            every = next(k for k in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, int(eps))
                         if int(eps) / k <= 8)
            self.charts.x_axis_epochs.tick_values = np.arange(0, int(eps) + 1, every, dtype=float)
        parts = where_parts(state, ep, eps, spe, step, where)
        parts.append(f"elapsed {fmt_duration(p.get('elapsed'))}")
        parts.append(f"ETA {fmt_duration(p.get('eta'))}")
        rate = p.get("img_s", img_s)
        parts.append(f"{rate:,.0f} img/s" if rate is not None and math.isfinite(rate)
                     else "– img/s")
        parts.append(f"{p.get('device', '?')} · memory {fmt_bytes(p.get('memory'))}")
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
        children, self.confusion_view = evaluation_widgets(ev, self.trainer, self.mistakes)
        self.eval_box.children = children
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
