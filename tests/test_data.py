"""Tests of tlwidgets.data: folders, splits, mode conversion, bad files, model transforms,
arrays, bad input and the offline sample photographs. Images are made here (tiny PNG/JPEG)."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import tlwidgets as tlw
from tlwidgets import _sample_data
from tlwidgets.data import ImageData, load_rgb, resolve_data_config, to_rgb
from tlwidgets.errors import DataError

torch.set_num_threads(1)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _photo(seed: int, size: int = 24, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return img if mode == "RGB" else img.convert(mode)


def _read(path) -> Image.Image:
    """Open, decode and close an image file (no file handle left for the GC to warn about)."""
    with Image.open(path) as img:
        img.load()
        return img.copy()


def _make_folder(root: Path, counts: dict[str, int], ext: str = ".png") -> Path:
    seed = 0
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            seed += 1
            _photo(seed).save(root / cls / f"{cls}_{k:02d}{ext}")
    return root


def _epoch(loader) -> tuple[int, list[int]]:
    seen, labels = 0, []
    for _, yb in loader:
        seen += len(yb)
        labels.extend(yb.tolist())
    return seen, labels


# ------------------------------------------------------------------------- layouts and splits


def test_class_subfolders_give_sorted_classes_and_stratified_counts(tmp_path):
    _make_folder(tmp_path, {"dog": 10, "cat": 7, "ant": 2})
    data = ImageData.from_folder(tmp_path, valid_pct=0.2, img_size=32, augment="none")
    assert data.classes == ["ant", "cat", "dog"]
    assert data.num_classes == 3
    summary = data.summary()
    assert isinstance(summary, pd.DataFrame)
    assert list(summary.columns) == ["train", "valid", "total"]
    assert list(summary.index) == ["ant", "cat", "dog"]
    # round(10*0.2)=2, round(7*0.2)=1, and a class of 2 still gets one validation image
    assert summary.loc["dog"].tolist() == [8, 2, 10]
    assert summary.loc["cat"].tolist() == [6, 1, 7]
    assert summary.loc["ant"].tolist() == [1, 1, 2]
    assert len(data.train_ds) == 15 and len(data.valid_ds) == 4
    x, y = data.train_ds[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and isinstance(y, int)


def test_split_is_deterministic_for_a_seed_and_changes_with_it(tmp_path):
    _make_folder(tmp_path, {"a": 12, "b": 12})
    first = ImageData.from_folder(tmp_path, seed=3, img_size=32)
    again = ImageData.from_folder(tmp_path, seed=3, img_size=32)
    other = ImageData.from_folder(tmp_path, seed=4, img_size=32)
    assert first.valid_items == again.valid_items
    assert first.train_items == again.train_items
    assert first.valid_items != other.valid_items
    # no image is in both splits and none is lost
    train_paths = {p for p, _ in first.train_items}
    valid_paths = {p for p, _ in first.valid_items}
    assert not train_paths & valid_paths
    assert len(train_paths | valid_paths) == 24


def test_train_and_valid_subfolders_are_used_as_given(tmp_path):
    _make_folder(tmp_path / "train", {"cat": 5, "dog": 4})
    _make_folder(tmp_path / "valid", {"cat": 2, "dog": 3})
    data = ImageData.from_folder(tmp_path, valid_pct=0.5, img_size=32)
    assert data.classes == ["cat", "dog"]
    assert data.summary().to_dict("index") == {
        "cat": {"train": 5, "valid": 2, "total": 7},
        "dog": {"train": 4, "valid": 3, "total": 7},
    }
    assert all("/valid/" in p for p, _ in data.valid_items)


def test_val_folder_is_accepted_and_extensions_are_case_insensitive(tmp_path):
    _make_folder(tmp_path / "train", {"cat": 3, "dog": 3}, ext=".PNG")
    _make_folder(tmp_path / "val", {"cat": 1, "dog": 1}, ext=".Jpeg")
    data = ImageData.from_folder(tmp_path, img_size=32)
    assert data.summary()["valid"].tolist() == [1, 1]
    assert data.summary()["train"].tolist() == [3, 3]


def test_train_folder_without_valid_is_split_by_valid_pct(tmp_path):
    _make_folder(tmp_path / "train", {"cat": 5, "dog": 5})
    data = ImageData.from_folder(tmp_path, valid_pct=0.2, img_size=32)
    assert data.classes == ["cat", "dog"]
    assert data.summary()["valid"].tolist() == [1, 1]


def test_hidden_files_and_folders_are_ignored(tmp_path):
    _make_folder(tmp_path, {"cat": 3, "dog": 3})
    (tmp_path / "cat" / "._cat_00.png").write_bytes(b"\x00\x05AppleDouble")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    _photo(99).save(tmp_path / ".ipynb_checkpoints" / "x.png")
    data = ImageData.from_folder(tmp_path, img_size=32)
    assert data.classes == ["cat", "dog"]
    assert data.summary()["total"].sum() == 6
    assert data.skipped == []


def test_valid_items_map_loader_order_to_raw_images_and_paths(tmp_path):
    _make_folder(tmp_path, {"a": 6, "b": 6})
    data = ImageData.from_folder(tmp_path, img_size=32, batch_size=4)
    _, labels = _epoch(data.valid_loader())
    assert labels == [y for _, y in data.valid_items]
    for i, (path, _) in enumerate(data.valid_items):
        raw = data.raw_image("valid", i)
        assert raw.mode == "RGB"
        assert np.array_equal(np.asarray(raw), np.asarray(_read(path).convert("RGB")))
    # the raw image is the unnormalised original (24 px here), not the 32 px tensor
    assert data.raw_image("train", 0).size == (24, 24)


def test_train_loader_shuffles_reproducibly_and_covers_every_image(tmp_path):
    _make_folder(tmp_path, {"a": 8, "b": 8})
    data = ImageData.from_folder(tmp_path, img_size=32, batch_size=5)
    seen, labels_1 = _epoch(data.train_loader(augment=False))
    _, labels_2 = _epoch(data.train_loader(augment=False))
    assert seen == len(data.train_items)
    assert labels_1 == labels_2
    assert sorted(labels_1) == sorted(y for _, y in data.train_items)


# ------------------------------------------------------------------------- image modes


@pytest.mark.parametrize(
    "mode",
    ["L", "RGBA", "P", "PA", "CMYK", "I;16", "LA", "1"],
)
def test_image_modes_become_three_channel_tensors(tmp_path, mode):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for k in range(2):
            img = _photo(k + (10 if cls == "b" else 0), size=20)
            if mode == "I;16":
                arr = (np.asarray(img.convert("L"), dtype=np.uint16) * 200).astype(np.uint16)
                img = Image.fromarray(arr)
            else:
                img = img.convert(mode)
            # CMYK does not fit in PNG; JPEG and TIFF keep it
            ext = ".tif" if mode in ("CMYK", "PA") else ".png"
            img.save(tmp_path / cls / f"{k}{ext}")
            assert _read(tmp_path / cls / f"{k}{ext}").mode == mode
    data = ImageData.from_folder(tmp_path, img_size=28, augment="none")
    assert data.skipped == []
    for x, _ in (data.train_ds[0], data.valid_ds[0]):
        assert x.shape == (3, 28, 28)
        assert torch.isfinite(x).all()


def test_transparency_is_composited_on_white():
    clear_red = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    half_blue = Image.new("RGBA", (4, 4), (0, 0, 255, 128))
    assert to_rgb(clear_red).getpixel((0, 0)) == (255, 255, 255)
    r, g, b = to_rgb(half_blue).getpixel((0, 0))
    assert b == 255 and 120 <= r <= 135 and r == g
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    pal.info["transparency"] = 0
    assert to_rgb(pal).getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_grayscale_keeps_its_contrast():
    arr = np.array([[0, 20000], [40000, 60000]], dtype=np.uint16)
    rgb = to_rgb(Image.fromarray(arr))
    values = [rgb.getpixel((x, y))[0] for y in range(2) for x in range(2)]
    assert values[0] == 0 and values[-1] == 255
    assert values == sorted(values) and len(set(values)) == 4


# ------------------------------------------------------------------------- bad files


def _truncated_jpeg(path: Path) -> None:
    rng = np.random.default_rng(5)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(buf, "JPEG", quality=95)
    data = buf.getvalue()
    path.write_bytes(data[: int(len(data) * 0.6)])


def test_corrupt_and_truncated_files_are_skipped_up_front_and_late_damage_during_the_epoch(
    tmp_path,
):
    _make_folder(tmp_path, {"cat": 6, "dog": 6})
    corrupt = tmp_path / "cat" / "corrupt.jpg"
    corrupt.write_bytes(b"this is not a jpeg at all" * 10)
    truncated = tmp_path / "dog" / "truncated.jpg"
    _truncated_jpeg(truncated)
    # the truncated JPEG's header is fine, so only a decode finds it: from_folder decodes
    with Image.open(truncated) as img:
        img.verify()

    data = ImageData.from_folder(tmp_path, valid_pct=0.0, img_size=32, batch_size=4)
    skipped = dict(data.skipped)
    assert sorted(skipped) == sorted([str(corrupt), str(truncated)])
    assert "not an image" in skipped[str(corrupt)]
    assert "cut off" in skipped[str(truncated)]
    assert str(truncated) not in {p for p, _ in data.train_items}

    # a file damaged after the data was built is found when the epoch reaches it
    late = data.train_items[2][0]
    _truncated_jpeg(Path(late))
    seen, _ = _epoch(data.train_loader())
    # every slot is filled (the bad file's slot by another readable image): the epoch completes
    assert seen == len(data.train_items)
    skipped = dict(data.skipped)
    assert "failed to load" in skipped[late]
    # a second epoch neither fails nor lists the file twice
    seen, _ = _epoch(data.train_loader())
    assert seen == len(data.train_items)
    assert [p for p, _ in data.skipped].count(late) == 1


def test_truncated_png_is_found_by_the_header_check(tmp_path):
    _make_folder(tmp_path, {"cat": 3, "dog": 3})
    buf = io.BytesIO()
    _photo(1, size=40).save(buf, "PNG")
    (tmp_path / "dog" / "cut.png").write_bytes(buf.getvalue()[:300])
    data = ImageData.from_folder(tmp_path, img_size=32)
    assert [Path(p).name for p, _ in data.skipped] == ["cut.png"]
    assert data.summary()["total"].tolist() == [3, 3]


def test_a_file_removed_after_building_does_not_stop_validation(tmp_path):
    _make_folder(tmp_path, {"cat": 5, "dog": 5})
    data = ImageData.from_folder(tmp_path, valid_pct=0.4, img_size=32, batch_size=3)
    gone = data.valid_items[1][0]
    Path(gone).unlink()
    seen, _ = _epoch(data.valid_loader())
    assert seen == len(data.valid_items)
    assert gone in dict(data.skipped)
    with pytest.raises(DataError, match="Could not read"):
        data.raw_image("valid", 1)


# ------------------------------------------------------------------------- transforms


def test_without_a_model_transforms_use_imagenet_statistics_and_224(tmp_path):
    _make_folder(tmp_path, {"a": 2, "b": 2})
    data = ImageData.from_folder(tmp_path)
    assert data.img_size == 224
    assert data.mean == IMAGENET_MEAN and data.std == IMAGENET_STD
    assert data.valid_ds[0][0].shape == (3, 224, 224)


def test_transforms_follow_the_models_pretrained_cfg(tmp_path):
    import timm

    (tmp_path / "grey").mkdir()
    (tmp_path / "white").mkdir()
    for k in range(2):
        Image.new("RGB", (40, 40), (128, 128, 128)).save(tmp_path / "grey" / f"{k}.png")
        Image.new("RGB", (40, 40), (255, 255, 255)).save(tmp_path / "white" / f"{k}.png")
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=2)
    assert vit.pretrained_cfg["mean"] == (0.5, 0.5, 0.5)

    data = ImageData.from_folder(tmp_path, model=vit, augment="none")
    assert data.mean == (0.5, 0.5, 0.5) and data.std == (0.5, 0.5, 0.5)
    assert data.img_size == 224
    x_white = data.valid_ds[[y for _, y in data.valid_items].index(1)][0]
    assert x_white.shape == (3, 224, 224)
    assert torch.allclose(x_white, torch.ones_like(x_white))  # (1 - 0.5) / 0.5

    small = data.with_model(vit)
    assert small.valid_items == data.valid_items
    imagenet = ImageData.from_folder(tmp_path, img_size=48, augment="none")
    # a ViT takes other sizes only when built with dynamic_img_size=True
    with pytest.raises(DataError, match="accepts only 224x224"):
        imagenet.with_model(vit)
    vit_any_size = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, num_classes=2, dynamic_img_size=True
    )
    re_derived = imagenet.with_model(vit_any_size)
    assert re_derived.img_size == 48  # the explicit img_size survives the model change
    assert re_derived.mean == (0.5, 0.5, 0.5)
    assert re_derived.valid_items == imagenet.valid_items
    x = re_derived.valid_ds[0][0]
    assert x.shape == (3, 48, 48)
    expected_white = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    x_imnet = imagenet.valid_ds[[y for _, y in imagenet.valid_items].index(1)][0]
    assert torch.allclose(x_imnet[:, 0, 0], expected_white, atol=1e-5)


def test_model_name_and_crop_pct_come_from_timm():
    cfg = resolve_data_config("vit_tiny_patch16_224", img_size=64)
    assert cfg["input_size"] == (3, 64, 64)
    assert cfg["mean"] == (0.5, 0.5, 0.5)
    assert cfg["crop_pct"] == 0.9
    with pytest.raises(DataError, match="No timm model"):
        resolve_data_config("not_a_model_xyz")


def test_augment_levels_and_deterministic_train_loader(tmp_path):
    _make_folder(tmp_path, {"a": 4, "b": 4})
    none = ImageData.from_folder(tmp_path, img_size=32, augment="none")
    assert not none.augment_is_random
    assert torch.equal(none.train_ds[0][0], none.train_ds[0][0])

    torch.manual_seed(0)
    for level in ("light", "standard"):
        data = ImageData.from_folder(tmp_path, img_size=32, augment=level)
        assert data.augment_is_random
        draws = [data.train_ds[0][0] for _ in range(6)]
        assert any(not torch.equal(draws[0], d) for d in draws[1:])
        # augment=False: the eval transform, the same tensor every time (for feature caching)
        a = next(iter(data.train_loader(augment=False, shuffle=False)))[0]
        b = next(iter(data.train_loader(augment=False, shuffle=False)))[0]
        assert torch.equal(a, b)
        assert torch.equal(a[0], none.valid_ds.transform(data.raw_image("train", 0)))
    def train_steps(level: str) -> list[str]:
        data = ImageData.from_folder(tmp_path, img_size=32, augment=level)
        return [type(t).__name__ for t in data.transform(train=True).transforms]

    assert "ColorJitter" in train_steps("standard")  # timm's default training recipe
    light = train_steps("light")
    assert "ColorJitter" not in light and "RandomHorizontalFlip" in light


def test_preprocess_accepts_paths_pil_images_and_arrays(tmp_path):
    _make_folder(tmp_path, {"a": 2, "b": 2})
    data = ImageData.from_folder(tmp_path, img_size=32)
    path = data.valid_items[0][0]
    from_path = data.preprocess(path)
    assert torch.equal(from_path, data.preprocess(load_rgb(path)))
    assert torch.equal(from_path, data.preprocess(np.asarray(_read(path))))
    assert from_path.shape == (3, 32, 32)
    with pytest.raises(DataError, match="No image file"):
        data.preprocess(tmp_path / "missing.png")


# ------------------------------------------------------------------------- arrays


def test_from_arrays_layouts_and_dtypes_give_the_same_tensors():
    rng = np.random.default_rng(0)
    nhwc_u8 = rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(12) % 3
    variants = {
        "nhwc uint8": nhwc_u8,
        "nchw uint8": nhwc_u8.transpose(0, 3, 1, 2).copy(),
        "nhwc float": nhwc_u8.astype(np.float32) / 255,
        "nchw torch float": torch.from_numpy(nhwc_u8).permute(0, 3, 1, 2).float() / 255,
    }
    ref = None
    for name, images in variants.items():
        data = ImageData.from_arrays(images, labels, classes=["x", "y", "z"], valid_pct=0.25)
        assert data.classes == ["x", "y", "z"], name
        assert data.summary()["valid"].tolist() == [1, 1, 1], name
        x, y = data.train_ds[0]
        assert x.shape == (3, 16, 16), name
        if ref is None:
            ref = (x, y)
        assert torch.allclose(x, ref[0], atol=1e-5) and y == ref[1], name


def test_from_arrays_grayscale_string_labels_model_and_img_size():
    import timm

    rng = np.random.default_rng(1)
    gray = rng.random((10, 20, 20)).astype(np.float64)
    labels = ["cat", "dog"] * 5
    data = ImageData.from_arrays(gray, labels)
    assert data.classes == ["cat", "dog"]
    x, _ = data.valid_ds[0]
    assert x.shape == (3, 20, 20)
    assert torch.allclose(x[0] * IMAGENET_STD[0] + IMAGENET_MEAN[0],
                          x[1] * IMAGENET_STD[1] + IMAGENET_MEAN[1], atol=1e-5)
    vit = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, num_classes=2, dynamic_img_size=True
    )
    with_vit = ImageData.from_arrays(gray, labels, model=vit, img_size=32)
    assert with_vit.mean == (0.5, 0.5, 0.5)
    assert with_vit.valid_ds[0][0].shape == (3, 32, 32)
    assert with_vit.valid_items[0] == (None, with_vit.valid_ds[0][1])
    assert with_vit.raw_image("valid", 0).size == (20, 20)


def test_from_arrays_first_train_image_is_normalised_with_imagenet_stats():
    images = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    images[:, :, :, 0] = 255
    data = ImageData.from_arrays(images, [0, 1, 0, 1], valid_pct=0.0)
    x, _ = data.train_ds[0]
    expected = [(1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], -IMAGENET_MEAN[1] / IMAGENET_STD[1],
                -IMAGENET_MEAN[2] / IMAGENET_STD[2]]
    assert torch.allclose(x[:, 3, 3], torch.tensor(expected), atol=1e-4)


# ------------------------------------------------------------------------- bad input


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        ImageData.from_folder(tmp_path / "nope")


def test_root_that_is_a_file(tmp_path):
    (tmp_path / "f.png").write_bytes(b"x")
    with pytest.raises(DataError, match="is a file"):
        ImageData.from_folder(tmp_path / "f.png")


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="is empty.*at least two class subfolders"):
        ImageData.from_folder(tmp_path)


def test_single_class(tmp_path):
    _make_folder(tmp_path, {"cats": 4})
    with pytest.raises(DataError, match=r"only one class, 'cats' \(4 images\)"):
        ImageData.from_folder(tmp_path)


def test_no_known_extensions_lists_what_was_found(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for k in range(3):
            (tmp_path / cls / f"{k}.txt").write_text("hello")
        (tmp_path / cls / "img.heic").write_bytes(b"\x00")
    with pytest.raises(DataError) as err:
        ImageData.from_folder(tmp_path)
    msg = str(err.value)
    assert "No images with a known extension" in msg
    assert ".txt (6)" in msg and ".heic (2)" in msg and ".jpg" in msg


def test_images_without_class_subfolders(tmp_path):
    for k in range(3):
        _photo(k).save(tmp_path / f"{k}.png")
    with pytest.raises(DataError, match="not in class subfolders"):
        ImageData.from_folder(tmp_path)


@pytest.mark.parametrize("pct", [-0.1, 1.0, 1.5, float("nan"), "x"])
def test_valid_pct_outside_range(tmp_path, pct):
    _make_folder(tmp_path, {"a": 3, "b": 3})
    with pytest.raises(DataError, match="valid_pct"):
        ImageData.from_folder(tmp_path, valid_pct=pct)


def test_valid_pct_too_large_to_leave_training_images(tmp_path):
    _make_folder(tmp_path, {"a": 2, "b": 5})
    with pytest.raises(DataError, match="all 2 images of class 'a' in validation"):
        ImageData.from_folder(tmp_path, valid_pct=0.8)


@pytest.mark.parametrize("augment", ["strong", 3, "Light"])
def test_bad_augment(tmp_path, augment):
    _make_folder(tmp_path, {"a": 2, "b": 2})
    with pytest.raises(DataError, match="augment="):
        ImageData.from_folder(tmp_path, augment=augment)


def test_bad_batch_size(tmp_path):
    _make_folder(tmp_path, {"a": 2, "b": 2})
    with pytest.raises(DataError, match="batch_size"):
        ImageData.from_folder(tmp_path, batch_size=0)


@pytest.mark.parametrize(
    ("images", "labels", "kwargs", "match"),
    [
        (np.zeros((4, 8, 8, 3), np.uint8), [0, 1, 0], {}, "4 images but 3 labels"),
        (np.zeros((4, 8, 8, 3), np.uint8), [0, 1, 2, 1], {"classes": ["a", "b"]},
         r"in \[0, 2\).*found \[2\]"),
        (np.zeros((4, 8, 8, 3), np.uint8), [0, -1, 0, 1], {}, "must be >= 0"),
        (np.zeros((4, 8, 8, 3), np.uint8), [1, 1, 1, 1], {}, "at least two classes"),
        (np.zeros((4, 8, 8, 3), np.uint8), ["a", "b", "c", "a"], {"classes": ["a", "b"]},
         "not in classes"),
        (np.full((4, 8, 8, 3), 200.0), [0, 1, 0, 1], {}, "Float images must be in 0..1"),
        (np.zeros((4, 5, 8, 8)), [0, 1, 0, 1], {}, "channel axis"),
        (np.zeros((4, 8)), [0, 1, 0, 1], {}, "shape"),
        (np.zeros((4, 8, 8, 3), np.uint8), [0.5, 1, 0, 1], {}, "whole numbers"),
        (np.zeros((4, 8, 8, 3), np.uint8), [0, 1, 0, 1], {"valid_pct": 1.0}, "valid_pct"),
        (np.zeros((4, 8, 8, 3), np.uint8), [0, 1, 0, 1], {"augment": "heavy"}, "augment="),
    ],
)
def test_from_arrays_bad_input(images, labels, kwargs, match):
    with pytest.raises(DataError, match=match):
        ImageData.from_arrays(images, labels, **kwargs)


def test_bad_split_name_and_index(tmp_path):
    _make_folder(tmp_path, {"a": 3, "b": 3})
    data = ImageData.from_folder(tmp_path, img_size=32)
    with pytest.raises(DataError, match="'train' or 'valid'"):
        data.raw_image("test", 0)
    with pytest.raises(DataError, match="out of range"):
        data.raw_image("valid", 99)


# ------------------------------------------------------------------------- sample data


def test_textures_sample_is_built_from_scikit_image_photographs_offline(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("sample_data tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    data = tlw.sample_data(img_size=64, cache_dir=tmp_path)
    assert isinstance(data, ImageData)
    assert data.classes == ["brick", "grass", "gravel", "stars"]
    assert data.summary()["train"].tolist() == [40] * 4
    assert data.summary()["valid"].tolist() == [12] * 4
    assert data.skipped == []
    assert data.train_ds[0][0].shape == (3, 64, 64)
    root = data.root
    meta = json.loads((root / _sample_data._DONE_MARKER).read_text())
    skdata = _sample_data.skimage_data_dir()
    for src in meta["sources"]:
        assert (skdata / Path(src["file"]).name).is_file()
        assert src["licence"] in ("CC0", "public domain")
    # the sources are scikit-image's own photographs, byte for byte (its registry of hashes)
    from skimage.data._registry import registry

    assert set(meta["source_sha256"]) == {s.file for s in _sample_data.TEXTURES}
    for file, sha in meta["source_sha256"].items():
        assert registry[f"data/{file}"] == sha

    # every crop is real photo content: its brightness matches its source photograph's
    for src in _sample_data.TEXTURES:
        photo = np.asarray(_read(skdata / src.file).convert("L"), dtype=np.float64)
        crops = [np.asarray(_read(p), dtype=np.float64)
                 for p, y in data.train_items + data.valid_items if data.classes[y] == src.cls]
        assert abs(np.mean([c.mean() for c in crops]) - photo.mean()) < 20, src.cls
        assert crops[0].shape == (128, 128)
        assert np.std([c.std() for c in crops]) > 0  # not one image copied over and over

    # validation crops never repeat a training crop
    train_bytes = {Path(p).read_bytes() for p, _ in data.train_items}
    assert not any(Path(p).read_bytes() in train_bytes for p, _ in data.valid_items)


def test_textures_sample_is_deterministic_and_cached(tmp_path):
    a = tlw.sample_data(cache_dir=tmp_path / "one", img_size=32)
    b = tlw.sample_data(cache_dir=tmp_path / "two", img_size=32)
    assert [Path(p).name for p, _ in a.valid_items] == [Path(p).name for p, _ in b.valid_items]
    for (pa, _), (pb, _) in zip(a.train_items, b.train_items, strict=True):
        assert Path(pa).read_bytes() == Path(pb).read_bytes()
    marker = a.root / _sample_data._DONE_MARKER
    before = marker.stat().st_mtime_ns
    again = tlw.sample_data(cache_dir=tmp_path / "one", img_size=32)
    assert again.root == a.root and marker.stat().st_mtime_ns == before


def test_faces_sample_holds_the_lfw_subset_pixels(tmp_path):
    data = tlw.sample_data("faces", img_size=32, cache_dir=tmp_path)
    assert data.classes == ["face", "non-face"]
    assert data.summary().to_dict("index") == {
        "face": {"train": 80, "valid": 20, "total": 100},
        "non-face": {"train": 80, "valid": 20, "total": 100},
    }
    lfw = np.load(_sample_data.skimage_data_dir() / "lfw_subset.npy")
    for path, label in data.valid_items[:5] + data.valid_items[-5:]:
        k = int(Path(path).stem.rsplit("_", 1)[1])
        expected = np.rint(lfw[k + 100 * label] * 255).astype(np.uint8)
        assert np.array_equal(np.asarray(_read(path)), expected)


def test_unknown_sample_name_lists_the_choices(tmp_path):
    with pytest.raises(DataError, match="'textures'.*'faces'"):
        tlw.sample_data("imagenet", cache_dir=tmp_path)


def test_datasets_survive_pickling_for_spawned_loader_workers(tmp_path):
    import pickle

    _make_folder(tmp_path, {"a": 3, "b": 3})
    data = ImageData.from_folder(tmp_path, img_size=32, augment="light")
    ds = pickle.loads(pickle.dumps(data.train_ds))
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and y == data.train_items[0][1]
    workers = ImageData.from_folder(tmp_path, img_size=32, num_workers=1)
    assert sum(len(yb) for _, yb in workers.train_loader()) == len(workers.train_items)


def test_a_vit_built_for_another_size_gets_that_size(tmp_path):
    import timm

    _make_folder(tmp_path, {"a": 2, "b": 2})
    vit64 = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=64, num_classes=2)
    data = ImageData.from_folder(tmp_path, model=vit64)
    assert data.img_size == 64  # not the 224 of its pretrained cfg, which the model would reject
    xb, _ = next(iter(data.valid_loader()))
    assert vit64(xb).shape == (len(xb), 2)
    with pytest.raises(DataError, match="accepts only 64x64.*img_size=64"):
        ImageData.from_folder(tmp_path, model=vit64, img_size=32)


# ------------------------------------------------------------------------- subsets


def test_subset_restricts_training_keeps_validation_and_settings(tmp_path):
    _make_folder(tmp_path, {"a": 6, "b": 6})
    data = ImageData.from_folder(tmp_path, valid_pct=0.25, img_size=32, batch_size=3,
                                 augment="none", seed=7)
    picked = [4, 0, 5]
    small = data.subset(picked)
    assert small.train_items == [data.train_items[i] for i in (0, 4, 5)]   # original order
    assert small.valid_items == data.valid_items
    assert (small.classes, small.img_size, small.batch_size, small.seed, small.augment) == (
        data.classes, 32, 3, 7, "none")
    assert torch.equal(small.train_ds[1][0], data.train_ds[4][0])
    assert sum(len(yb) for _, yb in small.train_loader()) == 3
    # nested: positions of the subset's own train_items; valid_indices picks validation too
    nested = small.subset([2], valid_indices=[0])
    assert nested.train_items == [data.train_items[5]]
    assert nested.valid_items == [data.valid_items[0]]
    assert nested.summary()["total"].sum() == 2 and nested.num_classes == 2


def test_subset_of_arrays_keeps_each_image_with_its_label():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    y = np.arange(12) % 3
    data = ImageData.from_arrays(x, y, classes=["a", "b", "c"], valid_pct=0.25, augment="none")
    small = data.subset(np.array([1, 3]), valid_indices=range(1, 3))
    for split, parent, picks in (("train", "train", [1, 3]), ("valid", "valid", [1, 2])):
        for k, i in enumerate(picks):
            got = np.asarray(small.raw_image(split, k))
            assert np.array_equal(got, np.asarray(data.raw_image(parent, i)))
    assert [lab for _, lab in small.train_items] == [data.train_items[i][1] for i in (1, 3)]


@pytest.mark.parametrize(
    "train, valid, match",
    [
        ([], None, "empty"),
        ([0, 99], None, "outside data.train_items"),
        ([0, 0], None, "repeats"),
        ([0.5], None, "integer positions"),
        ("01", None, "sequence of integer"),
        ([0], [-1], "outside data.valid_items"),
    ],
)
def test_subset_bad_indices(tmp_path, train, valid, match):
    _make_folder(tmp_path, {"a": 3, "b": 3})
    data = ImageData.from_folder(tmp_path, img_size=32)
    with pytest.raises(DataError, match=match):
        data.subset(train, valid_indices=valid)
