"""The torch dataset over one split of an ``ImageData``, and where its raw images come from
(files on disk or one in-memory uint8 array).

>>> import numpy as np, torch
>>> source = Source(np.zeros((1, 2, 2, 3), "uint8"))
>>> ds = ImageDataset([(None, 1)], lambda im: torch.zeros(3), source, SkipLog(), [0])
>>> ds[0][1], ds.raw(0).size
(1, (2, 2))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ._image_files import SkipLog, load_rgb
from .errors import DataError

__all__ = ["ImageDataset", "Item", "Source"]

#: One item of a split: ``(path or None for an in-memory image, class index)``.
Item = tuple[str | None, int]


class Source:
    """Where raw images come from: files on disk or an in-memory uint8 NHWC array.

    >>> Source().raw(("photos/cat/001.jpg", 0), None).mode   # doctest: +SKIP
    'RGB'
    """

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
        source: Source,
        skip_log: SkipLog,
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

