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

import tlwidgets as tlw
from tlwidgets.data import ImageData, load_rgb, resolve_data_config
from tlwidgets.errors import DataError

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


# ------------------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(
    "img_size, match",
    [
        (0, "not a size.*positive"),
        (-32, "not a size.*positive"),
        (128.0, r"whole number of pixels.*img_size=128\?"),
        ("big", "whole number of pixels.*str"),
        (True, "whole number of pixels"),
        (10**6, "too large.*at most 4096"),
    ],
)
def test_bad_img_size_is_refused_by_every_constructor(tmp_path, img_size, match):
    _make_folder(tmp_path, {"a": 2, "b": 2})
    x = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    calls = [
        lambda: ImageData.from_folder(tmp_path, img_size=img_size),
        lambda: ImageData.from_arrays(x, [0, 1, 0, 1], img_size=img_size),
        lambda: tlw.sample_data(img_size=img_size, cache_dir=tmp_path / "cache"),
        lambda: resolve_data_config(None, img_size=img_size),
    ]
    for call in calls:
        with pytest.raises(DataError, match=match):
            call()
    assert not (tmp_path / "cache").exists()  # refused before writing the sample's files


def test_numpy_integer_img_size_and_seed_are_accepted(tmp_path):
    _make_folder(tmp_path, {"a": 2, "b": 2})
    data = ImageData.from_folder(tmp_path, img_size=np.int64(16), seed=np.int32(3))
    assert data.img_size == 16 and data.seed == 3
    assert data.train_ds[0][0].shape == (3, 16, 16)


@pytest.mark.parametrize("seed", ["abc", 1.5, None, -1, True])
def test_bad_seed_is_refused(tmp_path, seed):
    _make_folder(tmp_path, {"a": 2, "b": 2})
    with pytest.raises(DataError, match="seed must be"):
        ImageData.from_folder(tmp_path, seed=seed)
    with pytest.raises(DataError, match="seed must be"):
        ImageData.from_arrays(np.zeros((4, 8, 8, 3), np.uint8), [0, 1, 0, 1], seed=seed)


def test_boolean_images_are_refused_not_turned_black(tmp_path):
    masks = np.random.default_rng(0).random((6, 8, 8)) > 0.5
    for images in (masks, torch.from_numpy(masks)):
        with pytest.raises(DataError, match=r"booleans.*astype\('uint8'\) \* 255"):
            ImageData.from_arrays(images, [0, 1] * 3)
    data = ImageData.from_arrays(masks.astype("uint8") * 255, [0, 1] * 3)  # the fix works
    assert data.raw_image("train", 0).getextrema() == ((0, 255),) * 3
    with pytest.raises(DataError, match="booleans"):
        data.preprocess(masks[0])


# ------------------------------------------------------------------------- every file checked


def _cut_jpeg(path: Path, keep: float = 0.6) -> None:
    buf = io.BytesIO()
    _photo(99, size=48).save(buf, "JPEG", quality=95)
    path.write_bytes(buf.getvalue()[: int(len(buf.getvalue()) * keep)])


def test_cut_off_jpeg_and_non_image_files_are_reported_when_the_folder_is_read(tmp_path):
    _make_folder(tmp_path, {"cat": 4, "dog": 4}, ext=".jpg")
    cut = tmp_path / "dog" / "cut.jpg"
    _cut_jpeg(cut)
    with Image.open(cut) as img:
        img.verify()  # the header is fine: only a decode finds it
    (tmp_path / "cat" / "notes.txt").write_text("hello")
    (tmp_path / "cat" / "labels.csv").write_text("a,b")
    (tmp_path / "dog" / "todo.txt").write_text("x")

    data = ImageData.from_folder(tmp_path, img_size=32)
    assert str(cut) not in [p for p, _ in data.train_items + data.valid_items]
    assert [(Path(p).name, "cut off" in why) for p, why in data.skipped] == [("cut.jpg", True)]
    assert data.ignored == {".txt": 2, ".csv": 1}
    summary = data.summary()
    assert summary["total"].tolist() == [4, 4]
    notes = "\n".join(summary.notes)
    assert "1 file skipped" in notes and "dog/cut.jpg: the file is cut off" in notes
    assert "3 non-image files ignored: .txt (2), .csv (1)" in notes
    assert "dog/cut.jpg" in repr(summary) and "3 non-image files" in repr(summary)
    assert "<li>" in summary._repr_html_() and "cut.jpg" in summary._repr_html_()
    assert list(summary.columns) == ["train", "valid", "total"]
    # training never meets the file: nothing is added to skipped during an epoch
    for _ in data.train_loader():
        pass
    assert len(data.skipped) == 1


