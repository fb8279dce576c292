"""What a TrainingDashboard shows, checked in the page's DOM (issue 12), in both themes:

- legends sit outside every plot: no legend box meets a tick label or a line, axis labels
  clear the tick labels and tick labels stay in the figure even at losses of ~1e3, also in
  compare mode;
- compare mode lists a run once, under its label; the current run's legend carries its label;
- the Epochs and LR fields refuse what they cannot use, beside the fields, and nothing starts;
- after Stop the progress label says where the run stopped;
- the Evaluation tab: counts in the confusion cells, the row share on hover and as a toggle, a
  colour scale, "p(class) = ..." under each mistake, long class names shortened with an ellipsis
  and whole on hover.

Two short runs of the tiny random ``test_resnet`` on 32 px in-memory images. The second one's
head is scaled up, so its loss is in the thousands (the widest tick labels).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

LONG = "a_very_long_class_name_that_needs_an_ellipsis"
FIRST = "first run · random init · all layers"
SECOND = "second run · random init · huge head"

CELLS = [
    "import tempfile, time, numpy as np, torch, tlwidgets as tlw\n"
    "torch.set_num_threads(1)\n"
    "torch.manual_seed(0)\n"
    "rng = np.random.default_rng(0)\n"
    "labels = np.arange(48) % 3\n"
    "images = rng.random((48, 3, 32, 32), dtype=np.float32) * 0.2\n"
    "for c in range(3):\n"
    "    images[labels == c, c] += 0.3  # a weak signal: mistakes for the gallery\n"
    "work = tempfile.mkdtemp(prefix='tlw-dash-views-')\n"
    "def make(name, **kw):\n"
    "    model = tlw.create_model('test_resnet', 3, weights='none')\n"
    "    data = tlw.ImageData.from_arrays(images, labels, classes=['r', " + repr(LONG) + ", 'b'],\n"
    "                                     valid_pct=0.25, batch_size=8, model=model, img_size=32)\n"
    "    return model, tlw.Trainer(model, data, name=name, run_dir=f'{work}/{len(name)}-{time.time_ns()}',\n"
    "                              cache_features=False, **kw)",
    f"model_a, first = make({FIRST!r}, epochs=2, lr=3e-3)\n"
    "dash_a = tlw.TrainingDashboard(first, mistakes=4)\n"
    "first.fit()\n"
    "dash_a",
    "def pace(event):\n"
    "    if event.kind == 'step':\n"
    "        time.sleep(0.05)\n"
    f"model_b, second = make({SECOND!r}, epochs=30, lr=1e-7, callbacks=[pace])\n"
    "with torch.no_grad():\n"
    "    model_b.get_classifier().weight.normal_(0.0, 3000.0)  # (a fresh head is 0) loss ~1e3\n"
    "dash_b = tlw.TrainingDashboard(second, compare=[first], evaluate=False)\n"
    "dash_b",
]

# Per figure of a dashboard: boxes of the legend (HTML, outside the SVG), the tick labels, the
# y-axis label, the plotted lines and the plot area, in client coordinates.
GEOMETRY_JS = """
(index) => {
  const dash = document.querySelectorAll('.tlw-dashboard')[index];
  const box = (e) => { const r = e.getBoundingClientRect();
                       return {x: r.left, y: r.top, w: r.width, h: r.height}; };
  const out = {};
  for (const fig of dash.querySelectorAll('.bqplot.figure')) {
    const title = fig.querySelector('.mainheading')?.textContent || '';
    const legend = fig.parentElement.querySelector('.tlw-legend');
    const ticks = Array.from(fig.querySelectorAll('.tick text')).filter(t => t.textContent)
      .map(t => ({...box(t), text: t.textContent}));
    const labels = Array.from(fig.querySelectorAll('text.axislabel')).map(t => ({...box(t), text: t.textContent}));
    const lines = Array.from(fig.querySelectorAll('path.line'))
      .filter(p => (p.getAttribute('d') || '').length > 2).map(box);
    const area = fig.querySelector('.plotarea_background, rect.plotarea_background');
    out[title] = {legend: legend ? {...box(legend), text: legend.textContent} : null,
                  figure: box(fig),
                  ticks, labels, lines, area: area ? box(area) : null};
  }
  return out;
}
"""


def meets(a: dict, b: dict, pad: float = 0.0) -> bool:
    return not (a["x"] + a["w"] <= b["x"] - pad or b["x"] + b["w"] <= a["x"] - pad
                or a["y"] + a["h"] <= b["y"] - pad or b["y"] + b["h"] <= a["y"] - pad)


def check_layout(page, index: int) -> dict:
    geometry = page.evaluate(GEOMETRY_JS, index)
    assert set(geometry) >= {"Loss", "Validation accuracy", "Learning rate per group"}, geometry
    for title, g in geometry.items():
        assert g["legend"] is not None, f"{title}: no legend"
        assert g["ticks"], f"{title}: no tick labels drawn"
        legend = g["legend"]
        assert legend["h"] > 0 and legend["w"] > 0, (title, legend)
        for tick in g["ticks"]:
            assert not meets(legend, tick), (title, "legend on a tick label", legend, tick)
        for line in g["lines"]:
            assert not meets(legend, line), (title, "legend on a line", legend, line)
        assert g["area"] is not None and not meets(legend, g["area"]), (title, legend, g["area"])
        # axis labels clear every tick label, and tick labels stay inside the figure
        fig = g["figure"]
        for tick in g["ticks"]:
            assert tick["x"] >= fig["x"] - 1 and tick["x"] + tick["w"] <= fig["x"] + fig["w"] + 1
        for label in g["labels"]:
            for tick in g["ticks"]:
                assert not meets(label, tick, pad=2), (title, "axis label on ticks", label, tick)
    return geometry


def legend_text(page, index: int, figure: str) -> str:
    return page.evaluate(
        "([i, f]) => document.querySelectorAll('.tlw-dashboard')[i]"
        ".querySelector(`.tlw-legend[data-figure='${f}']`)?.textContent || ''",
        [index, figure],
    )


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_legends_labels_fields_stop_label_and_evaluation(open_notebook, theme):
    nb = open_notebook(CELLS, name=f"dashboard_views_{theme}", theme=theme, timeout=300)
    page = nb.page
    page.wait_for_function("() => document.querySelectorAll('.tlw-dashboard').length === 2",
                           timeout=60_000)
    page.set_viewport_size({"width": 1400, "height": 1000})

    # -- the first run, finished: evaluation tab ------------------------------------------------
    nb.wait_for("dash_a.evaluation is not None", timeout=120)
    dash_a = page.locator(".tlw-dashboard").nth(0)
    dash_a.locator(".lm-TabBar-tab", has_text="Evaluation").click()
    cm = dash_a.locator(".tlw-cm")
    cm.wait_for(state="visible", timeout=30_000)
    counts = nb.kernel("print(dash_a.evaluation.confusion.to_numpy().ravel().tolist())")
    expected = [int(v) for v in counts.strip().strip("[]").split(",")]
    cells = cm.locator("td.tlw-cm-cell")
    assert cells.count() == 9
    shown = cells.evaluate_all("cs => cs.map(c => c.textContent.trim())")
    assert [int(v) for v in shown] == expected  # the count is in each cell, row by row
    title = cells.nth(1).get_attribute("title")
    assert title.startswith(f"true r → predicted {LONG}:") and "% of true r" in title, title
    # a colour scale: a gradient bar between 0 and the largest count
    scale = cm.locator(".tlw-cm-scale").inner_text()
    assert scale.split()[0] == "0" and str(max(expected)) in scale and "images" in scale
    assert "gradient" in (cm.locator(".tlw-cm-bar").get_attribute("style") or "")
    # the toggle shows the row shares instead
    dash_a.locator(".tlw-confusion button", has_text="row %").click()
    page.wait_for_function(
        "() => document.querySelector('.tlw-dashboard .tlw-cm')?.dataset.mode === 'rates'")
    rates = cm.locator("td.tlw-cm-cell").evaluate_all("cs => cs.map(c => c.textContent.trim())")
    assert all(r.endswith("%") for r in rates)
    row0 = expected[:3]
    assert rates[0] == f"{row0[0] / sum(row0):.0%}"
    # long class names: shortened with an ellipsis on the ticks, whole on hover
    names = cm.locator(f".tlw-ev-name[title='{LONG}']")
    assert names.count() == 2  # a row and a column heading
    for i in range(2):
        cut = names.nth(i).evaluate("e => e.scrollWidth > e.clientWidth "
                                    "&& getComputedStyle(e).textOverflow === 'ellipsis'")
        assert cut, "the long name is not shortened with an ellipsis"
    # mistakes: which class each probability is for, names shortened with their full title
    gallery = dash_a.locator(".tlw-mk")
    assert gallery.count() >= 1
    texts = gallery.evaluate_all("gs => gs.map(g => g.textContent.replace(/\\u00a0/g, ' '))")
    assert all("p(" in t and (") = 0." in t or ") = 1." in t) for t in texts), texts
    pred = nb.kernel("t = dash_a.evaluation.top_losses(12); t = t[t.true != t.predicted]\n"
                     "print(t.iloc[0].predicted, round(float(t.iloc[0].probability), 2))")
    pred_name, prob = pred.split()
    first_p = gallery.nth(0).locator(".tlw-mk-p")
    assert first_p.get_attribute("title") == pred_name
    assert f") = {float(prob):.2f}" in texts[0]
    if pred_name == LONG:
        assert first_p.evaluate("e => e.scrollWidth > e.clientWidth")
    nb.screenshot(f"evaluation-{theme}", selector=".tlw-dashboard >> nth=0")

    # -- the second run's fields refuse what they cannot use ------------------------------------
    dash_b = page.locator(".tlw-dashboard").nth(1)
    dash_b.scroll_into_view_if_needed()
    epochs = dash_b.locator(".widget-text", has_text="Epochs").locator("input")
    lr = dash_b.locator(".widget-text", has_text="LR").locator("input")
    message = dash_b.locator(".tlw-inputs-message")
    for field, text, words in [(epochs, "-5", "at least 1"), (epochs, "", "empty"),
                               (lr, "0", "greater than 0"), (lr, "1e9", "above 10")]:
        field.fill(text)
        message.locator(".tlw-input-error").wait_for(state="visible", timeout=10_000)
        page.wait_for_function("([i, w]) => document.querySelectorAll('.tlw-dashboard')[i]"
                               ".querySelector('.tlw-inputs-message').textContent.includes(w)",
                               arg=[1, words], timeout=10_000)
        dash_b.locator('.tlw-run-controls button[data-action="start"]').click()
        page.wait_for_function("([i]) => document.querySelectorAll('.tlw-dashboard')[i]"
                               ".querySelector('.tlw-inputs-message').textContent"
                               ".includes('Not started')", arg=[1], timeout=10_000)
        assert nb.kernel("print(second.state, second.progress()['step'])").split() == ["idle", "0"]
        assert dash_b.locator(".tlw-badge").text_content() == "Idle"
        # beside the fields: right of them on their row, or just under them
        fb, mb = lr.bounding_box(), message.bounding_box()
        right = mb["x"] >= fb["x"] + fb["width"] - 1 and abs(mb["y"] - fb["y"]) < 30
        under = 0 <= mb["y"] - (fb["y"] + fb["height"]) < 30
        assert right or under, (fb, mb)
        field.fill("30" if field == epochs else "1e-07")
    page.wait_for_function("() => !document.querySelectorAll('.tlw-dashboard')[1]"
                           ".querySelector('.tlw-input-error')", timeout=10_000)

    # -- compare mode: the first run once, under its label; both legends outside the plots ------
    dash_b.locator('.tlw-run-controls button[data-action="start"]').click()
    nb.wait_for("second.progress()['step'] >= 12", timeout=120)
    page.wait_for_function(
        "() => document.querySelectorAll('.tlw-dashboard')[1].querySelectorAll("
        "'.tlw-legend[data-figure=lr] .tlw-legend-item').length >= 1", timeout=30_000)
    assert float(nb.kernel("print(second.steps['loss'].max())")) > 500  # ticks up to ~1e3
    geometry = check_layout(page, 1)
    loss_ticks = [t["text"] for t in geometry["Loss"]["ticks"]]
    assert any("e+3" in t or len(t.replace(",", "")) >= 4 for t in loss_ticks), loss_ticks
    check_layout(page, 0)
    loss_legend = legend_text(page, 1, "loss")
    assert loss_legend.count(FIRST) == 1 and SECOND in loss_legend, loss_legend
    assert legend_text(page, 1, "accuracy").count(FIRST) == 1
    assert FIRST in legend_text(page, 0, "loss")  # the current run's legend carries its label
    dash_b.locator(".lm-TabBar-tab", has_text="Compare runs").click()
    options = dash_b.locator("select option").evaluate_all(
        "os => os.map(o => o.textContent.replace(/\\u00a0/g, ' '))")
    assert options.count(FIRST) == 1, options
    nb.screenshot(f"compare-{theme}", selector=".tlw-dashboard >> nth=1")

    # -- Stop: the label says where it stopped --------------------------------------------------
    dash_b.locator('.tlw-run-controls button[data-action="stop"]').click()
    nb.wait_for("second.state == 'stopped'", timeout=60)
    where = nb.kernel("s = second.steps.iloc[-1]; p = second.progress()\n"
                      "print(int(s['epoch']), int(s['batch']), p['steps_per_epoch'], "
                      "len(second.history))").split()
    epoch, batch, spe, done = (int(v) for v in where)
    expected = (f"stopped in epoch {epoch}/30 at step {batch}/{spe}" if batch < spe or epoch > done
                else f"stopped after epoch {done}/30")
    page.wait_for_function(
        "t => Array.from(document.querySelectorAll('.tlw-dashboard')[1]"
        ".querySelectorAll('.widget-label')).some(e => e.textContent.includes(t))",
        arg=expected, timeout=30_000)
