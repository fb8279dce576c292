"""TrainingDashboard in a real JupyterLab page: Start, Pause, Resume and Stop clicked in the page
drive a real run; the curves grow in the page; a diverging run shows its error there.

The model is the tiny random ``test_resnet`` on 32 px in-memory images, and a callback sleeps
a little on each step, so the run is slow enough to watch (and to pause) on a shared CPU.
"""

from __future__ import annotations

import os
import shutil
import time

import nbformat
import pytest

from .conftest import REPO

pytestmark = pytest.mark.browser

ROOT = ".tlw-dashboard"


def setup_cells(epochs: int, lr: float, pace: float) -> list[str]:
    return [
        "import time, numpy as np, torch, tlwidgets as tlw\n"
        "torch.set_num_threads(1)\n"
        "torch.manual_seed(0)\n"
        "rng = np.random.default_rng(0)\n"
        "labels = np.arange(48) % 3\n"
        "images = rng.random((48, 3, 32, 32), dtype=np.float32) * 0.2\n"
        "for c in range(3):  # a class is a bright channel: learnable in a few steps\n"
        "    images[labels == c, c] += 0.8\n"
        "model = tlw.create_model('test_resnet', 3, weights='none')\n"
        "data = tlw.ImageData.from_arrays(images, labels, classes=['r', 'g', 'b'],\n"
        "                                 valid_pct=0.25, batch_size=8, model=model, img_size=32)",
        "def pace(event):  # slow enough to watch and to pause\n"
        "    if event.kind == 'step':\n"
        f"        time.sleep({pace})\n"
        f"trainer = tlw.Trainer(model, data, epochs={epochs}, lr={lr}, callbacks=[pace],\n"
        "                      cache_features=False)\n"
        "dash = tlw.TrainingDashboard(trainer, evaluate=False)\n"
        "dash",
    ]


# The loss figure's lines: bqplot draws each Lines mark as <path class="line" d="M..L..L..">;
# the vertex count of a path is the number of points the page plots for that series.
LOSS_POINTS_JS = """() => {
  const fig = Array.from(document.querySelectorAll('.tlw-dashboard .bqplot.figure'))
    .find(f => (f.querySelector('.mainheading')?.textContent || '') === 'Loss');
  if (!fig) return null;
  return Array.from(fig.querySelectorAll('path.line')).map(p => {
    const d = p.getAttribute('d') || '';
    return (d.match(/[ML]/g) || []).length;
  });
}"""


def loss_points(page) -> int:
    """Points on the most populated line of the loss figure (the faint raw training loss)."""
    counts = page.evaluate(LOSS_POINTS_JS)
    assert counts is not None, "no Loss figure in the page"
    return max(counts, default=0)


def badge(page) -> str:
    return page.text_content(f"{ROOT} .tlw-run-controls .tlw-badge") or ""


def click(page, action: str) -> None:
    page.locator(f'{ROOT} .tlw-run-controls button[data-action="{action}"]').click()


def wait_badge(page, text: str, timeout: float = 60) -> None:
    page.wait_for_function(
        "t => document.querySelector('.tlw-dashboard .tlw-run-controls .tlw-badge')"
        "?.textContent === t",
        arg=text,
        timeout=timeout * 1000,
    )


def step(nb) -> int:
    return int(nb.kernel("print(trainer.progress()['step'])").strip())


PROGRESS_JS = """() => Array.from(document.querySelectorAll('.tlw-dashboard .widget-label'))
  .map(e => e.textContent).find(t => t.includes('elapsed')) || ''"""


def progress_text(page) -> str:
    return page.evaluate(PROGRESS_JS)


def wait_progress_change(page, old: str) -> str:
    """The label follows its own message, a moment after the curve's: wait for it to move on."""
    page.wait_for_function(f"old => ({PROGRESS_JS})() !== old", arg=old, timeout=30_000)
    return progress_text(page)


