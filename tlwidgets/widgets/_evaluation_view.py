"""The dashboard's Evaluation tab: confusion matrix with counts, per-class accuracy, mistakes.

Drawn as HTML (not SVG marks), so every cell can show its number, every name can be shortened
with an ellipsis and still be read in full on hover (``title``), and the colours follow
JupyterLab's light and dark themes. Every string from the data (class names) is escaped.
"""

from __future__ import annotations

import html
import io
import math
from typing import Any

import ipywidgets as widgets
import numpy as np

__all__ = ["ConfusionMatrixView", "evaluation_widgets"]

# one blue, its opacity carries the value: readable over a light and a dark background
_RGB = (33, 113, 181)
_TEXT_ON_DARK = 0.55  # opacity from which cell text turns white


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _name(text: str, max_px: int, cls: str = "") -> str:
    """A name cut with an ellipsis at ``max_px``; the whole name is its hover text."""
    return (f"<span class='tlw-ev-name {cls}' style='max-width:{max_px}px' "
            f"title='{_esc(text)}'>{_esc(text)}</span>")


def _alpha(v: float, vmax: float) -> float:
    if not (v > 0) or not (vmax > 0):
        return 0.0
    return 0.12 + 0.88 * min(v / vmax, 1.0)


def _fill(a: float) -> str:
    return f"rgba({_RGB[0]},{_RGB[1]},{_RGB[2]},{a:.3f})"


_STYLE = """<style>
.tlw-ev-name {display:inline-block; overflow:hidden; text-overflow:ellipsis; white-space:nowrap;
  vertical-align:bottom}
.tlw-cm {color:var(--jp-ui-font-color1,#222); font-size:var(--jp-ui-font-size1,13px)}
.tlw-pc-title {font-weight:600; margin:6px 0 4px 0}
.tlw-cm table {border-collapse:collapse}
.tlw-cm th {font-weight:normal; color:var(--jp-ui-font-color2,#555); padding:2px 4px}
.tlw-cm th.tlw-cm-row {text-align:right}
.tlw-cm th.tlw-cm-col {vertical-align:bottom; text-align:center}
.tlw-cm th.tlw-cm-axis {font-style:italic; font-size:var(--jp-ui-font-size0,11px)}
.tlw-cm td.tlw-cm-cell {text-align:center; font-variant-numeric:tabular-nums; padding:0;
  border:1px solid var(--jp-border-color2,#ddd)}
.tlw-cm td.tlw-cm-diag {font-weight:600}
.tlw-cm td.tlw-cm-zero {color:var(--jp-ui-font-color3,#999)}
.tlw-cm-scale {display:flex; align-items:center; gap:6px; margin-top:6px;
  font-size:var(--jp-ui-font-size0,11px); color:var(--jp-ui-font-color2,#555)}
.tlw-cm-bar {width:160px; height:10px; border:1px solid var(--jp-border-color2,#ddd)}
.tlw-pc table {border-collapse:collapse; color:var(--jp-ui-font-color1,#222);
  font-size:var(--jp-ui-font-size1,13px)}
.tlw-pc td {padding:1px 6px; white-space:nowrap; font-variant-numeric:tabular-nums}
.tlw-pc .tlw-pc-track {width:150px; height:10px; background:var(--jp-layout-color3,#ddd)}
.tlw-pc .tlw-pc-fill {height:100%; background:#2ca02c}
.tlw-mk {font-size:var(--jp-ui-font-size1,13px); color:var(--jp-ui-font-color1,#222)}
.tlw-mk-line {display:flex; white-space:nowrap; min-width:0}
.tlw-mk-line .tlw-ev-name {flex:0 1 auto; min-width:0}
.tlw-mk-text {margin-bottom:4px; padding:4px 6px; border-left:3px solid
  var(--jp-border-color1,#bbb); background:var(--jp-layout-color2,#f3f3f3);
  color:var(--jp-content-font-color1,#222); font-size:var(--jp-content-font-size1,13px);
  line-height:1.35}
.tlw-mk-clamp {display:-webkit-box; -webkit-box-orient:vertical; -webkit-line-clamp:4;
  line-clamp:4; overflow:hidden; overflow-wrap:anywhere; white-space:normal}
</style>"""


