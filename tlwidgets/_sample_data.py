"""Builds the offline sample datasets of :func:`tlwidgets.sample_data` from photographs that the
scikit-image wheel ships in ``skimage/data`` (read from disk: nothing is fetched).

Each sample is written once, as PNG files, into a cache folder; the folder is built under a
temporary name and renamed into place, so an interrupted build is never mistaken for a
finished one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DataError

#: Bump when the way a sample is built changes, so old caches are not reused.
_BUILD_VERSION = 1
_DONE_MARKER = ".tlwidgets-sample.json"


@dataclass(frozen=True)
class TextureSource:
    cls: str
    file: str
    origin: str
    licence: str


TEXTURES: tuple[TextureSource, ...] = (
    TextureSource("brick", "brick.png", "CC0Textures 'Bricks25' (via scikit-image)", "CC0"),
    TextureSource("grass", "grass.png", "DeviantArt linolafett 'Grass 01' (via scikit-image)",
                  "CC0"),
    TextureSource("gravel", "gravel.png", "CC0Textures 'Gravel04' (via scikit-image)", "CC0"),
    TextureSource("stars", "hubble_deep_field.jpg",
                  "NASA Hubble eXtreme Deep Field (via scikit-image)", "public domain"),
)
TEXTURE_TRAIN_PER_CLASS = 40
TEXTURE_VALID_PER_CLASS = 12
TEXTURE_SIZE = 128
# Train crops come from the top of each photo, validation crops from the bottom, never both.
TEXTURE_TRAIN_FRACTION = 0.7

SAMPLES: dict[str, str] = {
    "textures": "4 classes of surface photographs (brick, grass, gravel, stars), 128 px crops, "
                "40 train + 12 valid per class from disjoint regions",
    "faces": "Labeled Faces in the Wild subset: 100 faces and 100 non-faces, 25 px, grayscale",
}


def skimage_data_dir() -> Path:
    """The ``skimage/data`` folder of the installed scikit-image, without importing it."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "sample_data needs scikit-image, which ships the sample photographs; install it "
            "with `pip install 'tlwidgets[offline]'` (or `pip install scikit-image`)."
        )
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _source_file(name: str) -> Path:
    path = skimage_data_dir() / name
    if not path.is_file():
        raise DataError(
            f"scikit-image's bundled photo {name!r} is missing from {str(path.parent)!r}; "
            "reinstall scikit-image (`pip install --force-reinstall scikit-image`)."
        )
    return path


def default_cache_dir() -> Path:
    """``$TLWIDGETS_CACHE_DIR``, else ``$XDG_CACHE_HOME/tlwidgets``, else ``~/.cache/tlwidgets``."""
    env = os.environ.get("TLWIDGETS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "tlwidgets"


def _writable_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    root = root / "sample_data"
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=root, delete=True)
        probe.close()
        return root
    except OSError:
        if cache_dir is not None:
            raise DataError(
                f"Cannot write the sample images to {str(root)!r}; pass a writable cache_dir."
            ) from None
        # read-only home directories happen on shared clusters: a temp dir still works
        user = os.getuid() if hasattr(os, "getuid") else "user"
        fallback = Path(tempfile.gettempdir()) / f"tlwidgets-{user}" / "sample_data"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def _write_textures(out: Path) -> dict[str, object]:
    rng = np.random.default_rng(20240607)
    counts: dict[str, dict[str, int]] = {}
    for src in TEXTURES:
        with Image.open(_source_file(src.file)) as im:
            photo = im.convert("L")
        width, height = photo.size
        split_y = int(round(height * TEXTURE_TRAIN_FRACTION))
        regions = {
            "train": (0, split_y, TEXTURE_TRAIN_PER_CLASS),
            "valid": (split_y, height, TEXTURE_VALID_PER_CLASS),
        }
        counts[src.cls] = {}
        for split, (top, bottom, n) in regions.items():
            folder = out / split / src.cls
            folder.mkdir(parents=True)
            region_h = bottom - top
            for k in range(n):
                # crop sides between 1/8 and ~0.29 of the photo's short side: different scales
                # of the same surface, each fitting inside its own region
                side = int(rng.uniform(0.125, 0.29) * min(width, height))
                side = max(16, min(side, region_h, width))
                x = int(rng.integers(0, width - side + 1))
                y = int(rng.integers(top, bottom - side + 1))
                crop = photo.crop((x, y, x + side, y + side))
                if rng.random() < 0.5:
                    crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                crop = crop.resize((TEXTURE_SIZE, TEXTURE_SIZE), Image.Resampling.LANCZOS)
                crop.save(folder / f"{src.cls}_{split}_{k:03d}.png", optimize=False)
            counts[src.cls][split] = n
    return {
        "counts": counts,
        "sources": [
            {"class": s.cls, "file": f"skimage/data/{s.file}", "origin": s.origin,
             "licence": s.licence}
            for s in TEXTURES
        ],
    }


