"""tlw.catalog(): one row per pretrained timm weight, statistics from the shipped snapshot."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import timm
import timm.models

import tlwidgets as tlw

# the module itself: ``tlwidgets.catalog`` is the public function of the same name
cat = importlib.import_module("tlwidgets.catalog")

ROOT = Path(__file__).resolve().parent.parent
SHARED_RESULTS = ROOT.parent / "shared" / "data" / "timm-results"


@pytest.fixture
def fresh_catalog(monkeypatch):
    """Each test builds its own static table; the module cache is restored afterwards."""
    monkeypatch.setattr(cat, "_static", None)
    monkeypatch.setattr(cat, "_hub_ids", None)


@pytest.fixture
def empty_caches(tmp_path, monkeypatch):
    """Point every weights cache at empty folders, so only what a test puts there counts."""
    hub = tmp_path / "hf-hub"
    hub.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return hub


@pytest.fixture(scope="module")
def df():
    return tlw.catalog()


def test_columns_are_the_documented_schema_with_sensible_dtypes(df):
    assert tuple(df.columns) == cat.COLUMNS
    for col in cat.STAT_COLUMNS + ("crop_pct",):
        assert df[col].dtype == np.float64, col
    for col in ("img_size", "num_classes"):
        assert df[col].dtype == np.int64, col
    for col in ("noncommercial", "cached"):
        assert df[col].dtype == np.bool_, col
    for col in ("name", "architecture", "tag", "family", "pretrain", "license", "interpolation"):
        assert pd.api.types.is_string_dtype(df[col]), col
        assert df[col].notna().all(), col
    assert all(isinstance(m, tuple) and len(m) == 3 for m in df["mean"])
    assert all(isinstance(s, tuple) and len(s) == 3 for s in df["std"])


def test_one_row_per_pretrained_timm_weight(df):
    names = timm.list_pretrained()
    assert len(df) >= 1500
    assert df["name"].tolist() == names
    assert df["name"].is_unique
    assert (df["name"] == df["architecture"] + "." + df["tag"]).all()


def test_accuracy_and_params_cover_most_weights(df):
    assert df["top1"].notna().sum() >= 1200
    assert df["params_m"].notna().sum() >= 1200
    assert (df["top1"].dropna().between(0, 100)).all()
    assert (df["top5"].dropna() >= df.loc[df["top5"].notna(), "top1"]).all()


def test_figures_are_joined_at_the_weights_own_resolution(df):
    row = df.set_index("name").loc["resnet50.a1_in1k"]
    # results-imagenet.csv lists this weight at 224 (80.382) and 288 (81.240); cfg size is 224
    assert row["img_size"] == 224
    assert row["top1"] == pytest.approx(80.382)
    assert row["top5"] == pytest.approx(94.598)
    assert row["params_m"] == pytest.approx(25.56)
    assert row["gmacs"] == pytest.approx(4.11)  # benchmark row (resnet50, 224), not 160 or 288
    assert row["gpu_img_s"] == pytest.approx(4302.84)
    assert row["cpu_img_s"] == pytest.approx(30.48)
    assert row["pretrain"] == "in1k" and row["family"] == "resnet"


def test_params_not_borrowed_from_a_benchmark_with_another_head(df):
    row = df.set_index("name").loc["vit_base_patch16_224.augreg_in21k"]
    # the benchmark built vit_base_patch16_224 with its default 1000-class head; this weight
    # has 21,843 classes, so the benchmark's parameter count would be wrong by ~16M
    assert row["num_classes"] == 21843
    assert math.isnan(row["params_m"])
    assert math.isnan(row["top1"])  # no ImageNet-1k head, no accuracy row
    assert row["gmacs"] > 0


def _fake_registry(monkeypatch, extra_name, base_name, **changes):
    real_list = timm.list_pretrained
    real_get = timm.models.get_pretrained_cfg
    arch, tag = extra_name.split(".", 1)
    fake_cfg = dataclasses.replace(real_get(base_name), architecture=arch, tag=tag, **changes)

    def list_pretrained(*args, **kwargs):
        names = list(real_list(*args, **kwargs))
        return names + [extra_name] if not args and not kwargs else names

    def get_pretrained_cfg(name, *args, **kwargs):
        return fake_cfg if name == extra_name else real_get(name, *args, **kwargs)

    monkeypatch.setattr(timm, "list_pretrained", list_pretrained)
    monkeypatch.setattr(timm.models, "get_pretrained_cfg", get_pretrained_cfg)


def test_weight_missing_from_snapshot_gets_a_row_with_nan_stats(
    monkeypatch, fresh_catalog, empty_caches
):
    _fake_registry(monkeypatch, "resnet50.tlw_fake_in12k_ft_in1k", "resnet50.a1_in1k")
    df = tlw.catalog(refresh=True)
    row = df.set_index("name").loc["resnet50.tlw_fake_in12k_ft_in1k"]
    for col in cat.STAT_COLUMNS:
        assert math.isnan(row[col]), col
    # the cfg columns are still filled from timm
    assert row["architecture"] == "resnet50" and row["family"] == "resnet"
    assert row["pretrain"] == "in12k"
    assert row["img_size"] == 224 and row["num_classes"] == 1000
    assert not row["cached"]
    assert len(df) == len(timm.list_pretrained())


def test_stats_at_another_resolution_are_not_reused(monkeypatch, fresh_catalog, empty_caches):
    # a (hypothetical) newer cfg for a known weight at 320 px: the snapshot's 224 px figures
    # would mislead, so they are dropped
    real_get = timm.models.get_pretrained_cfg
    bigger = dataclasses.replace(real_get("resnet50.a1_in1k"), input_size=(3, 320, 320))
    monkeypatch.setattr(
        timm.models, "get_pretrained_cfg",
        lambda name, *a, **k: bigger if name == "resnet50.a1_in1k" else real_get(name, *a, **k),
    )
    row = tlw.catalog(refresh=True).set_index("name").loc["resnet50.a1_in1k"]
    assert row["img_size"] == 320
    assert math.isnan(row["top1"]) and math.isnan(row["gmacs"])


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("a1_in1k", "in1k"),
        ("tv_in1k", "in1k"),
        ("augreg2_in21k_ft_in1k", "in21k"),
        ("fb_in22k_ft_in1k_384", "in22k"),
        ("sw_in12k_ft_in1k", "in12k"),
        ("mim_m38m_ft_in22k_in1k", "m38m"),
        ("clip_laion2b_augreg_ft_in12k_in1k", "laion2b"),
        ("laion400m_e32", "laion400m"),
        ("openai_ft_in12k_in1k", "openai"),
        ("fb_swsl_ig1b_ft_in1k", "ig1b"),
        ("fb_ssl_yfcc100m_ft_in1k", "yfcc100m"),
        ("ns_jft_in1k", "jft"),
        ("fb_inw21k", "in21k"),
        ("metaclip_2pt5b", "metaclip"),
        ("webli_i18n", "webli"),
        ("lvd142m", "lvd142m"),
        ("clip_ft_in1k", "unknown"),  # fine-tuned on in1k, pre-training data not named
        ("dino", "unknown"),
        ("apple_pt", "unknown"),
    ],
)
def test_pretrain_is_the_first_dataset_named_in_the_tag(tag, expected):
    assert cat.pretrain_of(tag) == expected


@pytest.mark.parametrize(
    ("architecture", "expected"),
    [
        ("resnet50", "resnet"),
        ("resnet50d", "resnet"),
        ("seresnext101_32x8d", "resnet"),
        ("wide_resnet50_2", "resnet"),
        ("legacy_seresnet18", "resnet"),
        ("resnetv2_50x1_bit", "resnetv2"),
        ("efficientnet_b0", "efficientnet"),
        ("tf_efficientnet_lite0", "efficientnet"),
        ("tf_efficientnetv2_s", "efficientnetv2"),
        ("gc_efficientnetv2_rw_t", "efficientnetv2"),
        ("convnext_tiny", "convnext"),
        ("convnextv2_atto", "convnextv2"),
        ("vit_base_patch16_224", "vit"),
        ("deit3_base_patch16_224", "deit"),
        ("eva02_base_patch14_224", "eva"),
        ("swin_tiny_patch4_window7_224", "swin"),
        ("swinv2_tiny_window8_256", "swinv2"),
        ("regnety_040", "regnet"),
        ("regnetx_002", "regnet"),
        ("mobilenetv3_large_100", "mobilenetv3"),
        ("tf_mobilenetv3_small_minimal_100", "mobilenetv3"),
        ("dla102x2", "dla"),
        ("res2net50_26w_4s", "res2net"),
        ("dm_nfnet_f0", "nfnet"),
        ("nf_regnet_b1", "nfnet"),
        ("ese_vovnet39b", "vovnet"),
        ("cs3darknet_focus_l", "cspnet"),
        ("tiny_vit_21m_224", "tiny_vit"),
    ],
)
def test_family_rules(architecture, expected):
    assert cat.family_of(architecture) == expected


def test_family_groups_the_catalog_into_useful_filters(df):
    counts = df["family"].value_counts()
    for family in ("resnet", "efficientnet", "convnext", "vit", "swin", "regnet", "mobilenetv3"):
        assert counts.get(family, 0) >= 5, family
    assert df["family"].nunique() < df["architecture"].nunique() / 4


def test_noncommercial_follows_the_licence(df):
    assert cat.is_noncommercial("cc-by-nc-4.0")
    assert cat.is_noncommercial("cc-by-nc-sa-4.0")
    assert cat.is_noncommercial("fair-noncommercial-research-license")
    assert cat.is_noncommercial("apple-amlr")
    for lic in ("apache-2.0", "mit", "bsd-3-clause", "cc-by-4.0", "unknown", None):
        assert not cat.is_noncommercial(lic), lic
    nc = df[df["license"] == "cc-by-nc-4.0"]
    assert len(nc) > 10 and nc["noncommercial"].all()
    assert not df.loc[df["license"] == "apache-2.0", "noncommercial"].any()


def _put_in_fake_hf_cache(hub: Path, repo_id: str) -> Path:
    from safetensors.numpy import save_file

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = hub / ("models--" + repo_id.replace("/", "--"))
    snap = repo_dir / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    path = snap / "model.safetensors"
    save_file({"fc.weight": np.zeros((2, 2), dtype=np.float32)}, str(path))
    return path


def test_cached_marks_a_weight_in_the_hf_cache_and_updates_without_refresh(
    fresh_catalog, empty_caches
):
    before = tlw.catalog()
    assert not before.set_index("name").loc["resnet18.a1_in1k", "cached"]
    baseline = set(before.loc[before["cached"], "name"])  # packaged or registered weights

    _put_in_fake_hf_cache(empty_caches, "timm/resnet18.a1_in1k")
    after = tlw.catalog()  # no refresh: cached is recomputed on every call
    assert set(after.loc[after["cached"], "name"]) == baseline | {"resnet18.a1_in1k"}
    assert not after.set_index("name").loc["resnet18.tv_in1k", "cached"]


COLD_CATALOG = """
import json, sys
import tlwidgets as tlw
df = tlw.catalog()
print(json.dumps({"cached": sorted(df.loc[df["cached"], "name"]),
                  "heavy": sorted(m for m in ("torch", "timm") if m in sys.modules)}))
