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


# ---------------------------------------------------------------- issue 14: text
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture
def text_studio(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with record_traffic():
        s = tlw.Studio(epochs=1, batch_size=16, text_sample_size=120)
        yield s
        if s.dashboard is not None:
            s.dashboard.close()
        if s.panel is not None:
            s.panel.close()


def _reviews_csv(path, text="text", label="label", extra=None):
    import pandas as pd

    from tests.test_text_helpers import NEGATIVE, POSITIVE

    frame = pd.DataFrame({text: POSITIVE + NEGATIVE,
                          label: ["pos"] * len(POSITIVE) + ["neg"] * len(NEGATIVE)})
    for key, value in (extra or {}).items():
        frame[key] = value
    frame.to_csv(path, index=False)
    return path


def test_text_sample_through_model_layers_train_evaluate_and_predict(text_studio):
    s = text_studio
    s.data_kind.value = "text"
    assert [o[1] for o in s.data_source.options] == ["text_sample", "csv", "text_folder"]
    assert s.load_data_button.description == "Load data: sample sentences"
    s._load_data()
    assert s.is_text and s.data.num_classes == 2 and len(s.data.train_items) + len(
        s.data.valid_items) == 120
    assert "2 classes" in s.data_status.value and "validation texts" in s.data_status.value
    assert len(s.data_thumbs.children) == 4  # two sentences of each class, escaped
    assert "tlw-studio-text" in s.data_thumbs.children[0].value
    # the Model tab offers the packaged text encoder, not an image model; no image ranking
    assert s.selected_model_name() == MINILM and MINILM in s.model_choice.value
    assert s.rank_button.disabled and s.rank_models() is None
    assert "for texts" in s.rank_status.value
    s._create_model()
    assert "pretrained weights" in s.model_status.value, s.model_status.value
    assert s.panel is not None and s.layers_box.children[0] is s.panel
    groups = tlw.layer_groups(s.model)
    assert groups[-1].trainable_params == groups[-1].params
    assert not any(g.trainable_params for g in groups[:-1])
    # Train on cached features (only the head trains), the dashboard evaluates with text cards
    trainer = s.prepare_training()
    s.dashboard.controls.press("start")
    assert trainer.wait(timeout=300) == "finished"
    assert trainer.feature_cache is not None
    deadline = time.monotonic() + 60
    while s.dashboard.evaluation is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert s.eval_box.children[0] is s.dashboard.eval_box
    assert "texts" in s.dashboard.eval_box.children[0].value
    # Predict takes a sentence for text data
    assert s.upload.layout.display == "none" and s.text_predict_box.layout.display == "flex"
    s.text_input.value = "<b>a warm</b>, funny and moving film"
    s.predict_text_button.click()
    shown = s.predict_box.children[0].children[0].value
    assert "&lt;b&gt;a warm&lt;/b&gt;" in shown
    assert s.predict_text("   ") is None and "Type a sentence" in s.predict_box.children[0].value


def test_a_csv_with_obvious_columns_loads_and_picked_columns_win(text_studio, tmp_path):
    s = text_studio
    s.data_kind.value = "text"
    path = _reviews_csv(tmp_path / "reviews.csv", text="Review", label="Sentiment")
    s.folder_input.value = str(path)
    assert s.data_source.value == "csv"  # typing a .csv path picks the CSV source
    assert s.load_data_button.description == "Load data: my CSV file"
    s._load_data()
    assert s.is_text and s.data.classes == ["neg", "pos"], s.data_status.value
    # columns it cannot tell: the tab lists them and offers the two lists; picking them works
    odd = _reviews_csv(tmp_path / "odd.csv", text="words", label="stars")
    s.folder_input.value = str(odd)
    s._load_data()
    status = html.unescape(s.data_status.value)
    assert "ConfigError" in status and "'words', 'stars'" in status and "Text column" in status
    assert s.columns_box.layout.display == "flex"
    assert list(s.text_column.options) == ["(detect)", "words", "stars"]
    s.text_column.value, s.label_column.value = "words", "stars"
    s._load_data()
    assert s.data.classes == ["neg", "pos"] and "2 classes" in s.data_status.value
    # a file that cannot be read as a CSV: TextData's own error, shown in the tab
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    before = s.data
    s.folder_input.value = str(empty)
    s._load_data()
    assert "DataError" in s.data_status.value and "empty" in s.data_status.value
    assert s.data is before


def test_a_text_folder_and_an_empty_path_and_images_again(text_studio, tmp_path):
    from tests.test_text_helpers import NEGATIVE, POSITIVE

    s = text_studio
    s.data_kind.value = "text"
    s.data_source.value = "text_folder"
    s._load_data()
    assert "Type the path of your text folder" in s.data_status.value
    for name, texts in (("pos", POSITIVE), ("neg", NEGATIVE)):
        (tmp_path / name).mkdir()
        for i, t in enumerate(texts):
            (tmp_path / name / f"{i}.txt").write_text(t)
    s.folder_input.value = str(tmp_path)
    s._load_data()
    assert s.is_text and sorted(s.data.classes) == ["neg", "pos"]
    s._create_model()
    assert s.model is not None
    # back to images: the image sources, and the text model is dropped for the new data
    s.data_kind.value = "image"
    assert s.data_source.value == "sample" and s.load_data_button.description == \
        "Load data: sample photos"
    s.use_data(tlw.sample_data(img_size=32))
    assert s.model is None and "create the model again" in s.model_status.value
    assert s.selected_model_name() == "tf_efficientnet_lite0" and not s.rank_button.disabled
    assert s.upload.layout.display is None and s.text_predict_box.layout.display == "none"


def test_text_data_given_in_code_and_a_text_encoder_picked_in_the_browser(text_studio):
    data = tlw.sample_text_data(size=60)
    s = tlw.Studio(data=data, epochs=1)
    assert s.is_text and s.data_kind.value == "text"
    s._open_browser()
    assert s.browser.modality == "text" and s.browser.data is None
    s.browser.selected = MINILM
    assert s.selected_model_name() == MINILM
    s.browser.selected = "tf_efficientnet_lite0.in1k"  # an image model: not for texts
    assert s.selected_model_name() == MINILM
    assert "is an image model, not for this data" in s.model_choice.value
    assert MINILM in s.model_choice.value
