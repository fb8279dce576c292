"""Image datasets for transfer learning: folders, arrays and offline sample photographs.

:class:`ImageData` holds a fixed train/valid split and builds the transforms from a model's
pretrained config (timm's ``resolve_model_data_config`` + ``create_transform``), so that the
images a pretrained backbone sees are resized and normalised the way it was trained.

>>> import tlwidgets as tlw
>>> data = tlw.ImageData.from_folder("photos/", img_size=128)   # doctest: +SKIP
>>> data.summary()                                               # doctest: +SKIP
>>> xb, yb = next(iter(data.train_loader()))                     # doctest: +SKIP

The core never imports ipywidgets; this module needs only torch, timm, PIL, numpy and pandas.
"""

from __future__ import annotations

import math
import os
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch
from PIL import ExifTags, Image, ImageOps
from torch.utils.data import DataLoader, Dataset

from .errors import DataError

__all__ = [
    "AUGMENT_CHOICES",
    "IMAGE_EXTENSIONS",
    "DataSummary",
    "ImageData",
    "check_image",
    "load_rgb",
    "resolve_data_config",
    "sample_data",
    "to_rgb",
    "upright",
]

#: File extensions (lower case) that :meth:`ImageData.from_folder` reads as images.
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff",
)
#: Accepted values of ``augment``.
AUGMENT_CHOICES: tuple[str, ...] = ("none", "light", "standard")

#: The largest ``img_size`` accepted: one 4096 px RGB image is 200 MB as a float tensor.
MAX_IMG_SIZE: int = 4096

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

Split = Literal["train", "valid"]
Item = tuple[str | None, int]


# --------------------------------------------------------------------------------------------
# image loading and mode conversion
# --------------------------------------------------------------------------------------------


def to_rgb(img: Image.Image) -> Image.Image:
    """Return ``img`` as an 8-bit RGB image.

    Grayscale (``L``, ``1``, 16-bit ``I;16``/``I``, float ``F``) is replicated to three
    channels (high bit depths rescaled, not clipped); anything with transparency (``RGBA``,
    ``LA``, ``PA``, ``P`` with a transparent index) is composited on white; ``P``, ``CMYK``,
    ``YCbCr``, ``LAB`` and ``HSV`` are converted with PIL.

    >>> from PIL import Image
    >>> to_rgb(Image.new("RGBA", (4, 4), (255, 0, 0, 0))).getpixel((0, 0))
    (255, 255, 255)
    """
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        # 16-bit and float images rarely use the full range; stretch what is there to 0..255
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        arr8 = np.clip((arr - lo) * scale, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8).convert("RGB")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def upright(img: Image.Image) -> Image.Image:
    """``img`` turned the way its EXIF orientation tag says it should be shown (phone photos
    are stored sideways with a tag); ``img`` itself when it has no such tag or the tag
    cannot be read. The result carries no orientation tag, so applying it twice is harmless.

    >>> from PIL import Image
    >>> upright(Image.new("RGB", (40, 20))).size
    (40, 20)
    """
    try:
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
        if orientation in (2, 3, 4, 5, 6, 7, 8):
            return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001  damaged EXIF: the pixels are good, show them as stored
        return img
    return img


def load_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """Open an image file, decode it fully and return it as RGB (first frame of animations),
    turned upright by its EXIF orientation tag (:func:`upright`).

    Raises ``OSError``/``ValueError`` subclasses from PIL when the file cannot be decoded.

    >>> load_rgb("photos/cat/001.jpg").mode   # doctest: +SKIP
    'RGB'
    """
    with Image.open(path) as img:
        img.load()
        return to_rgb(upright(img)).copy()


def check_image(path: str | os.PathLike[str], decode: bool = True) -> str | None:
    """Why the file at ``path`` cannot be used as an image, or None when it can.

    ``decode=True``: the whole file is decoded, as training will (a cut-off JPEG passes PIL's
    header check but not this); JPEGs are decoded at 1/8 scale (``Image.draft``), which still
    reads the whole compressed stream and so finds the same damage, in about half the time.
    ``decode=False``: PIL's header check (``verify``; for PNG it also checks every chunk's
    CRC) plus, for JPEG, the end-of-image marker in the last 4 KiB: finds cut-off files, not
    damage in the middle. ``benchmarks/bench_data_check.py`` measures both.

    >>> check_image("photos/cat/001.jpg") is None            # doctest: +SKIP
    True
    """
    try:
        with Image.open(path) as img:
            if not decode:
                img.verify()
                if img.format in ("JPEG", "MPO") and not _has_jpeg_end(path):
                    return "the file is cut off (no JPEG end marker)"
                return None
            if img.format in ("JPEG", "MPO"):  # MPO: phones' multi-picture JPEG
                img.draft(img.mode, (1, 1))
            img.load()
    except Image.UnidentifiedImageError:
        return "not an image PIL can read (unknown format or not an image at all)"
    except Exception as err:  # PIL raises many types here (OSError, SyntaxError, ValueError ...)
        detail = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        if "truncated" in str(err):
            return f"the file is cut off ({detail})"
        return f"cannot be decoded ({detail})"
    return None


def _has_jpeg_end(path: str | os.PathLike[str]) -> bool:
    with open(path, "rb") as f:
        f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
        return b"\xff\xd9" in f.read()


#: Above this many files, :meth:`ImageData.from_folder` checks them in a thread pool.
_POOL_MIN_FILES = 64
#: The progress bar of the file check appears only when the check takes longer than this.
_PROGRESS_DELAY_S = 1.0
CHECK_CHOICES: tuple[str, ...] = ("decode", "header")


