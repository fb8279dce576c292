"""ExperimentView in a real JupyterLab page: Run clicked in the page starts the experiment, the
"Less data" chart gains points while it runs, Stop clicked in the page ends it, and the finished
runs stay in the kernel's table, in the page's table and on the chart.

The model is timm's tiny random ``test_resnet`` on 32 px in-memory images; the model factory
sleeps a little per run so the experiment is slow enough to watch and to stop on a shared CPU.
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.browser

ROOT = ".tlw-experiment-view"

SETUP = [
    "import time, numpy as np, torch, tlwidgets as tlw\n"
    "torch.set_num_threads(1)\n"
    "rng = np.random.default_rng(0)\n"
    "labels = np.arange(120) % 3\n"
    "images = rng.random((120, 3, 32, 32), dtype=np.float32) * 0.3\n"
    "for c in range(3):  # a class is a bright channel: learnable in a few steps\n"
    "    images[labels == c, c] += 0.6\n"
    "data = tlw.ImageData.from_arrays(images, labels, classes=['r', 'g', 'b'], valid_pct=0.25,\n"
    "                                 batch_size=8, img_size=32, augment='none')\n"
    "def factory(init):\n"
    "    time.sleep(0.6)  # paced: slow enough to watch points arrive and to stop\n"
    "    return tlw.create_model('test_resnet', 3, weights='none')",
    "view = tlw.ExperimentView(data, factory, sizes=(1, 2, 4, 8, 16), repeats=3, epochs=2,\n"
    "                          min_steps=2, lr=0.05, severities=(1, 5))\n"
    "view",
]

# Marker dots of the "Less data" figure's lines (bqplot draws one path.dot per point; a bqplot
# legend, if any, has its own under g.g_legend, left out).
POINTS_JS = """() => {
  const fig = Array.from(document.querySelectorAll('.tlw-experiment-view .bqplot.figure'))
    .find(f => (f.querySelector('.mainheading')?.textContent || '') === 'Less data');
  if (!fig) return -1;
  return Array.from(fig.querySelectorAll('path.dot')).filter(d => !d.closest('.g_legend')).length;
}"""

STATE_JS = """() => document
  .querySelector('.tlw-experiment-view .tlw-experiment-status [data-state]')
  ?.getAttribute('data-state') || ''"""

ROWS_JS = """() => document.querySelectorAll(
  '.tlw-experiment-view .tlw-experiment-table table tbody tr').length"""


def points(page) -> int:
    return int(page.evaluate(POINTS_JS))


def button(page, text: str):
    return page.locator(f"{ROOT} button", has_text=text).first


def test_run_watch_points_arrive_stop_and_keep_the_partial_table(open_notebook):
    t0 = time.monotonic()
    nb = open_notebook(SETUP, name="experiment_view")
    page = nb.page
    page.wait_for_selector(f"{ROOT} .bqplot.figure", timeout=60_000)
    assert points(page) == 0
    assert page.evaluate(STATE_JS) == "idle"
    t_open = time.monotonic() - t0

    # Run, pressed in the page: the experiment starts in the kernel, points arrive.
    t1 = time.monotonic()
    button(page, "Run").click()
    nb.wait_for("view.state == 'running'", timeout=30)
    page.wait_for_function(f"() => ({POINTS_JS})() >= 2", timeout=60_000)
    first = points(page)
    page.wait_for_function(f"n => ({POINTS_JS})() > n", arg=first, timeout=60_000)
    second = points(page)
    assert page.evaluate(STATE_JS) == "running"
    assert nb.kernel("print(view.state)").strip() == "running"
    t_points = time.monotonic() - t1
    nb.screenshot("running", selector=ROOT)

    # Stop, pressed in the page: the run in progress ends, the finished ones stay.
    t2 = time.monotonic()
    button(page, "Stop").click()
    nb.wait_for("view.state == 'stopped'", timeout=60)
    page.wait_for_function(f"() => ({STATE_JS})() === 'stopped'", timeout=30_000)
    kept = int(nb.kernel("print(len(view.table))").strip())
    total = int(nb.kernel("print(len(view._plan))").strip())
    assert 1 <= kept < total, (kept, total)
    page.wait_for_function(f"n => ({ROWS_JS})() === n", arg=kept, timeout=30_000)
    # every (init, recipe, size) mean of the kept runs is a point on the chart
    curve_points = int(nb.kernel(
        "print(len(tlw.experiments.summarize(view.table)))").strip())
    page.wait_for_function(f"n => ({POINTS_JS})() === n", arg=curve_points, timeout=30_000)
    assert curve_points >= second >= first
    status = page.text_content(f"{ROOT} .tlw-experiment-status") or ""
    assert f"Stopped: {kept} finished runs kept" in status, status
    # the kernel stays usable and the table is a DataFrame a later cell can use
    nb.run_cell("print(view.table.groupby(['init', 'recipe']).accuracy.mean())")
    assert not button(page, "Run").is_disabled()
    assert button(page, "Stop").is_disabled()
    t_stop = time.monotonic() - t2
    shot = nb.screenshot("stopped", selector=ROOT)
    assert shot.stat().st_size > 0
    page.locator(f"{ROOT} .tlw-experiment-status").scroll_into_view_if_needed()
    nb.screenshot("stopped-top")
    print(
        f"\n[experiment view timings] open+run cells {t_open:.1f} s, Run -> points "
        f"{first}->{second} {t_points:.1f} s, Stop -> kept {kept}/{total} runs, "
        f"{curve_points} points {t_stop:.1f} s"
    )
