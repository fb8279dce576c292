"""Studio without a browser: the workshop path Data → Model → Layers → Train → Evaluate → Predict."""

from __future__ import annotations

import html
import io
import time

import pytest

import tlwidgets as tlw
from tlwidgets.widgets._traffic import record_traffic


@pytest.fixture
def studio():
    with record_traffic():
        s = tlw.Studio(epochs=1, img_size=64)
        yield s
        if s.dashboard is not None:
            s.dashboard.close()
        if s.panel is not None:
            s.panel.close()


def test_tabs_are_the_six_steps_in_order(studio):
    titles = [studio.tabs.get_title(i) for i in range(len(studio.tabs.children))]
    assert [t.split(" · ")[1] for t in titles] == [
        "Data", "Model", "Layers", "Train", "Evaluate", "Predict"]


def test_the_workshop_path_end_to_end(studio):
    studio._load_data()
    assert studio.data is not None and studio.data.num_classes == 4
    assert "4 classes" in studio.data_status.value
    assert len(studio.data_thumbs.children) == 4  # one photo per class
    assert studio.tabs.selected_index == 1

    studio._create_model()
    assert studio.model is not None
    assert "pretrained weights" in studio.model_status.value
    head = studio.model.get_classifier()
    assert all(p.requires_grad for p in head.parameters())
    assert not any(p.requires_grad for p in studio.model.conv_stem.parameters())
    assert studio.layers_box.children[0] is studio.panel
    assert studio.tabs.selected_index == 2

    trainer = studio.prepare_training()
    studio.dashboard.controls.press("start")
    assert trainer.wait(timeout=300) == "finished"
    deadline = time.monotonic() + 60
    while studio.dashboard.evaluation is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert studio.dashboard.evaluation is not None
    assert studio.eval_box.children[0] is studio.dashboard.eval_box

    img = studio.data.raw_image("valid", 0)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    table = studio.predict_image(buf.getvalue())
    assert list(table.columns[:3]) == ["input", "class_1", "prob_1"]
    assert table.loc[0, "class_1"] in studio.data.classes
    assert len(studio.predict_box.children) == 1


def test_steps_out_of_order_say_what_to_do_first(studio):
    studio._create_model()
    assert "Load data first" in studio.model_status.value
    studio.prepare_training()
    assert "Load data" in studio.train_box.children[0].value
    studio.predict_image(b"anything")
    assert "Train a model first" in studio.predict_box.children[0].value


def test_a_bad_folder_is_reported_in_the_page(studio, tmp_path):
    studio.data_source.value = "folder"
    studio.folder_input.value = str(tmp_path / "missing")
    studio._load_data()
    assert "DataError" in studio.data_status.value
    assert studio.data is None


def test_an_upload_that_is_not_an_image_is_explained(studio):
    studio._load_data()
    studio._create_model()
    studio.prepare_training()
    studio.predict_image(b"not an image")
    assert "not an image" in studio.predict_box.children[0].value


# ---------------------------------------------------------------- issues 11 and 12
def _bomb_png(width=20_000, height=20_000):
    """A valid PNG header claiming width x height pixels (PIL refuses it when opening)."""
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


def _now():
    import datetime

    return datetime.datetime.now(datetime.timezone.utc)


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": 0}, "epochs"),
    ({"epochs": 2.5}, "epochs"),
    ({"img_size": "big"}, "img_size"),
    ({"img_size": 10**6}, "img_size"),
    ({"batch_size": 0}, "batch_size"),
    ({"data": "photos/"}, "ImageData"),
])
def test_bad_arguments_are_refused_at_the_call(kwargs, match):
    with record_traffic(), pytest.raises(tlw.ConfigError, match=match):
        tlw.Studio(**kwargs)


def test_typing_a_folder_path_selects_the_folder_source(studio, tmp_path):
    assert studio.data_source.value == "sample"
    assert studio.load_data_button.description == "Load data: sample photos"
    studio.folder_input.value = str(tmp_path / "missing")
    assert studio.data_source.value == "folder"
    assert studio.load_data_button.description == "Load data: my folder"
    studio._load_data()  # the folder, not the samples
    assert studio.data is None and "DataError" in studio.data_status.value
    studio.data_source.value = "sample"  # an explicit choice of the samples still wins
    assert studio.load_data_button.description == "Load data: sample photos"


def test_error_messages_keep_their_line_breaks(studio):
    err = tlw.ConfigError("Two problems:\n  - the first\n  - the second")
    from tlwidgets.widgets.studio import _error_html

    shown = _error_html(err)
    assert "white-space:pre-wrap" in shown and "\n  - the first\n  - the second" in shown


def test_predict_tab_shows_an_image_bomb_and_an_upload_while_training(studio):
    studio._load_data()
    studio._create_model()
    trainer = studio.prepare_training()
    assert studio.predict_image(_bomb_png()) is None
    text = studio.predict_box.children[0].value
    assert "too large to open safely" in text and "400000000 pixels" in text
    # an upload while the model trains: shown in the tab, not raised from the handler
    trainer.subscribe(lambda e: time.sleep(0.05) if e.kind == "step" else None)
    trainer.epochs = 50
    trainer.start()
    deadline = time.monotonic() + 60
    while trainer.progress()["step"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    img = studio.data.raw_image("valid", 0)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    studio.upload.value = ({"name": "photo.png", "type": "image/png", "size": len(buf.getvalue()),
                            "content": memoryview(buf.getvalue()), "last_modified": _now()},)
    try:
        text = studio.predict_box.children[0].value
        assert "TrainerStateError" in text and "still training" in text, text
    finally:
        trainer.stop()
        trainer.wait(timeout=60)
        # the dashboard evaluates a stopped run in its own thread: let it end before teardown
        deadline = time.monotonic() + 60
        while studio.dashboard.evaluation is None and time.monotonic() < deadline:
            time.sleep(0.1)
    # a bomb through the upload handler too
    bomb = _bomb_png()
    studio.upload.value = ({"name": "bomb.png", "type": "image/png", "size": len(bomb),
                            "content": memoryview(bomb), "last_modified": _now()},)
    assert "too large to open safely" in studio.predict_box.children[0].value


def test_which_model_ranks_the_offline_models_and_selects_the_top_one(studio):
    from tlwidgets.widgets.model_browser import SCORE_SENTENCES

    page = studio.tabs.children[1]
    step = page.children[1]
    text = step.children[0].value
    assert "Which model?" in text and "tlw.rank_models(data)" in text
    for sentence in SCORE_SENTENCES.values():
        assert html.escape(sentence) in text
    assert studio.rank_models() is None  # no data yet: it says so
    assert "Load data first" in studio.rank_status.value

    studio.use_data(tlw.sample_data(img_size=32))
    studio.rank_button.click()
    assert studio.browser_box.children == (studio.browser,)
    assert studio.browser.data is studio.data
    table = studio.browser.wait_ranking(240)
    deadline = time.monotonic() + 10  # the Studio hears of the end right after the browser
    while "Ranked on your images" not in studio.rank_status.value and time.monotonic() < deadline:
        time.sleep(0.05)
    offline = tlw.catalog().query("cached")["name"].tolist()
    assert sorted(table["name"]) == sorted(offline) and (table["error"] == "").all()
    assert studio.browser.selected == table["name"].iloc[0]
    assert studio.selected_model_name() == table["name"].iloc[0]
    assert f"1. {table['model'].iloc[0]}" in studio.rank_status.value
