"""TrainingDashboard without a browser: what it shows for a real run, and what travels."""

from __future__ import annotations

import math
import re
import time

import numpy as np
import pytest
import torch

import tlwidgets as tlw
from tlwidgets.training.events import TrainerEvent
from tlwidgets.widgets._series import LossSeries, decimate_minmax, decimate_stride
from tlwidgets.widgets._traffic import record_traffic
from tlwidgets.widgets.dashboard import TrainingDashboard, recorded_runs


# ---------------------------------------------------------------- series
def test_minmax_decimation_bounds_points_and_keeps_spikes():
    x = np.arange(20_000, dtype=float)
    y = np.ones_like(x)
    y[12_345] = 50.0  # one spike in a long run must stay visible
    xd, yd = decimate_minmax(x, y, 1000)
    assert len(xd) <= 1002
    assert 50.0 in yd and xd[-1] == 19_999
    assert np.all(np.diff(xd) > 0)


def test_stride_decimation_keeps_ends():
    xd, yd = decimate_stride(np.arange(5000.0), np.arange(5000.0) * 2, 300)
    assert len(xd) == 300 and xd[0] == 0 and xd[-1] == 4999
    assert np.array_equal(yd, xd * 2)


def test_debiased_moving_average_matches_the_formula():
    values = [2.0, 1.0, 0.5, 0.25]
    s = LossSeries(beta=0.9)
    for i, v in enumerate(values):
        s.append(i, v)
    avg, expected = 0.0, []
    for t, v in enumerate(values, start=1):
        avg = 0.9 * avg + 0.1 * v
        expected.append(avg / (1 - 0.9**t))
    assert np.allclose(s.arrays()[2], expected)
    # debiasing: the first smoothed value is the first loss, not a tenth of it
    assert s.arrays()[2][0] == pytest.approx(2.0)


def test_non_finite_losses_do_not_poison_the_smoothed_line():
    s = LossSeries(beta=0.5)
    for i, v in enumerate([1.0, math.nan, 1.0]):
        s.append(i, v)
    assert np.allclose(s.arrays()[2], [1.0, 1.0, 1.0])


