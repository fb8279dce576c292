"""The browser harness itself: what other browser tests rely on when something goes wrong."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_a_raising_cell_fails_with_its_source_and_error(open_notebook):
    with pytest.raises(AssertionError) as failure:
        open_notebook(["x = 41", "y = x + 1\nraise ValueError(f'bad value {y}')", "z = 3"])
    message = str(failure.value)
    assert "cell 1 raised" in message
    assert "raise ValueError(f'bad value {y}')" in message
    assert "ValueError: bad value 42" in message


def test_kernel_run_cell_and_wait_for_share_the_notebook_kernel(open_notebook, lab):
    nb = open_notebook(["import threading, time\ncounter = []"], name="harness shared kernel")
    assert (lab.root / "harness shared kernel.ipynb").exists()
    assert nb.kernel("print(counter, 6 * 7)") == "[] 42\n"
    nb.run_cell("counter.append('from the page')\nprint('ran')")
    assert nb.kernel("print(counter)").strip() == "['from the page']"
    assert nb.page.locator(".jp-OutputArea-output", has_text="ran").count() == 1
    nb.kernel("threading.Timer(0.5, counter.append, ['later']).start()")
    nb.wait_for("'later' in counter", timeout=10)
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        nb.kernel("1 / 0")
    with pytest.raises(AssertionError, match="still False"):
        nb.wait_for("len(counter) > 5", timeout=1)
    with pytest.raises(AssertionError, match="cell 2 raised"):
        nb.run_cell("undefined_name")
    shot = nb.screenshot("after-run-cell")
    assert shot.name.startswith("harness_shared_kernel-") and shot.stat().st_size > 0