def test_start_pause_resume_stop_from_the_page(open_notebook):
    t0 = time.monotonic()
    nb = open_notebook(setup_cells(epochs=40, lr=3e-3, pace=0.05), name="dashboard_controls")
    page = nb.page
    page.wait_for_selector(f"{ROOT} .tlw-run-controls .tlw-badge", timeout=60_000)
    t_open = time.monotonic() - t0
    assert badge(page) == "Idle"
    assert loss_points(page) == 0
    label_before = progress_text(page)

    # Start: the run begins in the kernel and the loss curve grows in the page.
    t1 = time.monotonic()
    click(page, "start")
    wait_badge(page, "Running")
    page.wait_for_function(f"() => Math.max(0, ...({LOSS_POINTS_JS})() || []) >= 5", timeout=60_000)
    first = loss_points(page)
    label_first = wait_progress_change(page, label_before)
    page.wait_for_function(
        f"n => Math.max(0, ...({LOSS_POINTS_JS})() || []) > n", arg=first + 10, timeout=60_000
    )
    second = loss_points(page)
    label_second = wait_progress_change(page, label_first)
    t_grow = time.monotonic() - t1
    assert second > first >= 5
    assert "/40 · step " in label_second, label_second  # epoch i/40 · step j/M · ...
    assert nb.kernel("print(trainer.state)").strip() == "running"

    # Pause: the step counter stands still.
    t2 = time.monotonic()
    click(page, "pause")
    nb.wait_for("trainer.state == 'paused'", timeout=30)
    wait_badge(page, "Paused")
    paused_at = step(nb)
    time.sleep(1.0)
    assert step(nb) == paused_at
    points_paused = loss_points(page)

    # Resume: it counts on, and the curve grows again.
    click(page, "resume")
    nb.wait_for(f"trainer.progress()['step'] > {paused_at}", timeout=30)
    wait_badge(page, "Running")
    page.wait_for_function(
        f"n => Math.max(0, ...({LOSS_POINTS_JS})() || []) > n", arg=points_paused, timeout=30_000
    )
    t_pause = time.monotonic() - t2

    # Stop: state 'stopped' in the kernel and in the page, the model usable from the next cell.
    t3 = time.monotonic()
    click(page, "stop")
    nb.wait_for("trainer.state == 'stopped'", timeout=60)
    wait_badge(page, "Stopped")
    stopped_at = step(nb)
    total = int(nb.kernel("print(trainer.progress()['total_steps'])").strip())
    assert paused_at < stopped_at < total  # stopped mid-run, not finished
    # Every step the kernel logged is a point of the faint raw-loss line in the page.
    logged = int(nb.kernel("print(len(trainer.steps))").strip())
    page.wait_for_function(
        f"n => Math.max(0, ...({LOSS_POINTS_JS})() || []) === n", arg=logged, timeout=10_000
    )
    nb.run_cell(
        "model.eval()\n"
        "with torch.no_grad():\n"
        "    out = model(torch.as_tensor(images[:4]))\n"
        "assert out.shape == (4, 3) and torch.isfinite(out).all(), out\n"
        "print('forward ok', tuple(out.shape))"
    )
    t_stop = time.monotonic() - t3
    shot = nb.screenshot("stopped", selector=ROOT)
    assert shot.stat().st_size > 0
    print(
        f"\n[dashboard timings] open+run cells {t_open:.1f} s, start->curve grew "
        f"{first}->{second} points {t_grow:.1f} s, pause/resume {t_pause:.1f} s, "
        f"stop+forward pass {t_stop:.1f} s; stopped at step {stopped_at}/{total}"
    )


def test_a_run_forced_to_nan_shows_its_error_and_keeps_the_curves(open_notebook):
    t0 = time.monotonic()
    nb = open_notebook(setup_cells(epochs=3, lr=1e6, pace=0.0), name="dashboard_nan")
    page = nb.page
    page.wait_for_selector(f"{ROOT} .tlw-run-controls .tlw-badge", timeout=60_000)
    # Start from the page: the dashboard keeps the trainer's own (absurd) rate.
    assert nb.kernel("print(dash.lr_input.value)").strip() == "1000000.0"
    click(page, "start")
    nb.wait_for("trainer.state == 'failed'", timeout=60)
    wait_badge(page, "Failed")
    page.wait_for_function(
        "() => (document.querySelector('.tlw-dashboard')?.textContent || '')"
        ".includes('Training failed')",
        timeout=30_000,
    )
    error = page.evaluate(
        """() => Array.from(document.querySelectorAll('.tlw-dashboard .widget-html'))
             .map(e => e.textContent).find(t => t.includes('Training failed')) || ''"""
    )
    assert "step" in error.lower(), error
    # The page shows the trainer's own message (which names the step and what to do).
    kernel_error = nb.kernel("print(str(trainer.error).splitlines()[0][:60])").strip()
    assert kernel_error and kernel_error in error, (error, kernel_error)
    # the trainer stops a run that blows up (non-finite loss, or its divergence guard)
    assert "nan at step" in error.lower() or "diverged at step" in error.lower(), error
    assert loss_points(page) >= 1  # the curve so far stays
    shot = nb.screenshot("failed", selector=ROOT)
    assert shot.stat().st_size > 0
    print(f"\n[dashboard timings] NaN run: open, start and fail in {time.monotonic() - t0:.1f} s;"
          f" error shown: {error[:160]!r}")


