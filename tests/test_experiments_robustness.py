"""tlw.experiments.robustness on a real model: the packaged ImageNet EfficientNet-Lite0 with a
head trained on the offline texture photographs (64 px, cached features, about a second)."""

from __future__ import annotations

import copy
import itertools
import tempfile
import threading

import numpy as np
import pandas as pd
import pytest
import torch

import tlwidgets as tlw
from tlwidgets import experiments as ex
from tlwidgets.errors import ConfigError
from tlwidgets.evaluation import evaluate


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    data = tlw.sample_data(model="tf_efficientnet_lite0", img_size=64, augment="none")
    model = tlw.create_model("tf_efficientnet_lite0", data.num_classes)  # packaged weights
    tlw.apply_preset(model, "head")
    sub = data.subset(ex.nested_subsets(data, (8,))[8])
    with tempfile.TemporaryDirectory() as tmp:
        trainer = tlw.Trainer(model, sub, epochs=8, lr=1e-2, seed=0, run_dir=tmp, verbose=False,
                              name="pretrained")
        trainer.fit()
    return trainer, data


@pytest.fixture(scope="module")
def table(trained):
    trainer, data = trained
    return ex.robustness(trainer, data, severities=(0, 1, 2, 3, 4, 5))


def test_severity_0_is_the_clean_evaluation(trained, table):
    trainer, data = trained
    clean = table[table["severity"] == 0]
    assert clean["corruption"].tolist() == ["none"]
    ev = evaluate(trainer.model, data)
    assert clean["accuracy"].iloc[0] == pytest.approx(ev.accuracy)
    assert clean["loss"].iloc[0] == pytest.approx(ev.loss, rel=1e-4, abs=1e-6)
    # and each corruption's severity-0 set is the clean one, image for image
    for name in ex.CORRUPTIONS:
        xs = torch.cat([x for x, _ in ex.corrupted_eval_set(data, name, 0).valid_loader()])
        ref = torch.cat([x for x, _ in data.valid_loader()])
        assert torch.equal(xs, ref), name


@pytest.mark.parametrize("name", list(ex.CORRUPTIONS))
def test_each_corruption_degrades_the_model_monotonically(table, name):
    rows = table[table["corruption"].isin([name, "none"])].sort_values("severity")
    assert rows["severity"].tolist() == [0, 1, 2, 3, 4, 5]
    acc, loss = rows["accuracy"].to_numpy(), rows["loss"].to_numpy()
    one_image = 1 / 48 + 1e-9  # 48 validation images: one image's worth of slack
    assert all(b <= a + one_image for a, b in itertools.pairwise(acc)), (name, acc)
    assert all(b >= a - 0.01 for a, b in itertools.pairwise(loss)), (name, loss)
    assert loss[-1] > loss[0] + 0.02, (name, loss)  # the most severe clearly hurts
    assert acc[-1] <= acc[0]


def test_several_models_score_the_same_corrupted_images(trained):
    trainer, data = trained
    twin = copy.deepcopy(trainer.model)
    streamed = []
    table = ex.robustness({"a": trainer, "b": twin}, data, corruptions=("noise", "pixelate"),
                          severities=(2, 5), on_result=streamed.append)
    assert list(table.columns) == list(ex.ROBUSTNESS_COLUMNS)
    assert len(table) == 2 * (1 + 2 * 2) and table.to_dict("records") == streamed
    a = table[table["model"] == "a"].drop(columns="model").reset_index(drop=True)
    b = table[table["model"] == "b"].drop(columns="model").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)  # identical models, identical (seeded) noise
    summary = ex.mean_corruption_accuracy(table)
    assert list(summary.index) == ["a", "b"]
    bad = table[(table["model"] == "a") & (table["severity"] > 0)]
    assert summary.loc["a", "mean_corruption_accuracy"] == pytest.approx(bad["accuracy"].mean())


def test_stop_keeps_the_rows_so_far(trained):
    trainer, data = trained
    stop = threading.Event()

    def on_result(row):
        if row["corruption"] == "blur":
            stop.set()

    table = ex.robustness(trainer, data, severities=(1, 2, 3), stop=stop, on_result=on_result)
    assert table["corruption"].tolist() == ["none", "noise", "noise", "noise", "blur"]


def test_bad_input_is_refused(trained):
    trainer, data = trained
    with pytest.raises(ConfigError, match="pick from"):
        ex.robustness(trainer, data, corruptions=("fog",))
    with pytest.raises(ConfigError, match="from 0 to 5"):
        ex.robustness(trainer, data, severities=(1, 9))
    with pytest.raises(ConfigError, match="data="):
        ex.robustness(trainer.model)
    with pytest.raises(ConfigError, match="Trainers or torch models"):
        ex.robustness({"x": "not a model"}, data)


def test_labels_come_from_trainer_names(trained):
    trainer, data = trained
    table = ex.robustness([trainer, trainer.model], data, corruptions=("jpeg",), severities=(1,))
    assert list(dict.fromkeys(table["model"])) == ["pretrained", "tf_efficientnet_lite0"]
    assert np.isfinite(table["ece"]).all()
