"""The Studio as a standalone page under Voilà: the notebook's code is hidden, the widget works
(tabs, Load data, Create model and the anywidget FreezePanel it opens).

Starts ``voila`` from this venv on a free loopback port (no token: it only listens on
127.0.0.1, for this test), opens the page in the shared headless Chromium, and always stops
the server and its kernel afterwards.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from .conftest import ARTIFACTS, SCREENSHOTS, VIEWPORT, _free_port, _stop, _write_isolated_config

pytestmark = pytest.mark.browser

STUDIO_CELLS = [
    "import torch, tlwidgets as tlw\n"
    "torch.set_num_threads(1)\n"
    "studio = tlw.Studio(img_size=64, epochs=1)\n"
    "studio",
]


@contextlib.contextmanager
def start_voila(notebook: Path, startup_timeout: float = 120) -> Iterator[tuple[str, Path]]:
    """Serve ``notebook`` with Voilà on a free 127.0.0.1 port; yields (url, log path)."""
    base = Path(tempfile.mkdtemp(prefix="tlw-voila-"))
    _write_isolated_config(base / "config", base / "settings")
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"voila-{os.getpid()}-{base.name}.log"
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONUNBUFFERED="1",
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "voila", notebook.name,
                "--no-browser",
                "--Voila.ip=127.0.0.1",
                f"--port={port}",
                "--Voila.port_retries=0",
                "--token=",
                "--show_tracebacks=True",
            ],
            cwd=notebook.parent,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"voila exited with {process.returncode}:\n"
                    + log_path.read_text(errors="replace")[-3000:]
                )
            try:
                # the static files answer as soon as the server listens, without running a kernel
                with urllib.request.urlopen(url + "voila/static/voila.js", timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # it answers
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"voila did not answer on {url} in {startup_timeout:.0f} s:\n"
                        + log_path.read_text(errors="replace")[-3000:]
                    ) from None
                time.sleep(0.3)
        yield url, log_path
    finally:
        _stop(process)


def test_the_studio_runs_as_a_standalone_voila_page(browser, tmp_path):
    notebook = tmp_path / "studio_app.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in STUDIO_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    nbformat.write(nb, notebook)

    t0 = time.monotonic()
    with start_voila(notebook) as (url, log_path):
        t_server = time.monotonic() - t0
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        try:
            t1 = time.monotonic()
            page.goto(url, wait_until="domcontentloaded", timeout=120_000)
            page.wait_for_selector(".tlw-studio .lm-TabBar-tab", timeout=120_000)
            t_render = time.monotonic() - t1
            titles = page.eval_on_selector_all(
                ".tlw-studio > .widget-tab > .lm-TabBar .lm-TabBar-tab",
                "ts => ts.map(e => e.textContent.trim())",
            )
            assert [s.split(" · ")[1] for s in titles] == [
                "Data", "Model", "Layers", "Train", "Evaluate", "Predict"]
            # A standalone page: the notebook's source is not shown.
            assert "tlw.Studio(" not in (page.text_content("body") or "")

            t2 = time.monotonic()
            page.locator(".tlw-studio button.jupyter-button", has_text="Load data").first.click()
            page.wait_for_function(
                "() => (document.querySelector('.tlw-studio')?.textContent || '')"
                ".includes('4 classes')",
                timeout=60_000,
            )
            # The kernel moved the Studio on to the Model tab, and the page followed.
            page.wait_for_function(
                """() => document.querySelector(
                     '.tlw-studio > .widget-tab > .lm-TabBar .lm-mod-current')
                     ?.textContent.trim().endsWith('Model')""",
                timeout=10_000,
            )
            t_load = time.monotonic() - t2
            # The anywidget-based FreezePanel renders under Voilà too (Create model opens Layers).
            page.locator(".tlw-studio button.jupyter-button", has_text="Create model").first.click()
            page.wait_for_selector(".tlw-studio .tlw-freeze-panel .tlw-fp-item", state="visible",
                                   timeout=120_000)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "voila_studio.png"))
        except Exception:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(Exception):
                page.screenshot(path=str(SCREENSHOTS / "voila_studio-failed.png"))
            print(log_path.read_text(errors="replace")[-3000:])
            raise
        finally:
            context.close()
    print(
        f"\n[voila timings] server up {t_server:.1f} s, page with the Studio {t_render:.1f} s, "
        f"'Load data' to '4 classes' {t_load:.1f} s"
    )
