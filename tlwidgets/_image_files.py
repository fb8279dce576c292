"""Reading and checking image files: decode to upright 8-bit RGB, say why a file cannot be
used, check a whole folder's files in a thread pool, and keep the log of files skipped.

:func:`load_rgb` is what every image read from a file goes through (training, validation,
``ImageData.preprocess``, ``ImageData.raw_image``); :func:`check_image` is the check
``ImageData.from_folder`` runs on every file before deciding the classes.

>>> from PIL import Image
>>> to_rgb(Image.new("L", (4, 4), 128)).getpixel((0, 0))
(128, 128, 128)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ExifTags, Image, ImageOps

__all__ = [
    "CHECK_CHOICES",
    "IMAGE_EXTENSIONS",
    "POOL_MIN_FILES",
    "PROGRESS_DELAY_S",
    "SkipLog",
    "check_files",
    "check_image",
    "load_rgb",
    "to_rgb",
    "upright",
]

#: File extensions (lower case) that :meth:`ImageData.from_folder` reads as images.
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff",
)
#: Above this many files, :meth:`ImageData.from_folder` checks them in a thread pool.
POOL_MIN_FILES = 64
#: The progress bar of the file check appears only when the check takes longer than this.
PROGRESS_DELAY_S = 1.0
#: Accepted values of ``ImageData.from_folder(check=...)``.
CHECK_CHOICES: tuple[str, ...] = ("decode", "header")


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


def check_files(paths: Sequence[Path], progress: bool, check: str) -> list[str | None]:
    """:func:`check_image` of every path, in order; a thread pool (PIL decodes without the GIL)
    and a tqdm bar that appears when the check takes longer than ``PROGRESS_DELAY_S``.

    ``check`` is one of :data:`CHECK_CHOICES`: "decode" decodes every file, "header" checks
    headers and JPEG end markers only (:func:`check_image`'s ``decode``).

    >>> check_files([Path("cat/1.jpg"), Path("cat/2.png")], True, "decode")   # doctest: +SKIP
    [None, 'the file is cut off (OSError: image file is truncated)']
    """
    decode = check == "decode"
    if len(paths) < POOL_MIN_FILES:
        return [check_image(p, decode) for p in paths]
    from concurrent.futures import ThreadPoolExecutor

    from tqdm import tqdm

    workers = min(8, (os.cpu_count() or 1) + 2)
    with ThreadPoolExecutor(workers, thread_name_prefix="tlw-check") as pool:
        # big chunks: a small file checks in ~0.1 ms, less than handing it to a thread
        chunk = max(1, min(64, len(paths) // (4 * workers)))
        results = pool.map(lambda p: check_image(p, decode), paths, chunksize=chunk)
        bar = tqdm(results, total=len(paths), desc="Checking images", unit="file",
                   delay=PROGRESS_DELAY_S, disable=not progress)
        return list(bar)


class SkipLog:
    """The ``skipped`` list shared by every dataset view of one :class:`ImageData`: ``entries``
    (``(path, reason)`` in the order found), ``bad`` (their paths), thread-safe :meth:`add`.

    >>> log = SkipLog([("a.jpg", "cut off")]); log.add("b.png", "not an image")
    >>> log.entries, "a.jpg" in log.bad
    ([('a.jpg', 'cut off'), ('b.png', 'not an image')], True)
    """

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

