"""The five charts of :class:`~tlwidgets.widgets.experiment_view.ExperimentView`, their legend
and the sentence read under each.

:class:`ExperimentCharts` builds the bqplot figures once (less data, less compute, the
generalisation gap, robustness bars, a reliability diagram) and redraws them from the
experiment's tables: :meth:`show_curves` from the run table, :meth:`show_robustness` from the
robustness rows, :meth:`show_calibration` from the calibrations. It holds no results of its own:
the view owns the buffers and calls these from its publisher thread, under its flush lock.

>>> charts = ExperimentCharts(sizes=(1, 4), curves=[("pretrained", "head")],   # doctest: +SKIP
...                           recipes=("head",), severities=(1, 3), n_classes=4)
>>> charts.show_curves(table)                                                  # doctest: +SKIP
"""

from __future__ import annotations

import html
import re
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np
import pandas as pd

from .. import experiments as ex
from ..experiments.readings import recipe_label

__all__ = ["ExperimentCharts", "curve_label"]

INIT_COLORS = {"pretrained": "#1f77b4", "scratch": "#ff7f0e"}
OTHER_COLORS = ["#2ca02c", "#d62728", "#9467bd", "#8c564b"]
DASHES = ["solid", "dashed", "dotted", "dash_dotted"]
READINGS = ("data", "compute", "generalization", "robustness", "calibration")


def curve_label(init: str, recipe: str) -> str:
    """``"pretrained, head only"``: the label of one init x recipe curve."""
    return f"{init}, {recipe_label(recipe)}"


def _f32(a: Any) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


