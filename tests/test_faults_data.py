"""Fault tests of tlwidgets.data (issue 11 items 9, 12 and 16; issue 12's folder check): bad
folders, bad arguments, sideways phone photos and damaged files. Every file is made here, small,
so the whole module runs in seconds."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tlwidgets.data import ImageData, load_rgb
from tlwidgets.errors import DataError, TLWidgetsError

torch.set_num_threads(1)


def _photo(seed: int, size: int = 24) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def _make_folder(root: Path, counts: dict[str, int], ext: str = ".png") -> Path:
    seed = 0
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            seed += 1
            _photo(seed).save(root / cls / f"{cls}_{k:02d}{ext}")
    return root


# ------------------------------------------------------------------------- EXIF orientation


def _upright_pattern() -> np.ndarray:
    """A portrait image, 32 wide and 64 tall: top half white, bottom half black, and a grey
    left quarter in the top half, so every rotation and mirror of it looks different."""
    arr = np.zeros((64, 32, 3), dtype=np.uint8)
    arr[:32] = 255
    arr[:32, :8] = 128
    return arr


def _sideways_jpeg(path: Path) -> None:
    """Write the pattern the way a phone does: pixels stored rotated, EXIF Orientation=6
    ("rotate 90 degrees clockwise to show")."""
    stored = Image.fromarray(_upright_pattern()).transpose(Image.Transpose.ROTATE_90)
    exif = stored.getexif()
    exif[0x0112] = 6
    stored.save(path, "JPEG", quality=98, exif=exif.tobytes())


def _looks_upright(img: Image.Image) -> bool:
    arr = np.asarray(img.convert("RGB"), dtype=np.float64)
    if arr.shape[:2] != (64, 32):
        return False
    return bool(
        np.abs(arr[:32, 8:] - 255).mean() < 12        # top right: white
        and np.abs(arr[:32, :8] - 128).mean() < 12    # top left: grey
        and arr[32:].mean() < 12                      # bottom: black
    )


def test_exif_orientation_is_applied_in_training_validation_predict_and_galleries(tmp_path):
    _make_folder(tmp_path / "train", {"a": 3, "b": 3}, ext=".jpg")
    _make_folder(tmp_path / "valid", {"a": 1, "b": 1}, ext=".jpg")
    phone_t, phone_v = tmp_path / "train" / "a" / "phone.jpg", tmp_path / "valid" / "b" / "p.jpg"
    _sideways_jpeg(phone_t)
    _sideways_jpeg(phone_v)
    with Image.open(phone_t) as raw:  # the stored pixels really are sideways
        assert raw.size == (64, 32) and raw.getexif()[0x0112] == 6
    assert _looks_upright(load_rgb(phone_t))

    data = ImageData.from_folder(tmp_path, img_size=32, augment="none")
    i = [p for p, _ in data.train_items].index(str(phone_t))
    j = [p for p, _ in data.valid_items].index(str(phone_v))
    assert _looks_upright(data.raw_image("train", i))                   # galleries
    assert _looks_upright(data.raw_image("valid", j))
    expected = data.eval_transform(Image.fromarray(_upright_pattern()))
    assert torch.allclose(data.train_ds[i][0], expected, atol=0.15)     # training
    assert torch.allclose(data.valid_ds[j][0], expected, atol=0.15)     # validation
    assert torch.allclose(data.preprocess(phone_t), expected, atol=0.15)  # predict, a path
    with Image.open(phone_t) as img:                                    # predict, a PIL image
        assert torch.allclose(data.preprocess(img), expected, atol=0.15)
