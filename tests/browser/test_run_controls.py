"""RunControls in a real JupyterLab page: clicks reach the kernel, kernel changes reach the page."""

from __future__ import annotations

import os
import shutil

import pytest

from .conftest import REPO

pytestmark = pytest.mark.browser

SETUP = [
    "import tlwidgets as tlw\n"
    "controls = tlw.RunControls()\n"
    "pressed = []\n"
    "controls.on_action(pressed.append)\n"
    "controls",
]
ROOT = ".tlw-run-controls"


def button(page, action):
    return page.locator(f'{ROOT} button[data-action="{action}"]')


def enabled_buttons(page):
    return page.eval_on_selector_all(
        f"{ROOT} button", "bs => bs.filter(b => !b.disabled).map(b => b.dataset.action)"
    )


def test_clicks_in_the_page_reach_the_kernel(open_notebook):
    nb = open_notebook(SETUP)
    page = nb.page
    page.wait_for_selector(f"{ROOT} .tlw-badge", timeout=60_000)
    assert page.text_content(f"{ROOT} .tlw-badge") == "Idle"
    assert enabled_buttons(page) == ["start"]

    button(page, "start").click()
    nb.wait_for("pressed == ['start']")
    # The kernel drives the state; the page follows.
    nb.kernel("controls.state = 'running'")
    page.wait_for_function(
        "() => document.querySelector('.tlw-run-controls .tlw-badge').textContent === 'Running'"
    )
    button(page, "pause").click()
    nb.wait_for("pressed == ['start', 'pause']")
    assert nb.kernel("print(controls.action, controls.action_id)").split() == ["pause", "2"]


def test_kernel_state_changes_the_badge_and_buttons(open_notebook):
    nb = open_notebook(SETUP)
    page = nb.page
    page.wait_for_selector(f"{ROOT} .tlw-badge", timeout=60_000)

    nb.kernel("controls.state = 'paused'")
    page.wait_for_function(
        "() => document.querySelector('.tlw-run-controls .tlw-badge').textContent === 'Paused'"
    )
    assert enabled_buttons(page) == ["resume", "stop"]
    assert button(page, "pause").is_disabled()

    nb.kernel("controls.state = 'failed'; controls.detail = 'loss is NaN'")
    page.wait_for_function(
        "() => document.querySelector('.tlw-run-controls .tlw-badge').textContent === 'Failed'"
    )
    assert enabled_buttons(page) == ["start"]
    assert page.text_content(f"{ROOT} .tlw-detail") == "loss is NaN"
    shot = nb.screenshot("failed-state", selector=".jp-OutputArea-output")
    assert shot.stat().st_size > 0


def test_run_controls_in_the_dark_theme(open_notebook):
    nb = open_notebook(
        SETUP + ["controls.state = 'running'\ncontrols.detail = 'epoch 2/5'"], theme="dark"
    )
    page = nb.page
    page.wait_for_function(
        "() => document.querySelector('.tlw-run-controls .tlw-badge')?.textContent === 'Running'",
        timeout=60_000,
    )
    assert page.evaluate("document.body.dataset.jpThemeLight") == "false"
    # The badge takes its colour from the theme's variables, so it must not be the light default.
    colour = page.eval_on_selector(f"{ROOT} .tlw-badge", "b => getComputedStyle(b).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent")
    shot = nb.screenshot("run-controls", selector=".jp-Notebook .jp-CodeCell")
    assert shot.stat().st_size > 0
    # The README's picture; refreshed on request only, so a test run leaves the checkout clean.
    if os.environ.get("TLW_UPDATE_DOCS_IMAGES") == "1":
        shutil.copyfile(shot, REPO / "docs" / "images" / "run_controls.png")
