"""ImageNet-C-style corruptions of an image, at severities 1 (mild) to 5 (severe).

The six corruptions follow Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to
Common Corruptions and Perturbations" (ICLR 2019), with the same per-severity constants as
their ``make_imagenet_c.py``. They are written here with PIL and torchvision and act on the
image **at the model's input size** (after the eval transform's resize and centre crop, before
normalisation), as ImageNet-C corrupted 224 px centre crops. Constants that are a length in
pixels at 224 px (the blur's sigma) are scaled by ``side / 224``; the others are relative and
used as they are. Severity 0 returns the image unchanged.

======================  ===============================================  =========================
name                    what it does (ImageNet-C name)                   severity 1 .. 5
======================  ===============================================  =========================
``"noise"``             add Gaussian noise to each pixel, values in      sigma 0.08, 0.12, 0.18,
                        0..1, then clip (``gaussian_noise``)             0.26, 0.38
``"blur"``              Gaussian blur, torchvision ``gaussian_blur``,    sigma 1, 2, 3, 4, 6 px at
                        kernel ``2*ceil(3 sigma)+1`` (``gaussian_blur``) 224 px (x side/224)
``"jpeg"``              save as JPEG with PIL at this quality and        quality 25, 18, 15, 10, 7
                        decode again (``jpeg_compression``)
``"brightness"``        add to the V channel in HSV (PIL's HSV), clip    +0.1, 0.2, 0.3, 0.4, 0.5
                        (``brightness``)
``"contrast"``          pull each channel towards its mean:              factor 0.4, 0.3, 0.2,
                        ``(x - mean) * factor + mean`` (``contrast``)    0.1, 0.05
``"pixelate"``          shrink to ``factor`` of the side with PIL's      factor 0.6, 0.5, 0.4,
                        box filter and enlarge back (``pixelate``)       0.3, 0.25
======================  ===============================================  =========================

Noise is drawn from a generator seeded per image, so a corrupted set is the same every time.

>>> from PIL import Image
>>> from tlwidgets.experiments import corrupt
>>> img = Image.new("RGB", (64, 64), (120, 60, 30))
>>> corrupt(img, "contrast", 0) is img
True
>>> corrupt(img, "pixelate", 5).size
(64, 64)
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from PIL import Image

from ..errors import ConfigError

__all__ = ["CORRUPTIONS", "SEVERITIES", "corrupt", "corruption_parameters"]

SEVERITIES = (1, 2, 3, 4, 5)

# The constants of make_imagenet_c.py, severity 1..5.
_NOISE_SIGMA = (0.08, 0.12, 0.18, 0.26, 0.38)
_BLUR_SIGMA_224 = (1.0, 2.0, 3.0, 4.0, 6.0)
_JPEG_QUALITY = (25, 18, 15, 10, 7)
_BRIGHTNESS_ADD = (0.1, 0.2, 0.3, 0.4, 0.5)
_CONTRAST_FACTOR = (0.4, 0.3, 0.2, 0.1, 0.05)
_PIXELATE_FACTOR = (0.6, 0.5, 0.4, 0.3, 0.25)


def _noise(img: Image.Image, s: int, seed: int) -> Image.Image:
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)
    gen = torch.Generator().manual_seed(int(seed))
    x = (x + torch.randn(x.shape, generator=gen) * _NOISE_SIGMA[s - 1]).clamp_(0.0, 1.0)
    return Image.fromarray((x.numpy() * 255.0 + 0.5).astype(np.uint8))


def _blur(img: Image.Image, s: int, seed: int) -> Image.Image:
    from torchvision.transforms import functional as TF

    sigma = _BLUR_SIGMA_224[s - 1] * min(img.size) / 224.0
    # reflect padding needs the kernel's half width below the image side
    half = min(math.ceil(3 * sigma), min(img.size) - 1)
    return TF.gaussian_blur(img, kernel_size=2 * max(half, 1) + 1, sigma=sigma)


def _jpeg(img: Image.Image, s: int, seed: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=_JPEG_QUALITY[s - 1])
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


def _brightness(img: Image.Image, s: int, seed: int) -> Image.Image:
    hsv = np.asarray(img.convert("HSV"), dtype=np.float32)
    hsv[..., 2] = np.clip(hsv[..., 2] + _BRIGHTNESS_ADD[s - 1] * 255.0, 0, 255)
    return Image.fromarray(np.rint(hsv).astype(np.uint8), mode="HSV").convert("RGB")


def _contrast(img: Image.Image, s: int, seed: int) -> Image.Image:
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)
    mean = x.mean(dim=(0, 1), keepdim=True)
    x = ((x - mean) * _CONTRAST_FACTOR[s - 1] + mean).clamp_(0.0, 1.0)
    return Image.fromarray((x.numpy() * 255.0 + 0.5).astype(np.uint8))


def _pixelate(img: Image.Image, s: int, seed: int) -> Image.Image:
    w, h = img.size
    f = _PIXELATE_FACTOR[s - 1]
    small = img.resize((max(1, int(w * f)), max(1, int(h * f))), Image.Resampling.BOX)
    return small.resize((w, h), Image.Resampling.BOX)


CORRUPTIONS: dict[str, Callable[[Image.Image, int, int], Image.Image]] = {
    "noise": _noise,
    "blur": _blur,
    "jpeg": _jpeg,
    "brightness": _brightness,
    "contrast": _contrast,
    "pixelate": _pixelate,
}

_PARAMETERS = {
    "noise": ("sigma (0..1 pixel scale)", _NOISE_SIGMA),
    "blur": ("sigma in px at 224 px", _BLUR_SIGMA_224),
    "jpeg": ("JPEG quality", _JPEG_QUALITY),
    "brightness": ("added to HSV value (0..1)", _BRIGHTNESS_ADD),
    "contrast": ("contrast factor", _CONTRAST_FACTOR),
    "pixelate": ("fraction of the side kept", _PIXELATE_FACTOR),
}


def corruption_parameters() -> pd.DataFrame:
    """Each corruption's parameter at each severity, as a table (rows corruptions).

    >>> from tlwidgets.experiments import corruption_parameters
    >>> corruption_parameters().loc["jpeg", 5]
    7
    """
    rows = [[what, *vals] for what, vals in _PARAMETERS.values()]
    # object columns: JPEG qualities stay ints beside the other corruptions' floats
    return pd.DataFrame(rows, columns=["parameter", *SEVERITIES], dtype=object,
                        index=pd.Index(list(_PARAMETERS), name="corruption"))


def check_corruptions(corruptions: object) -> tuple[str, ...]:
    """``corruptions`` as a tuple of known names; a ConfigError naming the known ones else."""
    if isinstance(corruptions, str):
        corruptions = (corruptions,)
    try:
        names = tuple(corruptions)  # type: ignore[arg-type]
    except TypeError:
        names = ()
    unknown = [c for c in names if c not in CORRUPTIONS]
    if not names or unknown:
        raise ConfigError(
            f"unknown corruption(s) {unknown or corruptions!r}; pick from "
            f"{', '.join(CORRUPTIONS)} (e.g. corruptions=('noise', 'blur'))."
        )
    return names


def check_severities(severities: object, allow_zero: bool = True) -> tuple[int, ...]:
    """``severities`` as a tuple of ints in 0..5 (1..5 without ``allow_zero``)."""
    if isinstance(severities, (int, np.integer)) and not isinstance(severities, bool):
        severities = (int(severities),)
    try:
        vals = tuple(severities)  # type: ignore[arg-type]
    except TypeError:
        vals = ()
    low = 0 if allow_zero else 1
    bad = [v for v in vals
           if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not low <= v <= 5]
    if not vals or bad:
        raise ConfigError(
            f"severities must be whole numbers from {low} to 5 (e.g. severities=(1, 3, 5)); "
            f"got {severities!r}."
        )
    return tuple(int(v) for v in vals)


def corrupt(image: Image.Image, name: str, severity: int, seed: int = 0) -> Image.Image:
    """``image`` (PIL) with corruption ``name`` at ``severity`` (0 = unchanged, 1..5).

    ``seed`` seeds the noise (the other corruptions are deterministic). See the module
    docstring for each corruption's parameters per severity.

    >>> from PIL import Image
    >>> img = Image.new("RGB", (32, 32), (200, 200, 200))
    >>> corrupt(img, "jpeg", 5).mode
    'RGB'
    """
    check_corruptions((name,))
    (s,) = check_severities((severity,))
    if not isinstance(image, Image.Image):
        raise ConfigError(f"corrupt() needs a PIL image, got {type(image).__name__}.")
    if s == 0:
        return image
    return CORRUPTIONS[name](image.convert("RGB"), s, seed)
