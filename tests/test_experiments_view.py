"""ExperimentView without a browser: it runs the experiments in a worker thread, plots what
arrives, keeps a stopped experiment's runs, and never sends a widget message from the worker.

Runs use the shared Tiny model on 16 px in-memory images."""

from __future__ import annotations

import threading
import time

import comm
import numpy as np
import pandas as pd
import pytest
from comm import DummyComm

import tlwidgets as tlw
from tlwidgets import experiments as ex
from tlwidgets.errors import ConfigError, DataError, TrainerStateError

from .test_experiments import make_data
from .tiny_model import Tiny

ARGS = {"sizes": (1, 2, 4), "recipes": ("head", "all"), "repeats": 2, "epochs": 2,
        "min_steps": 2, "lr": 0.05, "severities": (1, 5)}


@pytest.fixture
def senders(monkeypatch):
    """Names of the threads each widget message was sent from."""
    names: list[str] = []

    class ThreadRecordingComm(DummyComm):
        def publish_msg(self, *args, **kwargs):
            names.append(threading.current_thread().name)

    monkeypatch.setattr(comm, "create_comm", lambda *a, **k: ThreadRecordingComm(*a, **k))
    return names


def slow_tiny(seconds: float):
    def factory(init):
        time.sleep(seconds)  # slow enough to stop half-way on a loaded machine
        return Tiny(3)
    return factory


def wait_for(predicate, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_the_view_runs_the_experiments_and_plots_them(senders):
    data = make_data()
    view = tlw.ExperimentView(data, lambda init: Tiny(3), **ARGS)
    assert view.progress.max == 24 + 4 * (1 + 6 * 2 + 1)
    view.run_button.click()
    assert view.stop_button.disabled is False and view.run_button.disabled is True
    assert view.wait(120) == "finished"
    table = view.table
    assert len(table) == 24 and list(table.columns) == list(ex.COLUMNS)
    assert view.progress.value == view.progress.max
    summary = ex.summarize(table)
    for (init, recipe), mark in zip([(i, r) for i in ex.INITS for r in ARGS["recipes"]],
                                    view.charts.lines.values(), strict=True):
        s = summary[(summary["init"] == init) & (summary["recipe"] == recipe)]
        np.testing.assert_allclose(mark.x, [1, 2, 4])
        np.testing.assert_allclose(mark.y, s["mean"], rtol=1e-6)
        band = view.charts.bands[mark.labels[0]].y
        np.testing.assert_allclose(band, np.vstack([s["low"], s["high"]]), rtol=1e-6)
    assert list(view.charts.bars.x) == ["clean", *ex.DEFAULT_CORRUPTIONS]
    means = view.robustness_table.groupby(["model", "corruption"])["accuracy"].mean()
    assert view.charts.bars.y[0][1] == pytest.approx(means[("pretrained, head only", "noise")])
    assert set(view.calibrations) == set(view.trainers) == {
        "pretrained, head only", "pretrained, all layers", "scratch, head only",
        "scratch, all layers"}
    assert all(len(m.x) > 0 for m in view.charts.reliability_lines.values())
    # the readings are the core's, from these results
    assert view.readings["data"] == ex.read_data_efficiency(table)
    assert view.readings["compute"] == ex.read_compute(table)
    assert view.readings["robustness"] == ex.read_robustness(view.robustness_table)
    assert "Finished: 24 runs" in view.status.value
    assert view.run_button.disabled is False and view.stop_button.disabled is True
    # the worker thread trained and scored; only the main and publisher threads sent messages
    assert senders and "tlw-experiment" not in set(senders)
    assert "tlw-experiment-publisher" in set(senders)


def test_stop_keeps_the_finished_runs_and_their_points():
    data = make_data()
    view = tlw.ExperimentView(data, slow_tiny(0.15), **ARGS)
    view.start()
    wait_for(lambda: len(view.table) >= 3)
    view.stop_button.click()
    assert view.state in ("stopping", "stopped")
    assert view.wait(60) == "stopped"
    table = view.table
    assert 3 <= len(table) < 24
    assert view.robustness_table.empty  # stopped before the robustness step
    plotted = sum(len(m.x) for m in view.charts.lines.values())
    assert plotted == len(ex.summarize(table))
    assert f"Stopped: {len(table)} finished runs kept" in view.status.value
    assert table.equals(view.table)  # kept, not cleared
    assert view.table_html.value.count("</tr>") == len(table) + 1  # + the header
    # the view can run again
    view.start()
    assert view.state == "running"
    view.stop()
    assert view.wait(60) == "stopped"


def test_compute_axis_switches_between_seconds_and_epochs():
    data = make_data()
    view = tlw.ExperimentView(data, lambda init: Tiny(3), robustness=False,
                              **{**ARGS, "repeats": 1})
    view.start()
    view.wait(60)
    view.compute_x.value = "epochs"
    curve = ex.compute_curve(view.table, x="epochs")
    first = curve[(curve["init"] == "pretrained") & (curve["recipe"] == "head")]
    np.testing.assert_allclose(view.charts.compute_lines["pretrained, head only"].x, first["epochs"])
    assert view.charts.compute_axis.label == "epochs"
    assert view.progress.value == view.progress.max == 12


def test_save_writes_the_tables(tmp_path):
    data = make_data()
    view = tlw.ExperimentView(data, lambda init: Tiny(3), **{**ARGS, "repeats": 1,
                                                             "sizes": (1, 2)})
    view.start()
    view.wait(60)
    view.path_box.value = str(tmp_path / "out" / "runs")
    view.save_button.click()
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert len(runs) == len(view.table) == 8
    robust = pd.read_csv(tmp_path / "out" / "runs-robustness.csv")
    assert len(robust) == len(view.robustness_table)
    assert "Saved" in view.save_note.value and "runs-robustness.csv" in view.save_note.value


def test_bad_arguments_are_refused_when_the_view_is_built():
    data = make_data()
    with pytest.raises(DataError, match="up to"):
        tlw.ExperimentView(data, lambda init: Tiny(3), sizes=(1, 100))
    with pytest.raises(ConfigError, match="pick from"):
        tlw.ExperimentView(data, lambda init: Tiny(3), sizes=(1,), corruptions=("fog",))
    with pytest.raises(ConfigError, match="refresh_hz"):
        tlw.ExperimentView(data, lambda init: Tiny(3), sizes=(1,), refresh_hz=0)
    with pytest.raises(ConfigError, match="recipes"):
        tlw.ExperimentView(data, lambda init: Tiny(3), sizes=(1,), recipes=("most",))


def test_a_second_start_while_running_is_refused_and_failures_are_shown():
    data = make_data()
    view = tlw.ExperimentView(data, slow_tiny(0.2), **ARGS)
    view.start()
    with pytest.raises(TrainerStateError, match="Stop"):
        view.start()
    view.stop()
    view.wait(60)

    def broken(init):
        raise RuntimeError("no such weights here")

    view = tlw.ExperimentView(data, broken, **ARGS)
    view.start()
    assert view.wait(60) == "failed"
    assert "no such weights here" in view.error_box.value
    assert view.error_box.layout.display == "block"
