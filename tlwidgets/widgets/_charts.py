"""Chart pieces of the dashboard: colours, legends drawn outside the plot, compact tick labels.

bqplot draws its legend inside the plot area, where it covers curves or tick labels whatever
corner it takes. The dashboard turns those off and shows each figure's legend as an HTML row
under the figure instead: never on the data, in any theme, however many runs are compared.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["COLORS", "OVERLAY_COLORS", "Charts", "LegendItem", "legend_html", "nice_ticks", "overlay_color"]

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
# Overlaid runs take these in turn (bqplot's `colors` cycle the same way: line i, colour i % n).
OVERLAY_COLORS = COLORS[2:]


def nice_ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    """Round values (1, 2, 2.5 or 5 x 10^k apart) from ``lo`` to ``hi``: the finest such step
    that gives at most ``n`` of them.

    >>> nice_ticks(0.0, 0.003, 5).tolist()
    [0.0, 0.001, 0.002, 0.003]
    >>> nice_ticks(0.0026, 1.39, 6).tolist()
    [0.2, 0.4, 0.6, 0.8, 1.0, 1.2]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return np.array([], dtype=float)
    if hi <= lo:
        return np.array([lo], dtype=float)
    mag = 10.0 ** math.floor(math.log10((hi - lo) / max(n, 1)))
    for step in (m * mag for m in (1, 2, 2.5, 5, 10, 20, 25, 50)):
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        if last - first + 1 <= n:
            break
    ticks = np.arange(first, last + 1) * step
    return np.round(ticks, max(0, 2 - math.floor(math.log10(step))))  # 0.6, not 0.6000000000000001


def _set_ticks(axis: Any, ticks: Any) -> None:
    new = None if ticks is None else np.asarray(ticks, dtype=float)
    old = axis.tick_values
    if new is None and old is None:
        return
    if new is not None and old is not None and len(old) == len(new) and np.allclose(old, new):
        return
    axis.tick_values = new


def overlay_color(i: int) -> str:
    """The colour of the ``i``-th overlaid run's line."""
    return OVERLAY_COLORS[i % len(OVERLAY_COLORS)]


@dataclass(frozen=True)
class LegendItem:
    """One entry: a swatch drawn like the line (``style``: line, faint, marker, dash,
    dash-marker) and a label (shortened with an ellipsis, whole on hover)."""

    color: str
    label: str
    style: str = "line"


def _swatch(item: LegendItem) -> str:
    c = html.escape(item.color, quote=True)
    width, dash, opacity = "2", "", "1"
    if item.style == "faint":
        width, opacity = "1.5", "0.35"
    if item.style.startswith("dash"):
        dash = " stroke-dasharray='4 3'"
    dot = (f"<circle cx='12' cy='6' r='3' fill='{c}'/>" if item.style.endswith("marker") else "")
    return (f"<svg width='24' height='12' style='flex:none' aria-hidden='true'>"
            f"<line x1='1' y1='6' x2='23' y2='6' stroke='{c}' stroke-width='{width}' "
            f"stroke-opacity='{opacity}'{dash}/>{dot}</svg>")


def legend_html(name: str, items: list[LegendItem], heading: str = "",
                more: int = 0) -> str:
    """A legend row for the figure ``name`` (``data-figure``), optional bold ``heading`` first.

    >>> "run A" in legend_html("loss", [LegendItem("#000", "run A")])
    True
    """
    parts = []
    if heading:
        parts.append(
            "<span class='tlw-legend-heading' style='font-weight:600;overflow:hidden;"
            "text-overflow:ellipsis;white-space:nowrap;max-width:360px' "
            f"title='{html.escape(heading, quote=True)}'>{html.escape(heading)}</span>"
        )
    for item in items:
        text = html.escape(item.label)
        parts.append(
            "<span class='tlw-legend-item' style='display:inline-flex;align-items:center;"
            f"gap:4px;min-width:0' title='{html.escape(item.label, quote=True)}'>"
            f"{_swatch(item)}<span style='overflow:hidden;text-overflow:ellipsis;"
            f"white-space:nowrap;max-width:280px'>{text}</span></span>"
        )
    if more:
        parts.append(f"<span class='tlw-legend-item'>and {more} more</span>")
    return (
        f"<div class='tlw-legend' data-figure='{html.escape(name, quote=True)}' "
        "style='display:flex;flex-wrap:wrap;justify-content:center;align-items:center;"
        "gap:2px 12px;padding:0 8px;font-size:var(--jp-ui-font-size1,13px);"
        f"color:var(--jp-ui-font-color1,#222)'>{''.join(parts)}</div>"
    )