# ---------------------------------------------------------------- a real run
def _data(n=48, classes=3, size=32, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    images = rng.random((n, 3, size, size), dtype=np.float32) * 0.2
    for c in range(classes):  # a class is a bright channel: learnable in a few steps
        images[labels == c, c] += 0.8
    return images, labels


@pytest.fixture
def trainer_factory(tmp_path):
    torch.manual_seed(0)

    def make(epochs=2, lr=3e-3, **kw):
        model = tlw.create_model("test_resnet", num_classes=3, weights="none")
        images, labels = _data()
        data = tlw.ImageData.from_arrays(images, labels, classes=["r", "g", "b"],
                                         valid_pct=0.25, batch_size=8, model=model, img_size=32)
        return tlw.Trainer(model, data, epochs=epochs, lr=lr, run_dir=tmp_path / f"run{time.time_ns()}",
                           cache_features=False, **kw)

    return make


def _wait_state(dash, state, timeout=60):
    deadline = time.monotonic() + timeout
    while dash.controls.state != state and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dash.controls.state == state


def test_dashboard_shows_a_finished_run(trainer_factory):
    trainer = trainer_factory(epochs=2)
    with record_traffic():
        dash = TrainingDashboard(trainer, mistakes=4)
        trainer.fit()
        _wait_state(dash, "finished")
        deadline = time.monotonic() + 60
        while dash.evaluation is None and time.monotonic() < deadline:
            time.sleep(0.1)
    steps = len(trainer.steps)
    assert steps > 0
    assert len(dash.raw_line.y) == steps  # short run: nothing decimated
    assert len(dash.smooth_line.y) == steps
    assert np.allclose(dash.acc_line.y, trainer.history["accuracy"].to_numpy(), atol=1e-6)
    assert len(dash.valid_line.y) == 2 and len(dash.epoch_marks.x) == 2
    assert dash.progress.value == dash.progress.max == steps
    assert "epoch 2/2" in dash.progress_label.value
    assert dash.epoch_table.value.count("<tr>") == 3  # header + 2 epochs
    assert dash.lr_line.y.ndim in (1, 2) and len(dash.lr_line.x) == steps
    # evaluation view: a confusion matrix over the 3 classes
    assert dash.evaluation is not None
    view = dash.confusion_view
    assert view is not None and view in list(_walk(dash.eval_box))
    assert view.counts.shape == (3, 3)
    assert view.counts.sum() == len(trainer.data.valid_ds)
    # every cell of the page's table shows its count
    cells = re.findall(r"data-count='(\d+)'[^>]*>(\d+)</td>", view.table.value)
    assert len(cells) == 9 and all(a == b for a, b in cells)
    assert sum(int(a) for a, _ in cells) == len(trainer.data.valid_ds)
    dash.close()


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def test_buttons_drive_the_trainer(trainer_factory):
    trainer = trainer_factory(epochs=30)
    with record_traffic():
        dash = TrainingDashboard(trainer, evaluate=False)
        dash.epochs_input.value = 20
        dash.controls.press("start")
        assert trainer.epochs == 20  # edited before starting
        _wait_state(dash, "running")
        assert dash.epochs_input.disabled  # no edits while it runs
        dash.controls.press("pause")
        _wait_state(dash, "paused")
        step = trainer.progress()["step"]
        time.sleep(0.5)
        assert trainer.progress()["step"] == step
        dash.controls.press("resume")
        _wait_state(dash, "running")
        dash.controls.press("stop")
        trainer.wait(timeout=60)
        _wait_state(dash, "stopped")
    assert not dash.epochs_input.disabled
    # the model is intact and usable after a stop
    with torch.no_grad():
        out = trainer.model.eval()(torch.zeros(1, 3, 32, 32))
    assert torch.isfinite(out).all()
    dash.close()


def test_a_failed_run_shows_its_error_and_keeps_the_curves(trainer_factory):
    trainer = trainer_factory(epochs=3, lr=1e6)  # diverges to a non-finite loss
    with record_traffic():
        dash = TrainingDashboard(trainer, evaluate=False)
        trainer.start()
        trainer.wait(timeout=120)
        _wait_state(dash, "failed")
        time.sleep(0.3)
    assert trainer.state == "failed"
    assert dash.error_box.layout.display == "block"
    assert "Training failed" in dash.error_box.value
    assert "step" in dash.error_box.value.lower()
    assert len(dash.raw_line.y) >= 1  # the curve so far stays
    dash.close()


def test_errors_are_escaped_not_rendered_as_html(trainer_factory):
    trainer = trainer_factory()
    with record_traffic():
        dash = TrainingDashboard(trainer, evaluate=False)
        dash._on_event(TrainerEvent("error", {"message": "<img src=x onerror=alert(1)>"}))
        dash.flush()
    assert "<img" not in dash.error_box.value
    assert "&lt;img src=x onerror=alert(1)&gt;" in dash.error_box.value
    dash.close()


def test_long_runs_are_decimated_and_traffic_per_refresh_is_bounded(trainer_factory):
    trainer = trainer_factory()
    with record_traffic() as traffic:
        dash = TrainingDashboard(trainer, evaluate=False, max_points=1000)
        dash._publisher.close()  # drive flushes by hand
        for step in range(1, 50_001):
            dash._on_event(TrainerEvent("step", {"step": step, "loss": 1 + math.sin(step),
                                                 "lrs": [1e-4, 1e-3]}))
        traffic.reset()
        dash.flush()
        first = traffic.bytes
        for step in range(50_001, 50_101):
            dash._on_event(TrainerEvent("step", {"step": step, "loss": 1.0, "lrs": [1e-4, 1e-3]}))
        traffic.reset()
        dash.flush(final=False)
        refresh = traffic.bytes
    assert len(dash.raw_line.x) <= 1002
    assert len(dash.smooth_line.x) <= 500
    assert len(dash.lr_line.x) <= 250
    # float32 binary: a refresh of a 50,000-step run stays near 12 KB, however long the run
    assert first < 20_000 and refresh < 16_000, (first, refresh)
    assert dash.raw_line.x.dtype == np.float32
    dash.close()


def test_earlier_runs_can_be_overlaid(trainer_factory):
    first = trainer_factory(epochs=1)
    with record_traffic():
        dash1 = TrainingDashboard(first, label="pretrained", evaluate=False)
        first.fit()
        _wait_state(dash1, "finished")
        time.sleep(0.2)
        assert any(r.label.startswith("pretrained") for r in recorded_runs())

        second = trainer_factory(epochs=1)
        dash2 = TrainingDashboard(second, label="scratch", compare=[first], evaluate=False)
        # one overlaid run: one dashed line (bqplot squeezes a single line to 1-D)
        assert dash2.compare_loss.y.ndim == 1 and len(dash2.compare_loss.y) == len(first.steps)
        assert dash2.compare_acc.y[0] == pytest.approx(first.history["accuracy"].iloc[0])
        labels = [label for label, _ in dash2.compare_select.options]
        assert any(label.startswith("pretrained") for label in labels)
        dash2.compare_select.value = ()
        dash2.flush()
        assert len(dash2.compare_loss.y) == 0
    dash1.close()
    dash2.close()


def test_bad_arguments_say_what_to_do(trainer_factory):
    with pytest.raises(tlw.ConfigError, match="tlw.Trainer"):
        TrainingDashboard(object())
    trainer = trainer_factory()
    with record_traffic(), pytest.raises(tlw.ConfigError, match="refresh_hz"):
        TrainingDashboard(trainer, refresh_hz=100)
    with record_traffic(), pytest.raises(tlw.ConfigError, match="No ended run"):
        dash = TrainingDashboard(trainer, evaluate=False)
        try:
            dash.compare("no such run")
        finally:
            dash.close()


def test_overlays_are_labelled_with_the_trainers_name(trainer_factory):
    first = trainer_factory(epochs=1, name="from scratch")
    assert repr(first).startswith("Trainer(from scratch,")
    with record_traffic():
        first.fit()
        dash = TrainingDashboard(trainer_factory(epochs=1), compare=[first], evaluate=False)
        assert list(dash.compare_loss.labels) == ["from scratch"]
        assert tlw.RunRecord.from_trainer(first).label == "from scratch"
    dash.close()


# ---------------------------------------------------------------- issue 11/12: inputs and labels
@pytest.mark.parametrize("kwargs, match", [
    ({"refresh_hz": "fast"}, "refresh_hz"),
    ({"refresh_hz": math.nan}, "refresh_hz"),
    ({"max_points": None}, "max_points"),
    ({"max_points": 5.5}, "max_points"),
    ({"smoothing": 1.0}, "smoothing"),
    ({"mistakes": -1}, "mistakes"),
    ({"label": 3}, "label"),
])
def test_bad_arguments_are_refused_at_the_call(trainer_factory, kwargs, match):
    trainer = trainer_factory()
    with record_traffic(), pytest.raises(tlw.ConfigError, match=match):
        TrainingDashboard(trainer, **kwargs)


@pytest.mark.parametrize("field, text, words", [
    ("epochs_input", "-5", "at least 1"),
    ("epochs_input", "0", "at least 1"),
    ("epochs_input", "", "empty"),
    ("epochs_input", "2.5", "whole number"),
    ("epochs_input", "1e9", "more than 10,000"),
    ("lr_input", "-5", "greater than 0"),
    ("lr_input", "0", "greater than 0"),
    ("lr_input", "", "empty"),
    ("lr_input", "1e9", "above 10"),
    ("lr_input", "fast", "a number"),
])
def test_fields_refuse_what_they_cannot_use_and_do_not_start(trainer_factory, field, text,
                                                             words):
    trainer = trainer_factory(epochs=2, lr=3e-3)
    with record_traffic():
        dash = TrainingDashboard(trainer, evaluate=False)
        getattr(dash, field).value = text
        assert words in dash.inputs_message.value  # shown as soon as it is typed
        dash.controls.press("start")
        assert "Not started" in dash.inputs_message.value and words in dash.inputs_message.value
        assert "tlw-invalid" in getattr(dash, field)._dom_classes
        time.sleep(0.2)
        assert trainer.state == "idle" and trainer.progress()["step"] == 0
        assert (trainer.epochs, trainer.lr) == (2, 3e-3)  # nothing was clamped into the trainer
        # fixed, the same press starts the run with the typed value
        getattr(dash, field).value = "1" if field == "epochs_input" else "0.001"
        assert dash.inputs_message.value == ""
        dash.controls.press("start")
        assert trainer.wait(timeout=120) == "finished"
        assert trainer.epochs == 1 if field == "epochs_input" else trainer.lr == 1e-3
    dash.close()


def test_after_stop_the_label_says_where_the_run_stopped(trainer_factory):
    trainer = trainer_factory(epochs=5)
    trainer.subscribe(lambda e: trainer.stop() if e.kind == "step" and e.data["step"] == 8
                      else None)
    with record_traffic():
        dash = TrainingDashboard(trainer, evaluate=False)
        trainer.start()
        assert trainer.wait(timeout=120) == "stopped"
        _wait_state(dash, "stopped")
        time.sleep(0.3)
        dash.flush()
    last = trainer.steps.iloc[-1]
    spe = trainer.progress()["steps_per_epoch"]
    done = len(trainer.history)
    where = f"stopped in epoch {int(last['epoch'])}/5 at step {int(last['batch'])}/{spe}"
    assert where in dash.progress_label.value, dash.progress_label.value
    assert f"{done} epoch" in dash.progress_label.value
    assert int(last["epoch"]) == done + 1  # mid-epoch: the completed count alone would mislead
    dash.close()


def test_a_run_appears_once_in_compare_mode_under_its_label(trainer_factory):
    first = trainer_factory(epochs=1, name="resnet · random · all (once)")
    with record_traffic():
        dash1 = TrainingDashboard(first, evaluate=False)
        first.fit()
        _wait_state(dash1, "finished")
        time.sleep(0.3)
        second = trainer_factory(epochs=1, name="resnet · random · head (once)")
        # the run's own dashboard recorded it; compare=[trainer] must not add a second copy
        dash2 = TrainingDashboard(second, compare=[first, tlw.RunRecord.from_trainer(first)],
                                  evaluate=False)
        dash2.compare(first)
        dash2.flush()
    labels = [label for label, _ in dash2.compare_select.options]
    assert labels.count("resnet · random · all (once)") == 1, labels
    assert [r.label for r in recorded_runs()].count("resnet · random · all (once)") == 1
    assert list(dash2.compare_loss.labels) == ["resnet · random · all (once)"]
    # legends: this run's label first, the overlaid run's label once
    assert "resnet · random · head (once)" in dash2.loss_legend.value
    assert dash2.loss_legend.value.count("resnet · random · all (once)</span>") == 1
    assert dash2.acc_legend.value.count("resnet · random · all (once)</span>") == 1
    # and the current run's own legend carries its label
    assert "resnet · random · all (once)" in dash1.loss_legend.value
    dash1.close()
    dash2.close()


def test_lr_legend_names_the_param_groups(trainer_factory):
    trainer = trainer_factory(epochs=1)
    with record_traffic():
        dash = TrainingDashboard(trainer, evaluate=False)
        dash._publisher.close()
        for step in range(1, 5):
            dash._on_event(TrainerEvent("step", {"step": step, "loss": 1.0,
                                                 "lrs": [1e-4 * step, 1e-3 * step]}))
        dash.flush()
    names = getattr(trainer, "param_group_names", None)
    expected = [str(n) for n in names] if names and len(names) == 2 else ["group 0", "group 1"]
    shown = re.findall(r"white-space:nowrap;max-width:280px'>([^<]*)</span>", dash.lr_legend.value)
    assert shown == expected  # one entry per plotted line, in the order of the lrs
    assert list(dash.lr_line.labels) == expected
    dash.close()


def test_axes_get_round_ticks_and_a_readable_count():
    from tlwidgets.widgets._charts import nice_ticks

    assert nice_ticks(0.0026, 1.39, 6).tolist() == [0.2, 0.4, 0.6, 0.8, 1.0, 1.2]
    assert nice_ticks(0.0, 0.002, 5).tolist() == [0.0, 0.0005, 0.001, 0.0015, 0.002]
    for lo, hi in [(0.9, 1.1), (-1500.0, 35500.0), (0.0, 6.9e-9), (3.0, 3000.0)]:
        ticks = nice_ticks(lo, hi, 6)
        assert 2 <= len(ticks) <= 6 and ticks.min() >= lo and ticks.max() <= hi, (lo, hi, ticks)
        step = np.diff(ticks)[0]
        mantissa = step / 10 ** np.floor(np.log10(step))
        assert round(mantissa, 6) in (1.0, 2.0, 2.5, 5.0), (lo, hi, ticks)


def test_a_dashboard_keeps_the_console_progress_out_of_the_notebook(trainer_factory, capfd):
    trainer = trainer_factory(epochs=1)
    if "display" not in __import__("inspect").signature(trainer.subscribe).parameters:
        pytest.skip("this Trainer has no console progress to silence")
    with record_traffic():
        dash = TrainingDashboard(trainer, evaluate=False)
        trainer.fit()
        _wait_state(dash, "finished")
    out, err = capfd.readouterr()
    assert "train_loss" not in out and "epoch 1/1" not in err, (out, err)
    dash.close()
    capfd.readouterr()
    trainer_factory(epochs=1).fit()  # without a dashboard the console lines are there
    out, _ = capfd.readouterr()
    assert "train_loss" in out


def test_a_dashboard_made_after_a_run_or_following_its_folder_draws_the_lr_from_step_one(
        trainer_factory):
    trainer = trainer_factory(epochs=1, schedule="one_cycle")
    trainer.fit()
    lrs = trainer.steps["lr"].to_numpy(float)
    assert len(lrs) > 3 and lrs.max() > 2 * lrs.min()  # a curve, not a constant
    follower = tlw.RunFollower(trainer.run_dir, live=False)
    with record_traffic():
        for source in (trainer, follower):
            dash = TrainingDashboard(source, evaluate=False)
            dash.flush(final=True)
            assert dash.lr_line.x.tolist() == trainer.steps["step"].astype(float).tolist()
            np.testing.assert_allclose(np.asarray(dash.lr_line.y, dtype=float).reshape(-1), lrs,
                                       rtol=1e-6)
            dash.close()
    follower.close()


def test_a_fine_tune_run_whose_group_count_changes_still_flushes(trainer_factory):
    trainer = trainer_factory(epochs=1)
    with record_traffic():
        dash = TrainingDashboard(trainer, evaluate=False)
        trainer.fine_tune(1, freeze_epochs=1)  # the head alone, then every layer group
        dash.flush()
        steps = len(trainer.steps)
        assert len(dash.lr_line.x) == steps
        dash.close()


# ---------------------------------------------------------------- text
def _html_of(widget) -> str:
    """Every HTML string under ``widget`` (the worst-mistakes cards are HTML widgets)."""
    import ipywidgets as widgets

    out = [widget.value] if isinstance(widget, widgets.HTML) else []
    for child in getattr(widget, "children", ()):
        out.append(_html_of(child))
    return "\n".join(out)


def test_text_mistakes_show_the_sentence_escaped_with_the_whole_text_on_hover(monkeypatch):
    import html as html_lib
    import types

    import ipywidgets as widgets

    from tests.test_text_helpers import NEGATIVE, POSITIVE, offline, tiny_bert
    from tlwidgets.evaluation import Evaluation
    from tlwidgets.widgets._evaluation_view import evaluation_widgets

    offline(monkeypatch)
    model = tiny_bert(2)
    markup = "<b>bold</b> & <img src=x onerror=alert(1)> 'quoted'"
    valid = [(POSITIVE[0] + " " + markup, 0), (NEGATIVE[0] + " and then" * 100, 1),
             (POSITIVE[1], 0)]
    data = tlw.TextData(classes=["neg", "pos"], train_items=[(t, 1) for t in POSITIVE[2:]]
                        + [(t, 0) for t in NEGATIVE[1:]], valid_items=valid,
                        tokenizer=model.tokenizer, batch_size=8)
    # all three validation texts predicted wrong, the markup one most confidently (TextData
    # keeps valid_items in token-length order: the evaluation follows that order)
    items = data.valid_items
    margin = [3.0 if t == valid[0][0] else 1.0 for t, _ in items]
    logits = torch.tensor([[m, -m] if y == 1 else [-m, m] for (_, y), m in zip(items, margin)])
    ev = Evaluation(logits, torch.tensor([y for _, y in items]), data.classes,
                    [t for t, _ in items])
    children, _ = evaluation_widgets(ev, types.SimpleNamespace(data=data), k=8)
    assert "over 3 texts" in children[0].value and "images" not in _html_of(children[1])
    gallery = children[-1]
    html = _html_of(gallery)
    assert "(no image)" not in html
    assert not any(isinstance(w, widgets.Image) for card in gallery.children[1].children
                   for w in card.children)
    assert "<b>bold</b>" not in html and "<img" not in html  # never markup, always text
    cards = re.findall(r"class='tlw-mk-text' title='([^']*)'><div class='tlw-mk-clamp'>([^<]*)</div>", html)
    assert len(cards) == 3
    assert html_lib.unescape(cards[0][0]) == valid[0][0]  # highest loss first
    by_text = {t: None for t, _ in valid}
    for title, body in cards:
        whole = html_lib.unescape(title)
        assert whole in by_text  # the whole text is the hover title
        shown = html_lib.unescape(body)
        if len(whole) > 600:  # a long review is cut with an ellipsis; the title keeps it all
            assert shown == whole[:599] + "…"
        else:
            assert shown == whole
    assert "true:&nbsp;" in html and "p(" in html