def test_a_clean_folder_has_no_notes(tmp_path):
    _make_folder(tmp_path, {"cat": 2, "dog": 2})
    data = ImageData.from_folder(tmp_path, img_size=32)
    assert data.summary().notes == [] and data.ignored == {} and data.skipped == []
    assert repr(data.summary()) == repr(data.summary().astype("int64"))


def test_many_files_are_checked_in_a_pool_with_a_progress_bar(tmp_path, monkeypatch, capsys):
    from tlwidgets import _image_files

    _make_folder(tmp_path, {"a": 40, "b": 40}, ext=".jpg")
    for k in range(3):
        _cut_jpeg(tmp_path / "b" / f"cut{k}.jpg", keep=0.3 + 0.2 * k)
    (tmp_path / "a" / "fake.png").write_bytes(b"not a png" * 50)
    assert 83 > _image_files.POOL_MIN_FILES
    monkeypatch.setattr(_image_files, "PROGRESS_DELAY_S", 0.0)  # show the bar however fast it is
    data = ImageData.from_folder(tmp_path, img_size=32)
    err = capsys.readouterr().err
    assert "Checking images" in err and "84/84" in err
    assert sorted(Path(p).name for p, _ in data.skipped) == [
        "cut0.jpg", "cut1.jpg", "cut2.jpg", "fake.png"]
    assert "not an image" in {Path(p).name: w for p, w in data.skipped}["fake.png"]
    assert data.summary()["total"].tolist() == [40, 40]
    ImageData.from_folder(tmp_path, img_size=32, progress=False)
    assert "Checking images" not in capsys.readouterr().err


def test_header_check_finds_cut_off_files_too_and_bad_check_is_refused(tmp_path):
    _make_folder(tmp_path, {"cat": 3, "dog": 3}, ext=".jpg")
    _cut_jpeg(tmp_path / "dog" / "cut.jpg")
    data = ImageData.from_folder(tmp_path, img_size=32, check="header")
    assert [(Path(p).name, "end marker" in w) for p, w in data.skipped] == [("cut.jpg", True)]
    with pytest.raises(DataError, match="check='fast'.*'decode'.*'header'"):
        ImageData.from_folder(tmp_path, check="fast")


# ------------------------------------------------------------------------- class folders


def _symlink(link: Path, target: Path) -> None:
    try:
        link.symlink_to(target, target_is_directory=True)
    except (OSError, NotImplementedError):
        pytest.skip("this filesystem cannot make symbolic links")


def test_a_class_folder_with_no_readable_image_is_not_a_class(tmp_path):
    _make_folder(tmp_path, {"cat": 3, "dog": 3})
    (tmp_path / "owl").mkdir()
    for k in range(2):
        (tmp_path / "owl" / f"o{k}.jpg").write_bytes(b"garbage" * 20)
    data = ImageData.from_folder(tmp_path, img_size=32)
    assert data.classes == ["cat", "dog"] and data.num_classes == 2
    assert sorted(Path(p).name for p, _ in data.skipped) == ["o0.jpg", "o1.jpg"]
    notes = "\n".join(data.summary().notes)
    assert "owl/ has 2 image files and none can be read: it is not a class" in notes


