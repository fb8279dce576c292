"""ModelBrowser in real JupyterLab + Chromium: search, sort, selection both ways, keyboard,
the scatter, names shown as text, the timing figures, and the light/dark screenshots."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "docs" / "images"
ROOT = ".tlw-mb"
MAX_ROWS = 100

FULL_CATALOG = [
    "import tlwidgets as tlw\ncatalog = tlw.catalog()\nbrowser = tlw.ModelBrowser(catalog=catalog)\nbrowser",
]

# Names of the rows in the DOM, in display order (rows are recycled, so DOM order is not enough).
_ROWS_JS = """
(root) => Array.from(root.querySelectorAll('.tlw-mb-row'))
  .sort((a, b) => a._pos - b._pos)
  .map(r => Array.from(r.children, c => c.textContent))
"""

# The rows whose box lies inside the scrolled viewport, in display order.
_VISIBLE_JS = """
(root) => {
  const vp = root.querySelector('.tlw-mb-viewport').getBoundingClientRect();
  return Array.from(root.querySelectorAll('.tlw-mb-row'))
    .filter(r => { const b = r.getBoundingClientRect(); return b.top >= vp.top - 1 && b.bottom <= vp.bottom + 1; })
    .sort((a, b) => a._pos - b._pos)
    .map(r => ({ name: r.children[0].textContent, pos: r._pos, selected: r.classList.contains('is-selected'),
                 cursor: r.classList.contains('is-cursor') }));
}
"""


# True once the row at display position `pos` is in the DOM (rows are drawn on scroll).
_HAS_POS_JS = """
(pos) => Array.from(document.querySelectorAll('.tlw-mb-viewport .tlw-mb-row')).some(r => r._pos === pos)
"""


def timings(page) -> list[dict]:
    return page.evaluate("() => (window.__tlwTimings && window.__tlwTimings.model_browser) || []")


def rows(page) -> list[list[str]]:
    return page.eval_on_selector(ROOT, _ROWS_JS)


def visible(page) -> list[dict]:
    return page.eval_on_selector(ROOT, _VISIBLE_JS)


def row_count(page) -> int:
    return page.locator(f"{ROOT} .tlw-mb-row").count()


def count_text(page) -> str:
    return page.locator(f"{ROOT} .tlw-mb-count").inner_text()


def shown_of_total(page) -> tuple[int, int]:
    shown, total = re.match(r"([\d,]+) of ([\d,]+) models", count_text(page)).groups()
    return int(shown.replace(",", "")), int(total.replace(",", ""))


def column(page, key: str) -> int:
    keys = page.eval_on_selector_all(
        f"{ROOT} .tlw-mb-head button", "bs => bs.map(b => b.dataset.key)"
    )
    return keys.index(key)


def row_named(page, name: str):
    """The row whose name cell is exactly `name`."""
    exact = re.compile(f"^{re.escape(name)}$")
    return page.locator(f"{ROOT} .tlw-mb-row").filter(has=page.locator(".tlw-name", has_text=exact))


def choose(page, label: str, value: str) -> None:
    page.locator(f"{ROOT} select[aria-label='{label}']").select_option(value)


def number(text: str) -> float:
    return float(text.replace(",", "")) if text else float("nan")


def kernel_value(nb, expr: str):
    return json.loads(nb.kernel(f"import json; print(json.dumps({expr}))"))


def test_search_sort_selection_keyboard_scatter_and_timings(open_notebook):
    nb = open_notebook(FULL_CATALOG, name="model_browser_full")
    page = nb.page
    page.wait_for_selector(f"{ROOT} .tlw-mb-row")
    total = kernel_value(nb, "len(catalog)")
    assert shown_of_total(page) == (total, total)
    first = [t for t in timings(page) if t["kind"] == "first-render"]
    assert len(first) == 1 and first[0]["total"] == total
    dom_rows = [row_count(page)]
    # the most row elements ever in the DOM, checked on every mutation from here on
    page.eval_on_selector(
        ROOT,
        """root => {
          window.__tlwMaxRows = root.querySelectorAll('.tlw-mb-row').length;
          new MutationObserver(() => {
            window.__tlwMaxRows = Math.max(window.__tlwMaxRows, root.querySelectorAll('.tlw-mb-row').length);
          }).observe(root, { childList: true, subtree: true });
        }""",
    )

    # -- typing a search filters the rows, one keystroke at a time -------------------------------
    search = page.locator(f"{ROOT} .tlw-mb-search")
    search.click()
    search.press_sequentially("resnet5", delay=120)
    page.wait_for_function(
        "() => window.__tlwTimings.model_browser.filter(t => t.kind === 'search').length >= 7"
    )
    keystrokes = [t for t in timings(page) if t["kind"] == "search"]
    assert [t["query"] for t in keystrokes] == [
        "r",
        "re",
        "res",
        "resn",
        "resne",
        "resnet",
        "resnet5",
    ]
    expected = kernel_value(
        nb,
        "int((catalog['name'].str.lower().str.contains('resnet5', regex=False) | "
        "catalog['family'].fillna('').str.lower().str.contains('resnet5', regex=False)).sum())",
    )
    assert shown_of_total(page) == (expected, total)
    assert keystrokes[-1]["shown"] == expected
    names = [r[0] for r in rows(page)]
    assert names and all("resnet5" in n.lower() for n in names)
    dom_rows.append(row_count(page))
    # A second pass: on a shared 2-core machine one keystroke can meet a busy CPU, and the
    # best of two tells that apart from a slow filter.
    search.fill("")
    search.press_sequentially("resnet5", delay=120)
    page.wait_for_function(
        "() => window.__tlwTimings.model_browser.filter(t => t.kind === 'search').length >= 15"
    )
    again = [t for t in timings(page) if t["kind"] == "search"][8:]
    assert [t["query"] for t in again] == [t["query"] for t in keystrokes]
    assert shown_of_total(page) == (expected, total)

    # wildcards: the whole name must match
    search.fill("*in21k*")
    expected = kernel_value(nb, "int(catalog['name'].str.lower().str.contains('in21k').sum())")
    assert shown_of_total(page) == (expected, total)
    assert all("in21k" in r[0] for r in rows(page))
    # a wildcard matches the name or the family: 'resnet*' finds ecaresnet50d (family resnet)
    search.fill("resnet*")
    expected = kernel_value(
        nb,
        "int((catalog['name'].str.lower().str.startswith('resnet') | "
        "catalog['family'].fillna('').str.lower().str.startswith('resnet')).sum())",
    )
    assert shown_of_total(page) == (expected, total)
    family = column(page, "family")
    assert all(r[0].startswith("resnet") or r[family].startswith("resnet") for r in rows(page))
    search.fill("")
    assert shown_of_total(page) == (total, total)

    # -- each filter shows what the same filter in pandas keeps --------------------------------
    choose(page, "Family", "convnext")
    expected = kernel_value(nb, "int((catalog.family == 'convnext').sum())")
    assert shown_of_total(page) == (expected, total)
    page.locator(f"{ROOT} label", has_text="commercial use allowed").locator("input").check()
    expected = kernel_value(
        nb, "int(((catalog.family == 'convnext') & ~catalog.noncommercial).sum())"
    )
    assert 0 < shown_of_total(page)[0] == expected
    choose(page, "Family", "")
    choose(page, "Pretrained on", "in22k")
    choose(page, "Licence", "apache-2.0")
    page.locator(f"{ROOT} input[aria-label='Minimum parameters (millions)']").fill("10")
    page.locator(f"{ROOT} input[aria-label='Maximum parameters (millions)']").fill("100")
    choose(page, "Input size", "384")
    expected = kernel_value(
        nb,
        "int((~catalog.noncommercial & (catalog.pretrain == 'in22k') & "
        "(catalog.license == 'apache-2.0') & catalog.params_m.between(10, 100) & "
        "(catalog.img_size == 384)).sum())",
    )
    assert 0 < shown_of_total(page)[0] == expected
    page.locator(f"{ROOT} button", has_text="Clear filters").click()
    assert shown_of_total(page) == (total, total)
    offline = page.locator(f"{ROOT} label", has_text="available offline").locator("input")
    offline.check()
    assert shown_of_total(page) == (kernel_value(nb, "int(catalog.cached.sum())"), total)
    offline.uncheck()
    assert shown_of_total(page) == (total, total)

    # -- sorting a column reorders; NaN stays last -------------------------------------------------
    top1 = column(page, "top1")
    header = page.locator(f"{ROOT} .tlw-mb-head button[data-key='top1']")
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    values = [number(r[top1]) for r in rows(page)]
    assert values == sorted(values) and values[0] == pytest.approx(
        kernel_value(nb, "float(catalog.top1.min())"), abs=0.006
    )
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    values = [number(r[top1]) for r in rows(page)]
    assert values == sorted(values, reverse=True)
    assert values[0] == pytest.approx(kernel_value(nb, "float(catalog.top1.max())"), abs=0.006)
    # scroll to the end: the models without a top-1 are there, and the DOM stays small
    page.eval_on_selector(f"{ROOT} .tlw-mb-viewport", "v => { v.scrollTop = v.scrollHeight; }")
    page.wait_for_function(_HAS_POS_JS, arg=total - 1)
    last = rows(page)
    assert last[-1][top1] == "" and len(last) <= MAX_ROWS
    dom_rows.append(len(last))
    page.eval_on_selector(f"{ROOT} .tlw-mb-viewport", "v => { v.scrollTop = 0; }")
    page.wait_for_function(_HAS_POS_JS, arg=0)

    # -- clicking a row sets browser.selected in the kernel ---------------------------------------
    shown = visible(page)
    target = shown[2]["name"]
    row_named(page, target).click()
    nb.wait_for(f"browser.selected == {target!r}")
    assert page.locator(f"{ROOT} .tlw-mb-details h4").inner_text() == target
    assert [r["name"] for r in visible(page) if r["selected"]] == [target]
    # a filter that hides the selection says so, and keeps the details
    search.fill("no-model-is-called-this")
    assert page.locator(f"{ROOT} .tlw-mb-empty").inner_text() == "No model matches these filters."
    assert "Hidden by the current filters." in page.locator(f"{ROOT} .tlw-mb-details").inner_text()
    search.fill("")
    assert [r["name"] for r in visible(page) if r["selected"]] == [target]
    row_named(page, target).click()  # focus the table again, the cursor on the selection

    # -- keyboard: arrows move, Enter selects, the cursor stays in view ----------------------------
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    nb.wait_for(f"browser.selected == {shown[4]['name']!r}")
    for _ in range(25):
        page.keyboard.press("ArrowDown")
    cursor = [r for r in visible(page) if r["cursor"]]
    assert len(cursor) == 1, "the keyboard cursor scrolled out of view"
    assert cursor[0]["pos"] == shown[4]["pos"] + 25
    page.keyboard.press("ArrowUp")
    cursor_up = [r["name"] for r in visible(page) if r["cursor"]]
    page.keyboard.press("Enter")
    nb.wait_for(f"browser.selected == {cursor_up[0]!r}")
    dom_rows.append(row_count(page))

    # -- setting selected in the kernel selects the row and scrolls to it --------------------------
    far = kernel_value(
        nb, "catalog.sort_values('top1', ascending=False, na_position='last')['name'].iloc[700]"
    )
    nb.kernel(f"browser.selected = {far!r}")
    page.wait_for_function(
        "(name) => Array.from(document.querySelectorAll('.tlw-mb-row.is-selected'))"
        ".some(r => r.children[0].textContent === name)",
        arg=far,
    )
    assert [r["name"] for r in visible(page) if r["selected"]] == [far]
    assert page.locator(f"{ROOT} .tlw-mb-details h4").inner_text() == far
    # ... and clears filters that would hide it, saying so
    search.fill("convnext")
    hidden = kernel_value(
        nb,
        "catalog[~catalog.name.str.contains('convnext') & ~catalog.family.fillna('').str.contains('convnext')].name.iloc[0]",
    )
    nb.kernel(f"browser.selected = {hidden!r}")
    page.wait_for_function(
        "(name) => Array.from(document.querySelectorAll('.tlw-mb-row.is-selected'))"
        ".some(r => r.children[0].textContent === name)",
        arg=hidden,
    )
    assert search.input_value() == ""
    assert page.locator(f"{ROOT} .tlw-mb-note").inner_text() == f"Filters cleared to show {hidden}."
    assert [r["name"] for r in visible(page) if r["selected"]] == [hidden]

    # -- clicking a dot in the scatter selects that model -----------------------------------------
    dot = kernel_value(
        nb, "catalog.dropna(subset=['top1', 'gpu_img_s']).sort_values('top1')['name'].iloc[-1]"
    )
    point = page.eval_on_selector(f"{ROOT} canvas", "(c, name) => c.tlwPointOf(name)", dot)
    assert point is not None
    page.mouse.click(point["x"], point["y"])
    nb.wait_for(f"browser.selected == {dot!r}")
    assert page.locator(f"{ROOT} .tlw-mb-details h4").inner_text() == dot
    # the switch to parameters moves the dots; a click still selects the dot's model
    small = kernel_value(
        nb, "catalog.dropna(subset=['top1', 'params_m']).sort_values('params_m')['name'].iloc[0]"
    )
    choose(page, "Scatter x axis", "params_m")
    point = page.eval_on_selector(f"{ROOT} canvas", "(c, name) => c.tlwPointOf(name)", small)
    page.mouse.click(point["x"], point["y"])
    nb.wait_for(f"browser.selected == {small!r}")

    # -- the figures ------------------------------------------------------------------------------
    dom_rows.append(row_count(page))
    max_rows = page.evaluate("() => window.__tlwMaxRows")
    first_ms = first[0]["ms"]
    key_ms = [min(a["ms"], b["ms"]) for a, b in zip(keystrokes, again)]
    sorts = [t["ms"] for t in timings(page) if t["kind"] == "sort"]
    print(
        f"\nModelBrowser timings, full catalog ({total} models), headless Chromium:"
        f"\n  first render: {first_ms:.1f} ms (target < 300 ms)"
        f"\n  filter per keystroke ('resnet5' typed one key at a time): "
        + ", ".join(f"{t['query']!r} {t['ms']:.1f} ms -> {t['shown']} rows" for t in keystrokes)
        + "\n  of which filter / table / scatter: "
        + ", ".join(f"{t['filter']:.1f}/{t['table']:.1f}/{t['plot']:.1f}" for t in keystrokes)
        + "\n  second pass: "
        + ", ".join(f"{t['query']!r} {t['ms']:.1f} ms" for t in again)
        + f"\n  slowest keystroke, best of the two passes: {max(key_ms):.1f} ms (target < 30 ms)"
        f"\n  sort by a column: {', '.join(f'{m:.1f} ms' for m in sorts)}"
        f"\n  row elements in the DOM at checkpoints: {dom_rows}; most at any time: {max_rows} (cap {MAX_ROWS})"
    )
    assert max(dom_rows) <= max_rows <= MAX_ROWS
    assert first_ms < 300
    assert max(key_ms) < 30

    # the screenshot of the light theme, for the README
    nb.kernel("browser.selected = 'convnext_tiny.fb_in22k_ft_in1k'")
    page.wait_for_selector(f"{ROOT} .tlw-mb-row.is-selected")
    page.set_viewport_size({"width": 1400, "height": 1400})  # the whole widget in the picture
    page.locator(ROOT).scroll_into_view_if_needed()
    shot = nb.screenshot("model_browser-light", selector=ROOT)
    # the README's picture: refreshed on request only, so a test run leaves the checkout clean
    if os.environ.get("TLW_UPDATE_DOCS_IMAGES") == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, IMAGES / "model_browser-light.png")


XSS_CELLS = [
    """import pandas as pd
