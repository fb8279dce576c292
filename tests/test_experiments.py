"""tlw.experiments core: nested stratified subsets, the data-efficiency table (same seed, same
table; stop keeps the finished runs; results stream), calibration, corruptions, readings.

Training runs use the shared Tiny model on 16 px in-memory images (milliseconds per run).
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import tlwidgets as tlw
from tlwidgets import experiments as ex
from tlwidgets.errors import ConfigError, DataError

from .tiny_model import Tiny


def make_data(per_class=(10, 10, 10), valid_pct=0.25, seed=0, size=16):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(per_class)])
    images = rng.random((len(labels), size, size, 3), dtype=np.float32) * 0.3
    for c in range(len(per_class)):  # a class is a bright channel: learnable in a few steps
        images[labels == c, :, :, c % 3] += 0.6
    classes = [f"c{i}" for i in range(len(per_class))]
    return tlw.ImageData.from_arrays(images, labels, classes=classes, valid_pct=valid_pct,
                                     batch_size=4, img_size=size, augment="none")


def tiny_factory(num_classes=3):
    return lambda init: Tiny(num_classes)


# ----------------------------------------------------------------------------- subsets


def test_subsets_are_nested_and_stratified():
    data = make_data(per_class=(12, 9, 15), valid_pct=0.2)
    labels = np.array([y for _, y in data.train_items])
    counts = np.bincount(labels)
    sizes = (1, 2, 4, int(counts.min()))
    for repeat in range(3):
        subsets = ex.nested_subsets(data, sizes, seed=0, repeat=repeat)
        assert list(subsets) == sorted(sizes)
        for small, big in itertools.pairwise(sizes):
            assert set(subsets[small]) < set(subsets[big])  # the same images, plus more
        for k, idx in subsets.items():
            assert idx == sorted(idx) and len(set(idx)) == len(idx)
            assert np.bincount(labels[idx], minlength=3).tolist() == [k, k, k]


def test_subsets_follow_the_seed_and_the_repeat():
    data = make_data()
    a = ex.nested_subsets(data, (1, 2, 4), seed=3, repeat=1)
    assert a == ex.nested_subsets(data, (1, 2, 4), seed=3, repeat=1)
    assert a != ex.nested_subsets(data, (1, 2, 4), seed=3, repeat=2)
    assert a != ex.nested_subsets(data, (1, 2, 4), seed=4, repeat=1)


def test_default_sizes_are_powers_of_two_up_to_the_smallest_class():
    data = make_data(per_class=(12, 20, 12), valid_pct=0.25)  # 9, 15, 9 training images
    assert ex.default_sizes(data) == (1, 2, 4, 8)


def test_bad_sizes_name_the_problem():
    data = make_data()  # 7 or 8 training images per class
    smallest = int(np.bincount([y for _, y in data.train_items]).min())
    with pytest.raises(DataError, match=f"up to {smallest}"):
        ex.nested_subsets(data, (1, smallest + 1))
    for bad in ((0, 1), (1.5,), "four", ()):
        with pytest.raises(ConfigError, match="images per class"):
            ex.nested_subsets(data, bad)


# ----------------------------------------------------------------------------- data efficiency


def run_small(data, **kw):
    args = dict(sizes=(1, 2, 4), inits=("a", "b"), recipes=("head", "all"), repeats=2,
                epochs=2, min_steps=2, lr=0.05, seed=7)
    args.update(kw)
    return ex.data_efficiency(data, tiny_factory(data.num_classes), **args)


def test_table_is_tidy_and_the_same_seed_gives_the_same_table():
    data = make_data()
    first = run_small(data)
    second = run_small(data)
    assert list(first.columns) == list(ex.COLUMNS)
    assert len(first) == 3 * 2 * 2 * 2
    assert (first["status"] == "finished").all()
    assert first["n_train"].tolist() == (first["size"] * 3).tolist()
    np.testing.assert_allclose(first["gap"], first["train_accuracy"] - first["accuracy"])
    assert ((first["accuracy"] >= 0) & (first["accuracy"] <= 1)).all()
    assert (first["seconds"] > 0).all()
    # a head-only run trains the head alone
    head = first[first["recipe"] == "head"]["trainable_params"].unique()
    assert head.tolist() == [sum(p.numel() for p in Tiny(3).fc.parameters())]
    cols = [c for c in ex.COLUMNS if c != "seconds"]
    pd.testing.assert_frame_equal(first[cols], second[cols])
    # another seed: other subsets and initialisations, so other scores
    third = run_small(data, seed=8)
    assert not first[["accuracy", "valid_loss"]].equals(third[["accuracy", "valid_loss"]])


def test_runs_use_nested_subsets_and_the_same_validation_set():
    data = make_data()
    seen = []
    run_small(data, inits=("a",), recipes=("all",), on_result=seen.append)
    assert [r.row["size"] for r in seen] == [1, 2, 4, 1, 2, 4]
    for r in seen:
        assert r.trainer.data.valid_items == data.valid_items
        assert r.trainer.state == "finished"
    by_repeat = {}
    for r in seen:
        sub = r.trainer.data  # in-memory images have no path: compare the pixels
        pixels = {sub.raw_image("train", i).tobytes() for i in range(len(sub.train_items))}
        assert len(pixels) == len(sub.train_items)
        by_repeat.setdefault(r.row["repeat"], []).append(pixels)
    for sets in by_repeat.values():
        assert sets[0] < sets[1] < sets[2]


def test_the_step_floor_sets_the_epochs_of_small_subsets():
    data = make_data()
    table = run_small(data, repeats=1, inits=("a",), recipes=("all",), epochs=1, min_steps=3)
    # batch 4: 3 images = 1 step per epoch -> 3 epochs; 12 images = 3 steps -> 1 epoch
    assert table.set_index("size")["epochs"].to_dict() == {1: 3, 2: 2, 4: 1}
    assert (table["steps"] >= 3).all()


def test_stop_between_runs_keeps_the_finished_ones():
    data = make_data()
    stop = threading.Event()
    streamed = []

    def on_result(result):
        streamed.append(result.row)
        if len(streamed) == 3:
            stop.set()

    table = run_small(data, stop=stop, on_result=on_result)
    assert len(table) == 3
    pd.testing.assert_frame_equal(table, ex.table_from_rows(streamed))


def test_stop_during_a_run_drops_only_that_run():
    data = make_data()
    stop = threading.Event()
    progress = []

    def on_progress(info):
        progress.append(info)
        if info["done"] == 2 and info["epoch"] == 1:
            stop.set()  # mid-run: after the third run's first epoch

    table = run_small(data, epochs=3, stop=stop, on_progress=on_progress)
    assert len(table) == 2
    assert progress[0] == {"done": 0, "total": 24, "size": 1, "init": "a", "recipe": "head",
                           "repeat": 0, "epochs": 3, "epoch": 0}
    assert {p["epoch"] for p in progress if p["done"] == 0} == {0, 1, 2, 3}


def test_a_model_name_builds_pretrained_and_scratch_models():
    data = make_data()
    built = []
    table = ex.data_efficiency(data, "test_resnet", sizes=(1,), inits=("scratch",),
                               recipes=("head",), repeats=1, epochs=1, min_steps=1,
                               on_result=lambda r: built.append(r.trainer.model))
    assert table["init"].tolist() == ["scratch"]
    assert tlw.is_random_init(built[0])
    assert built[0].get_classifier().out_features == 3


def test_bad_arguments_are_refused_at_the_call():
    data = make_data()
    f = tiny_factory()
    with pytest.raises(ConfigError, match="'pretrained' and/or 'scratch'"):
        ex.data_efficiency(data, "test_resnet", inits=("imagenet",))
    with pytest.raises(ConfigError, match="recipes"):
        ex.data_efficiency(data, f, recipes=("everything",))
    with pytest.raises(ConfigError, match="trains nothing"):
        ex.data_efficiency(data, f, recipes=("none",))
    with pytest.raises(ConfigError, match="model_factory"):
        ex.data_efficiency(data, 42)
    with pytest.raises(ConfigError, match="repeats"):
        ex.data_efficiency(data, f, repeats=0)
    with pytest.raises(ConfigError, match="no rate for recipe 'all'"):
        ex.data_efficiency(data, f, lr={"head": 0.1})
    with pytest.raises(ConfigError, match="sets the Trainer's callbacks"):
        ex.data_efficiency(data, f, sizes=(1,), callbacks=[print])
    with pytest.raises(ConfigError, match="not a torch model"):
        ex.data_efficiency(data, lambda init: "model", sizes=(1,), repeats=1)
    with pytest.raises(ConfigError, match="ImageData"):
        ex.data_efficiency(object(), f)


def test_summaries_and_compute_curve_from_the_table():
    table = synthetic_table()
    s = ex.summarize(table)
    row = s[(s["init"] == "pretrained") & (s["recipe"] == "head") & (s["size"] == 8)].iloc[0]
    assert row["mean"] == pytest.approx(0.94) and row["low"] <= row["mean"] <= row["high"]
    assert row["runs"] == 2
    curve = ex.compute_curve(table, x="seconds")
    for _, g in curve.groupby(["init", "recipe"]):
        assert g["seconds"].is_monotonic_increasing
    assert set(ex.compute_curve(table, x="epochs").columns) == {"init", "recipe", "size",
                                                                "epochs", "accuracy"}
    with pytest.raises(ConfigError):
        ex.compute_curve(table, x="joules")


# ----------------------------------------------------------------------------- readings


def synthetic_table(scratch=(0.30, 0.40, 0.55, 0.70, 0.80), pre=(0.70, 0.85, 0.94, 0.95, 0.95)):
    sizes = (2, 4, 8, 16, 64)
    rows = []
    for repeat, jitter in enumerate((-0.01, 0.01)):
        for init, accs, secs in (("pretrained", pre, 0.5), ("scratch", scratch, 5.0)):
            for size, acc in zip(sizes, accs, strict=True):
                rows.append(dict(size=size, n_train=4 * size, init=init, recipe="head",
                                 repeat=repeat, accuracy=acc + jitter, valid_loss=1 - acc,
                                 train_accuracy=1.0, gap=1.0 - acc - jitter, ece=0.1,
                                 seconds=secs * size, epochs=8, steps=8 * size,
                                 trainable_params=10, status="finished"))
    return ex.table_from_rows(rows)


def test_readings_are_computed_from_the_results():
    text = ex.read_data_efficiency(synthetic_table())
    assert text.startswith("With 8 images per class the pretrained model (head only) reaches 94 %")
    assert "from scratch needs more than 64 to get there (its best: 80 % with 64" in text
    assert "means of 2 repeats" in text
    # other results, other words
    text = ex.read_data_efficiency(synthetic_table(scratch=(0.3, 0.5, 0.7, 0.95, 0.96)))
    assert "from scratch (head only) needs 16 to get there" in text
    compute = ex.read_compute(synthetic_table())
    # scratch's best is 0.80 (size 64, 320 s); pretrained reaches it at size 4 (2 s)
    assert compute.startswith("To reach 80 % the pretrained model took 2.0 s")
    assert "That is 160.0× less training time for the pretrained model." in compute
    gen = ex.read_generalization(synthetic_table())
    assert gen.startswith("With 2 images per class")
    assert "scores 100 % on its own training images and 70 % on new ones" in gen


def test_robustness_and_calibration_readings():
    table = pd.DataFrame([
        dict(model="pretrained", corruption="none", severity=0, accuracy=0.98, loss=0.1, ece=0.02),
        dict(model="pretrained", corruption="noise", severity=1, accuracy=0.90, loss=0.3, ece=0.05),
        dict(model="pretrained", corruption="blur", severity=1, accuracy=0.70, loss=0.9, ece=0.2),
        dict(model="scratch", corruption="none", severity=0, accuracy=0.60, loss=1.0, ece=0.2),
        dict(model="scratch", corruption="noise", severity=1, accuracy=0.30, loss=2.0, ece=0.4),
        dict(model="scratch", corruption="blur", severity=1, accuracy=0.50, loss=1.5, ece=0.3),
    ])
    mca = ex.mean_corruption_accuracy(table)
    assert mca.loc["pretrained", "mean_corruption_accuracy"] == pytest.approx(0.80)
    assert mca.loc["scratch", "worst"] == "noise"
    assert mca.loc["scratch", "relative"] == pytest.approx(0.40 / 0.60)
    text = ex.read_robustness(table)
    assert "Averaged over 2 corruptions × 1 severity" in text
    assert "pretrained keeps 80 % (clean 98 %; worst: blur, 70 %)" in text
    assert "pretrained is ahead by 40 points" in text
    probs = np.array([[0.9, 0.1]] * 10)
    cal = ex.calibration(probs, np.array([0] * 6 + [1] * 4))
    assert "overconfident by 30 points" in ex.read_calibration({"m": cal})


# ----------------------------------------------------------------------------- calibration


def test_a_perfectly_calibrated_predictor_has_ece_near_zero():
    rng = np.random.default_rng(0)
    n, k = 200_000, 4
    conf = rng.uniform(1 / k, 1.0, n)  # the top class's probability
    top = rng.integers(0, k, n)
    probs = np.repeat(((1 - conf) / (k - 1))[:, None], k, axis=1)
    probs[np.arange(n), top] = conf
    right = rng.random(n) < conf  # right exactly as often as it says
    other = (top + rng.integers(1, k, n)) % k
    targets = np.where(right, top, other)
    cal = ex.calibration(probs, targets)
    assert cal.ece < 0.01
    assert int(cal.bins["count"].sum()) == n
    filled = cal.bins[cal.bins["count"] > 1000]
    np.testing.assert_allclose(filled["accuracy"], filled["confidence"], atol=0.02)
    # the same confidences, always wrong: ECE = mean confidence
    wrong = ex.calibration(probs, other)
    assert wrong.ece == pytest.approx(conf.mean(), abs=1e-9)
    assert wrong.accuracy == 0


def test_calibration_accepts_an_evaluation_and_refuses_bad_input():
    ev = tlw.Evaluation(torch.tensor([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]]),
                        torch.tensor([0, 1, 1]), ["a", "b"])
    cal = ex.calibration(ev, bins=10)
    assert cal.accuracy == pytest.approx(2 / 3)
    assert cal.ece == pytest.approx(ex.expected_calibration_error(ev.probs, ev.targets, bins=10))
    with pytest.raises(DataError, match="softmax"):
        ex.calibration(np.array([[2.0, 3.0]]), np.array([0]))
    with pytest.raises(DataError, match="shapes"):
        ex.calibration(np.ones((3, 2)) / 2, np.array([0, 1]))
    with pytest.raises(ConfigError, match="bins"):
        ex.calibration(ev, bins=0)
    with pytest.raises(ConfigError, match="Evaluation"):
        ex.calibration([0.5, 0.5])


# ----------------------------------------------------------------------------- corruptions


def photo(size=48):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:size, 0:size]
    arr = np.stack([xx * 4, yy * 4, (xx + yy) * 2], axis=-1) % 256
    arr = arr + rng.integers(0, 30, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


@pytest.mark.parametrize("name", list(ex.CORRUPTIONS))
def test_each_corruption_is_the_identity_at_severity_0_and_grows_with_severity(name):
    img = photo(224)  # ImageNet-C's size: the blur's sigma is 1..6 px here
    assert ex.corrupt(img, name, 0) is img
    base = np.asarray(img, dtype=np.float64)
    dist = []
    for s in ex.SEVERITIES:
        out = ex.corrupt(img, name, s, seed=5)
        assert out.size == img.size and out.mode == "RGB"
        dist.append(np.abs(np.asarray(out, dtype=np.float64) - base).mean())
    assert dist[0] > 0
    # the most severe is farther from the original than the mildest (pixel distance is not
    # monotone for every corruption: pixelate's 4x4 blocks at 0.25 align with this gradient
    # better than 0.3's uneven ones); degradation of a real model is tested in
    # test_experiments_robustness.py
    assert dist[-1] > 1.2 * dist[0], dist


def test_noise_follows_the_seed_and_parameters_are_documented():
    img = photo()
    a = np.asarray(ex.corrupt(img, "noise", 3, seed=1))
    assert (a == np.asarray(ex.corrupt(img, "noise", 3, seed=1))).all()
    assert (a != np.asarray(ex.corrupt(img, "noise", 3, seed=2))).any()
    params = ex.corruption_parameters()
    assert list(params.index) == list(ex.CORRUPTIONS)
    assert params.loc["jpeg", 1] == 25 and params.loc["contrast", 5] == 0.05
    with pytest.raises(ConfigError, match="pick from"):
        ex.corrupt(img, "fog", 1)
    with pytest.raises(ConfigError, match="from 0 to 5"):
        ex.corrupt(img, "blur", 6)


def test_the_plan_lists_the_runs_without_training():
    data = make_data()
    plan = ex.plan_runs(data, tiny_factory(), sizes=(1, 4), inits=("a", "b"), recipes=("head",),
                        repeats=2, epochs=1, min_steps=3, lr={"head": 0.5, ("b", "head"): 0.1})
    assert len(plan) == 2 * 2 * 2
    assert plan[["repeat", "size", "init"]].values.tolist()[:4] == [
        [0, 1, "a"], [0, 1, "b"], [0, 4, "a"], [0, 4, "b"]]
    assert plan.groupby("init")["lr"].first().to_dict() == {"a": 0.5, "b": 0.1}
    assert plan.set_index(["repeat", "size", "init"]).loc[(0, 4, "a"), "epochs"] == 1  # 3 steps
    table = run_small(data, sizes=(1, 4), recipes=("head",), epochs=1, min_steps=3)
    assert table["epochs"].tolist()[:4] == plan["epochs"].tolist()[:4]


def test_the_reading_looks_at_every_recipe_of_the_other_init():
    table = synthetic_table()
    extra = synthetic_table(scratch=(0.2, 0.3, 0.4, 0.5, 0.90))
    extra = extra[extra["init"] == "scratch"].assign(recipe="all")
    text = ex.read_data_efficiency(pd.concat([table, extra], ignore_index=True))
    # scratch's head-only curve is better on average, but its all-layers one goes higher
    assert "from scratch needs more than 64 to get there (its best: 90 % with 64, all layers)" \
        in text
