"""A labelled image set that ``tlwidgets.evaluation.evaluate`` can score, built from a split.

``evaluate(model, data)`` reads ``data.classes``, ``data.valid_items`` and
``data.valid_loader()``. The experiments score other sets the same way (the training subset
through the eval transform, corrupted validation images), so they wrap those in an
:class:`EvalSet` instead of running a second evaluation loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["EvalSet"]


class EvalSet:
    """``classes``, ``valid_items`` and ``valid_loader()`` over any batches of ``(x, y)``.

    >>> import torch
    >>> s = EvalSet(["a", "b"], [(None, 0), (None, 1)], lambda: [(torch.zeros(2, 3, 8, 8),
    ...                                                          torch.tensor([0, 1]))])
    >>> len(s.valid_items), len(list(s.valid_loader()))
    (2, 1)
    """

    def __init__(self, classes: Sequence[str], items: Sequence[tuple[Any, int]],
                 loader: Callable[[], Iterable[Any]]) -> None:
        self.classes = list(classes)
        self.valid_items = list(items)
        self._loader = loader

    def valid_loader(self) -> Iterable[Any]:
        return self._loader()

    @classmethod
    def train_split(cls, data: Any) -> EvalSet:
        """``data``'s training images through the deterministic eval transform, in order."""
        return cls(data.classes, data.train_items,
                   lambda: data.train_loader(augment="none", shuffle=False))
