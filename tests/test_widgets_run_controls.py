"""RunControls without a browser: traits, validation, and what a press does in the kernel."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

import pytest

import tlwidgets as tlw
from tlwidgets.widgets import _static
from tlwidgets.widgets.run_controls import ACTIONS, ENABLED_ACTIONS, RunControls

REPO = pathlib.Path(__file__).resolve().parent.parent


def page_press(controls: RunControls, action: str) -> None:
    """What the page sends on a click: both traits in one update, as the comm delivers them."""
    controls.set_state({"action": action, "action_id": controls.action_id + 1})


def test_a_press_from_the_page_calls_every_callback_with_the_action():
    controls = tlw.RunControls(state="running")
    first, second = [], []
    controls.on_action(first.append)
    controls.on_action(second.append)
    page_press(controls, "pause")
    assert first == ["pause"] and second == ["pause"]
    assert (controls.action, controls.action_id) == ("pause", 1)


def test_the_same_button_pressed_twice_fires_twice():
    controls = RunControls(state="idle")
    presses = []
    controls.on_action(presses.append)
    page_press(controls, "start")
    controls.state = "finished"
    page_press(controls, "start")
    assert presses == ["start", "start"]
    assert controls.action_id == 2


def test_a_press_the_state_no_longer_allows_is_ignored():
    # Pause clicked just before the run finished: the kernel must not act on it.
    controls = RunControls(state="finished")
    presses = []
    controls.on_action(presses.append)
    page_press(controls, "pause")
    assert presses == []
    controls.state = "stopping"
    page_press(controls, "stop")
    assert presses == []


def test_removed_callbacks_are_not_called_and_a_failing_one_does_not_stop_the_others():
    controls = RunControls(state="running")
    kept, removed = [], []

    def broken(action):
        raise RuntimeError("callback bug")

    controls.on_action(broken)
    controls.on_action(kept.append)
    controls.on_action(removed.append)
    controls.on_action(removed.append, remove=True)
    page_press(controls, "stop")
    assert kept == ["stop"]
    assert removed == []


def test_press_from_the_kernel_acts_like_a_click_and_checks_the_state():
    controls = RunControls(state="paused")
    presses = []
    controls.on_action(presses.append)
    controls.press("resume")
    assert presses == ["resume"] and controls.action_id == 1
    with pytest.raises(tlw.TrainerStateError, match="Cannot pause while the run is 'paused'"):
        controls.press("pause")
    with pytest.raises(tlw.ConfigError, match="no 'launch' button"):
        controls.press("launch")
    controls.disabled = True
    assert controls.enabled_actions == ()
    with pytest.raises(tlw.TrainerStateError, match="disabled"):
        controls.press("stop")
    assert presses == ["resume"]


@pytest.mark.parametrize(
    "state, enabled",
    [
        ("idle", ("start",)),
        ("running", ("pause", "stop")),
        ("paused", ("resume", "stop")),
        ("stopping", ()),
        ("finished", ("start",)),
        ("stopped", ("start",)),
        ("failed", ("start",)),
    ],
)
def test_each_state_enables_its_buttons(state, enabled):
    assert RunControls(state=state).enabled_actions == enabled


def test_bad_state_and_action_values_are_refused_with_the_allowed_ones():
    controls = RunControls()
    with pytest.raises(tlw.ConfigError, match="cannot be 'done'.*finished"):
        controls.state = "done"
    assert controls.state == "idle"
    with pytest.raises(tlw.ConfigError, match="cannot be 'explode'"):
        controls.action = "explode"
    with pytest.raises(tlw.ConfigError):
        RunControls(state="Running")


def test_state_changes_are_sent_to_the_page():
    controls = RunControls()
    sent = []
    controls.comm.send = lambda data=None, buffers=None, **kw: sent.append(data)
    controls.state = "running"
    controls.detail = "epoch 1/3"
    updates = [m["state"] for m in sent if m and m.get("method") == "update"]
    assert {"state": "running"} in updates
    assert {"detail": "epoch 1/3"} in updates


def test_the_widget_carries_its_built_js_and_css():
    state = RunControls().get_state()
    assert "export" in state["_esm"] and "tlw-run-controls" in state["_esm"]
    assert "--jp-" in state["_css"]


def test_a_missing_build_names_the_file_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(_static, "STATIC_DIR", tmp_path)
    with pytest.raises(
        tlw.FrontendNotBuiltError, match=r"run_controls\.js is missing.*npm run build"
    ):
        _static.static_file("run_controls.js")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is needed to read the JS table")
def test_python_and_js_agree_on_which_buttons_each_state_enables():
    script = (
        "import('./js/lib/run_controls_state.js').then(m => "
        "console.log(JSON.stringify({actions: m.ACTIONS, enabled: m.ENABLED_ACTIONS})))"
    )
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    js = json.loads(out)
    assert tuple(js["actions"]) == ACTIONS
    assert {k: tuple(v) for k, v in js["enabled"].items()} == ENABLED_ACTIONS