# The quickstart's path (notebooks/quickstart.ipynb): sample photos, the packaged pretrained
# EfficientNet-Lite0, the browser, the freeze panel, the dashboard. Small images and a longer
# run than the notebook's, so the pictures are taken while it trains.
QUICKSTART = [
    "import tempfile, torch, tlwidgets as tlw\n"
    "torch.set_num_threads(1)\n"
    "torch.manual_seed(0)\n"
    "workdir = tempfile.mkdtemp(prefix='tlw-quickstart-')\n"
    "data = tlw.sample_data(img_size=64, batch_size=16)",
    "browser = tlw.ModelBrowser(selected='tf_efficientnet_lite0.in1k')\n"
    "browser",
    "model = tlw.create_model('tf_efficientnet_lite0', num_classes=data.num_classes)\n"
    "data = data.with_model(model)\n"
    "panel = tlw.FreezePanel(model)\n"
    "tlw.apply_preset(model, 'head')\n"
    "panel",
    "trainer = tlw.Trainer(model, data, epochs=12, lr=2e-3, seed=0, run_dir=f'{workdir}/run')\n"
    "dash = tlw.TrainingDashboard(trainer)\n"
    "dash",
]
IMAGES = REPO / "docs" / "images"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_quickstart_widgets_mid_training_screenshots(open_notebook, theme):
    t0 = time.monotonic()
    nb = open_notebook(QUICKSTART, name=f"quickstart_{theme}", theme=theme)
    page = nb.page
    page.wait_for_selector(f"{ROOT} .tlw-run-controls .tlw-badge", timeout=60_000)
    page.wait_for_selector(".tlw-mb", timeout=60_000)
    page.locator(".tlw-freeze-panel .tlw-fp-item").first.wait_for(timeout=60_000)
    t_open = time.monotonic() - t0

    t1 = time.monotonic()
    click(page, "start")
    # Mid-training: a few epochs done (accuracy points, epoch table), the run still going.
    nb.wait_for("len(trainer.history) >= 3", timeout=120)
    page.wait_for_function(
        "() => document.querySelectorAll('.tlw-dashboard table.tlw-epochs tbody tr').length >= 3",
        timeout=30_000,
    )
    t_train = time.monotonic() - t1
    shots = {}
    page.mouse.move(0, 0)  # no hover toolbar or focus ring in the pictures
    page.locator(ROOT).first.scroll_into_view_if_needed()
    assert badge(page) == "Running"
    shots["dashboard"] = nb.screenshot(f"dashboard-{theme}", selector=ROOT)
    running_at_shot = nb.kernel("print(trainer.state)").strip()
    assert loss_points(page) >= 20
    shots["browser"] = nb.screenshot(f"quickstart-model_browser-{theme}", selector=".tlw-mb")
    shots["panel"] = nb.screenshot(
        f"quickstart-freeze_panel-{theme}", selector=".tlw-freeze-panel"
    )
    for path in shots.values():
        assert path.stat().st_size > 10_000
    if theme == "dark":
        assert page.evaluate("document.body.dataset.jpThemeLight") == "false"
    # Leave the kernel idle for the next test.
    nb.kernel("trainer.stop(); print(trainer.wait(timeout=60))")
    print(
        f"\n[quickstart {theme}] open + 4 cells {t_open:.1f} s, start -> 3 epochs "
        f"{t_train:.1f} s, state at the dashboard shot: {running_at_shot}"
    )
    # The README's pictures; refreshed on request only, so a test run leaves the checkout clean.
    if os.environ.get("TLW_UPDATE_DOCS_IMAGES") == "1":
        shutil.copyfile(shots["dashboard"], IMAGES / f"dashboard-{theme}.png")
        shutil.copyfile(shots["browser"], IMAGES / f"quickstart-model_browser-{theme}.png")
        shutil.copyfile(shots["panel"], IMAGES / f"quickstart-freeze_panel-{theme}.png")


def test_the_quickstart_notebook_runs_in_the_page(open_notebook):
    """notebooks/quickstart.ipynb's own cells, run in JupyterLab: every cell passes, and the page
    shows the finished run (all its steps plotted, the evaluation's confusion matrix)."""
    source = nbformat.read(REPO / "notebooks" / "quickstart.ipynb", as_version=4)
    cells = [c.source for c in source.cells if c.cell_type == "code"]
    # The last cell closes the widgets; run it after looking at them.
    closing = [i for i, c in enumerate(cells) if "dash.close()" in c]
    assert closing, "the quickstart no longer closes its dashboard: update this test"
    body, tail = cells[: closing[-1]], cells[closing[-1]:]
    t0 = time.monotonic()
    nb = open_notebook(body, name="quickstart_notebook", timeout=400)
    t_run = time.monotonic() - t0
    page = nb.page
    assert nb.kernel("print(trainer.state)").strip() == "finished"
    wait_badge(page, "Finished")
    logged = int(nb.kernel("print(len(trainer.steps))").strip())
    page.wait_for_function(
        f"n => Math.max(0, ...({LOSS_POINTS_JS})() || []) === n", arg=logged, timeout=10_000
    )
    classes = int(nb.kernel("print(data.num_classes)").strip())
    page.wait_for_function(
        "n => document.querySelectorAll('.tlw-dashboard .tlw-cm td.tlw-cm-cell').length === n",
        arg=classes**2,
        timeout=60_000,
    )
    for cell in tail:
        nb.run_cell(cell)
    print(f"\n[quickstart notebook] {len(body)} cells in the page in {t_run:.1f} s "
          f"({logged} training steps), then {len(tail)} closing cell(s)")
