"""ModelBrowser in a real page (issue 12), both themes: it opens in the order a newcomer would
choose from and says why; every column heading is whole ("Offline" at the right edge); with no
hub, rows whose weights are not on this machine say so, and the details pane gives the way out,
before create_model would fail."""

from __future__ import annotations

import json

import pytest

from .test_model_browser import ROOT, rows, row_named

pytestmark = pytest.mark.browser

CELLS = [
    "import os, json, numpy as np, tlwidgets as tlw\n"
    "os.environ['HF_HUB_OFFLINE'] = '1'  # as on an air-gapped laptop: no hub\n"
    "from tlwidgets.widgets.model_browser import ORDER_NOTE, recommended_rank\n"
    "catalog = tlw.catalog()\n"
    "expected = catalog['name'].to_numpy()[np.argsort(recommended_rank(catalog))].tolist()\n"
    "browser = tlw.ModelBrowser(catalog=catalog)\n"
    "browser",
]


def kernel_json(nb, expr: str):
    return json.loads(nb.kernel(f"print(json.dumps({expr}))"))


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_order_headings_and_rows_that_cannot_be_used_now(open_notebook, theme):
    nb = open_notebook(CELLS, name=f"model_browser_order_{theme}", theme=theme)
    page = nb.page
    page.wait_for_selector(f"{ROOT} .tlw-mb-row")
    expected = kernel_json(nb, "expected[:12]")
    offline = kernel_json(nb, "catalog[catalog.cached].name.tolist()")

    # -- the first rows are the recommended order, and a line says why ---------------------------
    shown = [r[0] for r in rows(page)][:12]
    assert shown == expected, (shown, expected)
    assert set(shown[: len(offline)]) == set(offline)  # weights on this machine first
    note = page.locator(f"{ROOT} .tlw-mb-order-text").inner_text()
    assert note == kernel_json(nb, "ORDER_NOTE")
    assert not page.locator(f"{ROOT} .tlw-mb-reset-order").is_visible()

    # -- every heading is whole and inside the table, "Offline" included -------------------------
    heads = page.eval_on_selector_all(
        f"{ROOT} .tlw-mb-head button",
        """bs => bs.map(b => ({key: b.dataset.key, text: b.textContent,
                               cut: b.scrollWidth > b.clientWidth + 1,
                               right: b.getBoundingClientRect().right}))""")
    assert not [h for h in heads if h["cut"]], heads
    table = page.eval_on_selector(
        f"{ROOT} .tlw-mb-table",
        "t => ({right: t.getBoundingClientRect().right, overflow: t.scrollWidth > t.clientWidth})")
    assert heads[-1]["key"] == "cached" and heads[-1]["text"] == "Offline"
    assert not table["overflow"] and heads[-1]["right"] <= table["right"], (heads[-1], table)

    # -- no hub: rows say so, the details give the ways out ------------------------------------
    page.wait_for_function(
        "() => document.querySelector('.tlw-mb-hub')?.textContent.includes('No Hugging Face Hub')",
        timeout=30_000)
    cells = {r[0]: r[-1] for r in rows(page)}
    for name in offline:
        assert cells[name] == "✓"
    unusable = [n for n in shown if n not in offline]
    assert unusable and all(cells[n] == "no hub" for n in unusable), cells
    first_bad = unusable[0]
    row = row_named(page, first_bad)
    assert "is-unavailable" in (row.get_attribute("class") or "")
    assert "cannot be created with pretrained weights now" in (row.get_attribute("title") or "")
    row.click()
    nb.wait_for(f"browser.selected == {first_bad!r}")
    weights = page.locator(f"{ROOT} .tlw-mb-weights")
    assert weights.get_attribute("data-availability") == "needs-hub"
    text = weights.inner_text()
    assert "cannot be created with pretrained weights now" in text and "HF_HUB_OFFLINE" in text
    ways = page.locator(f"{ROOT} .tlw-mb-ways li").all_inner_texts()
    assert len(ways) == 4 and any(f'tlw.register_weights("{first_bad}"' in w for w in ways)
    assert any('weights="none"' in w for w in ways)
    # ...and that is what create_model says too
    refused = nb.kernel(
        "try:\n"
        "    browser.create_model(num_classes=3)\n"
        "except tlw.WeightsUnavailableError as e:\n"
        "    print('refused')")
    assert refused.strip() == "refused"
    row_named(page, offline[0]).click()
    nb.wait_for(f"browser.selected == {offline[0]!r}")
    assert weights.get_attribute("data-availability") == "offline"
    page.mouse.move(0, 0)
    nb.screenshot(f"order-{theme}", selector=ROOT)

    # -- a column heading sorts by it; a button goes back to the recommended order ---------------
    page.locator(f"{ROOT} .tlw-mb-head button[data-key='top1']").click()
    assert page.locator(f"{ROOT} .tlw-mb-order-text").inner_text().startswith(
        "Sorted by Top-1, ascending")
    back = page.locator(f"{ROOT} .tlw-mb-reset-order")
    assert back.is_visible()
    back.click()
    page.eval_on_selector(f"{ROOT} .tlw-mb-viewport", "v => { v.scrollTop = 0; }")
    page.wait_for_function(
        "(name) => { const r = Array.from(document.querySelectorAll('.tlw-mb-row'))"
        ".sort((a, b) => a._pos - b._pos)[0]; return r && r.children[0].textContent === name; }",
        arg=expected[0], timeout=10_000)
    assert page.locator(f"{ROOT} .tlw-mb-order-text").inner_text() == note
