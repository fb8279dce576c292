"""FreezePanel layout in a real page (issue 12), both themes: the LR inputs have room on both
sides (not against the right border or the scrollbar, not touching the Trainable column) and line
up under their heading. CSS only (js/freeze_panel.css)."""

from __future__ import annotations

import pytest

from .test_freeze_panel import RESNET, ROOT

pytestmark = pytest.mark.browser

GEOMETRY_JS = """
(root) => {
  const vp = root.querySelector('.tlw-fp-viewport');
  const v = vp.getBoundingClientRect();
  const inner = v.left + vp.clientLeft + vp.clientWidth;  // right edge inside border and scrollbar
  const head = root.querySelector('.tlw-fp-header .tlw-fp-lr').getBoundingClientRect();
  const rows = Array.from(root.querySelectorAll('.tlw-fp-item:not([hidden])')).map(r => {
    const input = r.querySelector('.tlw-fp-lr-input');
    const cells = r.querySelectorAll('.tlw-fp-num');
    if (!input || input.hidden) return null;
    const i = input.getBoundingClientRect();
    return {left: i.left, right: i.right, width: i.width,
            trainable: cells[cells.length - 1].getBoundingClientRect().right};
  }).filter(Boolean);
  return {inner, headRight: head.right, rows};
}
"""


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_lr_inputs_have_room_and_line_up(open_notebook, theme):
    nb = open_notebook(RESNET, name=f"freeze_panel_layout_{theme}", theme=theme)
    page = nb.page
    page.locator(f"{ROOT} .tlw-fp-item").first.wait_for(timeout=60_000)
    g = page.eval_on_selector(ROOT, GEOMETRY_JS)
    assert len(g["rows"]) >= 5, g
    for r in g["rows"]:
        assert g["inner"] - r["right"] >= 10, ("LR input against the right edge", r, g["inner"])
        assert r["left"] - r["trainable"] >= 8, ("LR input against the Trainable column", r)
        assert r["width"] >= 60, r
        assert abs(r["right"] - g["headRight"]) <= 2, ("not under its heading", r, g["headRight"])
    page.mouse.move(0, 0)
    nb.screenshot(f"lr-column-{theme}", selector=ROOT)
