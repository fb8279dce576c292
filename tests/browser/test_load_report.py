"""Issue 12's stray ``None`` above a widget: a cell that prints a random-init model's load report
(as the quickstart does for its model) and then shows the model's FreezePanel prints what the
model is and what trains, never ``None``."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

CELLS = [
    "import torch, tlwidgets as tlw\n"
    "torch.set_num_threads(1)\n"
    "model = tlw.create_model('tf_efficientnet_lite0', num_classes=4, weights='none',"
    " freeze='head')\n"
    "print(model.tlw_load_report)\n"
    "tlw.FreezePanel(model)",
]


def test_a_random_init_model_prints_its_report_above_the_panel_not_none(open_notebook):
    nb = open_notebook(CELLS, name="load_report_random_init")
    page = nb.page
    page.locator(".tlw-freeze-panel .tlw-fp-item").first.wait_for(timeout=60_000)
    stream = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stdout']")
    text = stream.first.inner_text()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[0].startswith("No pretrained weights: every tensor starts from random"), lines
    assert any(line.startswith("trainable: 5,124 of 3.4M parameters (head only)")
               for line in lines), lines
    assert "None" not in lines
    # the panel comes after the printed report, in the same cell
    report_box = stream.first.bounding_box()
    panel_box = page.locator(".tlw-freeze-panel").first.bounding_box()
    assert report_box["y"] + report_box["height"] <= panel_box["y"] + 1
    nb.screenshot("report-and-panel")
