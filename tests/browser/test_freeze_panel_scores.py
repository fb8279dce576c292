"""FreezePanel "Score layers" in a real page (issue 13): the button is pressed in the page, the
kernel's thread scores each layer group of the packaged EfficientNet-Lite0 on the sample photos
(tlw.rank_layers), the Score column and the suggested freeze point appear, and one click on
"Apply suggested" freezes the model up to it in the kernel (tlw.freeze_to)."""

from __future__ import annotations

import os
import shutil

import pytest

from .test_freeze_panel import IMAGES, ROOT, kernel_value

pytestmark = pytest.mark.browser

CELLS = [(
    "import torch, tlwidgets as tlw\n"
    "torch.set_num_threads(1)\n"
    "data = tlw.sample_data(img_size=64)\n"
    "model = tlw.create_model('tf_efficientnet_lite0', data.num_classes)\n"
    "panel = tlw.FreezePanel(model, data=data)\n"
    "panel"
)]

FROZEN_GROUPS = ("[not any(p.requires_grad for n, p in model.named_parameters() "
                 "if n in g.param_names) for g in tlw.layer_groups(model)]")


def test_the_suggested_freeze_point_is_applied_in_one_click(open_notebook):
    nb = open_notebook(CELLS, name="freeze_panel_scores")
    page = nb.page
    root = page.locator(ROOT).first
    root.locator(".tlw-fp-item").first.wait_for()
    assert kernel_value(nb, FROZEN_GROUPS) == [False] * 9  # everything trains
    # no scores yet: no Score column, the bar below the controls says nothing more
    assert not root.locator(".tlw-fp-header .tlw-fp-score").is_visible()
    button = root.locator(".tlw-fp-score-button")
    assert button.is_enabled()

    button.click()
    page.wait_for_function(
        "() => document.querySelector('.tlw-fp-scores')?.dataset.state === 'done'",
        timeout=180_000)
    table = kernel_value(nb, "panel.layer_score_table[['name', 'knn_accuracy', 'suggested']]"
                             ".to_dict('list')")
    n = kernel_value(nb, "panel.suggested_freeze_to")
    best = table["name"][table["suggested"].index(True)]
    # the Score column: each group's k-NN accuracy (what picks the suggestion), the suggested
    # one starred
    assert root.locator(".tlw-fp-header .tlw-fp-score").is_visible()
    shown = root.evaluate(
        """r => Object.fromEntries(Array.from(r.querySelectorAll('.tlw-fp-item.tlw-fp-group:not([hidden])'))
             .map(e => [e.querySelector('.tlw-fp-text').textContent, e.querySelector('.tlw-fp-score').textContent]))""")
    for name, knn, suggested in zip(table["name"], table["knn_accuracy"], table["suggested"]):
        star, value = ("★ ", shown[name][2:]) if suggested else ("", shown[name])
        assert shown[name].startswith(star) and value.endswith(" %"), (name, shown)
        # one decimal (JS rounds a half up where Python's format rounds it to even)
        assert abs(float(value[:-2]) - 100 * knn) <= 0.05 + 1e-9, (name, shown)
    assert shown["head"] == ""
    assert root.locator(".tlw-fp-item.tlw-fp-suggested .tlw-fp-text").inner_text() == best
    assert f"freeze up to {best}" in root.locator(".tlw-fp-score-text").inner_text()
    assert root.locator(".tlw-fp-score-explain").inner_text().startswith("Score: k-NN accuracy of each")

    # one click applies it: tlw.freeze_to(model, n) in the kernel
    apply = root.locator(".tlw-fp-apply-suggested")
    assert apply.inner_text() == f"Apply suggested: freeze up to {best}"
    apply.click()
    nb.wait_for(f"{FROZEN_GROUPS} == [True] * {n} + [False] * {9 - n}")
    page.wait_for_function(
        "() => document.querySelector('.tlw-fp-apply-suggested')?.textContent.startsWith('✓')",
        timeout=10_000)
    assert apply.is_disabled()
    assert root.locator(".tlw-fp-slider-text").inner_text().startswith(f"{n} of 9 groups frozen")
    assert kernel_value(nb, "panel.totals['trainable']") == kernel_value(
        nb, "sum(p.numel() for p in model.parameters() if p.requires_grad)")
    page.mouse.move(0, 0)
    root.scroll_into_view_if_needed()
    shot = nb.screenshot("freeze_panel_scored-light", selector=ROOT)
    if os.environ.get("TLW_UPDATE_DOCS_IMAGES") == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, IMAGES / "freeze_panel_scored-light.png")
