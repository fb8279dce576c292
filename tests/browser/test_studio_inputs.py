"""Studio in a real page (issues 11 and 12): what it does with a typed folder, whole toggle
labels, errors that keep their line breaks and bullets, the Evaluate tab's text against its
matrix, and the Predict tab showing an image bomb and an upload during training instead of
letting them escape the upload handler."""

from __future__ import annotations

import struct
import zlib

import pytest

from .test_studio import ROOT, click_button, open_tab, wait_text

pytestmark = pytest.mark.browser

CELLS = [
    "import os, time, numpy as np, torch, tlwidgets as tlw\n"
    "torch.set_num_threads(1)\n"
    "os.environ['HF_HUB_OFFLINE'] = '1'  # no hub: a model without offline weights cannot load\n"
    "studio = tlw.Studio(img_size=32, epochs=1)\n"
    "studio",
]

TINY = [
    "import time, numpy as np, torch, tlwidgets as tlw\n"
    "torch.set_num_threads(1)\n"
    "torch.manual_seed(0)\n"
    "rng = np.random.default_rng(0)\n"
    "labels = np.arange(48) % 3\n"
    "images = rng.random((48, 3, 32, 32), dtype=np.float32) * 0.2\n"
    "for c in range(3):\n"
    "    images[labels == c, c] += 0.8\n"
    "studio = tlw.Studio(img_size=32, epochs=40)\n"
    "model = tlw.create_model('test_resnet', 3, weights='none')\n"
    "studio.use_data(tlw.ImageData.from_arrays(images, labels, classes=['r', 'g', 'b'],\n"
    "                                          valid_pct=0.25, batch_size=8, img_size=32))\n"
    "studio.use_model(model)\n"
    "trainer = studio.prepare_training()\n"
    "trainer.subscribe(lambda e: time.sleep(0.1) if e.kind == 'step' else None)\n"
    "studio",
]


def bomb_png(width: int = 20_000, height: int = 20_000) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


def upload(page, path) -> None:
    with page.expect_file_chooser(timeout=10_000) as chooser:
        page.locator(f"{ROOT} button.widget-upload").click()
    chooser.value.set_files(str(path))


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_folder_source_toggle_labels_and_multiline_errors(open_notebook, theme):
    nb = open_notebook(CELLS, name=f"studio_inputs_{theme}", theme=theme)
    page = nb.page
    page.wait_for_selector(f"{ROOT} .lm-TabBar-tab", timeout=60_000)
    open_tab(page, "Data")
    # every toggle label is whole (Data: sample/folder; Model: pretrained/scratch)
    cut = page.eval_on_selector_all(
        f"{ROOT} .widget-toggle-button",
        "bs => bs.map(b => [b.textContent.trim(), b.scrollWidth > b.clientWidth + 1])")
    assert {t for t, _ in cut} >= {"Sample photos (offline)", "My image folder", "Pretrained",
                                   "From scratch"}, cut
    assert not [t for t, c in cut if c], f"cut toggle labels: {cut}"
    load = page.locator(f"{ROOT} button.jupyter-button", has_text="Load data")
    assert load.first.inner_text().strip() == "Load data: sample photos"

    # typing a folder path selects the folder source, and the button says so
    missing = nb.lab.root / "no-such-folder"
    page.locator(f"{ROOT} input[placeholder^='path/to/images']").fill(str(missing))
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.tlw-studio .widget-toggle-button.mod-active'))"
        ".some(b => b.textContent.trim() === 'My image folder')", timeout=10_000)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.tlw-studio button.jupyter-button'))"
        ".some(b => b.textContent.trim() === 'Load data: my folder')", timeout=10_000)
    click_button(page, "Load data: my folder")
    wait_text(page, "DataError")
    assert nb.kernel("print(studio.data)").strip() == "None"  # not the samples, silently

    # the samples, then a model whose weights are not offline: a multi-line error, kept so
    page.locator(f"{ROOT} .widget-toggle-button", has_text="Sample photos").click()
    click_button(page, "Load data: sample photos")
    wait_text(page, "4 classes")
    open_tab(page, "Model")
    nb.kernel("studio._open_browser(); studio.browser.selected = 'resnet18.a1_in1k'")
    wait_text(page, "resnet18.a1_in1k")
    click_button(page, "Create model")
    error = page.locator(f"{ROOT} .tlw-error", has_text="WeightsUnavailableError")
    error.wait_for(state="visible", timeout=60_000)
    style = error.evaluate("e => getComputedStyle(e).whiteSpace")
    assert style == "pre-wrap"
    text = error.inner_text()
    kernel_msg = nb.kernel("import tlwidgets as tlw\n"
                           "try:\n"
                           "    tlw.create_model('resnet18.a1_in1k', 4)\n"
                           "except tlw.TLWidgetsError as e:\n"
                           "    print(str(e))")
    bullets = [line for line in kernel_msg.splitlines() if line.strip().startswith("- ")]
    assert len(bullets) >= 2, kernel_msg
    shown_lines = text.splitlines()
    for bullet in bullets:  # each bullet on a line of its own, as in the message
        assert any(line.strip() == bullet.strip() for line in shown_lines), (bullet, text)
    line_height = error.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
    assert error.bounding_box()["height"] >= line_height * (len(bullets) + 1)
    nb.screenshot(f"model-error-{theme}", selector=ROOT)


