"""Studio in a real JupyterLab page: a newcomer's path through the six tabs, all by clicks
(Data → Model → Layers → Train → Evaluate → Predict), on the offline sample photos and the
packaged pretrained EfficientNet-Lite0, at 64 px and three epochs of the head so it fits a
laptop CPU."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from .conftest import REPO

pytestmark = pytest.mark.browser

ROOT = ".tlw-studio"
CELLS = [
    "import torch, tlwidgets as tlw\n"
    "torch.set_num_threads(1)\n"
    "torch.manual_seed(0)\n"
    "studio = tlw.Studio(img_size=64, epochs=3)\n"
    "studio",
]


def open_tab(page, title: str) -> None:
    """Click the Studio's own tab whose title ends with ``title`` and wait until it shows."""
    tab = page.locator(f"{ROOT} > .widget-tab > .lm-TabBar .lm-TabBar-tab", has_text=title)
    tab.first.click()
    page.wait_for_function(
        """t => Array.from(document.querySelectorAll(
                 '.tlw-studio > .widget-tab > .lm-TabBar .lm-TabBar-tab.lm-mod-current'))
               .some(e => e.textContent.trim().endsWith(t))""",
        arg=title,
        timeout=10_000,
    )


# The Predict tab's rows: a class label, a probability bar, a percentage; only the visible
# bars count (the dashboard's progress bar sits in the hidden Train tab).
SHOWN_CLASSES_JS = """() => Array.from(document.querySelectorAll('.tlw-studio .widget-hprogress'))
  .filter(e => e.offsetParent !== null)
  .map(e => e.parentElement.querySelector('.widget-label')?.textContent || '')
  .filter(t => t && !t.endsWith('%'))"""


def wait_text(page, text: str, timeout: float = 60) -> None:
    page.wait_for_function(
        "t => (document.querySelector('.tlw-studio')?.textContent || '').includes(t)",
        arg=text,
        timeout=timeout * 1000,
    )


def click_button(page, label: str) -> None:
    page.locator(f"{ROOT} button.jupyter-button:visible", has_text=label).first.click()


