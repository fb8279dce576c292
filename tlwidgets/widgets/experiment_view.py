"""ExperimentView: transfer learning's four promises, run in the background and plotted live.

One widget runs :func:`tlwidgets.experiments.data_efficiency`, then
:func:`~tlwidgets.experiments.robustness` and the calibration of the models trained on the
largest subset, in a worker thread, and draws as results arrive: accuracy against images per
class (mean line, band from lowest to highest repeat), accuracy against training time or epochs,
the train/valid gap, accuracy per corruption (bars), and a reliability diagram; under each
chart a sentence read from the results (:mod:`tlwidgets.experiments.readings`).

Threading (docs/ARCHITECTURE.md): the worker never touches a widget. Its callbacks append to
buffers under a lock and wake a publisher thread, which flushes the buffers to the widgets at
most ``refresh_hz`` times a second, each mark inside ``hold_sync()``, and once more at the end.
Stop sets a ``threading.Event``: the running training stops after its current step and the
finished runs stay in the table and the charts.

>>> import tlwidgets as tlw
>>> arch = "tf_efficientnet_lite0"
>>> data = tlw.sample_data(model=arch, img_size=64, augment="none")        # doctest: +SKIP
>>> view = tlw.ExperimentView(data, arch, sizes=(1, 2, 4, 8, 16))          # doctest: +SKIP
>>> view                      # press Run, or view.start()                # doctest: +SKIP
>>> view.table                # the runs so far, a DataFrame               # doctest: +SKIP
"""

from __future__ import annotations

import html
import threading
from pathlib import Path
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np
import pandas as pd

from .. import experiments as ex
from ..errors import ConfigError, TrainerStateError
from ..experiments.readings import pct, recipe_label
from ._publisher import Publisher

__all__ = ["ExperimentView"]

_INIT_COLORS = {"pretrained": "#1f77b4", "scratch": "#ff7f0e"}
_OTHER_COLORS = ["#2ca02c", "#d62728", "#9467bd", "#8c564b"]
_DASHES = ["solid", "dashed", "dotted", "dash_dotted"]
_TERMINAL = ("finished", "stopped", "failed")


def _f32(a: Any) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _curve_label(init: str, recipe: str) -> str:
    return f"{init}, {recipe_label(recipe)}"


