"""TrainingDashboard.follow (issue 15): a dashboard fed only by a run folder that another process
is writing shows its curves growing in the page."""

from __future__ import annotations

import textwrap

from .conftest import REPO
from .test_dashboard import loss_points

WRITER = textwrap.dedent("""
    import sys, time, numpy as np, torch
    sys.path.insert(0, {repo!r})
    torch.set_num_threads(1)
    import tlwidgets as tlw
    from tests.tiny_model import Tiny
    rng = np.random.default_rng(0)
    labels = np.arange(64) % 2
    images = rng.random((64, 16, 16, 3)).astype(np.float32) * 0.5
    images[labels == 1] += 0.4
    data = tlw.ImageData.from_arrays(images, labels, batch_size=4, img_size=16)
    pace = lambda e: e.kind == "step" and time.sleep(0.15)  # slow enough to watch
    tlw.Trainer(Tiny(), data, epochs=3, run_dir=sys.argv[1], verbose=False,
                callbacks=[pace]).fit()
""")


def test_follow_shows_the_curves_of_a_run_another_process_writes(open_notebook, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(repo=str(REPO)))
    run_dir = tmp_path / "run"
    cells = [
        "import subprocess, sys, time, tlwidgets as tlw\n"
        f"proc = subprocess.Popen([sys.executable, {str(script)!r}, {str(run_dir)!r}])\n"
        "import pathlib\n"
        f"deadline = time.time() + 120\n"
        f"while not (pathlib.Path({str(run_dir)!r}) / 'run.json').exists() and time.time() < deadline:\n"
        "    time.sleep(0.1)",
        f"dash = tlw.TrainingDashboard.follow({str(run_dir)!r})\ndash",
    ]
    nb = open_notebook(cells, name="dashboard_follow")
    page = nb.page
    page.wait_for_selector(".tlw-dashboard .bqplot.figure", timeout=60_000)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.tlw-dashboard path.line'))"
        ".some(p => ((p.getAttribute('d') || '').match(/[ML]/g) || []).length >= 3)",
        timeout=90_000)
    first = loss_points(page)
    page.wait_for_function(
        "n => Math.max(0, ...Array.from(document.querySelectorAll('.tlw-dashboard path.line'))"
        ".map(p => ((p.getAttribute('d') || '').match(/[ML]/g) || []).length)) > n + 3",
        arg=first, timeout=90_000)
    assert loss_points(page) > first + 3  # the curve grew while the other process trained
    nb.screenshot("follow", selector=".tlw-dashboard")
    nb.kernel("proc.wait(timeout=120)")
    nb.wait_for("dash.trainer.state == 'finished'", timeout=60)
