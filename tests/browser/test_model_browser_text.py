"""ModelBrowser's Text tab in real JupyterLab + Chromium (issue 14): switch to Text, see the
packaged MiniLM offline with its size, licence and languages (the hub is off), pick it, and
create the model from that selection; light and dark screenshots."""

from __future__ import annotations

import os
import shutil

import pytest

from .conftest import REPO

pytestmark = pytest.mark.browser

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
CELLS = [
    ("import os\nos.environ['HF_HUB_OFFLINE'] = '1'\n"
     "import tlwidgets as tlw\nbrowser = tlw.ModelBrowser()\nbrowser"),
]
ROOT = ".tlw-mb"


def text_rows(page) -> list[list[str]]:
    return page.eval_on_selector(ROOT, """root => Array.from(root.querySelectorAll('.tlw-mbt-trow'),
        r => Array.from(r.children, c => c.textContent))""")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_switch_to_text_see_minilm_offline_and_create_it(open_notebook, theme):
    nb = open_notebook(CELLS, name=f"model_browser_text_{theme}", theme=theme, timeout=240)
    page = nb.page
    root = page.locator(ROOT).first
    root.locator(".tlw-mb-row").first.wait_for(timeout=60_000)  # the image table is up first
    assert root.locator(".tlw-mb-text").is_hidden()
    root.get_by_role("tab", name="Text (Hugging Face)").click()
    root.locator(".tlw-mbt-trow").first.wait_for(timeout=120_000)
    assert root.locator(".tlw-mb-viewport").is_hidden()  # the image table gives way
    assert nb.kernel("print(browser.modality)").strip() == "text"
    heads = root.locator(".tlw-mbt-ttable th").all_text_contents()
    assert heads == ["Model", "Source", "Params", "Layers", "Width", "Type", "Licence",
                     "Languages", "Offline"]
    rows = text_rows(page)
    assert rows[0] == [MINILM, "packaged", "22.7", "6", "384", "bert", "Apache-2.0", "English",
                       "✓"]
    n = int(nb.kernel("print(len(tlw.text_catalog()))"))
    assert len(rows) == n >= 5
    # HF_HUB_OFFLINE: the hub cannot be reached, so the curated rows say "no hub"
    page.wait_for_function("() => document.querySelectorAll('.tlw-mbt-trow.is-unavailable')"
                           ".length > 0", timeout=30_000)
    assert all(r[-1] == "no hub" for r in text_rows(page)[1:] if r[1] == "curated")
    # "available offline" keeps the packaged row only; a search narrows by type
    root.locator(".tlw-mbt-offline input").check()
    assert [r[0] for r in text_rows(page)] == [MINILM]
    root.locator(".tlw-mbt-offline input").uncheck()
    root.locator(".tlw-mbt-search").fill("roberta")
    assert {r[5] for r in text_rows(page)} == {"roberta", "xlm-roberta"}
    root.locator(".tlw-mbt-search").fill("")
    # a curated row's details give the ways out; the packaged one is available offline
    root.locator(".tlw-mbt-trow", has_text="FacebookAI/roberta-base").first.click()
    details = root.locator(".tlw-mbt-details")
    details.locator(".tlw-mbt-ways").wait_for(timeout=10_000)
    assert "HF_HUB_OFFLINE" in (details.text_content() or "")
    root.locator(".tlw-mbt-trow", has_text=MINILM).click()
    nb.wait_for(f"browser.selected == {MINILM!r}", timeout=30)
    assert "available offline" in (details.text_content() or "")
    assert root.locator(".tlw-mbt-trow.is-selected").count() == 1
    out = nb.kernel("m = browser.create_model(num_classes=2)\n"
                    "print(type(m).__name__, m.tlw_load_report.pretrained)")
    assert out.split() == ["TextClassifier", "True"]
    shot = nb.screenshot(f"text-{theme}", selector=ROOT)
    # the README's picture; refreshed on request only, so a test run leaves the checkout clean
    if theme == "light" and os.environ.get("TLW_UPDATE_DOCS_IMAGES") == "1":
        shutil.copyfile(shot, REPO / "docs" / "images" / "model_browser_text-light.png")
    # back to images: the image table again
    root.get_by_role("tab", name="Images (timm)").click()
    root.locator(".tlw-mb-viewport").wait_for(state="visible", timeout=10_000)
    assert root.locator(".tlw-mb-text").is_hidden()