def _check_files(paths: Sequence[Path], progress: bool, check: str) -> list[str | None]:
    """:func:`check_image` of every path, in order; a thread pool (PIL decodes without the GIL)
    and a tqdm bar that appears when the check takes longer than ``_PROGRESS_DELAY_S``."""
    decode = check == "decode"
    if len(paths) < _POOL_MIN_FILES:
        return [check_image(p, decode) for p in paths]
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    workers = min(8, (os.cpu_count() or 1) + 2)
    with ThreadPoolExecutor(workers, thread_name_prefix="tlw-check") as pool:
        # big chunks: a small file checks in ~0.1 ms, less than handing it to a thread
        chunk = max(1, min(64, len(paths) // (4 * workers)))
        results = pool.map(lambda p: check_image(p, decode), paths, chunksize=chunk)
        bar = tqdm(results, total=len(paths), desc="Checking images", unit="file",
                   delay=_PROGRESS_DELAY_S, disable=not progress)
        return list(bar)


# --------------------------------------------------------------------------------------------
# transforms
# --------------------------------------------------------------------------------------------


def resolve_data_config(model: Any = None, img_size: int | None = None) -> dict[str, Any]:
    """The preprocessing config for ``model``: ``input_size``, ``interpolation``, ``mean``,
    ``std``, ``crop_pct``, ``crop_mode``.

    ``model`` is a timm model (its ``pretrained_cfg`` is used), a timm model name, a dict of
    those keys, or None (ImageNet mean/std, 224 px, bicubic). ``img_size`` overrides the size.

    >>> cfg = resolve_data_config(None, img_size=64)
    >>> cfg["input_size"], cfg["mean"]
    ((3, 64, 64), (0.485, 0.456, 0.406))
    """
    import timm.data

    img_size = _check_img_size(img_size)
    if model is None:
        cfg: dict[str, Any] = {
            "input_size": (3, 224, 224),
            "interpolation": "bicubic",
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
            "crop_pct": 0.875,
            "crop_mode": "center",
        }
    elif isinstance(model, dict):
        cfg = timm.data.resolve_data_config(args={}, pretrained_cfg=dict(model))
    elif isinstance(model, str):
        import timm.models

        try:
            pretrained_cfg = timm.models.get_pretrained_cfg(model)
        except Exception:
            pretrained_cfg = None
        if pretrained_cfg is None:
            raise DataError(
                f"No timm model or pretrained config is named {model!r}; pass a timm model, "
                "its name (e.g. 'resnet18.a1_in1k') or None for ImageNet defaults."
            )
        cfg = timm.data.resolve_data_config(args={}, pretrained_cfg=pretrained_cfg.to_dict())
    elif isinstance(model, torch.nn.Module):
        if getattr(model, "pretrained_cfg", None):
            cfg = timm.data.resolve_model_data_config(model)
        else:
            # a plain torch module without timm's cfg: the ImageNet defaults are the best guess
            cfg = resolve_data_config(None)
    else:
        raise DataError(
            f"model must be a timm model, a timm model name, a config dict or None; "
            f"got {type(model).__name__}."
        )
    cfg = dict(cfg)
    cfg["mean"] = tuple(float(v) for v in cfg["mean"])
    cfg["std"] = tuple(float(v) for v in cfg["std"])
    cfg["input_size"] = tuple(int(v) for v in cfg["input_size"])
    fixed = _fixed_input_size(model)
    if fixed is not None:
        # a ViT-style model built with img_size=N accepts only N x N, whatever its pretrained
        # cfg says; feeding it the cfg's size would fail deep inside the patch embedding
        if img_size is not None and (int(img_size), int(img_size)) != fixed:
            raise DataError(
                f"img_size={img_size} does not fit the model, which accepts only "
                f"{fixed[0]}x{fixed[1]} images; pass img_size={fixed[0]} or create the model "
                "with dynamic_img_size=True."
            )
        cfg["input_size"] = (cfg["input_size"][0], *fixed)
    if img_size is not None:
        cfg["input_size"] = (cfg["input_size"][0], int(img_size), int(img_size))
    return cfg


def _check_img_size(img_size: Any) -> int | None:
    """``img_size`` as an int in [1, MAX_IMG_SIZE], or None; a DataError naming the fix."""
    if img_size is None:
        return None
    if isinstance(img_size, (bool, np.bool_)) or not isinstance(img_size, (int, np.integer)):
        hint = ""
        if isinstance(img_size, (float, np.floating)) and math.isfinite(img_size):
            hint = f" (img_size={round(img_size)}?)"
        raise DataError(
            f"img_size must be a whole number of pixels, e.g. img_size=224{hint}, or None for "
            f"the model's own size; got {img_size!r} ({type(img_size).__name__})."
        )
    size = int(img_size)
    if size < 1:
        raise DataError(
            f"img_size={size} is not a size: pass a positive number of pixels (e.g. 224, most "
            "pretrained models' size; 64-128 trains faster on a CPU), or None."
        )
    if size > MAX_IMG_SIZE:
        raise DataError(
            f"img_size={size} is too large: one {size} px image alone is "
            f"{size * size * 12 / 2**30:.1f} GiB as a float tensor. Use at most {MAX_IMG_SIZE} "
            "(pretrained models use 224-518)."
        )
    return size


def _check_seed(seed: Any) -> int:
    """``seed`` as an int >= 0 (what numpy and torch generators accept); a DataError else."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise DataError(
            f"seed must be a whole number >= 0, e.g. seed=0; got {seed!r} "
            f"({type(seed).__name__})."
        )
    if not 0 <= int(seed) < 2**63:
        raise DataError(f"seed must be in 0..2**63-1, e.g. seed=0; got {seed}.")
    return int(seed)


def _fixed_input_size(model: Any) -> tuple[int, int] | None:
    """(H, W) when a timm model only accepts one input size (strict patch embedding)."""
    embed = getattr(model, "patch_embed", None) if isinstance(model, torch.nn.Module) else None
    if embed is None or not getattr(embed, "strict_img_size", False):
        return None
    if getattr(embed, "dynamic_img_pad", False):
        return None
    size = getattr(embed, "img_size", None)
    if size is None:
        return None
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    return int(h), int(w)


def _check_augment(augment: Any) -> str:
    if augment is None or augment is False:
        return "none"
    if augment is True:
        return "light"
    if isinstance(augment, str) and augment in AUGMENT_CHOICES:
        return augment
    raise DataError(
        f"augment={augment!r} is not understood; use one of "
        f"{', '.join(map(repr, AUGMENT_CHOICES))} (or False for no augmentation)."
    )


def _build_transform(
    cfg: dict[str, Any], augment: str, train: bool
) -> Callable[[Any], torch.Tensor]:
    """PIL RGB image -> normalised CHW float tensor, following ``cfg``."""
    from timm.data import create_transform

    size = cfg["input_size"]
    common = dict(
        input_size=size,
        interpolation=cfg.get("interpolation", "bicubic"),
        mean=cfg["mean"],
        std=cfg["std"],
    )
    if not train or augment == "none":
        return create_transform(
            **common,
            is_training=False,
            crop_pct=cfg.get("crop_pct"),
            crop_mode=cfg.get("crop_mode"),
        )
    if augment == "light":
        # mild crops and flips only: strong enough to help small datasets, gentle enough that a
        # few epochs of head training still converge
        return create_transform(
            **common, is_training=True, scale=(0.6, 1.0), ratio=(3 / 4, 4 / 3), hflip=0.5,
            color_jitter=None,
        )
    return create_transform(**common, is_training=True)


# --------------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------------


class _SkipLog:
    """The ``skipped`` list shared by every dataset view of one :class:`ImageData`."""

    def __init__(self, entries: list[tuple[str, str]] | None = None) -> None:
        self.entries: list[tuple[str, str]] = list(entries or [])
        self.bad: set[str] = {p for p, _ in self.entries}
        self.lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers started with "spawn" (macOS, Windows) pickle the dataset; a lock
        # cannot be pickled, and each worker needs its own anyway
        return {"entries": list(self.entries), "bad": set(self.bad)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.entries = state["entries"]
        self.bad = state["bad"]
        self.lock = threading.Lock()

    def add(self, path: str, reason: str) -> None:
        with self.lock:
            if path not in self.bad:
                self.bad.add(path)
                self.entries.append((path, reason))


class _Source:
    """Where raw images come from: files on disk or an in-memory uint8 NHWC array."""

    def __init__(self, array: np.ndarray | None = None) -> None:
        self.array = array

    def raw(self, item: Item, index_in_array: int | None) -> Image.Image:
        path, _ = item
        if path is not None:
            return load_rgb(path)
        assert self.array is not None and index_in_array is not None
        return Image.fromarray(self.array[index_in_array])


class ImageDataset(Dataset):
    """A torch dataset of ``(tensor CHW float, int label)`` over one split of an ImageData.

    Items keep a stable order (``items[i]`` is ``(path or None, label)`` of item ``i``). A file
    that fails to decode is recorded in the owner's ``skipped`` list and replaced by the next
    readable item, so an epoch never stops halfway because of one bad file.
    """

    def __init__(
        self,
        items: Sequence[Item],
        transform: Callable[[Any], torch.Tensor],
        source: _Source,
        skip_log: _SkipLog,
        array_index: Sequence[int] | None = None,
    ) -> None:
        self.items = list(items)
        self.transform = transform
        self._source = source
        self._skip_log = skip_log
        self._array_index = list(array_index) if array_index is not None else None

    def __len__(self) -> int:
        return len(self.items)

    def raw(self, index: int) -> Image.Image:
        """The RGB PIL image of item ``index`` before any transform."""
        ai = self._array_index[index] if self._array_index is not None else None
        return self._source.raw(self.items[index], ai)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        n = len(self.items)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} images")
        index %= n
        for attempt in range(n):
            i = (index + attempt) % n
            path, label = self.items[i]
            if path is not None and path in self._skip_log.bad:
                continue
            try:
                img = self.raw(i)
            except Exception as err:  # a decode failure of one file must not end the epoch
                if path is None:
                    raise
                self._skip_log.add(path, f"failed to load: {type(err).__name__}: {err}")
                continue
            return self.transform(img), int(label)
        raise DataError(
            f"None of the {n} images of this split could be loaded; see data.skipped for the "
            "reasons, and check the files open in an image viewer."
        )


# --------------------------------------------------------------------------------------------
# ImageData
# --------------------------------------------------------------------------------------------


def _check_valid_pct(valid_pct: float) -> float:
    try:
        pct = float(valid_pct)
    except (TypeError, ValueError):
        raise DataError(f"valid_pct must be a number in [0, 1); got {valid_pct!r}.") from None
    if not 0.0 <= pct < 1.0 or math.isnan(pct):
        raise DataError(
            f"valid_pct={valid_pct!r} is outside [0, 1); use e.g. 0.2 to hold out 20% of each "
            "class for validation (0 for no validation set)."
        )
    return pct


def _stratified_split(
    labels: Sequence[int], valid_pct: float, seed: int, classes: Sequence[str]
) -> tuple[list[int], list[int]]:
    """Indices of train and valid; deterministic per seed; every class with >= 2 images lands
    in both splits when valid_pct > 0."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(int(y), []).append(i)
    train: list[int] = []
    valid: list[int] = []
    for y in sorted(by_class):
        idx = np.array(by_class[y])
        idx = idx[rng.permutation(len(idx))]
        n = len(idx)
        n_valid = int(round(n * valid_pct)) if valid_pct > 0 else 0
        if valid_pct > 0 and n >= 2:
            n_valid = max(n_valid, 1)
            if n_valid >= n:
                raise DataError(
                    f"valid_pct={valid_pct} would put all {n} images of class "
                    f"{classes[y]!r} in validation and none in training; use a smaller "
                    "valid_pct or add images to that class."
                )
        elif n < 2:
            n_valid = 0
        valid.extend(int(i) for i in idx[:n_valid])
        train.extend(int(i) for i in idx[n_valid:])
    return sorted(train), sorted(valid)


def _list_images(folder: Path) -> tuple[list[Path], Counter[str]]:
    """Image files under ``folder`` (recursive, sorted) and a count of every other extension."""
    images: list[Path] = []
    others: Counter[str] = Counter()
    for dirpath, dirnames, filenames in os.walk(folder):
        # hidden folders (.ipynb_checkpoints, .git) and files (macOS ._x.jpg) are never data
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            ext = os.path.splitext(name)[1].lower()
            if ext in IMAGE_EXTENSIONS:
                images.append(Path(dirpath) / name)
            else:
                others[ext or "(no extension)"] += 1
    return sorted(images), others


def _positions(indices: Any, n: int, name: str, items: str) -> list[int]:
    """``indices`` (list, range, 1-D int array or tensor) as sorted unique positions in [0, n)."""
    if isinstance(indices, torch.Tensor):
        indices = indices.detach().cpu().numpy()
    if isinstance(indices, (str, bytes)) or not hasattr(indices, "__iter__"):
        raise DataError(
            f"{name} must be a sequence of integer positions in data.{items}; got "
            f"{type(indices).__name__}."
        )
    arr = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
    if arr.size and (arr.ndim != 1 or arr.dtype.kind not in "iu"):
        raise DataError(
            f"{name} must be a 1-D sequence of integer positions in data.{items}; got "
            f"dtype {arr.dtype}, shape {arr.shape} (for a mask use np.flatnonzero(mask))."
        )
    pos = [int(i) for i in arr.tolist()]
    bad = [i for i in pos if not 0 <= i < n]
    if bad:
        raise DataError(
            f"{name} has positions {bad[:5]} outside data.{items}, which holds {n} images; "
            f"use positions 0..{n - 1}."
        )
    dup = sorted({i for i, c in Counter(pos).items() if c > 1})
    if dup:
        raise DataError(
            f"{name} repeats positions {dup[:5]}; pass each image once (e.g. sorted(set(...)))."
        )
    return sorted(pos)


def _found_problems(
    founds: Sequence[dict[str, list[Path]]], progress: bool, check: str
) -> dict[Path, str]:
    """Path -> why it cannot be used, for every file of the class -> files maps in ``founds``
    (all checked in one pool)."""
    paths = [p for found in founds for ps in found.values() for p in ps]
    problems = _check_files(paths, progress, check)
    return {p: why for p, why in zip(paths, problems) if why is not None}


def _names(classes: Sequence[str]) -> str:
    shown = ", ".join(repr(c) for c in classes[:8])
    more = f" and {len(classes) - 8} more" if len(classes) > 8 else ""
    return f"{'Class' if len(classes) == 1 else 'Classes'} {shown}{more}"


class _FolderScan:
    """Finds the class folders of one dataset folder, refuses folders that would count images
    twice (a link back to the root or above it, two names for one folder), and writes a note
    for each class folder that turns out not to be a class (no images, none readable)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root_real = root.resolve()
        self.splits: dict[Path, Path] = {}  # resolved train/ and valid/ -> as found
        self.seen: dict[Path, Path] = {}  # resolved class folder -> the folder as found
        self.linked: set[Path] = set()  # resolved folders reached through a link
        self.notes: list[str] = []
        self.unreadable: list[str] = []  # class folders whose every image failed the check

    def _claim(self, folder: Path, split: bool = False) -> None:
        real = folder.resolve()
        where = _rel(folder, self.root)
        if real == self.root_real or real in self.root_real.parents:
            what = "the data folder itself" if real == self.root_real else "a folder above it"
            kind = "split folder" if split else "class folder"
            raise DataError(
                f"The {kind} {where!r} is a link to {what} ({real}): every image would be "
                f"counted again under another name. Remove the link from {str(self.root)!r} "
                "(or pass a folder that does not contain it)."
            )
        # folders of one kind (class folders; train/ and valid/) must not overlap, and a class
        # folder may sit inside a split folder but never be one or hold one. Only a folder
        # reached through a link can overlap another, so only those are compared with all.
        registry = self.splits if split else self.seen
        linked = real != self.root_real / folder.relative_to(self.root)
        pool = registry.items() if linked else [(r, registry[r]) for r in self.linked
                                                 if r in registry]
        clashes = [(r, f) for r, f in pool if r in real.parents or real in r.parents]
        if real in registry:
            clashes.insert(0, (real, registry[real]))
        if not split:
            clashes += [(r, f) for r, f in self.splits.items() if real == r or real in r.parents]
        for other_real, other in clashes[:1]:
            same = "the same folder" if real == other_real else "folders inside each other"
            raise DataError(
                f"{where!r} and {_rel(other, self.root)!r} are {same} ({real} and "
                f"{other_real}; one is a link): their images would count twice, under two "
                "classes or in both training and validation. Remove the link, or copy "
                "the images you mean."
            )
        if linked:
            self.linked.add(real)
        registry[real] = folder

    def classes(self, folder: Path, ignored: Counter[str]) -> dict[str, list[Path]]:
        """Class name -> image files, for each subfolder of ``folder`` holding any image; the
        other files' extensions are counted into ``ignored``; empty subfolders get a note."""
        if folder != self.root:
            self._claim(folder, split=True)
        found: dict[str, list[Path]] = {}
        for sub in _subdirs(folder):
            self._claim(sub)
            images, others = _list_images(sub)
            ignored.update(others)
            if images:
                found[sub.name] = images
                continue
            what = (
                f"holds no image files, only {sum(others.values())} others "
                f"({', '.join(f'{e} ({n})' for e, n in others.most_common(4))})"
                if others else "is empty"
            )
            self.notes.append(
                f"The folder {_rel(sub, self.root)}/ {what}: it is not a class. Add images to "
                "it or remove it."
            )
        return found

    def readable(
        self,
        folder: Path,
        found: dict[str, list[Path]],
        bad: dict[Path, str],
        skipped: list[tuple[str, str]],
    ) -> dict[str, list[Path]]:
        """``found`` without the files in ``bad`` (recorded in ``skipped``) and without the
        classes left with no image (noted)."""
        ok: dict[str, list[Path]] = {}
        for cname, paths in found.items():
            good = [p for p in paths if p not in bad]
            skipped.extend((str(p), bad[p]) for p in paths if p in bad)
            if good:
                ok[cname] = good
            else:
                n = len(paths)
                self.unreadable.append(cname)
                self.notes.append(
                    f"The folder {_rel(folder / cname, self.root)}/ has {n} image "
                    f"file{'s' if n != 1 else ''} and none can be read: it is not a class "
                    "(data.skipped says why for each file)."
                )
        return ok


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _rel(path: str | Path, root: Path | None) -> str:
    """``path`` relative to ``root`` when it is inside it (short names in messages)."""
    if root is not None:
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            pass
    return str(path)


class DataSummary(pd.DataFrame):
    """What :meth:`ImageData.summary` returns: the table of images per class and split, plus
    ``notes`` (a list of strings: what was skipped and why, what was ignored), printed under
    the table. Any operation on it gives a plain DataFrame.

    >>> s = data.summary()          # doctest: +SKIP
    >>> s.notes                     # doctest: +SKIP
    ['1 file skipped (data.skipped lists each with its reason): cat/cut.jpg: the file is cut off']
    """

    _metadata: ClassVar[list[str]] = ["notes"]

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _notes_text(self) -> str:
        return "\n".join(f"- {n}" for n in getattr(self, "notes", []))

    def __repr__(self) -> str:
        table = pd.DataFrame(self).__repr__()
        notes = self._notes_text()
        return f"{table}\n{notes}" if notes else table

    def _repr_html_(self) -> str | None:
        import html

        table = pd.DataFrame(self)._repr_html_() or ""
        notes = getattr(self, "notes", [])
        if not notes:
            return table
        items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
        return f"{table}<ul class='tlw-data-notes'>{items}</ul>"


class ImageData:
    """A labelled image dataset with a fixed train/valid split and model-matched transforms.

    Build one with :meth:`from_folder`, :meth:`from_arrays` or :func:`sample_data`.

    Attributes: ``classes``, ``num_classes``, ``train_items``/``valid_items`` (lists of
    ``(path or None, label)`` in the stable order of ``train_ds``/``valid_ds``), ``skipped``
    (``(path, reason)`` of files that could not be read), ``ignored`` (non-image files left
    out, ``{extension: count}``), ``notes`` (sentences about both, shown by :meth:`summary`),
    ``batch_size``, ``augment``, ``data_config`` (the resolved preprocessing config),
    ``num_workers``.

    >>> import tlwidgets as tlw
    >>> data = tlw.ImageData.from_folder("photos/", img_size=128)   # doctest: +SKIP
    >>> data.classes, len(data.train_ds), len(data.valid_ds)          # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        classes: Sequence[str],
        train_items: Sequence[Item],
        valid_items: Sequence[Item],
        source: _Source,
        model: Any = None,
        img_size: int | None = None,
        batch_size: int = 32,
        augment: str = "light",
        num_workers: int = 0,
        skipped: Sequence[tuple[str, str]] | _SkipLog = (),
        seed: int = 0,
        crop_pct: float | None = None,
        array_index: tuple[Sequence[int], Sequence[int]] | None = None,
        root: Path | None = None,
        ignored: dict[str, int] | None = None,
        notes: Sequence[str] = (),
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise DataError(f"batch_size must be a positive integer; got {batch_size!r}.")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise DataError(f"num_workers must be an integer >= 0; got {num_workers!r}.")
        img_size = _check_img_size(img_size)
        seed = _check_seed(seed)
        self.classes: list[str] = list(classes)
        self.train_items: list[Item] = list(train_items)
        self.valid_items: list[Item] = list(valid_items)
        self.batch_size = batch_size
        self.augment = _check_augment(augment)
        self.num_workers = num_workers
        self.seed = int(seed)
        self.root = root
        #: Non-image files left out when the folder was read: extension -> count.
        self.ignored: dict[str, int] = dict(ignored or {})
        self._notes = list(notes)
        self._source = source
        self._skip_log = skipped if isinstance(skipped, _SkipLog) else _SkipLog(list(skipped))
        self._img_size = img_size
        self._crop_pct = crop_pct
        self._array_index = array_index
        self.model_cfg_source = model
        self.data_config = resolve_data_config(model, img_size)
        if crop_pct is not None:
            self.data_config["crop_pct"] = crop_pct
        self._transforms: dict[tuple[str, bool], Callable[[Any], torch.Tensor]] = {}

    # ---------------------------------------------------------------- properties
    @property
    def num_classes(self) -> int:
        """How many classes there are (the size of the classifier head)."""
        return len(self.classes)

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of every file left out: at construction (header check) or when it
        failed to decode while loading. Grows during an epoch if a file fails then."""
        with self._skip_log.lock:
            return list(self._skip_log.entries)

    @property
    def img_size(self) -> int:
        """The side length, in pixels, of the tensors the transforms produce."""
        return int(self.data_config["input_size"][-1])

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(self.data_config["mean"])

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(self.data_config["std"])

    @property
    def augment_is_random(self) -> bool:
        """True when the training transform draws random numbers (any augment but "none")."""
        return self.augment != "none"

    def transform(
        self, train: bool = False, augment: str | bool | None = None
    ) -> Callable[[Any], torch.Tensor]:
        """The transform (PIL RGB image -> normalised CHW tensor) of the training or eval path.

        >>> tf = data.transform(train=False)                     # doctest: +SKIP
        >>> tf(load_rgb("cat.jpg")).shape                       # doctest: +SKIP
        torch.Size([3, 224, 224])
        """
        aug = self.augment if augment is None else _check_augment(augment)
        key = (aug if train else "none", bool(train))
        if key not in self._transforms:
            self._transforms[key] = _build_transform(self.data_config, aug, train)
        return self._transforms[key]

    @property
    def eval_transform(self) -> Callable[[Any], torch.Tensor]:
        """The deterministic transform used for validation, feature caching and prediction."""
        return self.transform(train=False)

    def preprocess(self, image: Any) -> torch.Tensor:
        """Turn a path, PIL image or HWC/CHW array into one normalised CHW tensor (eval path).
        Files and PIL images are turned upright by their EXIF orientation tag first.

        >>> x = data.preprocess("cat.jpg").unsqueeze(0)         # doctest: +SKIP
        """
        if isinstance(image, (str, os.PathLike)):
            try:
                img = load_rgb(image)
            except FileNotFoundError:
                raise DataError(f"No image file at {str(image)!r}; check the path.") from None
            except Exception as err:
                raise DataError(
                    f"Could not read {str(image)!r} as an image ({type(err).__name__}: {err}); "
                    "check the file opens in an image viewer."
                ) from None
        elif isinstance(image, Image.Image):
            img = to_rgb(upright(image))
        else:
            if isinstance(image, torch.Tensor):
                image = image.detach().cpu().numpy()
            arr = _images_to_uint8_nhwc(np.asarray(image)[None])
            img = Image.fromarray(arr[0])
        return self.eval_transform(img)

    # ---------------------------------------------------------------- datasets and loaders
    def _dataset(self, split: Split, transform: Callable[[Any], torch.Tensor]) -> ImageDataset:
        items = self.train_items if split == "train" else self.valid_items
        ai = None
        if self._array_index is not None:
            ai = self._array_index[0] if split == "train" else self._array_index[1]
        return ImageDataset(items, transform, self._source, self._skip_log, ai)

    @property
    def train_ds(self) -> ImageDataset:
        """Training split with the training transform (random when ``augment_is_random``)."""
        return self._dataset("train", self.transform(train=True))

    @property
    def valid_ds(self) -> ImageDataset:
        """Validation split with the eval transform; item ``i`` is ``valid_items[i]``."""
        return self._dataset("valid", self.eval_transform)

    def _loader(self, ds: ImageDataset, shuffle: bool, drop_last: bool) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            generator=generator,
        )

    def train_loader(
        self, augment: str | bool | None = None, shuffle: bool = True, drop_last: bool = False
    ) -> DataLoader:
        """A DataLoader over the training split.

        ``augment=None`` uses the data's own ``augment``; ``False`` (or ``"none"``) gives the
        deterministic eval transform (for feature caching: the same image always gives the same
        tensor); a string picks another augmentation level. The shuffle order is reproducible
        from ``seed`` (a fresh, seeded generator per loader).

        >>> for xb, yb in data.train_loader():                  # doctest: +SKIP
        ...     loss = loss_fn(model(xb), yb)
        """
        aug = self.augment if augment is None else _check_augment(augment)
        ds = self._dataset("train", self.transform(train=aug != "none", augment=aug))
        return self._loader(ds, shuffle=shuffle, drop_last=drop_last)

    def valid_loader(self) -> DataLoader:
        """A DataLoader over the validation split, in ``valid_items`` order, eval transform.

        >>> preds = [model(xb).argmax(1) for xb, _ in data.valid_loader()]   # doctest: +SKIP
        """
        return self._loader(self.valid_ds, shuffle=False, drop_last=False)

    def raw_image(self, split: Split, index: int) -> Image.Image:
        """Item ``index`` of ``split`` ("train" or "valid") as an RGB PIL image, not resized or
        normalised (for galleries of mistakes).

        >>> data.raw_image("valid", 0).size                     # doctest: +SKIP
        """
        if split not in ("train", "valid"):
            raise DataError(f"split must be 'train' or 'valid'; got {split!r}.")
        items = self.train_items if split == "train" else self.valid_items
        if not -len(items) <= index < len(items):
            raise DataError(
                f"index {index} is out of range: the {split} split has {len(items)} images."
            )
        ds = self._dataset(split, self.eval_transform)
        try:
            return ds.raw(index % len(items))
        except Exception as err:
            path = items[index][0]
            raise DataError(
                f"Could not read {path!r} ({type(err).__name__}: {err}); the file is damaged "
                "or was removed after the data was built."
            ) from None

    # ---------------------------------------------------------------- summaries and copies
    def summary(self) -> DataSummary:
        """Images per class and split: rows are classes, columns ``train``, ``valid``, ``total``;
        under the table (and in ``.notes``) what was skipped and why, and how many non-image
        files were ignored.

        >>> data.summary()                                      # doctest: +SKIP
                train  valid  total
        class
        brick      40     12     52
        ...
        - 1 file skipped (data.skipped lists each with its reason): brick/cut.jpg: the file is cut off
        - 2 non-image files ignored: .txt (2)
        """
        train = Counter(y for _, y in self.train_items)
        valid = Counter(y for _, y in self.valid_items)
        df = pd.DataFrame(
            {
                "train": [train.get(i, 0) for i in range(self.num_classes)],
                "valid": [valid.get(i, 0) for i in range(self.num_classes)],
            },
            index=pd.Index(self.classes, name="class"),
        )
        df["total"] = df["train"] + df["valid"]
        out = DataSummary(df.astype("int64"))
        out.notes = self.notes
        return out

    @property
    def notes(self) -> list[str]:
        """Plain sentences about how the data was read: files skipped (and why), non-image
        files ignored, class folders that are not classes. Shown under :meth:`summary`.

        >>> for line in data.notes: print(line)                # doctest: +SKIP
        """
        notes: list[str] = []
        skipped = self.skipped
        if skipped:
            shown = "; ".join(f"{_rel(p, self.root)}: {why}" for p, why in skipped[:5])
            more = f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""
            n = len(skipped)
            notes.append(
                f"{n} file{'s' if n != 1 else ''} skipped (data.skipped lists each with its "
                f"reason): {shown}{more}"
            )
        if self.ignored:
            n = sum(self.ignored.values())
            exts = ", ".join(f"{ext} ({c})" for ext, c in
                             sorted(self.ignored.items(), key=lambda kv: (-kv[1], kv[0]))[:8])
            notes.append(
                f"{n} non-image file{'s' if n != 1 else ''} ignored: {exts}. Read as images: "
                f"{', '.join(IMAGE_EXTENSIONS)}."
            )
        return notes + self._notes

    def with_model(self, model: Any) -> ImageData:
        """The same split and settings with transforms re-derived from ``model``'s pretrained
        cfg (mean, std, interpolation, crop; the size too unless ``img_size`` was given).

        >>> data = data.with_model(timm.create_model("vit_tiny_patch16_224"))   # doctest: +SKIP
        """
        return ImageData(
            classes=self.classes,
            train_items=self.train_items,
            valid_items=self.valid_items,
            source=self._source,
            model=model,
            img_size=self._img_size,
            batch_size=self.batch_size,
            augment=self.augment,
            num_workers=self.num_workers,
            skipped=self._skip_log,
            seed=self.seed,
            crop_pct=self._crop_pct,
            array_index=self._array_index,
            root=self.root,
            ignored=self.ignored,
            notes=self._notes,
        )

    def subset(
        self, train_indices: Any, valid_indices: Any = None
    ) -> ImageData:
        """The same data restricted to some training images (and optionally some validation
        images): same classes, transforms, batch size, seed and augment.

        ``train_indices`` are positions in ``train_items`` (a list, range or 1-D integer
        array, no repeats); the result's ``train_items`` keep the original order. The
        validation split is kept whole unless ``valid_indices`` (positions in ``valid_items``)
        is given. Subsets nest: ``data.subset(a).subset(b)`` indexes into the first subset.
        Files that fail to decode are recorded in one ``skipped`` list shared with ``self``.

        >>> import numpy as np, tlwidgets as tlw
        >>> x = np.random.rand(20, 16, 16, 3).astype("float32"); y = np.arange(20) % 2
        >>> data = tlw.ImageData.from_arrays(x, y, classes=["a", "b"])
        >>> small = data.subset(range(4))
        >>> len(small.train_items), len(small.valid_items) == len(data.valid_items)
        (4, True)
        """
        tr = _positions(train_indices, len(self.train_items), "train_indices", "train_items")
        if not tr:
            raise DataError(
                "train_indices is empty; a subset needs at least one training image (pass "
                "positions in data.train_items)."
            )
        va = (
            list(range(len(self.valid_items)))
            if valid_indices is None
            else _positions(valid_indices, len(self.valid_items), "valid_indices", "valid_items")
        )
        array_index = None
        if self._array_index is not None:
            array_index = (
                [self._array_index[0][i] for i in tr],
                [self._array_index[1][i] for i in va],
            )
        return ImageData(
            classes=self.classes,
            train_items=[self.train_items[i] for i in tr],
            valid_items=[self.valid_items[i] for i in va],
            source=self._source,
            model=self.model_cfg_source,
            img_size=self._img_size,
            batch_size=self.batch_size,
            augment=self.augment,
            num_workers=self.num_workers,
            skipped=self._skip_log,
            seed=self.seed,
            crop_pct=self._crop_pct,
            array_index=array_index,
            root=self.root,
            ignored=self.ignored,
            notes=self._notes,
        )

    def __repr__(self) -> str:
        return (
            f"ImageData({self.num_classes} classes, {len(self.train_items)} train / "
            f"{len(self.valid_items)} valid images, {self.img_size}px, augment={self.augment!r}, "
            f"{len(self._skip_log.entries)} skipped)"
        )

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_folder(
        cls,
        root: str | os.PathLike[str],
        valid_pct: float = 0.2,
        seed: int = 0,
        model: Any = None,
        img_size: int | None = None,
        batch_size: int = 32,
        augment: str = "light",
        num_workers: int = 0,
        progress: bool = True,
        check: str = "decode",
    ) -> ImageData:
        """Images in one subfolder per class (``root/<class>/*.jpg``), or already split into
        ``root/train/<class>/`` and ``root/valid/<class>/`` (``val/`` works too; then
        ``valid_pct`` is not used).

        The split is stratified and deterministic for a ``seed``. Every image file is decoded
        once here (:func:`check_image`, in a thread pool; a progress bar appears when that
        takes over a second, unless ``progress=False``): files that cannot be used are left out
        and listed with the reason in ``data.skipped``, and files without an image extension
        are counted in ``data.ignored``; :meth:`summary` says both. ``check="header"`` checks
        headers and JPEG end markers only (for huge folders of large photos: it finds cut-off
        files, not damage inside a file, which then shows up when training reaches it).
        Classes are decided after that: a class folder with no readable image (or none at all)
        is not a class and gets a note; a class with images in ``valid/`` only, or a folder
        that links back to ``root`` (or is another class's folder under a second name), is a
        :class:`DataError`. Transforms follow ``model``'s
        pretrained cfg (ImageNet defaults without one); ``img_size`` overrides its size.
        ``augment`` is "none", "light" (mild random-resized crop and flip) or "standard"
        (timm's default training transform).

        >>> import tlwidgets as tlw
        >>> data = tlw.ImageData.from_folder("pets/", model=model, img_size=128)   # doctest: +SKIP
        >>> data.summary()                                                          # doctest: +SKIP
        """
        augment = _check_augment(augment)
        pct = _check_valid_pct(valid_pct)
        img_size = _check_img_size(img_size)
        seed = _check_seed(seed)
        if check not in CHECK_CHOICES:
            raise DataError(
                f"check={check!r} is not understood; use 'decode' (decode every file now, the "
                "default) or 'header' (headers and JPEG end markers only, faster)."
            )
        root_path = Path(root).expanduser()
        if not root_path.exists():
            raise DataError(
                f"The folder {str(root_path)!r} does not exist; pass the folder that holds one "
                "subfolder per class (or train/ and valid/ subfolders)."
            )
        if not root_path.is_dir():
            raise DataError(
                f"{str(root_path)!r} is a file, not a folder; pass the folder that holds one "
                "subfolder per class."
            )
        subdirs = _subdirs(root_path)
        names = {p.name.lower(): p for p in subdirs}
        train_dir = names.get("train")
        valid_dir = names.get("valid") or names.get("val")
        skipped: list[tuple[str, str]] = []
        ignored: Counter[str] = Counter()
        notes: list[str] = []
        # classes are decided after every file is checked: a folder with no readable image is
        # not a class, and says so in notes
        scan = _FolderScan(root_path)

        if train_dir is not None and valid_dir is not None:
            train_found = scan.classes(train_dir, ignored)
            valid_found = scan.classes(valid_dir, ignored)
            bad = _found_problems([train_found, valid_found], progress, check)
            train_ok = scan.readable(train_dir, train_found, bad, skipped)
            valid_ok = scan.readable(valid_dir, valid_found, bad, skipped)
            classes = sorted(set(train_ok) | set(valid_ok))
            cls._check_classes(root_path, classes, {**valid_ok, **train_ok}, True, scan.notes,
                               bool(scan.unreadable))
            only_valid = sorted(set(valid_ok) - set(train_ok))
            if only_valid:
                raise DataError(
                    f"{_names(only_valid)} {'has' if len(only_valid) == 1 else 'have'} images "
                    f"in {valid_dir.name}/ but none in {train_dir.name}/: the model would have "
                    "an output for a class it never sees, and its validation images could "
                    f"never be right. Add training images to {train_dir.name}/<class>/, or "
                    f"move those folders out of {valid_dir.name}/."
                )
            only_train = sorted(set(train_ok) - set(valid_ok))
            if only_train:
                notes.append(
                    f"{_names(only_train)}: images in {train_dir.name}/ but none in "
                    f"{valid_dir.name}/, so validation measures nothing for "
                    f"{'it' if len(only_train) == 1 else 'them'}. Add images to "
                    f"{valid_dir.name}/<class>/."
                )
            index = {c: i for i, c in enumerate(classes)}
            train_items = [(str(p), index[c]) for c, ps in train_ok.items() for p in ps]
            valid_items = [(str(p), index[c]) for c, ps in valid_ok.items() for p in ps]
        else:
            found_ignored: Counter[str] = Counter()
            folder = root_path
            found = scan.classes(root_path, found_ignored)
            if train_dir is not None and valid_dir is None:
                # root/train/<class>/ without a valid/ folder: split train/ by valid_pct rather
                # than mistaking "train" (and "test") for class names
                nested = _FolderScan(root_path)
                nested_found = nested.classes(train_dir, ignored)
                if nested_found:
                    found, found_ignored, scan, folder = nested_found, ignored, nested, train_dir
            ignored = found_ignored
            bad = _found_problems([found], progress, check)
            ok = scan.readable(folder, found, bad, skipped)
            classes = sorted(ok)
            cls._check_classes(root_path, classes, ok, False, scan.notes, bool(scan.unreadable))
            index = {c: i for i, c in enumerate(classes)}
            all_items = [(str(p), index[c]) for c, ps in ok.items() for p in ps]
            labels = [y for _, y in all_items]
            tr, va = _stratified_split(labels, pct, seed, classes)
            train_items = [all_items[i] for i in tr]
            valid_items = [all_items[i] for i in va]
        # a stable, human-sensible order: by class, then by path
        train_items.sort(key=lambda it: (it[1], it[0]))
        valid_items.sort(key=lambda it: (it[1], it[0]))
        return cls(
            classes=classes,
            train_items=train_items,
            valid_items=valid_items,
            source=_Source(),
            model=model,
            img_size=img_size,
            batch_size=batch_size,
            augment=augment,
            num_workers=num_workers,
            skipped=skipped,
            seed=seed,
            root=root_path,
            ignored=dict(ignored),
            notes=scan.notes + notes,
        )

    @staticmethod
    def _check_classes(
        root: Path,
        classes: list[str],
        found: dict[str, list[Path]],
        presplit: bool,
        notes: Sequence[str] = (),
        unreadable: bool = False,
    ) -> None:
        if len(classes) >= 2:
            return
        layout = "train/<class>/ and valid/<class>/" if presplit else "<class>/"
        expected = (
            f"expected at least two class subfolders with images ({root}/{layout}<image>, "
            f"extensions {', '.join(IMAGE_EXTENSIONS)})"
        )
        also = "".join(f"\n- {n}" for n in notes)
        if len(classes) == 1:
            c = classes[0]
            raise DataError(
                f"Found only one class, {c!r} ({len(found[c])} images) under {str(root)!r}; "
                f"{expected}. Add a subfolder for each other class.{also}"
            )
        if unreadable:
            raise DataError(
                f"No class folder under {str(root)!r} has a readable image; {expected}.{also}"
            )
        all_images, others = _list_images(root)
        entries = list(root.iterdir())
        if not entries:
            raise DataError(f"The folder {str(root)!r} is empty; {expected}.")
        if all_images:
            raise DataError(
                f"Found {len(all_images)} images in {str(root)!r} but not in class subfolders; "
                f"{expected}. Move each class's images into a subfolder named after the class."
                f"{also}"
            )
        ext_list = ", ".join(f"{ext} ({n})" for ext, n in others.most_common(10)) or "none"
        raise DataError(
            f"No images with a known extension under {str(root)!r}: found "
            f"{sum(others.values())} other files with extensions {ext_list}; {expected}.{also}"
        )

    @classmethod
    def from_arrays(
        cls,
        images: Any,
        labels: Any,
        classes: Sequence[str] | None = None,
        valid_pct: float = 0.2,
        seed: int = 0,
        batch_size: int = 32,
        model: Any = None,
        img_size: int | None = None,
        augment: str = "none",
        num_workers: int = 0,
    ) -> ImageData:
        """In-memory images: a numpy array or torch tensor, ``NCHW`` or ``NHWC`` (the layout is
        found from where the 1- or 3-channel axis is; ``NHW`` is grayscale), ``uint8`` (0..255)
        or float (0..1). ``labels`` are ints in ``[0, len(classes))`` or class-name strings.

        Images are normalised with the model's mean/std (ImageNet's without a model) and
        resized to ``img_size`` if given, else to the model's input size if a model is given,
        else kept at their own size. They are kept in memory as one uint8 copy (float input is
        rounded to 1/255 steps, which no image model notices).

        >>> import numpy as np, tlwidgets as tlw
        >>> x = np.random.rand(20, 32, 32, 3).astype("float32"); y = np.arange(20) % 2
        >>> data = tlw.ImageData.from_arrays(x, y, classes=["a", "b"])
        >>> data.train_ds[0][0].shape
        torch.Size([3, 32, 32])
        """
        augment = _check_augment(augment)
        pct = _check_valid_pct(valid_pct)
        img_size = _check_img_size(img_size)
        seed = _check_seed(seed)
        arr = _images_to_uint8_nhwc(images)
        n = arr.shape[0]
        if isinstance(labels, torch.Tensor):
            labels = labels.detach().cpu().numpy()
        lab = np.asarray(labels)
        if lab.ndim != 1:
            raise DataError(
                f"labels must be one-dimensional (one label per image); got shape {lab.shape}."
            )
        if len(lab) != n:
            raise DataError(
                f"Got {n} images but {len(lab)} labels; pass exactly one label per image."
            )
        if lab.dtype.kind in "USO":
            names = [str(v) for v in lab.tolist()]
            if classes is None:
                classes = sorted(set(names))
            index = {c: i for i, c in enumerate(classes)}
            unknown = sorted(set(names) - set(index))
            if unknown:
                raise DataError(
                    f"Labels {unknown[:5]} are not in classes {list(classes)[:10]}; add them to "
                    "classes or fix the labels."
                )
            int_labels = np.array([index[v] for v in names], dtype=np.int64)
        else:
            if lab.dtype.kind == "f":
                if not np.all(np.isfinite(lab)) or not np.all(lab == np.round(lab)):
                    raise DataError(
                        "labels must be whole numbers (class indices); got non-integer floats. "
                        "Pass integer class indices, e.g. labels.astype(int)."
                    )
            elif lab.dtype.kind not in "iub":
                raise DataError(f"labels must be integers or strings; got dtype {lab.dtype}.")
            int_labels = lab.astype(np.int64)
            n_cls = len(classes) if classes is not None else (int(int_labels.max()) + 1 if n else 0)
            bad = int_labels[(int_labels < 0) | (int_labels >= n_cls)]
            if classes is not None and len(bad):
                raise DataError(
                    f"Labels must be in [0, {n_cls}) for the {n_cls} classes given; found "
                    f"{sorted(set(bad.tolist()))[:10]}. Fix the labels or pass the full list "
                    "of classes."
                )
            if classes is None and (int_labels < 0).any():
                raise DataError(
                    f"Labels must be >= 0 (class indices); found "
                    f"{sorted(set(int_labels[int_labels < 0].tolist()))[:10]}."
                )
            if classes is None:
                classes = [str(i) for i in range(n_cls)]
        classes = [str(c) for c in classes]
        if len(classes) != len(set(classes)):
            raise DataError(f"classes has duplicate names: {classes}; class names must be unique.")
        present = sorted(set(int_labels.tolist()))
        if len(present) < 2:
            raise DataError(
                f"All {n} labels are the same class ({classes[present[0]] if present else '-'}"
                "); a classifier needs images of at least two classes."
            )
        tr, va = _stratified_split(int_labels.tolist(), pct, seed, classes)
        train_items = [(None, int(int_labels[i])) for i in tr]
        valid_items = [(None, int(int_labels[i])) for i in va]
        if img_size is None and model is None:
            img_size = int(arr.shape[1])
        return cls(
            classes=classes,
            train_items=train_items,
            valid_items=valid_items,
            source=_Source(arr),
            model=model,
            img_size=img_size,
            batch_size=batch_size,
            augment=augment,
            num_workers=num_workers,
            seed=seed,
            # arrays are already framed by whoever made them: resize, never centre-crop away
            crop_pct=1.0,
            array_index=(tr, va),
        )


def _images_to_uint8_nhwc(images: Any) -> np.ndarray:
    """numpy/torch images, NCHW/NHWC/NHW, uint8 or float 0..1 -> contiguous uint8 NHWC RGB."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    elif isinstance(images, (list, tuple)):
        try:
            images = np.stack([np.asarray(im) for im in images])
        except ValueError as err:
            raise DataError(
                f"The images in the list have different shapes ({err}); stack images of one "
                "size, or save them to a folder and use from_folder."
            ) from None
    if not isinstance(images, np.ndarray):
        raise DataError(
            f"images must be a numpy array or torch tensor; got {type(images).__name__}."
        )
    arr = images
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise DataError(
            f"images must have shape (N, C, H, W), (N, H, W, C) or (N, H, W); got {arr.shape}."
        )
    if arr.shape[0] == 0:
        raise DataError("images is empty (0 images); pass at least two images per class.")
    already_nhwc = arr.shape[3] in (1, 3) and arr.shape[1] not in (1, 3)
    if not already_nhwc:
        if arr.shape[1] not in (1, 3):
            raise DataError(
                f"Cannot find the channel axis in images of shape {arr.shape}: expected 1 or 3 "
                "channels on axis 1 (NCHW) or axis 3 (NHWC)."
            )
        arr = arr.transpose(0, 2, 3, 1)  # NCHW -> NHWC
    if arr.dtype == bool:
        # 0/1 would become near-black uint8 pixels; a mask is not a photograph
        raise DataError(
            "images are booleans (True/False), which would train on black images. For "
            "black-and-white pictures pass images.astype('uint8') * 255; for masks, these are "
            "not images to classify."
        )
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype.kind in "fiu":
        if arr.dtype.kind != "f":
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi > 255:
                raise DataError(
                    f"Integer images must be in 0..255; found values {lo}..{hi}. Convert to "
                    "uint8 or to floats in 0..1."
                )
            out = arr.astype(np.uint8)
        else:
            if not np.all(np.isfinite(arr)):
                raise DataError("images contain NaN or infinite values; clean them first.")
            lo, hi = float(arr.min()), float(arr.max())
            if lo < -1e-3 or hi > 1 + 1e-3:
                raise DataError(
                    f"Float images must be in 0..1; found values {lo:.3g}..{hi:.3g}. Pass "
                    "unnormalised images (divide 0..255 data by 255; undo any mean/std "
                    "normalisation: tlwidgets normalises for the model itself)."
                )
            out = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    else:
        raise DataError(f"images must be uint8 or float; got dtype {arr.dtype}.")
    if out.shape[3] == 1:
        out = np.repeat(out, 3, axis=3)
    return np.ascontiguousarray(out)


def sample_data(
    name: str = "textures",
    model: Any = None,
    img_size: int | None = None,
    batch_size: int = 16,
    augment: str = "light",
    num_workers: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ImageData:
    """A small offline dataset of real photographs shipped inside an installed package.

    The images are written once as PNG files under ``cache_dir`` (default
    ``~/.cache/tlwidgets/sample_data``) and loaded with :meth:`ImageData.from_folder`, so the
    sample takes the same path as a user's folder. Nothing is downloaded.

    Samples (``name``), all built from photographs in the scikit-image wheel (``skimage/data``,
    scikit-image is in the ``offline`` extra):

    ``"textures"`` (default): 4 classes of real surface photographs: ``brick`` (a brick wall,
    CC0Textures "Bricks25", CC0), ``grass`` (DeviantArt user linolafett "Grass 01", CC0),
    ``gravel`` (CC0Textures "Gravel04", CC0) and ``stars`` (the Hubble eXtreme Deep Field,
    NASA, public domain), all grayscale. Each class is 40 training and 12 validation crops
    (128x128 px, random size and position, some mirrored) of one photograph; training crops
    come from the top 70% of the photo and validation crops from the bottom 30%, so no
    validation pixel is ever seen in training. 208 files, about 3 MB, built in about a second.

    ``"faces"``: scikit-image's ``lfw_subset``: 100 face and 100 non-face crops (25x25 px,
    grayscale) from the Labeled Faces in the Wild photographs (Huang et al., UMass Amherst;
    news photographs redistributed for research in scikit-image, no separate licence stated);
    split 80/20, stratified.

    >>> import tlwidgets as tlw
    >>> data = tlw.sample_data(img_size=64)       # doctest: +SKIP
    >>> data.summary()                            # doctest: +SKIP
    """
    from . import _sample_data

    img_size = _check_img_size(img_size)
    augment = _check_augment(augment)
    folder, valid_pct = _sample_data.materialise(name, cache_dir)
    return ImageData.from_folder(
        folder,
        valid_pct=valid_pct,
        seed=0,
        model=model,
        img_size=img_size,
        batch_size=batch_size,
        augment=augment,
        num_workers=num_workers,
    )
