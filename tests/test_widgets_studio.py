"""Studio without a browser: the workshop path Data → Model → Layers → Train → Evaluate → Predict."""

from __future__ import annotations

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