def test_the_studio_runs_its_six_tabs_end_to_end(open_notebook):
    times: dict[str, float] = {}
    t = time.monotonic()
    nb = open_notebook(CELLS, name="studio_end_to_end")
    page = nb.page
    page.wait_for_selector(f"{ROOT} .lm-TabBar-tab", timeout=60_000)
    titles = page.eval_on_selector_all(
        f"{ROOT} > .widget-tab > .lm-TabBar .lm-TabBar-tab",
        "ts => ts.map(e => e.textContent.trim())",
    )
    assert [s.split(" · ")[1] for s in titles] == [
        "Data", "Model", "Layers", "Train", "Evaluate", "Predict"]
    times["open"] = time.monotonic() - t

    # 1 · Data: the sample photos load; one thumbnail per class appears.
    t = time.monotonic()
    open_tab(page, "Data")
    click_button(page, "Load data")
    wait_text(page, "4 classes")
    nb.wait_for("studio.data is not None and studio.data.num_classes == 4")
    thumbs = page.locator(f"{ROOT} .widget-image").count()
    assert thumbs >= 4
    times["data"] = time.monotonic() - t

    # 2 · Model: the packaged pretrained weights load offline.
    t = time.monotonic()
    open_tab(page, "Model")
    click_button(page, "Create model")
    wait_text(page, "Created with pretrained weights", timeout=120)
    times["model"] = time.monotonic() - t

    # 3 · Layers: the FreezePanel is in the page, with the head trainable.
    open_tab(page, "Layers")
    page.wait_for_selector(f"{ROOT} .tlw-freeze-panel .tlw-fp-item", state="visible",
                           timeout=30_000)
    assert nb.kernel("print(all(p.requires_grad for p in "
                     "studio.model.get_classifier().parameters()))").strip() == "True"

    # 4 · Train: prepare, Start from the page, the run finishes and its curve is drawn.
    t = time.monotonic()
    open_tab(page, "Train")
    click_button(page, "Prepare training")
    start = page.locator(f'{ROOT} .tlw-dashboard .tlw-run-controls button[data-action="start"]')
    start.wait_for(state="visible", timeout=30_000)
    start.click()
    page.wait_for_function(
        "() => document.querySelector('.tlw-studio .tlw-dashboard .tlw-badge')"
        "?.textContent === 'Finished'",
        timeout=240_000,
    )
    assert nb.kernel("print(studio.trainer.state)").strip() == "finished"
    steps = int(nb.kernel("print(len(studio.trainer.steps))").strip())
    assert steps > 0
    times["train"] = time.monotonic() - t

    # 5 · Evaluate: the confusion matrix is a classes x classes heat map in the page.
    t = time.monotonic()
    open_tab(page, "Evaluate")
    page.wait_for_function(
        "() => document.querySelectorAll('.tlw-studio .tlw-cm td.tlw-cm-cell').length > 0",
        timeout=120_000,
    )
    classes = json.loads(nb.kernel("import json; print(json.dumps(list(studio.data.classes)))"))
    # The evaluation view is shown twice (the dashboard's own tab in Train, and here): count
    # the cells of the visible one.
    cells = page.evaluate(
        """() => Array.from(document.querySelectorAll('.tlw-studio .tlw-cm'))
             .filter(m => m.offsetParent !== null)
             .map(m => m.querySelectorAll('td.tlw-cm-cell').length)"""
    )
    assert cells == [len(classes) ** 2] == [16], cells
    # the tab's text says the cells are counts, and the visible cells are those counts
    explain = page.evaluate(
        """() => Array.from(document.querySelectorAll('.tlw-studio .tlw-explain'))
             .filter(e => e.offsetParent !== null).map(e => e.textContent)[0] || ''""")
    assert "Each cell of the confusion matrix is a count" in explain, explain
    counts = page.evaluate(
        """() => Array.from(Array.from(document.querySelectorAll('.tlw-studio .tlw-cm'))
             .filter(m => m.offsetParent !== null)[0].querySelectorAll('td.tlw-cm-cell'),
             c => c.textContent.trim())""")
    n_valid = int(nb.kernel("print(len(studio.data.valid_ds))").strip())
    assert all(c.isdigit() for c in counts) and sum(int(c) for c in counts) == n_valid, counts
    page.mouse.move(0, 0)
    shots = {"evaluate": nb.screenshot("evaluate", selector=ROOT)}
    times["evaluate"] = time.monotonic() - t

    # 6 · Predict: a PNG uploaded in the page; the top classes appear.
    t = time.monotonic()
    open_tab(page, "Predict")
    photo = nb.lab.root / "studio_photo.png"
    nb.kernel(f"studio.data.raw_image('valid', 0).save({str(photo)!r})")
    # ipywidgets' FileUpload keeps its <input type=file> out of the DOM and clicks it from the
    # button, so the photo goes through the file chooser the click opens, as a user's would.
    with page.expect_file_chooser(timeout=10_000) as chooser:
        page.locator(f"{ROOT} button.widget-upload").click()
    chooser.value.set_files(str(photo))
    nb.wait_for("len(studio.predict_box.children) > 0", timeout=60)
    page.wait_for_function(f"() => ({SHOWN_CLASSES_JS})().length >= 3", timeout=30_000)
    shown = page.evaluate(SHOWN_CLASSES_JS)
    assert len(shown) == 3 and set(shown) <= set(classes), shown
    top = nb.kernel(
        "print(studio.trainer.predict([studio.data.raw_image('valid', 0)], k=1)"
        ".iloc[0]['class_1'])"
    ).strip()
    assert shown[0] == top  # the page's first row is the kernel's top class for that photo
    times["predict"] = time.monotonic() - t
    page.mouse.move(0, 0)
    shots["predict"] = nb.screenshot("predict", selector=ROOT)
    open_tab(page, "Train")
    page.set_viewport_size({"width": 1400, "height": 1500})  # the whole tab in one picture
    page.mouse.move(0, 0)
    shots["train"] = nb.screenshot("train", selector=ROOT)
    for path in shots.values():
        assert path.stat().st_size > 10_000
    # The README's pictures; refreshed on request only, so a test run leaves the checkout clean.
    if os.environ.get("TLW_UPDATE_DOCS_IMAGES") == "1":
        for tab, path in shots.items():
            shutil.copyfile(path, REPO / "docs" / "images" / f"studio-{tab}.png")
    print("\n[studio timings] " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
          + f"; {steps} training steps")
