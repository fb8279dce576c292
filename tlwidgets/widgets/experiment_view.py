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

import ipywidgets as widgets
import numpy as np
import pandas as pd

from .. import experiments as ex
from ..errors import ConfigError, TrainerStateError
from ..experiments.readings import pct, recipe_label
from ._experiment_charts import ExperimentCharts, curve_label
from ._publisher import Publisher

__all__ = ["ExperimentView"]

_TERMINAL = ("finished", "stopped", "failed")


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
                          self.charts.legend, self.charts.grid, self._table_box])
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
                self._kept[curve_label(row["init"], row["recipe"])] = result.trainer
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
        return self.charts.readings

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
        except Exception as err:  # noqa: BLE001 - any failure ends the run as "failed", shown
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

        self.charts = ExperimentCharts(self._args["sizes"], self._curves, self._args["recipes"],
                                       self._severities, len(self.data.classes))
        self.compute_x = self.charts.compute_x
        self.compute_x.observe(self._on_compute_x, "value")
        self._placeholder_readings()
        self.table_html = widgets.HTML("<i>No finished run yet.</i>")
        self.table_html.add_class("tlw-experiment-table")
        self._table_box = widgets.Accordion([self.table_html], titles=("Table of runs",))
        self._table_box.selected_index = 0

    def _reset_marks(self) -> None:
        with self._flush_lock:
            self.charts.reset()
            self._flushed = -1

    def _on_compute_x(self, _: Any) -> None:
        with self._flush_lock:
            self._flushed = -1  # same results, other axis: redraw
        self.flush()

    def _placeholder_readings(self) -> None:
        self.charts.placeholders(
            f"Scored after the training runs, on the models trained with {self._keep_size} "
            "images per class." if self._corruptions else "Not run (robustness=False).")

    def _set_buttons(self) -> None:
        running = self._state in ("running", "stopping")
        self.run_button.disabled = running
        self.stop_button.disabled = self._state != "running"

    def _on_save(self, _: Any) -> None:
        try:
            paths = self.save()
            self.save_note.value = ("Saved " + ", ".join(html.escape(str(p)) for p in paths)
                                    + ".")
        except Exception as err:  # noqa: BLE001 - a bad path is shown, not raised into the void
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
                self.charts.show_curves(table)
                self.table_html.value = _table_html(table)
            if robust:
                self.charts.show_robustness(
                    pd.DataFrame(robust, columns=list(ex.ROBUSTNESS_COLUMNS)), self._corruptions)
            if cals:
                self.charts.show_calibration(cals)
            if final or state in _TERMINAL:
                self._set_buttons()

    def _flush_status(self, state: str, progress: dict[str, Any], done: int, runs: int,
                      error: str | None) -> None:
        self.progress.value = min(done, self._jobs_total)
        if state in ("running", "stopping") and progress.get("phase") == "robustness":
            text = f"Robustness and calibration of the {len(self._curves)} largest-size models…"
        elif state in ("running", "stopping") and progress:
            text = (f"Run {progress['done'] + 1}/{progress['total']}: {progress['size']} per "
                    f"class, {html.escape(curve_label(progress['init'], progress['recipe']))}, "
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