def test_only_one_readable_class_is_refused_naming_the_unreadable_folder(tmp_path):
    _make_folder(tmp_path, {"cat": 3})
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(DataError, match=r"only one class, 'cat'(.|\n)*dog/ has 1 image file and "
                                        "none can be read"):
        ImageData.from_folder(tmp_path, img_size=32)
    for p in (tmp_path / "cat").iterdir():
        p.write_bytes(b"broken")
    with pytest.raises(DataError, match="No class folder .* has a readable image"):
        ImageData.from_folder(tmp_path, img_size=32)


def test_empty_class_folders_are_reported_in_the_summary(tmp_path):
    _make_folder(tmp_path, {"cat": 3, "dog": 3})
    (tmp_path / "bird").mkdir()
    (tmp_path / "fish").mkdir()
    (tmp_path / "fish" / "IMG_1.heic").write_bytes(b"x")
    data = ImageData.from_folder(tmp_path, img_size=32)
    assert data.classes == ["cat", "dog"]
    notes = "\n".join(data.summary().notes)
    assert "bird/ is empty: it is not a class" in notes
    assert "fish/ holds no image files, only 1 others (.heic (1)): it is not a class" in notes
    assert data.ignored == {".heic": 1}


def test_train_and_valid_with_different_classes(tmp_path):
    _make_folder(tmp_path / "train", {"cat": 3, "dog": 3, "fox": 2})
    _make_folder(tmp_path / "valid", {"cat": 1, "dog": 1})
    data = ImageData.from_folder(tmp_path, img_size=32)
    assert data.classes == ["cat", "dog", "fox"]
    assert "Class 'fox': images in train/ but none in valid/" in "\n".join(data.summary().notes)

    _make_folder(tmp_path / "valid", {"owl": 1, "yak": 1})
    with pytest.raises(DataError, match=r"Classes 'owl', 'yak' have images in valid/ but none "
                                        r"in train/(.|\n)*Add training images"):
        ImageData.from_folder(tmp_path, img_size=32)


def test_a_class_folder_linking_back_to_the_root_is_refused(tmp_path):
    _make_folder(tmp_path, {"cat": 3, "dog": 3})
    _symlink(tmp_path / "loop", tmp_path)
    with pytest.raises(DataError, match="'loop' is a link to the data folder itself.*Remove"):
        ImageData.from_folder(tmp_path, img_size=32)
    (tmp_path / "loop").unlink()
    _symlink(tmp_path / "up", tmp_path.parent)
    with pytest.raises(DataError, match="'up' is a link to a folder above it"):
        ImageData.from_folder(tmp_path, img_size=32)
    (tmp_path / "up").unlink()
    _symlink(tmp_path / "kitten", tmp_path / "cat")
    with pytest.raises(DataError, match="'kitten' and 'cat' are the same folder"):
        ImageData.from_folder(tmp_path, img_size=32)
    (tmp_path / "kitten").unlink()
    assert ImageData.from_folder(tmp_path, img_size=32).classes == ["cat", "dog"]


def test_validation_folders_linked_to_training_folders_are_refused(tmp_path):
    _make_folder(tmp_path / "train", {"cat": 3, "dog": 3})
    (tmp_path / "valid").mkdir()
    _make_folder(tmp_path / "valid", {"dog": 1})
    _symlink(tmp_path / "valid" / "cat", tmp_path / "train" / "cat")
    with pytest.raises(DataError, match="'valid/cat' and 'train/cat' are the same folder"
                                        ".*training and validation"):
        ImageData.from_folder(tmp_path, img_size=32)
    other = tmp_path.parent / f"{tmp_path.name}_split"
    _make_folder(other / "train", {"cat": 3, "dog": 3})
    _symlink(other / "valid", other / "train")
    with pytest.raises(DataError, match="'valid' and 'train' are the same folder"):
        ImageData.from_folder(other, img_size=32)
    # a link to a folder elsewhere is fine
    third = tmp_path.parent / f"{tmp_path.name}_ok"
    _make_folder(third, {"cat": 2})
    _symlink(third / "dog", tmp_path / "train" / "dog")
    assert ImageData.from_folder(third, img_size=32).summary()["total"].tolist() == [2, 3]