class ExperimentCharts:
    """The figures, legend and readings of one experiment (see the module docstring).

    Public marks, for tests and for a user who wants to restyle them: :attr:`lines`,
    :attr:`bands`, :attr:`compute_lines`, :attr:`gap_lines`, :attr:`reliability_lines` (label ->
    ``bq.Lines``), :attr:`bars` and :attr:`compute_axis`; the widgets: :attr:`grid` (the five
    charts with their readings), :attr:`legend`, :attr:`compute_x` (seconds or epochs) and
    :attr:`reading_widgets`.
    """

    def __init__(self, sizes: tuple[int, ...], curves: list[tuple[str, str]],
                 recipes: tuple[str, ...], severities: tuple[int, ...], n_classes: int) -> None:
        self.curves = curves
        self.recipes = recipes
        fig_layout = widgets.Layout(width="100%", height="280px", min_width="300px")
        margin = {"top": 40, "bottom": 45, "left": 60, "right": 15}

        # less data: accuracy vs images per class, mean line + band per init x recipe
        self._x_size = bq.LogScale(min=float(min(sizes)) * 0.8, max=float(max(sizes)) * 1.25)
        self._y_acc = bq.LinearScale(min=0.0, max=1.0)
        self.bands: dict[str, bq.Lines] = {}
        self.lines: dict[str, bq.Lines] = {}
        self.gap_lines: dict[str, bq.Lines] = {}
        self.compute_lines: dict[str, bq.Lines] = {}
        self._x_compute = bq.LogScale()
        self._y_gap = bq.LinearScale(min=-0.1, max=1.0)
        colors = [self._color(k, init) for k, (init, _) in enumerate(curves)]
        for (init, recipe), color in zip(curves, colors, strict=True):
            label = curve_label(init, recipe)
            style = {"colors": [color], "line_style": self._dash(recipe), "labels": [label],
                     "marker": "circle", "marker_size": 28, "stroke_width": 2}
            self.bands[label] = bq.Lines(
                x=np.zeros(0), y=np.zeros((2, 0)), scales={"x": self._x_size, "y": self._y_acc},
                fill="between", fill_colors=[color], fill_opacities=[0.18], stroke_width=0,
                colors=[color], opacities=[0.0])
            self.lines[label] = bq.Lines(x=[], y=[], scales={"x": self._x_size, "y": self._y_acc},
                                         **style)
            self.compute_lines[label] = bq.Lines(
                x=[], y=[], scales={"x": self._x_compute, "y": self._y_acc}, **style)
            self.gap_lines[label] = bq.Lines(
                x=[], y=[], scales={"x": self._x_size, "y": self._y_gap}, **style)
        chance = 1.0 / n_classes
        chance_line = bq.Lines(x=[float(min(sizes)) * 0.8, float(max(sizes)) * 1.25],
                               y=[chance, chance], scales={"x": self._x_size, "y": self._y_acc},
                               colors=["#999999"], line_style="dashed", stroke_width=1,
                               labels=["chance"])
        size_ticks = np.asarray(sizes, dtype=float)
        self.data_figure = bq.Figure(
            marks=[chance_line, *self.bands.values(), *self.lines.values()],
            axes=[bq.Axis(scale=self._x_size, label="training images per class",
                          tick_values=size_ticks, tick_format="d"), self._acc_axis()],
            title="Less data", animation_duration=0, fig_margin=margin, layout=fig_layout)

        self.compute_x = widgets.ToggleButtons(options=["seconds", "epochs"], value="seconds",
                                               style={"button_width": "84px"})
        self.compute_axis = bq.Axis(scale=self._x_compute, label="training wall seconds",
                                    tick_format=".2g")
        self.compute_figure = bq.Figure(
            marks=list(self.compute_lines.values()),
            axes=[self.compute_axis, self._acc_axis()],
            title="Less compute", animation_duration=0, fig_margin=margin, layout=fig_layout)

        self.gap_figure = bq.Figure(
            marks=list(self.gap_lines.values()),
            axes=[bq.Axis(scale=self._x_size, label="training images per class",
                          tick_values=size_ticks, tick_format="d"),
                  bq.Axis(scale=self._y_gap, side="left", tick_format=".0%",
                          label="train − valid accuracy", label_offset="45px")],
            title="Generalisation gap", animation_duration=0,
            fig_margin=margin, layout=fig_layout)

        labels = [curve_label(i, r) for i, r in curves]
        self.bars = bq.Bars(x=np.array([], dtype=str), y=np.zeros((len(labels), 0)),
                            type="grouped", scales={"x": bq.OrdinalScale(), "y": self._y_acc},
                            colors=colors, labels=labels, padding=0.2,
                            opacities=[0.55 if r != recipes[0] else 1.0 for _, r in curves])
        self.robustness_figure = bq.Figure(
            marks=[self.bars],
            axes=[bq.Axis(scale=self.bars.scales["x"], label="corruption (mean over severities "
                          f"{', '.join(map(str, severities))})"), self._acc_axis()],
            title="Robustness", animation_duration=0, fig_margin=margin, layout=fig_layout)

        x_conf = bq.LinearScale(min=0.0, max=1.0)
        diagonal = bq.Lines(x=[0.0, 1.0], y=[0.0, 1.0], scales={"x": x_conf, "y": self._y_acc},
                            colors=["#999999"], line_style="dashed", stroke_width=1,
                            labels=["perfectly calibrated"])
        self.reliability_lines = {
            curve_label(i, r): bq.Lines(
                x=[], y=[], scales={"x": x_conf, "y": self._y_acc}, colors=[c],
                line_style=self._dash(r), marker="circle", marker_size=24,
                labels=[curve_label(i, r)])
            for (i, r), c in zip(curves, colors, strict=True)
        }
        self.calibration_figure = bq.Figure(
            marks=[diagonal, *self.reliability_lines.values()],
            axes=[bq.Axis(scale=x_conf, label="confidence (top probability)", tick_format=".0%"),
                  self._acc_axis("accuracy")],
            title="Calibration (reliability)", animation_duration=0,
            fig_margin=margin, layout=fig_layout)

        # one legend for every chart (bqplot's legends sit on top of the points)
        self.legend = widgets.HTML(legend_html(
            [(label, colors[k], self._dash(r))
             for k, (label, (_, r)) in enumerate(zip(labels, curves, strict=True))]
            + [("chance / perfect calibration", "#999999", "dashed")]))
        self.legend.add_class("tlw-experiment-legend")
        self.reading_widgets = {name: widgets.HTML("") for name in READINGS}
        for w in self.reading_widgets.values():
            w.add_class("tlw-experiment-reading")
        r = self.reading_widgets
        cells = [
            widgets.VBox([self.data_figure, r["data"]]),
            widgets.VBox([self.compute_figure, self.compute_x, r["compute"]]),
            widgets.VBox([self.gap_figure, r["generalization"]]),
            widgets.VBox([self.robustness_figure, r["robustness"]]),
            widgets.VBox([self.calibration_figure, r["calibration"]]),
        ]
        self.grid = widgets.GridBox(cells, layout=widgets.Layout(
            grid_template_columns="repeat(auto-fill, minmax(420px, 1fr))", grid_gap="8px"))

    def _color(self, k: int, init: str) -> str:
        return INIT_COLORS.get(init, OTHER_COLORS[k % len(OTHER_COLORS)])

    def _dash(self, recipe: str) -> str:
        return DASHES[self.recipes.index(recipe) % len(DASHES)]

    def _acc_axis(self, label: str = "valid accuracy") -> bq.Axis:
        return bq.Axis(scale=self._y_acc, side="left", tick_format=".0%", label=label,
                       label_offset="45px")

    # ------------------------------------------------------------------ redrawing
    def reset(self) -> None:
        """Empty every mark (a new run of the experiment)."""
        for label in self.lines:
            for mark in (self.lines[label], self.compute_lines[label], self.gap_lines[label],
                         self.reliability_lines[label]):
                with mark.hold_sync():
                    mark.x, mark.y = _f32([]), _f32([])
            with self.bands[label].hold_sync():
                self.bands[label].x = _f32([])
                self.bands[label].y = np.zeros((2, 0), np.float32)

    @property
    def readings(self) -> dict[str, str]:
        """The sentence under each chart, as plain text."""
        return {name: html.unescape(re.sub(r"<[^>]+>", "", w.value))
                for name, w in self.reading_widgets.items()}

    def placeholders(self, later: str) -> None:
        """The italic sentences shown before results arrive; ``later`` for the robustness and
        calibration charts."""
        texts = {"data": "The accuracy of each size appears as its runs finish.",
                 "compute": "Accuracy against the training time of the same runs.",
                 "generalization": "Training minus validation accuracy of the same runs.",
                 "robustness": later, "calibration": later}
        for name, text in texts.items():
            self.reading_widgets[name].value = reading_html(text, italic=True)

    def show_curves(self, table: pd.DataFrame) -> None:
        """Draw the data, compute and gap curves and their readings from the run table."""
        x = self.compute_x.value
        acc = ex.summarize(table)
        gap = ex.summarize(table, "gap")
        comp = ex.compute_curve(table, x=x)
        for init, recipe in self.curves:
            label = curve_label(init, recipe)
            a = acc[(acc["init"] == init) & (acc["recipe"] == recipe)]
            g = gap[(gap["init"] == init) & (gap["recipe"] == recipe)]
            c = comp[(comp["init"] == init) & (comp["recipe"] == recipe)]
            with self.lines[label].hold_sync():
                self.lines[label].x, self.lines[label].y = _f32(a["size"]), _f32(a["mean"])
            with self.bands[label].hold_sync():
                self.bands[label].x = _f32(a["size"])
                self.bands[label].y = _f32(np.vstack([a["low"], a["high"]]).reshape(2, -1))
            with self.gap_lines[label].hold_sync():
                self.gap_lines[label].x = _f32(g["size"])
                self.gap_lines[label].y = _f32(g["mean"])
            with self.compute_lines[label].hold_sync():
                self.compute_lines[label].x = _f32(np.maximum(c[x], 1e-3))
                self.compute_lines[label].y = _f32(c["accuracy"])
        ticks = log_ticks(comp[x])
        with self.compute_axis.hold_sync():
            self.compute_axis.label = "training wall seconds" if x == "seconds" else "epochs"
            self.compute_axis.tick_values = ticks
        vals = comp[x].to_numpy(dtype=float)
        vals = vals[np.isfinite(vals) & (vals > 0)]
        if len(vals):  # pad the range so the first and last points are not on the axes
            with self._x_compute.hold_sync():
                self._x_compute.min = float(min(vals.min(), *ticks[:1]) / 1.3)
                self._x_compute.max = float(max(vals.max(), *ticks[-1:]) * 1.3)
        r = self.reading_widgets
        r["data"].value = reading_html(ex.read_data_efficiency(table))
        r["compute"].value = reading_html(ex.read_compute(table, x=x))
        r["generalization"].value = reading_html(ex.read_generalization(table))

    def show_robustness(self, robust: pd.DataFrame, corruptions: tuple[str, ...]) -> None:
        """Bars of the mean accuracy per corruption (and clean) for each model."""
        cats = ["clean", *[c for c in corruptions if c in set(robust["corruption"])]]
        means = robust.assign(corruption=robust["corruption"].replace("none", "clean")) \
            .groupby(["model", "corruption"])["accuracy"].mean()
        y = np.array([[means.get((curve_label(i, r), c), np.nan) for c in cats]
                      for i, r in self.curves], dtype=np.float32)
        with self.bars.hold_sync():
            self.bars.x, self.bars.y = np.asarray(cats), np.nan_to_num(y, nan=0.0)
        self.reading_widgets["robustness"].value = reading_html(ex.read_robustness(robust))

    def show_calibration(self, cals: dict[str, ex.Calibration]) -> None:
        """The reliability diagram of each calibrated model and its reading."""
        for label, cal in cals.items():
            bins = cal.bins[cal.bins["count"] > 0]
            mark = self.reliability_lines.get(label)
            if mark is not None:
                with mark.hold_sync():
                    mark.x, mark.y = _f32(bins["confidence"]), _f32(bins["accuracy"])
        self.reading_widgets["calibration"].value = reading_html(ex.read_calibration(cals))


def log_ticks(values: Any) -> np.ndarray:
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


def reading_html(text: str, italic: bool = False) -> str:
    """One reading as an HTML block (escaped)."""
    body = f"<i>{html.escape(text)}</i>" if italic else html.escape(text)
    return f"<div style='line-height:1.45;padding:2px 4px 10px 4px'>{body}</div>"


def legend_html(entries: list[tuple[str, str, str]]) -> str:
    """An HTML legend of (label, colour, bqplot line style) entries."""
    dash = {"solid": "", "dashed": "6,4", "dotted": "2,3", "dash_dotted": "6,3,2,3"}
    items = []
    for label, color, style in entries:
        items.append(
            f"<span style='margin-right:18px;white-space:nowrap'><svg width='28' height='10'>"
            f"<line x1='1' y1='5' x2='27' y2='5' stroke='{color}' stroke-width='2.5' "
            f"stroke-dasharray='{dash.get(style, '')}'/></svg> {html.escape(label)}</span>")
    return "<div>" + "".join(items) + "</div>"
