"""ModelBrowser "Rank on my data" in a real page (issue 13): the button is pressed in the page,
progress shows while the kernel's thread scores two offline candidates (the packaged
EfficientNet-Lite0 weights and the same network with random weights) on the sample photos, and
then the score columns are in the table, sorted by rank, with the similarity card and one
sentence per score in the details pane of the top model. And Cancel, pressed while a slow
candidate is being scored: the page says cancelled, the unfinished candidate shows no scores,
and the button ranks again."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from .test_model_browser import IMAGES, ROOT, rows

pytestmark = pytest.mark.browser

CELLS = [(
    "import json, tlwidgets as tlw\n"
    "from tlwidgets.widgets.model_browser import SCORE_SENTENCES\n"
    "data = tlw.sample_data(img_size=64)\n"
    "scratch = tlw.create_model('tf_efficientnet_lite0', data.num_classes, weights='none')\n"
    "browser = tlw.ModelBrowser(data=data, candidates=['tf_efficientnet_lite0', scratch],\n"
    "                           per_class=10, check_hub=False)\n"
    "browser"
)]


def kernel_json(nb, expr: str):
    return json.loads(nb.kernel(f"print(json.dumps({expr}))"))


def test_rank_on_my_data_adds_score_columns_sorted_by_rank(open_notebook):
    nb = open_notebook(CELLS, name="model_browser_ranking")
    page = nb.page
    page.wait_for_selector(f"{ROOT} .tlw-mb-row")
    button = page.locator(f"{ROOT} .tlw-mb-rank-button")
    assert button.is_enabled() and button.inner_text() == "Rank on my data"
    assert "4 classes, 160 training images" in page.locator(f"{ROOT} .tlw-mb-rank-text").inner_text()
    # before a ranking the table has no score columns
    keys = page.eval_on_selector_all(f"{ROOT} .tlw-mb-head button", "bs => bs.map(b => b.dataset.key)")
    assert "score_order" not in keys and "logme" not in keys

    button.click()
    page.wait_for_function(
        "() => ['running', 'done'].includes(document.querySelector('.tlw-mb-rank')?.dataset.state)",
        timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('.tlw-mb-rank')?.dataset.state === 'done'", timeout=180_000)
    status = page.locator(f"{ROOT} .tlw-mb-rank-text").inner_text()
    assert status.startswith("Ranked 2 models on 40 of your images"), status

    # the kernel's ranking, for comparison with what the page shows
    ranked = json.loads(nb.kernel(
        "print(browser.scores[['rank', 'model', 'logme', 'knn_accuracy']].to_json(orient='records'))"))
    assert [r["model"] for r in ranked] == ["tf_efficientnet_lite0",
                                             "tf_efficientnet_lite0 (random init)"]
    keys = page.eval_on_selector_all(f"{ROOT} .tlw-mb-head button", "bs => bs.map(b => b.dataset.key)")
    assert keys[:4] == ["name", "score_order", "logme", "knn_pct"], keys
    heads = page.eval_on_selector_all(f"{ROOT} .tlw-mb-head button", "bs => bs.map(b => b.textContent)")
    assert heads[1] == "Rank▲" and heads[2:4] == ["LogME", "k-NN %"], heads
    # every heading whole, the table as wide as before (Family and GPU/s make room for the scores)
    cut = page.eval_on_selector_all(
        f"{ROOT} .tlw-mb-head button", "bs => bs.filter(b => b.scrollWidth > b.clientWidth + 1)"
        ".map(b => b.textContent)")
    assert cut == [] and "Family" not in heads and "GPU/s" not in heads
    assert not page.eval_on_selector(f"{ROOT} .tlw-mb-table", "t => t.scrollWidth > t.clientWidth")
    shown = rows(page)
    top = shown[: len(ranked)]
    # sorted by rank: the ranked rows first, in the kernel's order, with its figures
    assert [r[0] for r in top] == ["tf_efficientnet_lite0.in1k", "tf_efficientnet_lite0 (random init)"]
    assert [r[1] for r in top] == ["1", "2"]
    for cells, row in zip(top, ranked):
        assert cells[2] == f"{row['logme']:.3f}" and cells[3] == f"{100 * row['knn_accuracy']:.1f}"
    assert [r[1] for r in shown[len(ranked):]] == [""] * (len(shown) - len(ranked))
    assert page.locator(f"{ROOT} .tlw-mb-order-text").inner_text().startswith(
        "Sorted by the ranking on your data")

    # the details pane of the top model: its scores, a sentence each, and the similarity card
    page.locator(f"{ROOT} .tlw-mb-row", has_text="tf_efficientnet_lite0.in1k").first.click()
    nb.wait_for("browser.selected == 'tf_efficientnet_lite0.in1k'")
    scores = page.locator(f"{ROOT} .tlw-mb-scores")
    assert scores.locator(".tlw-mb-scores-rank").inner_text() == (
        "Rank 1 of 2 on your data (by k-NN accuracy)")
    text = scores.inner_text()
    explain = kernel_json(nb, "SCORE_SENTENCES")
    for sentence in explain.values():
        assert sentence in text
    looks = kernel_json(nb, "browser.scores.attrs['similarity']['tf_efficientnet_lite0']['looks_like']")
    assert scores.locator(".tlw-mb-similarity-looks").inner_text().startswith(
        f"Your images look most like: {looks[0]['imagenet_class']} (")
    page.mouse.move(0, 0)
    page.set_viewport_size({"width": 1400, "height": 1400})  # the whole widget in the picture
    page.locator(ROOT).scroll_into_view_if_needed()
    shot = nb.screenshot("model_browser_ranked-light", selector=ROOT)
    if os.environ.get("TLW_UPDATE_DOCS_IMAGES") == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, IMAGES / "model_browser_ranked-light.png")


SLOW_CELLS = [(
    "import json, time, torch, tlwidgets as tlw\n"
    "class Slow(torch.nn.Module):\n"
    "    # a candidate that takes 3 s a batch: long enough to press Cancel while it runs\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.conv = torch.nn.Conv2d(3, 8, 3)\n"
    "    def forward(self, x):\n"
    "        time.sleep(3.0)\n"
    "        return self.conv(x)\n"
    "data = tlw.sample_data(img_size=64)\n"
    "browser = tlw.ModelBrowser(data=data, candidates=['tf_efficientnet_lite0', Slow()],\n"
    "                           per_class=None, check_hub=False)\n"
    "browser"
)]


def wait_state(page, want: str, timeout: float) -> None:
    page.wait_for_function(
        f"() => document.querySelector('{ROOT} .tlw-mb-rank')?.dataset.state === '{want}'",
        timeout=timeout)


def test_cancel_while_ranking_shows_cancelled_and_the_button_ranks_again(open_notebook):
    nb = open_notebook(SLOW_CELLS, name="model_browser_ranking_cancel")
    page = nb.page
    page.wait_for_selector(f"{ROOT} .tlw-mb-row")
    button = page.locator(f"{ROOT} .tlw-mb-rank-button")
    cancel = page.locator(f"{ROOT} .tlw-mb-rank-cancel")
    text = page.locator(f"{ROOT} .tlw-mb-rank-text")
    assert cancel.is_hidden()
    button.click()
    # Lite0 is scored (a few seconds), then the slow candidate: press Cancel while it runs
    page.wait_for_function(
        f"() => document.querySelector('{ROOT} .tlw-mb-rank-text')?.textContent.includes('· Slow')",
        timeout=120_000)
    assert button.is_disabled() and cancel.is_visible()
    cancel.click()
    assert text.inner_text() == "Cancelling after the current batch…"
    assert cancel.is_disabled()  # one press is enough
    wait_state(page, "cancelled", 30_000)
    status = text.inner_text()
    assert status.startswith("Cancelled. Ranked 1 model on 160 of your images"), status
    assert status.endswith("The others are not scored (Rank “–”)."), status
    assert cancel.is_hidden() and page.locator(f"{ROOT} .tlw-mb-rank-progress").is_hidden()

    # the kernel kept Lite0's finished scores and marked the slow one cancelled, unscored
    ranked = json.loads(nb.kernel(
        "print(browser.scores[['rank', 'model', 'logme', 'knn_accuracy', 'error']]"
        ".to_json(orient='records'))"))
    assert [(r["model"], r["error"]) for r in ranked] == [
        ("tf_efficientnet_lite0", ""), ("Slow", "cancelled")]
    assert ranked[1]["rank"] is None and ranked[1]["logme"] is None
    assert kernel_json(nb, "browser.scores.attrs['cancelled']") is True
    # the page: Lite0 ranked with its figures; Slow shows "–" (its tooltip: cancelled) and no
    # score at all
    shown = {r[0]: r for r in rows(page)}
    lite0, slow = shown["tf_efficientnet_lite0.in1k"], shown["Slow"]
    assert lite0[1] == "1" and lite0[2] == f"{ranked[0]['logme']:.3f}"
    assert lite0[3] == f"{100 * ranked[0]['knn_accuracy']:.1f}"
    assert slow[1:4] == ["–", "", ""], slow
    rank_cell = page.locator(f"{ROOT} .tlw-mb-row", has_text="Slow").first.locator("div, td, span")
    titles = rank_cell.evaluate_all("els => els.map(e => e.title)")
    assert "not scored: the ranking was cancelled" in titles, titles
    page.locator(f"{ROOT} .tlw-mb-row", has_text="Slow").first.click()
    nb.wait_for("browser.selected == 'Slow'")
    details = page.locator(f"{ROOT} .tlw-mb-scores").inner_text()
    assert "not scored: the ranking was cancelled" in details and "LogME" not in details
    page.locator(ROOT).scroll_into_view_if_needed()
    nb.screenshot("model_browser_ranking_cancelled-light", selector=ROOT)

    # the button is usable again: it starts a new ranking (cancelled again from the kernel)
    assert button.is_enabled() and button.inner_text() == "Rank again"
    button.click()
    wait_state(page, "running", 30_000)
    nb.kernel("browser.cancel_ranking(); browser.wait_ranking(60)", timeout=90)
    wait_state(page, "cancelled", 30_000)
    assert button.is_enabled()