class ExperimentView(widgets.VBox):
    """Run the four experiments of transfer learning in the background and watch them.

    Arguments are those of :func:`tlwidgets.experiments.data_efficiency` (``data``,
    ``model_factory``, ``sizes``, ``inits``, ``recipes``, ``repeats``, ``epochs``,
    ``min_steps``, ``lr``, ``seed``, extra Trainer keyword arguments) and of
    :func:`~tlwidgets.experiments.robustness` (``corruptions``, ``severities``), checked here.
    ``robustness=False`` skips the robustness and calibration step, which scores the models
    trained on the largest size in the first repeat, one per init and recipe.

    Buttons: **Run**, **Stop** (the finished runs stay), **Save CSV** (the run table to the
    path beside it, the robustness table next to it). From code: :meth:`start`, :meth:`stop`,
    :meth:`wait`, :meth:`save`, and the results so far as :attr:`table`,
    :attr:`robustness_table`, :attr:`calibrations` and :attr:`readings`.

    >>> view = tlw.ExperimentView(data, "tf_efficientnet_lite0", sizes=(1, 4, 16))  # doctest: +SKIP
    >>> view.start(); view.wait(); view.table                                       # doctest: +SKIP
    """

    def __init__(self, data: Any, model_factory: Any = "tf_efficientnet_lite0",
                 sizes: Any = None, inits: Any = ex.INITS, recipes: Any = ("head", "all"),
                 repeats: int = 1, epochs: int = 8, min_steps: int = 16, lr: Any = None,
                 seed: int = 0, corruptions: Any = ex.DEFAULT_CORRUPTIONS,
                 severities: Any = (1, 3, 5), robustness: bool = True,
                 refresh_hz: float = 3.0, **trainer_kwargs: Any) -> None:
        from ..experiments.corruptions import check_corruptions, check_severities

        self._plan = ex.plan_runs(data, model_factory, sizes, inits, recipes, repeats, epochs,
                                  min_steps, lr)
        self._corruptions = check_corruptions(corruptions) if robustness else ()
        self._severities = tuple(s for s in check_severities(severities, allow_zero=False))
        if not isinstance(refresh_hz, (int, float)) or not 0 < refresh_hz <= 30:
            raise ConfigError(f"refresh_hz must be a number in (0, 30]; got {refresh_hz!r}.")
        self.data = data
        self._args = {"model_factory": model_factory,
                      "sizes": tuple(sorted(set(self._plan["size"]))),
                      "inits": tuple(dict.fromkeys(self._plan["init"])),
                      "recipes": tuple(dict.fromkeys(self._plan["recipe"])), "repeats": repeats,
                      "epochs": epochs, "min_steps": min_steps, "lr": lr, "seed": seed,
                      **trainer_kwargs}
        self._curves = [(i, r) for i in self._args["inits"] for r in self._args["recipes"]]
        self._keep_size = max(self._args["sizes"])
        n_models = len(self._curves) if self._corruptions else 0
        per_model = 1 + len(self._corruptions) * len(self._severities) + 1  # + calibration
        self._jobs_total = len(self._plan) + n_models * per_model

        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._reset_buffers()
        self._build()
        self._publisher = Publisher(self, refresh_hz, on_error=ExperimentView._update_failed,
                                    name="tlw-experiment-publisher")
        super().__init__([self._header, self._controls, self._progress_row, self.error_box,
                          self._legend, self._grid, self._table_box])
        self.add_class("tlw-experiment-view")

    # ------------------------------------------------------------------ buffers (any thread)
    def _reset_buffers(self) -> None:
        self._rows: list[dict[str, Any]] = []
        self._robust_rows: list[dict[str, Any]] = []
        self._calibrations: dict[str, ex.Calibration] = {}
        self._kept: dict[str, Any] = {}
        self._progress: dict[str, Any] = {}
        self._jobs_done = 0
        self._state = "idle"
        self._error: str | None = None
        self._version = 0

    def _changed(self, **updates: Any) -> None:
        with self._lock:
            for k, v in updates.items():
                setattr(self, k, v)
            self._version += 1
        self._publisher.kick(final=self._state in _TERMINAL)

    def _on_result(self, result: ex.RunResult) -> None:
        row = result.row
        with self._lock:
            self._rows.append(row)
            self._jobs_done += 1
            keep = row["size"] == self._keep_size and row["repeat"] == 0
            if keep and row["status"] == "finished":
                self._kept[_curve_label(row["init"], row["recipe"])] = result.trainer
            self._version += 1
        self._publisher.kick()

    def _on_progress(self, info: dict[str, Any]) -> None:
        self._changed(_progress=dict(info))

    def _on_robust_row(self, row: dict[str, Any]) -> None:
        with self._lock:
            self._robust_rows.append(row)
            self._jobs_done += 1
            self._version += 1
        self._publisher.kick()

    # ------------------------------------------------------------------ results (read-only)
    @property
    def state(self) -> str:
        """``idle``, ``running``, ``stopping``, ``finished``, ``stopped`` or ``failed``."""
        return self._state

    @property
    def table(self) -> pd.DataFrame:
        """The data-efficiency runs so far (columns of ``tlw.experiments.COLUMNS``)."""
        with self._lock:
            return ex.table_from_rows(list(self._rows))

    @property
    def robustness_table(self) -> pd.DataFrame:
        """The robustness rows so far (columns of ``tlw.experiments.ROBUSTNESS_COLUMNS``)."""
        with self._lock:
            rows = list(self._robust_rows)
        return pd.DataFrame(rows, columns=list(ex.ROBUSTNESS_COLUMNS))

    @property
    def calibrations(self) -> dict[str, ex.Calibration]:
        """Calibration of each kept model (``"pretrained, head only"`` -> Calibration)."""
        with self._lock:
            return dict(self._calibrations)

    @property
    def trainers(self) -> dict[str, Any]:
        """The trainers of the models trained on the largest size in the first repeat."""
        with self._lock:
            return dict(self._kept)

    @property
    def readings(self) -> dict[str, str]:
        """The sentence under each chart, as shown now."""
        return {name: html.unescape(_strip_tags(w.value))
                for name, w in self._reading_widgets.items()}

    # ------------------------------------------------------------------ commands
    def start(self) -> ExperimentView:
        """Start the experiment in a background thread (Run does this); returns at once."""
        if self._thread is not None and self._thread.is_alive():
            raise TrainerStateError(
                f"the experiment is {self._state}; press Stop (or view.stop()) and wait for it "
                "to end before running it again."
            )
        with self._lock:
            self._reset_buffers()
            self._state = "running"
        self._stop_event = threading.Event()
        self._reset_marks()
        self._placeholder_readings()
        self._set_buttons()
        self.error_box.layout.display = "none"
        self._thread = threading.Thread(target=self._work, name="tlw-experiment", daemon=True)
        self._thread.start()
        self._publisher.kick()
        return self

    def stop(self) -> None:
        """Stop after the current training step; the finished runs are kept."""
        if self._state == "running":
            self._stop_event.set()
            self._changed(_state="stopping")
            self._set_buttons()

    def wait(self, timeout: float | None = None) -> str:
        """Block until the experiment ends (or ``timeout`` seconds pass); returns the state."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        if thread is not None and not thread.is_alive():
            self.flush(final=True)
        return self._state

    def save(self, path: str | Path | None = None) -> list[Path]:
        """Write the run table to ``path`` (default: the path box) as CSV, and the robustness
        table beside it (``<stem>-robustness.csv``) when there is one; returns the paths."""
        path = Path(path if path is not None else self.path_box.value).expanduser()
        if path.suffix.lower() != ".csv":
            path = path.with_name(path.name + ".csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        written = [path]
        self.table.to_csv(path, index=False)
        robust = self.robustness_table
        if len(robust):
            other = path.with_name(path.stem + "-robustness.csv")
            robust.to_csv(other, index=False)
            written.append(other)
        return written

    def close(self) -> None:
        """Stop a running experiment and the publisher thread, and close the widgets."""
        # (also called by __del__ of a view whose __init__ refused its arguments)
        stop, publisher = getattr(self, "_stop_event", None), getattr(self, "_publisher", None)
        if stop is not None:
            stop.set()
        if publisher is not None:
            publisher.close()
        super().close()

    # ------------------------------------------------------------------ the worker thread
    def _work(self) -> None:
        state, error = "finished", None
        try:
            ex.data_efficiency(self.data, stop=self._stop_event, on_result=self._on_result,
                               on_progress=self._on_progress, **self._args)
            kept = self.trainers
            if not self._stop_event.is_set() and self._corruptions and kept:
                self._changed(_progress={"phase": "robustness"})
                ex.robustness(kept, self.data, self._corruptions, self._severities,
                              seed=self._args["seed"], stop=self._stop_event,
                              on_result=self._on_robust_row)
                for label, trainer in kept.items():
                    if self._stop_event.is_set():
                        break
                    cal = ex.calibration(trainer.evaluate())
                    with self._lock:
                        self._calibrations[label] = cal
                        self._jobs_done += 1
            if self._stop_event.is_set():
                state = "stopped"
        except Exception as err:
            state, error = "failed", f"{type(err).__name__}: {err}"
        self._changed(_state=state, _error=error)

    # ------------------------------------------------------------------ building the widgets
    def _build(self) -> None:
        n = len(self._plan)
        self._header = widgets.HTML(
            "<b>Transfer learning, tested</b>: the same network from pretrained weights and from "
            f"scratch, trained on {', '.join(map(str, self._args['sizes']))} images per class "
            f"({n} runs), each scored on the same {len(self.data.valid_items)} validation "
            "images; then the models of the largest size on corrupted images."
        )
        self.run_button = widgets.Button(description="Run", icon="play", button_style="primary",
                                         tooltip="Start the experiment in the background")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True,
                                          tooltip="Stop after the current step; finished runs stay")
        self.save_button = widgets.Button(description="Save CSV", icon="save",
                                          tooltip="Write the table(s) to the path on the right")
        self.path_box = widgets.Text("experiment.csv", layout=widgets.Layout(width="220px"))
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.save_button.on_click(self._on_save)
        self.save_note = widgets.HTML("")
        self._controls = widgets.HBox([self.run_button, self.stop_button, self.save_button,
                                       self.path_box, self.save_note])
        self.progress = widgets.IntProgress(value=0, min=0, max=self._jobs_total,
                                            layout=widgets.Layout(width="240px"))
        self.status = widgets.HTML("<span data-state='idle'>Press <b>Run</b>.</span>")
        self.status.add_class("tlw-experiment-status")
        self._progress_row = widgets.HBox([self.progress, self.status])
        self.error_box = widgets.HTML(layout=widgets.Layout(display="none"))

        fig_layout = widgets.Layout(width="100%", height="280px", min_width="300px")
        margin = {"top": 40, "bottom": 45, "left": 60, "right": 15}
        sizes = self._args["sizes"]

        # less data: accuracy vs images per class, mean line + band per init x recipe
        self._x_size = bq.LogScale(min=float(min(sizes)) * 0.8, max=float(max(sizes)) * 1.25)
        self._y_acc = bq.LinearScale(min=0.0, max=1.0)
        self._bands, self._lines, self._gap_lines, self._compute_lines = {}, {}, {}, {}
        self._x_compute = bq.LogScale()
        self._y_gap = bq.LinearScale(min=-0.1, max=1.0)
        for k, (init, recipe) in enumerate(self._curves):
            color = _INIT_COLORS.get(init, _OTHER_COLORS[k % len(_OTHER_COLORS)])
            dash = _DASHES[self._args["recipes"].index(recipe) % len(_DASHES)]
            label = _curve_label(init, recipe)
            style = {"colors": [color], "line_style": dash, "labels": [label],
                     "marker": "circle", "marker_size": 28,
                     "stroke_width": 2}
            self._bands[label] = bq.Lines(
                x=np.zeros(0), y=np.zeros((2, 0)), scales={"x": self._x_size, "y": self._y_acc},
                fill="between", fill_colors=[color], fill_opacities=[0.18], stroke_width=0,
                colors=[color], opacities=[0.0])
            self._lines[label] = bq.Lines(x=[], y=[], scales={"x": self._x_size, "y": self._y_acc},
                                          **style)
            self._compute_lines[label] = bq.Lines(
                x=[], y=[], scales={"x": self._x_compute, "y": self._y_acc}, **style)
            self._gap_lines[label] = bq.Lines(
                x=[], y=[], scales={"x": self._x_size, "y": self._y_gap}, **style)
        chance = 1.0 / len(self.data.classes)
        self._chance = bq.Lines(x=[float(min(sizes)) * 0.8, float(max(sizes)) * 1.25],
                                y=[chance, chance], scales={"x": self._x_size, "y": self._y_acc},
                                colors=["#999999"], line_style="dashed", stroke_width=1,
                                labels=["chance"])
        size_axis = bq.Axis(scale=self._x_size, label="training images per class",
                            tick_values=np.asarray(sizes, dtype=float), tick_format="d")
        acc_axis = bq.Axis(scale=self._y_acc, side="left", label="valid accuracy",
                           tick_format=".0%", label_offset="45px")
        self.data_figure = bq.Figure(
            marks=[self._chance, *self._bands.values(), *self._lines.values()],
            axes=[size_axis, acc_axis], title="Less data",
            animation_duration=0, fig_margin=margin, layout=fig_layout)

        self.compute_x = widgets.ToggleButtons(options=["seconds", "epochs"], value="seconds",
                                               style={"button_width": "84px"})
        self.compute_x.observe(self._on_compute_x, "value")
        self._compute_axis = bq.Axis(scale=self._x_compute, label="training wall seconds",
                                     tick_format=".2g")
        self.compute_figure = bq.Figure(
            marks=list(self._compute_lines.values()),
            axes=[self._compute_axis, bq.Axis(scale=self._y_acc, side="left", tick_format=".0%",
                                              label="valid accuracy", label_offset="45px")],
            title="Less compute", animation_duration=0,
            fig_margin=margin, layout=fig_layout)

        self.gap_figure = bq.Figure(
            marks=list(self._gap_lines.values()),
            axes=[bq.Axis(scale=self._x_size, label="training images per class",
                          tick_values=np.asarray(sizes, dtype=float), tick_format="d"),
                  bq.Axis(scale=self._y_gap, side="left", tick_format=".0%",
                          label="train − valid accuracy", label_offset="45px")],
            title="Generalisation gap", animation_duration=0,
            fig_margin=margin, layout=fig_layout)

        self._x_corr = bq.OrdinalScale()
        labels = [_curve_label(i, r) for i, r in self._curves]
        colors = [_INIT_COLORS.get(i, _OTHER_COLORS[k % len(_OTHER_COLORS)])
                  for k, (i, _) in enumerate(self._curves)]
        self._bars = bq.Bars(x=np.array([], dtype=str), y=np.zeros((len(labels), 0)),
                             type="grouped",
                             scales={"x": self._x_corr, "y": self._y_acc}, colors=colors,
                             labels=labels, padding=0.2,
                             opacities=[0.55 if r != self._args["recipes"][0] else 1.0
                                        for _, r in self._curves])
        self.robustness_figure = bq.Figure(
            marks=[self._bars],
            axes=[bq.Axis(scale=self._x_corr, label="corruption (mean over severities "
                          f"{', '.join(map(str, self._severities))})"),
                  bq.Axis(scale=self._y_acc, side="left", tick_format=".0%",
                          label="valid accuracy", label_offset="45px")],
            title="Robustness", animation_duration=0,
            fig_margin=margin, layout=fig_layout)

        self._x_conf = bq.LinearScale(min=0.0, max=1.0)
        self._diag = bq.Lines(x=[0.0, 1.0], y=[0.0, 1.0],
                              scales={"x": self._x_conf, "y": self._y_acc}, colors=["#999999"],
                              line_style="dashed", stroke_width=1,
                              labels=["perfectly calibrated"])
        self._rel_lines = {
            _curve_label(i, r): bq.Lines(
                x=[], y=[], scales={"x": self._x_conf, "y": self._y_acc}, colors=[c],
                line_style=_DASHES[self._args["recipes"].index(r) % len(_DASHES)],
                marker="circle", marker_size=24, labels=[_curve_label(i, r)])
            for (i, r), c in zip(self._curves, colors, strict=True)
        }
        self.calibration_figure = bq.Figure(
            marks=[self._diag, *self._rel_lines.values()],
            axes=[bq.Axis(scale=self._x_conf, label="confidence (top probability)",
                          tick_format=".0%"),
                  bq.Axis(scale=self._y_acc, side="left", tick_format=".0%",
                          label="accuracy", label_offset="45px")],
            title="Calibration (reliability)", animation_duration=0,
            fig_margin=margin, layout=fig_layout)

        # one legend for every chart (bqplot's legends sit on top of the points)
        self._legend = widgets.HTML(_legend_html(
            [(label, colors[k], _DASHES[self._args["recipes"].index(r) % len(_DASHES)])
             for k, (label, (_, r)) in enumerate(zip(labels, self._curves, strict=True))]
            + [("chance / perfect calibration", "#999999", "dashed")]))
        self._legend.add_class("tlw-experiment-legend")
        self._reading_widgets = {name: widgets.HTML("") for name in
                                 ("data", "compute", "generalization", "robustness", "calibration")}
        for w in self._reading_widgets.values():
            w.add_class("tlw-experiment-reading")
        self._placeholder_readings()
        cells = [
            widgets.VBox([self.data_figure, self._reading_widgets["data"]]),
            widgets.VBox([self.compute_figure, self.compute_x, self._reading_widgets["compute"]]),
            widgets.VBox([self.gap_figure, self._reading_widgets["generalization"]]),
            widgets.VBox([self.robustness_figure, self._reading_widgets["robustness"]]),
            widgets.VBox([self.calibration_figure, self._reading_widgets["calibration"]]),
        ]
        self._grid = widgets.GridBox(cells, layout=widgets.Layout(
            grid_template_columns="repeat(auto-fill, minmax(420px, 1fr))", grid_gap="8px"))
        self.table_html = widgets.HTML("<i>No finished run yet.</i>")
        self.table_html.add_class("tlw-experiment-table")
        self._table_box = widgets.Accordion([self.table_html], titles=("Table of runs",))
        self._table_box.selected_index = 0

    def _reset_marks(self) -> None:
        with self._flush_lock:
            for label in self._lines:
                for mark in (self._lines[label], self._compute_lines[label], self._gap_lines[label],
                             self._rel_lines[label]):
                    with mark.hold_sync():
                        mark.x, mark.y = _f32([]), _f32([])
                with self._bands[label].hold_sync():
                    self._bands[label].x = _f32([])
                    self._bands[label].y = np.zeros((2, 0), np.float32)
            self._flushed = -1

    def _on_compute_x(self, _: Any) -> None:
        with self._flush_lock:
            self._flushed = -1  # same results, other axis: redraw
        self.flush()

    def _placeholder_readings(self) -> None:
        later = (f"Scored after the training runs, on the models trained with {self._keep_size} "
                 "images per class." if self._corruptions else "Not run (robustness=False).")
        texts = {"data": "The accuracy of each size appears as its runs finish.",
                 "compute": "Accuracy against the training time of the same runs.",
                 "generalization": "Training minus validation accuracy of the same runs.",
                 "robustness": later, "calibration": later}
        for name, text in texts.items():
            self._reading_widgets[name].value = _reading_html(text, italic=True)

    def _set_buttons(self) -> None:
        running = self._state in ("running", "stopping")
        self.run_button.disabled = running
        self.stop_button.disabled = self._state != "running"

    def _on_save(self, _: Any) -> None:
        try:
            paths = self.save()
            self.save_note.value = ("Saved " + ", ".join(html.escape(str(p)) for p in paths)
                                    + ".")
        except Exception as err:  # a bad path is shown, not raised into the void
            self._show_error(f"Could not save: {err}")

    def _update_failed(self, err: Exception) -> None:
        self._show_error(f"Update failed: {err!r}")

    def _show_error(self, message: str) -> None:
        self.error_box.value = (f"<div style='color:#b00020;white-space:pre-wrap'>"
                                f"{html.escape(message)}</div>")
        self.error_box.layout.display = "block"

    # ------------------------------------------------------------------ flushing (publisher)
    _flushed = -1

    def flush(self, final: bool = False) -> None:
        """Push the buffered results to the widgets (the publisher calls this; safe anywhere)."""
        with self._flush_lock:
            with self._lock:
                version, state, error = self._version, self._state, self._error
                rows, robust = list(self._rows), list(self._robust_rows)
                cals, progress = dict(self._calibrations), dict(self._progress)
                done = self._jobs_done
            self._flush_status(state, progress, done, len(rows), error)
            if version == self._flushed and not final:
                return
            self._flushed = version
            table = ex.table_from_rows(rows)
            if len(table):
                self._flush_curves(table)
                self.table_html.value = _table_html(table)
            if robust:
                self._flush_robustness(pd.DataFrame(robust, columns=list(ex.ROBUSTNESS_COLUMNS)))
            if cals:
                self._flush_calibration(cals)
            if final or state in _TERMINAL:
                self._set_buttons()

    def _flush_status(self, state: str, progress: dict[str, Any], done: int, runs: int,
                      error: str | None) -> None:
        self.progress.value = min(done, self._jobs_total)
        if state in ("running", "stopping") and progress.get("phase") == "robustness":
            text = f"Robustness and calibration of the {len(self._curves)} largest-size models…"
        elif state in ("running", "stopping") and progress:
            text = (f"Run {progress['done'] + 1}/{progress['total']}: {progress['size']} per "
                    f"class, {html.escape(_curve_label(progress['init'], progress['recipe']))}, "
                    f"repeat {progress['repeat'] + 1}, "
                    f"epoch {progress['epoch']}/{progress['epochs']}")
        elif state == "running":
            text = "Starting…"
        else:
            text = {"idle": "Press <b>Run</b>.", "finished": f"Finished: {runs} runs.",
                    "stopped": f"Stopped: {runs} finished runs kept.",
                    "failed": "Failed (see below)."}.get(state, "")
        if state == "stopping":
            text = "Stopping after the current step… " + text
        self.status.value = f"<span data-state='{state}'>{text}</span>"
        if error:
            self._show_error(error)

    def _flush_curves(self, table: pd.DataFrame) -> None:
        acc = ex.summarize(table)
        gap = ex.summarize(table, "gap")
        comp = ex.compute_curve(table, x=self.compute_x.value)
        for init, recipe in self._curves:
            label = _curve_label(init, recipe)
            a = acc[(acc["init"] == init) & (acc["recipe"] == recipe)]
            g = gap[(gap["init"] == init) & (gap["recipe"] == recipe)]
            c = comp[(comp["init"] == init) & (comp["recipe"] == recipe)]
            with self._lines[label].hold_sync():
                self._lines[label].x, self._lines[label].y = _f32(a["size"]), _f32(a["mean"])
            with self._bands[label].hold_sync():
                self._bands[label].x = _f32(a["size"])
                self._bands[label].y = _f32(np.vstack([a["low"], a["high"]]).reshape(2, -1))
            with self._gap_lines[label].hold_sync():
                self._gap_lines[label].x = _f32(g["size"])
                self._gap_lines[label].y = _f32(g["mean"])
            x = self.compute_x.value
            with self._compute_lines[label].hold_sync():
                self._compute_lines[label].x = _f32(np.maximum(c[x], 1e-3))
                self._compute_lines[label].y = _f32(c["accuracy"])
        with self._compute_axis.hold_sync():
            self._compute_axis.label = ("training wall seconds"
                                        if self.compute_x.value == "seconds" else "epochs")
            ticks = _log_ticks(comp[self.compute_x.value])
            self._compute_axis.tick_values = ticks
        vals = comp[self.compute_x.value].to_numpy(dtype=float)
        vals = vals[np.isfinite(vals) & (vals > 0)]
        if len(vals):  # pad the range so the first and last points are not on the axes
            with self._x_compute.hold_sync():
                self._x_compute.min = float(min(vals.min(), *ticks[:1]) / 1.3)
                self._x_compute.max = float(max(vals.max(), *ticks[-1:]) * 1.3)
        r = self._reading_widgets
        r["data"].value = _reading_html(ex.read_data_efficiency(table))
        r["compute"].value = _reading_html(ex.read_compute(table, x=self.compute_x.value))
        r["generalization"].value = _reading_html(ex.read_generalization(table))

    def _flush_robustness(self, robust: pd.DataFrame) -> None:
        cats = ["clean", *[c for c in self._corruptions if c in set(robust["corruption"])]]
        means = robust.assign(corruption=robust["corruption"].replace("none", "clean")) \
            .groupby(["model", "corruption"])["accuracy"].mean()
        y = np.array([[means.get((_curve_label(i, r), c), np.nan) for c in cats]
                      for i, r in self._curves], dtype=np.float32)
        with self._bars.hold_sync():
            self._bars.x, self._bars.y = np.asarray(cats), np.nan_to_num(y, nan=0.0)
        self._reading_widgets["robustness"].value = _reading_html(ex.read_robustness(robust))

    def _flush_calibration(self, cals: dict[str, ex.Calibration]) -> None:
        for label, cal in cals.items():
            bins = cal.bins[cal.bins["count"] > 0]
            mark = self._rel_lines.get(label)
            if mark is not None:
                with mark.hold_sync():
                    mark.x, mark.y = _f32(bins["confidence"]), _f32(bins["accuracy"])
        self._reading_widgets["calibration"].value = _reading_html(ex.read_calibration(cals))


def _log_ticks(values: Any) -> np.ndarray:
    """1-2-5 ticks over the range of ``values`` (d3's log ticks crowd a narrow range)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if not len(v):
        return np.zeros(0)
    lo, hi = v.min() / 1.3, v.max() * 1.3
    nice = np.array([m * 10.0 ** e for e in range(-3, 6) for m in (1, 2, 5)])
    ticks = nice[(nice >= lo) & (nice <= hi)]
    if len(ticks) > 7:
        ticks = ticks[::2]
    return ticks if len(ticks) >= 2 else np.unique(np.round([v.min(), v.max()], 3))


def _reading_html(text: str, italic: bool = False) -> str:
    body = f"<i>{html.escape(text)}</i>" if italic else html.escape(text)
    return f"<div style='line-height:1.45;padding:2px 4px 10px 4px'>{body}</div>"


def _legend_html(entries: list[tuple[str, str, str]]) -> str:
    dash = {"solid": "", "dashed": "6,4", "dotted": "2,3", "dash_dotted": "6,3,2,3"}
    items = []
    for label, color, style in entries:
        items.append(
            f"<span style='margin-right:18px;white-space:nowrap'><svg width='28' height='10'>"
            f"<line x1='1' y1='5' x2='27' y2='5' stroke='{color}' stroke-width='2.5' "
            f"stroke-dasharray='{dash.get(style, '')}'/></svg> {html.escape(label)}</span>")
    return "<div>" + "".join(items) + "</div>"


def _strip_tags(text: str) -> str:
    import re

    return re.sub(r"<[^>]+>", "", text)


def _table_html(table: pd.DataFrame) -> str:
    show = table[["size", "init", "recipe", "repeat", "accuracy", "train_accuracy", "gap", "ece",
                  "seconds", "epochs", "status"]].copy()
    for col in ("accuracy", "train_accuracy"):
        show[col] = show[col].map(pct)
    show["gap"] = show["gap"].map(lambda v: f"{100 * v:.0f} pts" if np.isfinite(v) else "–")
    show["ece"] = show["ece"].map(lambda v: f"{v:.3f}")
    show["seconds"] = show["seconds"].map(lambda v: f"{v:.1f}")
    show["recipe"] = show["recipe"].map(recipe_label)
    return show.to_html(index=False, border=0, classes="tlw-experiment-runs")