def test_predict_tab_shows_a_bomb_and_an_upload_during_training(open_notebook):
    nb = open_notebook(TINY, name="studio_predict_errors")
    page = nb.page
    page.wait_for_selector(f"{ROOT} .lm-TabBar-tab", timeout=60_000)
    open_tab(page, "Train")
    start = page.locator(f'{ROOT} .tlw-dashboard .tlw-run-controls button[data-action="start"]')
    start.wait_for(state="visible", timeout=30_000)
    start.click()
    nb.wait_for("trainer.progress()['step'] >= 1", timeout=60)
    photo = nb.lab.root / "tiny_photo.png"
    nb.kernel(f"studio.data.raw_image('valid', 0).save({str(photo)!r})")

    # while it trains: the tab says why it cannot predict yet
    open_tab(page, "Predict")
    upload(page, photo)
    err = page.locator(f"{ROOT} .tlw-error", has_text="TrainerStateError")
    err.wait_for(state="visible", timeout=30_000)
    assert "still training" in err.inner_text()
    assert nb.kernel("print(trainer.state)").strip() in ("running", "waiting")

    # stopped, a 20000 x 20000 PNG: refused in the tab, not raised in the handler
    nb.kernel("trainer.stop(); print(trainer.wait(timeout=60))")
    bomb = nb.lab.root / "bomb.png"
    bomb.write_bytes(bomb_png())
    upload(page, bomb)
    err = page.locator(f"{ROOT} .tlw-error", has_text="too large to open safely")
    err.wait_for(state="visible", timeout=30_000)
    assert "400000000 pixels" in err.inner_text()
    # and a real photo still works afterwards
    upload(page, photo)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.tlw-studio .widget-hprogress'))"
        ".filter(e => e.offsetParent !== null).length === 3", timeout=30_000)


def cut_headings(page) -> list[str]:
    return page.eval_on_selector_all(f"{ROOT} .tlw-mb-head button", """bs => bs
        .filter(b => b.offsetParent !== null)
        .filter(b => { const r = document.createRange(); r.selectNodeContents(b);
                       const t = r.getBoundingClientRect(), o = b.getBoundingClientRect();
                       return t.left < o.left - 1 || t.right > o.right + 1; })
        .map(b => b.textContent)""")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_which_model_table_fits_840_px_without_scrolling_sideways(open_notebook, theme):
    """Issue 13's leftover: at 840 px the ranked table drops the columns its details pane
    repeats (pretraining, size, CPU speed, licence) instead of scrolling sideways."""
    nb = open_notebook(CELLS, name=f"studio_rank_840_{theme}", theme=theme)
    page = nb.page
    page.wait_for_selector(f"{ROOT} .lm-TabBar-tab", timeout=60_000)
    page.set_viewport_size({"width": 840, "height": 1000})
    click_button(page, "Load data: sample photos")
    wait_text(page, "4 classes")
    open_tab(page, "Model")
    click_button(page, "Which model?")
    wait_text(page, "Ranked on your images", timeout=240)
    table = page.locator(f"{ROOT} .tlw-mb-table").first
    page.wait_for_function(
        "() => document.querySelector('.tlw-studio .tlw-mb')?.classList.contains('has-scores')",
        timeout=30_000)
    heads = [t.strip() for t in page.eval_on_selector_all(
        f"{ROOT} .tlw-mb-head button", "bs => bs.filter(b => b.offsetParent !== null)"
        ".map(b => b.textContent)")]
    width = page.eval_on_selector(f"{ROOT} .tlw-mb", "e => e.clientWidth")
    expected = ["Model", "Rank", "LogME", "k-NN %", "Top-1", "Offline"]  # beside the files
    if width > 600:
        expected[4:4] = ["Params", "GMACs"]
    assert [h.rstrip("▲▼ ") for h in heads] == expected, (width, heads)
    widths = table.evaluate("t => [t.scrollWidth, t.clientWidth, t.getBoundingClientRect().right]")
    assert widths[0] <= widths[1] + 1, f"the ranked table scrolls sideways: {widths}"
    assert widths[2] <= 840
    # no heading is cut (its text's box inside its button, either side: numeric headings are
    # right-aligned, so they would overflow to the left where scrollWidth does not see it)
    assert not cut_headings(page), f"cut headings: {cut_headings(page)}"
    page.mouse.move(0, 0)
    table.scroll_into_view_if_needed()
    nb.screenshot(f"which-model-840-{theme}", selector=f"{ROOT} .tlw-mb-table")
    # with the file browser closed the Studio is wider: two more columns, still no scrolling
    page.keyboard.press("Control+b")
    page.wait_for_function(
        "() => document.querySelector('.tlw-studio .tlw-mb').clientWidth > 600", timeout=10_000)
    heads = [t.strip().rstrip("▲▼ ") for t in page.eval_on_selector_all(
        f"{ROOT} .tlw-mb-head button", "bs => bs.filter(b => b.offsetParent !== null)"
        ".map(b => b.textContent)")]
    assert heads == ["Model", "Rank", "LogME", "k-NN %", "Params", "GMACs", "Top-1", "Offline"]
    assert not cut_headings(page), f"cut headings: {cut_headings(page)}"
    widths = table.evaluate("t => [t.scrollWidth, t.clientWidth]")
    assert widths[0] <= widths[1] + 1, f"the ranked table scrolls sideways: {widths}"
    nb.screenshot(f"which-model-840-wide-{theme}", selector=f"{ROOT} .tlw-mb-table")