class Charts:
    """The dashboard's three bqplot figures, their marks and their HTML legends.

    Loss per step (raw faint line, debiased moving average, validation loss per epoch, dashed
    epoch marks, overlaid runs dashed), validation accuracy per epoch (with overlays), and the
    learning rate per parameter group. The y axes carry no label of their own: each figure's
    title names its quantity, and a rotated label beside the ticks collided with wide tick
    labels ("1.5e+3"); the left margins fit the widest tick label the formats give
    (".3~g": "1.5e+3", "0.0123", "0.00125").
    """

    def __init__(self) -> None:
        import bqplot as bq
        import ipywidgets as widgets

        self.x_steps = bq.LinearScale()
        self.y_loss_lin = bq.LinearScale()
        self.y_loss_log = bq.LogScale()
        self.y_marks = bq.LinearScale(min=0.0, max=1.0)
        ys = {"x": self.x_steps, "y": self.y_loss_lin}
        self.raw_line = bq.Lines(
            x=[], y=[], scales=ys, colors=[COLORS[0]], opacities=[0.25], stroke_width=1,
            labels=["per step"],
        )
        self.smooth_line = bq.Lines(
            x=[], y=[], scales=ys, colors=[COLORS[0]], stroke_width=2, labels=["train"],
        )
        self.valid_line = bq.Lines(
            x=[], y=[], scales=ys, colors=[COLORS[1]], marker="circle", marker_size=24,
            labels=["valid"],
        )
        self.epoch_marks = bq.Lines(
            x=[], y=[], scales={"x": self.x_steps, "y": self.y_marks}, colors=["#999999"],
            line_style="dashed", stroke_width=1, opacities=[0.6],
        )
        self.compare_loss = bq.Lines(
            x=[], y=[], scales=ys, line_style="dashed", stroke_width=1.5, colors=OVERLAY_COLORS,
        )
        self.x_axis_loss = bq.Axis(scale=self.x_steps, label="step")
        self.y_axis_loss = bq.Axis(
            scale=self.y_loss_lin, side="left", tick_format=".3~g",
        )
        self.loss_figure = bq.Figure(
            marks=[self.compare_loss, self.raw_line, self.smooth_line, self.valid_line,
                   self.epoch_marks],
            axes=[self.x_axis_loss, self.y_axis_loss], title="Loss", animation_duration=0,
            fig_margin={"top": 40, "bottom": 40, "left": 66, "right": 20},
            layout=widgets.Layout(width="100%", height="300px", min_width="320px"),
        )

        self.x_epochs = bq.LinearScale(min=0.0)
        self.x_axis_epochs = bq.Axis(scale=self.x_epochs, label="epoch", tick_format="d")
        self.y_acc = bq.LinearScale(min=0.0, max=1.0)
        acc_scales = {"x": self.x_epochs, "y": self.y_acc}
        self.acc_line = bq.Lines(
            x=[], y=[], scales=acc_scales, colors=[COLORS[1]], marker="circle", marker_size=24,
            labels=["accuracy"],
        )
        self.compare_acc = bq.Lines(
            x=[], y=[], scales=acc_scales, line_style="dashed", stroke_width=1.5,
            colors=OVERLAY_COLORS, marker="circle", marker_size=16,
        )
        self.acc_figure = bq.Figure(
            marks=[self.compare_acc, self.acc_line],
            axes=[self.x_axis_epochs,
                  bq.Axis(scale=self.y_acc, side="left", tick_format=".0%")],
            title="Validation accuracy", animation_duration=0,
            fig_margin={"top": 40, "bottom": 40, "left": 50, "right": 20},
            layout=widgets.Layout(width="100%", height="300px", min_width="280px"),
        )

        self.y_lr = bq.LinearScale(min=0.0)
        self.lr_line = bq.Lines(
            x=[], y=[], scales={"x": self.x_steps, "y": self.y_lr}, stroke_width=1.5,
            colors=COLORS,
        )
        self.y_axis_lr = bq.Axis(scale=self.y_lr, side="left", tick_format=".3~g")
        self.lr_figure = bq.Figure(
            marks=[self.lr_line],
            axes=[bq.Axis(scale=self.x_steps, label="step"), self.y_axis_lr],
            title="Learning rate per group", animation_duration=0,
            fig_margin={"top": 40, "bottom": 40, "left": 66, "right": 20},
            layout=widgets.Layout(width="100%", height="240px", min_width="280px"),
        )
        self.loss_legend = widgets.HTML("")
        self.acc_legend = widgets.HTML("")
        self.lr_legend = widgets.HTML("")
        for legend in (self.loss_legend, self.acc_legend, self.lr_legend):
            legend.add_class("tlw-legend-box")
        self._lr_names: list[str] = []
        self._loss_ranges: dict[str, tuple[float, float]] = {}
        self._log = False

    def set_log(self, log: bool) -> None:
        """Log or linear scale for the loss axis."""
        self._log = bool(log)
        y = self.y_loss_log if log else self.y_loss_lin
        for mark in (self.raw_line, self.smooth_line, self.valid_line, self.compare_loss):
            mark.scales = {"x": self.x_steps, "y": y}
        self.y_axis_loss.scale = y
        self._set_loss_ticks()

    def loss_range(self, source: str, values: Any) -> None:
        """Tell the loss axis the extent of one of its series (raw, smooth, valid, compare)."""
        v = np.asarray(values, dtype=float).ravel()
        v = v[np.isfinite(v)]
        if len(v):
            self._loss_ranges[source] = (float(v.min()), float(v.max()))
        else:
            self._loss_ranges.pop(source, None)
        self._set_loss_ticks()

    def _set_loss_ticks(self) -> None:
        # d3 picks ~10 ticks whatever the height: on a 220 px axis their labels touch. Nice
        # values (1, 2 or 5 x 10^k) about 40 px apart instead; the log scale keeps d3's.
        ticks = None
        if not self._log and self._loss_ranges:
            lo = min(r[0] for r in self._loss_ranges.values())
            hi = max(r[1] for r in self._loss_ranges.values())
            ticks = nice_ticks(lo, hi, 6)
        _set_ticks(self.y_axis_loss, ticks)

    def lr_range(self, values: Any) -> None:
        """Tell the learning-rate axis (from 0) the largest rate plotted."""
        v = np.asarray(values, dtype=float).ravel()
        v = v[np.isfinite(v)]
        _set_ticks(self.y_axis_lr, nice_ticks(0.0, float(v.max()), 5) if len(v) else None)

    def draw_legends(self, label: str, overlays: list) -> None:
        """Loss and accuracy legends: this run (its label first), then each overlaid run."""
        loss = [LegendItem(COLORS[0], "train"),
                LegendItem(COLORS[0], "per step", "faint"),
                LegendItem(COLORS[1], "valid", "marker")]
        loss += [LegendItem(overlay_color(i), r.label, "dash") for i, r in enumerate(overlays)]
        acc = [LegendItem(COLORS[1], label, "marker")]
        with_acc = [r for r in overlays if len(r.accuracy)]
        acc += [LegendItem(overlay_color(i), r.label, "dash-marker")
                for i, r in enumerate(with_acc)]
        heading = label if not overlays else f"{label} (solid)"
        loss_html = legend_html("loss", loss, heading=heading)
        acc_html = legend_html("accuracy", acc)
        if self.loss_legend.value != loss_html:
            self.loss_legend.value = loss_html
        if self.acc_legend.value != acc_html:
            self.acc_legend.value = acc_html

    def draw_lr_legend(self, names: list[str], most: int = 8) -> None:
        """One entry per plotted learning-rate line (``most`` at most, then "and N more")."""
        if names == self._lr_names:
            return
        self._lr_names = list(names)
        shown = names[:most]
        self.lr_legend.value = legend_html(
            "lr", [LegendItem(COLORS[i % len(COLORS)], n) for i, n in enumerate(shown)],
            more=len(names) - len(shown))