import tlwidgets as tlw
evil = "<img src=x onerror=alert(1)>"
frame = pd.DataFrame({
    "name": [evil, "resnet18.a1_in1k", "<img src=x onerror=window.__tlwXss=1>.b"],
    "family": ["<b>bold</b>", "resnet", "resnet"],
    "pretrain": ["<i>in1k</i>", "in1k", "in1k"],
    "license": ["<script>window.__tlwXss=2</script>", "apache-2.0", "apache-2.0"],
    "paper_ids": ["<img src=y onerror=alert(2)>", None, None],
    "hf_hub_id": ["<a href=javascript:alert(3)>hub</a>", "timm/resnet18.a1_in1k", None],
    "params_m": [1.0, 11.7, 2.0], "top1": [50.0, 71.5, 60.0], "gpu_img_s": [100.0, 9000.0, 50.0],
    "img_size": [224, 224, 224], "cached": [False, True, False], "noncommercial": [False, False, False],
})
browser = tlw.ModelBrowser(catalog=frame)""",
]


def test_names_are_shown_as_text_and_run_nothing(open_notebook):
    nb = open_notebook(XSS_CELLS, name="model_browser_xss")
    page = nb.page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.evaluate(
        "() => { window.__alerts = []; window.alert = (m) => window.__alerts.push(String(m)); }"
    )
    nb.run_cell("browser")
    page.wait_for_selector(f"{ROOT} .tlw-mb-row")
    evil = "<img src=x onerror=alert(1)>"
    nb.kernel(f"browser.selected = {evil!r}")
    page.wait_for_function(
        "(name) => document.querySelector('.tlw-mb-details h4')?.textContent === name", arg=evil
    )
    page.wait_for_timeout(500)  # give an injected onerror/script the time it would need to run
    names = [r[0] for r in rows(page)]
    assert evil in names and "<img src=x onerror=window.__tlwXss=1>.b" in names
    assert "<b>bold</b>" in [r[1] for r in rows(page)]
    details = page.locator(f"{ROOT} .tlw-mb-details").inner_text()
    for text in (
        "<script>window.__tlwXss=2</script>",
        "<img src=y onerror=alert(2)>",
        "<a href=javascript:alert(3)>hub</a>",
    ):
        assert text in details
    assert (
        page.eval_on_selector(ROOT, "r => r.querySelectorAll('img, script, b, i, a').length") == 0
    )
    assert page.evaluate("() => window.__alerts.length") == 0 and dialogs == []
    assert page.evaluate("() => window.__tlwXss === undefined")
    # the search box treats markup as text too
    page.locator(f"{ROOT} .tlw-mb-search").fill("<img")
    assert shown_of_total(page) == (2, 3)


def test_dark_theme_screenshot(open_notebook):
    nb = open_notebook(FULL_CATALOG, name="model_browser_dark", theme="dark")
    page = nb.page
    page.wait_for_selector(f"{ROOT} .tlw-mb-row")
    nb.kernel("browser.selected = 'convnext_tiny.fb_in22k_ft_in1k'")
    page.wait_for_selector(f"{ROOT} .tlw-mb-row.is-selected")
    # the theme's variables reach the widget: its background is JupyterLab's dark layout colour
    background = page.eval_on_selector(ROOT, "r => getComputedStyle(r).backgroundColor")
    channels = [int(c) for c in re.findall(r"\d+", background)[:3]]
    assert sum(channels) / 3 < 80, f"the browser is not dark in the dark theme: {background}"
    # the scatter's x-axis title is drawn in the theme's (light) text colour, not in a
    # light-theme fallback (the canvas reads the colours once the view is attached)
    title = page.eval_on_selector(
        f"{ROOT} canvas",
        """c => {
          const s = c.width / 440;
          const d = c.getContext('2d').getImageData(Math.round(180 * s), Math.round(257 * s),
                                                    Math.round(110 * s), Math.round(12 * s)).data;
          let best = 0;
          for (let i = 0; i < d.length; i += 4) {
            if (d[i + 3] > 0) best = Math.max(best, (d[i] + d[i + 1] + d[i + 2]) / 3);
          }
          return best;
        }""",
    )
    assert title > 150, f"the scatter's axis title is dark on the dark theme (brightness {title})"
    page.set_viewport_size({"width": 1400, "height": 1400})  # the whole widget in the picture
    page.locator(ROOT).scroll_into_view_if_needed()
    shot = nb.screenshot("model_browser-dark", selector=ROOT)
    # the README's picture: refreshed on request only, so a test run leaves the checkout clean
    if os.environ.get("TLW_UPDATE_DOCS_IMAGES") == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, IMAGES / "model_browser-dark.png")
