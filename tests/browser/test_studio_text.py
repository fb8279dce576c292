"""Studio on text in a real JupyterLab page (issue 14), all by clicks: Data → Text → Sample
sentences (a few hundred Rotten Tomatoes sentences, offline) → the packaged MiniLM → only the
head trainable → one epoch on cached features → the evaluation with the sentences as text →
a typed sentence predicted; with a CSV whose columns must be picked on the way."""

from __future__ import annotations

import os
import shutil

import pytest

from .conftest import REPO
from .test_studio import ROOT, click_button, open_tab, wait_text

pytestmark = pytest.mark.browser

CELLS = [
    ("import os\nos.environ['HF_HUB_OFFLINE'] = '1'\n"
     "import torch, tlwidgets as tlw\n"
     "torch.set_num_threads(1)\n"
     "torch.manual_seed(0)\n"
     "studio = tlw.Studio(epochs=1, batch_size=32, text_sample_size=300)\n"
     "studio"),
]


def toggle(page, label: str) -> None:
    page.locator(f"{ROOT} .widget-toggle-button:visible", has_text=label).first.click()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_studio_trains_a_head_on_the_text_sample(open_notebook, theme):
    nb = open_notebook(CELLS, name=f"studio_text_{theme}", theme=theme, timeout=240)
    page = nb.page
    page.wait_for_selector(f"{ROOT} .lm-TabBar-tab", timeout=60_000)
    open_tab(page, "Data")

    # a CSV whose columns cannot be told apart: the tab lists them, the user picks them
    csv = nb.lab.root / "reviews.csv"
    nb.kernel("import pandas as pd\n"
              "pd.DataFrame({'words': ['a fine, warm film', 'dull and long'] * 10,\n"
              "              'stars': ['good', 'bad'] * 10})"
              f".to_csv({str(csv)!r}, index=False)")
    toggle(page, "Text")
    page.locator(f"{ROOT} input[placeholder^='path/to/reviews.csv']").fill(str(csv))
    click_button(page, "Load data: my CSV file")
    wait_text(page, "Which columns of reviews.csv")
    assert "'words', 'stars'" in (page.locator(f"{ROOT} .tlw-error").first.inner_text())
    # the text sources' labels are whole, and the two lists are in the page
    cut = page.eval_on_selector_all(
        f"{ROOT} .widget-toggle-button",
        "bs => bs.filter(b => b.offsetParent !== null)"
        ".map(b => [b.textContent.trim(), b.scrollWidth > b.clientWidth + 1])")
    assert {t for t, _ in cut} >= {"Images", "Text", "Sample sentences (offline)",
                                   "My CSV file", "My text folder"}, cut
    assert not [t for t, c in cut if c], f"cut toggle labels: {cut}"
    page.mouse.move(0, 0)
    nb.screenshot(f"data-csv-columns-{theme}", selector=ROOT)
    page.locator(f"{ROOT} .widget-dropdown:visible", has_text="Text column").locator(
        "select").select_option("words")
    page.locator(f"{ROOT} .widget-dropdown:visible", has_text="Label column").locator(
        "select").select_option("stars")
    click_button(page, "Load data: my CSV file")
    wait_text(page, "16 training and 4 validation texts")

    # the sample sentences, offline (loading data moves on to the Model tab: back to Data)
    page.wait_for_function(
        """() => Array.from(document.querySelectorAll(
                 '.tlw-studio > .widget-tab > .lm-TabBar .lm-TabBar-tab.lm-mod-current'))
               .some(e => e.textContent.trim().endsWith('Model'))""", timeout=10_000)
    open_tab(page, "Data")
    toggle(page, "Sample sentences")
    click_button(page, "Load data: sample sentences")
    wait_text(page, "240 training and 60 validation texts", timeout=120)
    assert page.locator(f"{ROOT} .tlw-studio-text").count() == 4  # in the Data tab (now behind)

    # 2 · Model: the packaged text encoder, pretrained, offline
    open_tab(page, "Model")
    wait_text(page, "sentence-transformers/all-MiniLM-L6-v2")
    click_button(page, "Create model")
    wait_text(page, "Created with pretrained weights", timeout=180)

    # 3 · Layers: the encoder's groups, only the head trainable
    open_tab(page, "Layers")
    panel = page.locator(f"{ROOT} .tlw-freeze-panel").first
    panel.locator(".tlw-fp-item").first.wait_for(state="visible", timeout=60_000)
    names = [t.strip() for t in
             panel.locator(".tlw-fp-item:not([hidden]) .tlw-fp-text").all_text_contents()]
    assert names[0] == "bert.embeddings" and names[-1] == "head", names

    # 4 · Train: one epoch of the head on cached features
    open_tab(page, "Train")
    click_button(page, "Prepare training")
    start = page.locator(f'{ROOT} .tlw-dashboard .tlw-run-controls button[data-action="start"]')
    start.wait_for(state="visible", timeout=30_000)
    start.click()
    page.wait_for_function(
        "() => document.querySelector('.tlw-studio .tlw-dashboard .tlw-badge')"
        "?.textContent === 'Finished'", timeout=240_000)
    assert nb.kernel("print(studio.trainer.feature_cache is not None)").strip() == "True"

    # 5 · Evaluate: a 2 x 2 matrix and the worst mistakes as sentences
    open_tab(page, "Evaluate")
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.tlw-studio .tlw-mk-text'))"
        ".some(e => e.offsetParent !== null)", timeout=120_000)
    cells = page.evaluate(
        """() => Array.from(document.querySelectorAll('.tlw-studio .tlw-cm'))
             .filter(m => m.offsetParent !== null)
             .map(m => m.querySelectorAll('td.tlw-cm-cell').length)""")
    assert cells == [4], cells
    page.set_viewport_size({"width": 1400, "height": 1500})  # the whole tab in one picture
    page.mouse.move(0, 0)
    shot = nb.screenshot(f"evaluate-{theme}", selector=ROOT)
    if theme == "light" and os.environ.get("TLW_UPDATE_DOCS_IMAGES") == "1":  # the README's
        shutil.copyfile(shot, REPO / "docs" / "images" / "studio-text-evaluate.png")

    # 6 · Predict: a typed sentence, markup shown as text
    open_tab(page, "Predict")
    assert page.locator(f"{ROOT} button.widget-upload:visible").count() == 0
    page.locator(f"{ROOT} textarea:visible").fill("<b>a warm</b>, funny and moving film")
    click_button(page, "Predict")
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.tlw-studio .widget-hprogress'))"
        ".filter(e => e.offsetParent !== null).length == 2", timeout=60_000)
    shown = page.locator(f"{ROOT} .tlw-studio-text:visible").last.inner_text()
    assert shown == "<b>a warm</b>, funny and moving film"
    nb.screenshot(f"predict-{theme}", selector=ROOT)
