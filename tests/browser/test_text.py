"""Text in a real JupyterLab page: the text notebook's main cells (the packaged MiniLM, Rotten
Tomatoes sentences, head-only training) with the FreezePanel and the live dashboard; the curves
grow in the page; the worst mistakes show the sentences, markup shown as text."""

from __future__ import annotations

import pytest

from .test_dashboard import LOSS_POINTS_JS, loss_points

pytestmark = pytest.mark.browser

MARKUP = "<i>so</i> &amp; <script>window.__tlw_xss = 1</script>"

CELLS = [
    "import os, time, torch, pandas as pd\n"
    "os.environ['HF_HUB_OFFLINE'] = '1'\n"
    "import tlwidgets as tlw\n"
    "torch.set_num_threads(1)\n"
    "torch.manual_seed(0)\n"
    "model = tlw.create_model('sentence-transformers/all-MiniLM-L6-v2', 2, layers='all')\n"
    "sample = tlw.sample_text_data(size=96, valid_pct=0.34, tokenizer=model.tokenizer)\n"
    "rows = [(t, sample.classes[y], False) for t, y in sample.train_items]\n"
    f"rows += [(t + ' ' + {MARKUP!r}, sample.classes[y], True) for t, y in sample.valid_items]\n"
    "df = pd.DataFrame(rows, columns=['text', 'label', 'valid'])\n"
    "train = tlw.TextData.from_dataframe(df[~df.valid], model=model, valid_pct=0, batch_size=8)\n"
    "data = tlw.TextData(classes=sample.classes, train_items=train.train_items,\n"
    "                    valid_items=[(t, sample.classes.index(l)) for t, l, v in rows if v],\n"
    "                    tokenizer=model.tokenizer, batch_size=8)\n"
    "tlw.freeze_to(model, -1)\n"
    "tlw.FreezePanel(model)",
    "def pace(event):  # slow enough to watch the curve grow\n"
    "    if event.kind == 'step':\n"
    "        time.sleep(0.15)\n"
    "trainer = tlw.Trainer(model, data, epochs=6, lr=3e-2, seed=0, callbacks=[pace])\n"
    "dash = tlw.TrainingDashboard(trainer)\n"
    "dash",
]


def open_text(open_notebook, name, theme="light"):
    nb = open_notebook(CELLS, name=name, timeout=300, theme=theme)
    page = nb.page
    page.wait_for_selector(".tlw-dashboard .tlw-run-controls .tlw-badge", timeout=60_000)
    return nb, page


def test_text_run_in_the_page_freeze_panel_and_growing_curves(open_notebook):
    nb, page = open_text(open_notebook, "text_curves")
    # the FreezePanel lists the encoder's layer groups, only the head trainable
    root = page.locator(".tlw-freeze-panel").first
    root.locator(".tlw-fp-item").first.wait_for(timeout=60_000)
    rows = [r.strip() for r in
            root.locator(".tlw-fp-item:not([hidden]) .tlw-fp-text").all_text_contents()]
    assert rows == ["bert.embeddings", *[f"bert.encoder.layer.{i}" for i in range(6)], "head"]
    assert "770 of 22,566,146" in (root.text_content() or "")
    assert loss_points(page) == 0
    nb.run_cell("trainer.start()")
    page.wait_for_function(f"() => Math.max(0, ...({LOSS_POINTS_JS})() || []) >= 5",
                           timeout=120_000)
    first = loss_points(page)
    page.wait_for_function(f"n => Math.max(0, ...({LOSS_POINTS_JS})() || []) > n",
                           arg=first + 5, timeout=120_000)
    assert loss_points(page) > first
    nb.wait_for("trainer.state == 'finished'", timeout=180)
    assert nb.kernel("print(trainer.feature_cache is not None)").strip() == "True"
    nb.screenshot("finished", selector=".tlw-dashboard")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_worst_mistakes_show_the_sentences_with_markup_as_text(open_notebook, theme):
    nb, page = open_text(open_notebook, f"text_mistakes_{theme}", theme)
    nb.run_cell("trainer.fit()")
    nb.wait_for("dash.evaluation is not None", timeout=180)
    dash = page.locator(".tlw-dashboard").first
    dash.locator(".lm-TabBar-tab", has_text="Evaluation").click()
    worst = nb.kernel("t = dash.evaluation.top_losses(20); t = t[t.true != t.predicted]\n"
                      "print(t.iloc[0].path)").strip()
    assert MARKUP in worst
    page.wait_for_function(
        "s => (document.querySelector('.tlw-dashboard')?.textContent || '').includes(s)",
        arg="<script>window.__tlw_xss = 1</script>", timeout=30_000)
    assert page.evaluate("() => window.__tlw_xss") is None  # shown, never run
    # the whole sentence is on hover (a title), the card itself may shorten it
    card = page.locator(f".tlw-dashboard .tlw-mk-text[title*={worst[:40]!r}]").first
    assert card.get_attribute("title") == worst
    # shortened to four lines at most: the card is no taller than five lines of its text
    box, line = card.evaluate("e => [e.querySelector('.tlw-mk-clamp').getBoundingClientRect()"
                              ".height, parseFloat(getComputedStyle(e).lineHeight)]")
    assert 0 < box <= 4.5 * line
    nb.screenshot("mistakes", selector=".tlw-dashboard")
