"""In-memory images and labels for ``ImageData.from_arrays``: numpy arrays or torch tensors
in NCHW, NHWC or NHW, uint8 or float 0..1, made into one uint8 NHWC RGB copy; labels (ints or
class names) made into class indices.

>>> import numpy as np
>>> images_to_uint8_nhwc(np.ones((2, 1, 4, 4), "float32")).shape   # NCHW grayscale -> NHWC RGB
(2, 4, 4, 3)
>>> label_indices(["cat", "dog", "cat"], None, 3)
(array([0, 1, 0]), ['cat', 'dog'])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .errors import DataError

__all__ = ["images_to_uint8_nhwc", "label_indices"]


def label_indices(
    labels: Any, classes: Sequence[str] | None, n: int
) -> tuple[np.ndarray, list[str]]:
    """``labels`` (ints in ``[0, len(classes))`` or class-name strings; a list, numpy array or
    tensor) for ``n`` images as int64 class indices, and the class names (given, the sorted
    names found, or "0".."k-1"); a DataError naming the fix for a wrong count, unknown names,
    non-integer or out-of-range values, duplicate class names or a single class.

    >>> label_indices([1, 0, 1], ["a", "b"], 3)
    (array([1, 0, 1]), ['a', 'b'])
    """
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
    return int_labels, classes


def images_to_uint8_nhwc(images: Any) -> np.ndarray:
    """numpy/torch images, NCHW/NHWC/NHW, uint8 or float 0..1 -> contiguous uint8 NHWC RGB
    (float rounded to 1/255 steps, grayscale replicated to three channels); a list of equally
    sized images is stacked. A DataError naming the fix for anything else.

    >>> import numpy as np
    >>> images_to_uint8_nhwc(np.zeros((2, 8, 8, 3), "uint8")).shape
    (2, 8, 8, 3)
    """
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