"""


def test_cold_catalog_imports_neither_torch_nor_timm_and_still_sees_the_caches(
    tmp_path, monkeypatch
):
    """The first catalog() in a fresh interpreter must not pay for torch (~1-2 s) or timm."""
    hub = tmp_path / "hf-hub"
    _put_in_fake_hf_cache(hub, "timm/resnet18.a1_in1k")
    # a file timm would have downloaded by URL into torch.hub's checkpoints folder
    url = timm.models.get_pretrained_cfg("resnet18.tv_in1k").url
    checkpoints = tmp_path / "torch-home" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / url.rsplit("/", 1)[-1]).write_bytes(b"weights")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TORCH"))
    }
    env |= {"HF_HUB_CACHE": str(hub), "TORCH_HOME": str(tmp_path / "torch-home")}
    result = subprocess.run(
        [sys.executable, "-c", COLD_CATALOG], capture_output=True, text=True, env=env,
        cwd=tmp_path, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    cold = json.loads(result.stdout.strip().splitlines()[-1])
    assert cold["heavy"] == []
    assert {"resnet18.a1_in1k", "resnet18.tv_in1k"} <= set(cold["cached"])
    # the same caches give the same column in this process, where timm is imported
    monkeypatch.setenv("HF_HUB_CACHE", env["HF_HUB_CACHE"])
    monkeypatch.setenv("TORCH_HOME", env["TORCH_HOME"])
    warm = tlw.catalog()
    assert sorted(warm.loc[warm["cached"], "name"]) == cold["cached"]


def test_each_call_returns_an_independent_frame(df):
    first = tlw.catalog()
    first.loc[:, "top1"] = -1.0
    del first["family"]
    again = tlw.catalog()
    assert tuple(again.columns) == cat.COLUMNS
    assert (again["top1"].dropna() > 0).all()


def test_refresh_must_be_a_bool():
    with pytest.raises(tlw.ConfigError, match="refresh=True"):
        tlw.catalog(refresh="yes")


def test_unreadable_snapshot_says_how_to_fix_it(tmp_path, monkeypatch, fresh_catalog):
    broken = tmp_path / "catalog_snapshot.json.gz"
    broken.write_bytes(b"not gzip")
    monkeypatch.setattr(cat, "SNAPSHOT_PATH", broken)
    with pytest.raises(tlw.CatalogError, match="Reinstall tlwidgets"):
        tlw.catalog(refresh=True)


def test_snapshot_fast_path_equals_timm_live_registry():
    snap = cat.load_snapshot()
    if snap["timm_version"] != timm.__version__:
        pytest.skip(f"snapshot from timm {snap['timm_version']}, installed {timm.__version__}")
    pd.testing.assert_frame_equal(cat._build_static("snapshot"), cat._build_static("timm"))


def test_snapshot_records_its_source():
    snap = cat.load_snapshot()
    assert snap["source"]["commit"] == "aa4b5850c1543fa488abf260f18390eda46cf85d"
    assert snap["source"]["accuracy_table"] == "results-imagenet.csv"
    assert cat.SNAPSHOT_PATH.stat().st_size < 300_000


@pytest.mark.skipif(not SHARED_RESULTS.is_dir(), reason="../shared/data/timm-results is absent")
def test_shipped_snapshot_is_current_with_the_build_script():
    # The snapshot also holds timm's cfg columns, so it can only be rebuilt byte for byte with the
    # timm it was built from; with another timm the catalog falls back to timm's live registry
    # (tested elsewhere), and this check waits for a rebuild.
    built_with = cat.load_snapshot().get("timm_version")
    installed = importlib.metadata.version("timm")
    if built_with != installed:
        pytest.skip(f"snapshot built with timm {built_with}, timm {installed} installed: rebuild "
                    "it with scripts/build_catalog_snapshot.py")
    spec = importlib.util.spec_from_file_location(
        "build_catalog_snapshot", ROOT / "scripts" / "build_catalog_snapshot.py"
    )
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    fresh = build.encode(build.build_snapshot(SHARED_RESULTS))
    assert fresh == cat.SNAPSHOT_PATH.read_bytes(), (
        "tlwidgets/_data/catalog_snapshot.json.gz is stale: run "
        "`.venv/bin/python scripts/build_catalog_snapshot.py` and commit the result"
    )


def test_wheel_carries_the_snapshot():
    wheel = pytest.importorskip("hatchling.builders.wheel")
    files = {f.distribution_path for f in wheel.WheelBuilder(str(ROOT)).recurse_included_files()}
    assert "tlwidgets/_data/catalog_snapshot.json.gz" in files