def _write_faces(out: Path) -> dict[str, object]:
    arr = np.load(_source_file("lfw_subset.npy"))
    if arr.shape != (200, 25, 25):
        raise DataError(
            f"scikit-image's lfw_subset.npy has shape {arr.shape}, expected (200, 25, 25); "
            "reinstall scikit-image."
        )
    images = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    # the file holds 100 faces, then 100 non-faces (scikit-image's lfw_subset docstring)
    for cls, chunk in (("face", images[:100]), ("non-face", images[100:])):
        folder = out / cls
        folder.mkdir(parents=True)
        for k, img in enumerate(chunk):
            Image.fromarray(img).save(folder / f"{cls}_{k:03d}.png")
    return {
        "counts": {"face": 100, "non-face": 100},
        "sources": [{"file": "skimage/data/lfw_subset.npy",
                     "origin": "Labeled Faces in the Wild (UMass Amherst) via scikit-image",
                     "licence": "no licence stated; research dataset redistributed by "
                                "scikit-image"}],
    }


_BUILDERS = {"textures": (_write_textures, 0.2), "faces": (_write_faces, 0.2)}
_SOURCE_FILES = {
    "textures": tuple(src.file for src in TEXTURES),
    "faces": ("lfw_subset.npy",),
}


def source_digest(name: str) -> str:
    """sha256 over the scikit-image files a sample is cut from: part of the cache folder's
    name, so a scikit-image release that changes a photo gets a freshly built sample."""
    digest = hashlib.sha256()
    for file in _SOURCE_FILES[name]:
        digest.update(_source_file(file).read_bytes())
    return digest.hexdigest()


def materialise(name: str, cache_dir: str | os.PathLike[str] | None = None) -> tuple[Path, float]:
    """Write sample ``name`` as image files (once) and return its folder and the valid_pct
    that :func:`tlwidgets.sample_data` passes to ``from_folder``."""
    if name not in _BUILDERS:
        listing = "; ".join(f"{k!r}: {v}" for k, v in SAMPLES.items())
        raise DataError(f"No sample dataset is named {name!r}; choose one of {listing}.")
    build, valid_pct = _BUILDERS[name]
    root = _writable_root(cache_dir)
    target = root / f"{name}-v{_BUILD_VERSION}-{source_digest(name)[:12]}"
    if (target / _DONE_MARKER).is_file():
        return target, valid_pct
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)  # left over from an interrupted build
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-building-", dir=root))
    try:
        meta = build(tmp)
        meta.update({
            "name": name,
            "version": _BUILD_VERSION,
            "source_sha256": {
                f: hashlib.sha256(_source_file(f).read_bytes()).hexdigest()
                for f in _SOURCE_FILES[name]
            },
        })
        (tmp / _DONE_MARKER).write_text(json.dumps(meta, indent=1))
        try:
            os.replace(tmp, target)
        except OSError:
            # another process finished the same build first; its copy is identical
            if not (target / _DONE_MARKER).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target, valid_pct