def confusion_html(counts: np.ndarray, classes: list[str], mode: str = "counts",
                   noun: str = "images") -> str:
    """The confusion matrix as an HTML table: a count (or the share of its row) in every cell,
    both in each cell's hover text, and a colour scale. ``noun`` names the items ("texts").

    >>> html = confusion_html(np.array([[5, 1], [0, 6]]), ["cat", "dog"])
    >>> "data-count='5'" in html and "of true cat" in html
    True
    """
    counts = np.asarray(counts, dtype=np.int64)
    n = len(classes)
    rows = counts.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = np.where(rows[:, None] > 0, counts / np.maximum(rows[:, None], 1), 0.0)
    cell = int(min(64, max(36, 420 // max(n, 1))))
    by_rate = mode == "rates"
    vmax = 1.0 if by_rate else float(counts.max() if counts.size else 0)
    head = "".join(
        f"<th class='tlw-cm-col' style='width:{cell}px'>{_name(c, cell - 4)}</th>" for c in classes
    )
    body = []
    for i, t in enumerate(classes):
        tds = []
        for j, p in enumerate(classes):
            c, r = int(counts[i, j]), float(rates[i, j])
            a = _alpha(r if by_rate else c, vmax)
            color = "color:#fff;" if a >= _TEXT_ON_DARK else ""
            text = f"{r:.0%}" if by_rate else str(c)
            kind = " tlw-cm-diag" if i == j else ""
            kind += " tlw-cm-zero" if c == 0 else ""
            tip = (f"true {t} → predicted {p}: {c} of {int(rows[i])} {noun} "
                   f"({r:.0%} of true {t})")
            tds.append(
                f"<td class='tlw-cm-cell{kind}' data-count='{c}' data-rate='{r:.4f}' "
                f"title='{_esc(tip)}' style='width:{cell}px;height:{cell}px;"
                f"background:{_fill(a)};{color}'>{text}</td>"
            )
        body.append(f"<tr><th class='tlw-cm-row'>{_name(t, 130)}</th>{''.join(tds)}</tr>")
    if by_rate:
        lo, hi, unit = "0%", "100%", f"share of the true class's {noun}"
    else:
        lo, hi, unit = "0", f"{int(vmax)}", noun
    scale = (
        f"<div class='tlw-cm-scale'><span>{lo}</span><span class='tlw-cm-bar' "
        f"style='background:linear-gradient(to right,{_fill(0.12)},{_fill(1.0)})'></span>"
        f"<span>{hi}</span><span>{unit}</span></div>"
    )
    what = ("share of each true class (row) predicted as each class (column)" if by_rate
            else f"validation {noun} of each true class (row) predicted as each class (column)")
    return (
        f"{_STYLE}<div class='tlw-cm' data-mode='{'rates' if by_rate else 'counts'}'>"
        f"<div style='font-size:var(--jp-ui-font-size0,11px);color:var(--jp-ui-font-color2,#555);"
        f"margin-bottom:4px'>Each cell: {what}; hover for both.</div>"
        f"<table><tr><th></th><th class='tlw-cm-axis' colspan='{n}'>predicted →</th></tr>"
        f"<tr><th class='tlw-cm-axis' style='text-align:right'>true ↓</th>{head}</tr>"
        f"{''.join(body)}</table>{scale}</div>"
    )


def per_class_html(counts: np.ndarray, classes: list[str], noun: str = "images") -> str:
    """Per-class accuracy (recall) as bars with the counts behind each figure."""
    counts = np.asarray(counts, dtype=np.int64)
    rows = []
    for i, c in enumerate(classes):
        total, right = int(counts[i].sum()), int(counts[i, i])
        r = right / total if total else math.nan
        width = 0.0 if math.isnan(r) else 100 * r
        shown = "–" if math.isnan(r) else f"{r:.0%}"
        rows.append(
            f"<tr class='tlw-pc-row'><td style='text-align:right'>{_name(c, 150)}</td>"
            f"<td><div class='tlw-pc-track'><div class='tlw-pc-fill' style='width:{width:.1f}%'>"
            f"</div></div></td><td style='text-align:right'>{shown}</td>"
            f"<td style='color:var(--jp-ui-font-color2,#555)'>{right} of {total}</td></tr>"
        )
    return (
        f"{_STYLE}<div class='tlw-pc'><div class='tlw-pc-title'>Per-class accuracy</div>"
        "<div style='font-size:var(--jp-ui-font-size0,11px);color:var(--jp-ui-font-color2,#555);"
        f"margin-bottom:4px'>Share of each class's validation {noun} predicted right (recall)."
        f"</div><table>{''.join(rows)}</table></div>"
    )


class ConfusionMatrixView(widgets.VBox):
    """The confusion matrix with a switch between counts and row shares.

    ``counts`` (classes x classes, rows true) and ``classes`` are kept for code and tests.
    """

    def __init__(self, counts: np.ndarray, classes: list[str], noun: str = "images") -> None:
        self.noun = noun
        self.counts = np.asarray(counts, dtype=np.int64)
        self.classes = list(classes)
        self.mode = widgets.ToggleButtons(
            options=[("counts", "counts"), ("row %", "rates")], value="counts",
            tooltips=[f"Number of {noun} in each cell",
                      "Share of each true class (row) that went to each column"],
            style={"button_width": "70px"},
        )
        self.table = widgets.HTML(confusion_html(self.counts, self.classes, "counts", noun))
        self.mode.observe(self._on_mode, "value")
        title = widgets.HTML("<b>Confusion matrix</b>", layout=widgets.Layout(margin="0 12px 0 0"))
        head = widgets.HBox([title, self.mode], layout=widgets.Layout(align_items="center"))
        super().__init__([head, self.table], layout=widgets.Layout(margin="0 24px 8px 0"))
        self.add_class("tlw-confusion")

    def _on_mode(self, change: dict[str, Any]) -> None:
        self.table.value = confusion_html(self.counts, self.classes, change["new"], self.noun)


_TEXT_CHARS = 600  # a card's sentence is cut here (with an ellipsis) before CSS clamps it to 4 lines


def _is_text(data: Any) -> bool:
    return getattr(data, "modality", "image") == "text"


def _text_html(sentence: str) -> str:
    """A text shown as text (escaped: markup in a review never renders), clamped to four lines
    with an ellipsis, the whole text in its hover title.

    >>> "&lt;b&gt;" in _text_html("<b>bold</b> claim") and "title='&lt;b&gt;" in _text_html("<b>")
    True
    """
    shown = sentence if len(sentence) <= _TEXT_CHARS else sentence[:_TEXT_CHARS - 1] + "…"
    return (f"<div class='tlw-mk-text' title='{_esc(sentence)}'>"
            f"<div class='tlw-mk-clamp'>{_esc(shown)}</div></div>")


def _text_card(data: Any, idx: Any, row: dict[str, Any]) -> str:
    try:
        sentence = data.raw_text("valid", int(idx)) if idx is not None else row.get("path")
    except Exception as err:  # noqa: BLE001 - a card must show what is missing, not fail
        return f"<div class='tlw-mk-text'>(text unavailable: {_esc(type(err).__name__)})</div>"
    if sentence is None:
        return "<div class='tlw-mk-text'>(no text)</div>"
    return _text_html(str(sentence))


def _image_widget(data: Any, idx: Any) -> widgets.Widget:
    if data is None or idx is None or not hasattr(data, "raw_image"):
        return widgets.Label("(no image)")
    try:
        pil = data.raw_image("valid", int(idx)).copy()
        pil.thumbnail((112, 112))
        png = io.BytesIO()
        pil.save(png, format="PNG")
        return widgets.Image(value=png.getvalue(), format="png",
                             layout=widgets.Layout(width="112px", height="auto"))
    except Exception as err:  # noqa: BLE001
        return widgets.Label(f"(image unavailable: {type(err).__name__})")


def _mistakes_gallery(ev: Any, trainer: Any, k: int) -> widgets.Widget:
    try:
        top = ev.top_losses(k * 3)
    except Exception as err:  # noqa: BLE001 - a view must show what is missing, not fail
        return widgets.Label(f"Worst mistakes unavailable: {err}")
    if "predicted" in top and "true" in top:
        top = top[top["predicted"] != top["true"]].head(k)
    if not len(top):
        return widgets.HTML("<b>No mistakes on the validation set.</b>")
    data = getattr(trainer, "data", None)
    text = _is_text(data)
    width = 236 if text else 124  # a sentence needs a wider card than a thumbnail
    cards = []
    for row in top.to_dict("records"):
        idx = row.get("index")
        true, pred = str(row.get("true")), str(row.get("predicted"))
        prob = row.get("probability", math.nan)
        p = f"{prob:.2f}" if isinstance(prob, (int, float)) else str(prob)
        lines = (
            f"<div class='tlw-mk-line'>true:&nbsp;{_name(true, width - 40)}</div>"
            f"<div class='tlw-mk-line'>predicted:&nbsp;{_name(pred, width - 68)}</div>"
            f"<div class='tlw-mk-line' title='{_esc(f'the probability the model gave to {pred}')}'>"
            f"p({_name(pred, width - 54, 'tlw-mk-p')})&nbsp;=&nbsp;{_esc(p)}</div>"
        )
        if text:
            card: list[widgets.Widget] = [widgets.HTML(
                f"{_STYLE}<div class='tlw-mk tlw-mk-card-text'>{_text_card(data, idx, row)}"
                f"{lines}</div>", layout=widgets.Layout(width=f"{width}px"))]
        else:
            card = [_image_widget(data, idx),
                    widgets.HTML(f"{_STYLE}<div class='tlw-mk'>{lines}</div>",
                                 layout=widgets.Layout(width=f"{width}px"))]
        cards.append(widgets.VBox(card, layout=widgets.Layout(width=f"{width + 6}px",
                                                                margin="4px")))
    return widgets.VBox([
        widgets.HTML("<b>Worst mistakes</b> (highest loss first; p(class) is the probability "
                     "the model gave to the class it predicted)"),
        widgets.HBox(cards, layout=widgets.Layout(flex_flow="row wrap")),
    ])


def evaluation_widgets(ev: Any, trainer: Any, k: int) -> tuple[list[widgets.Widget],
                                                                ConfusionMatrixView]:
    """The Evaluation tab's children for an :class:`~tlwidgets.evaluation.Evaluation`."""
    confusion = ev.confusion
    classes = [str(c) for c in confusion.index]
    counts = confusion.to_numpy(dtype=np.int64)
    acc = float(getattr(ev, "accuracy", math.nan))
    noun = "texts" if _is_text(getattr(trainer, "data", None)) else "images"
    header = widgets.HTML(
        f"<b>Validation accuracy: {acc * 100:.1f}%</b> over {int(counts.sum())} {noun}."
    )
    matrix = ConfusionMatrixView(counts, classes, noun)
    per_class = widgets.HTML(per_class_html(counts, classes, noun))
    body = widgets.HBox([matrix, per_class], layout=widgets.Layout(flex_flow="row wrap",
                                                                   align_items="flex-start"))
    return [header, body, _mistakes_gallery(ev, trainer, k)], matrix
