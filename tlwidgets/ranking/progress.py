"""Progress reporting and cancellation for ranking runs (which take seconds to minutes).

A ranking call takes ``progress`` and ``cancel``:

- ``progress=True``: a tqdm bar on stderr (plain ``tqdm.tqdm``: ``tqdm.auto`` would import
  ipywidgets, which the core must not); ``False``/``None``: silent; a callable
  ``fn(done, total, message)``: called after every batch, from the thread doing the work;
  returning ``False`` cancels.
- ``cancel``: a ``threading.Event``; setting it from another thread cancels between batches.

A widget runs ``rank_models`` in a thread with a callback that appends to its buffer and an
Event its Cancel button sets.

>>> import threading
>>> stop = threading.Event()
>>> p = Progress(10, progress=False, cancel=stop)
>>> p.advance(4, "resnet18")
>>> stop.set()
>>> p.advance(1, "resnet18")
Traceback (most recent call last):
...
tlwidgets.errors.Cancelled: Cancelled on request (the cancel event was set) after 5 of 10 images.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..errors import Cancelled, ConfigError

__all__ = ["Progress", "check_progress"]

ProgressArg = Any  # bool | None | Callable[[int, int, str], bool | None]


def check_progress(progress: Any, cancel: Any) -> None:
    """Raise ConfigError for a ``progress``/``cancel`` argument of the wrong kind."""
    if not (progress is None or isinstance(progress, bool) or callable(progress)):
        raise ConfigError(
            f"progress must be True (a tqdm bar), False, or a function fn(done, total, message) "
            f"that may return False to cancel; got {type(progress).__name__}."
        )
    if cancel is not None and not callable(getattr(cancel, "is_set", None)):
        raise ConfigError(
            f"cancel must be a threading.Event (or None); got {type(cancel).__name__}."
        )


class Progress:
    """Counts work done (images), shows it, and raises :class:`~tlwidgets.Cancelled` on request.

    ``total`` can grow with :meth:`add_total` (a candidate's sample size is known only once
    its data are resolved).
    """

    def __init__(
        self,
        total: int,
        progress: ProgressArg = True,
        cancel: threading.Event | None = None,
        desc: str = "ranking",
        unit: str = "img",
    ) -> None:
        check_progress(progress, cancel)
        self.total = int(total)
        self.done = 0
        self.cancel = cancel
        self._callback: Callable[[int, int, str], Any] | None = (
            progress if callable(progress) and not isinstance(progress, bool) else None
        )
        self._unit = unit
        self._bar = None
        if progress is True:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=desc, unit=unit, leave=False)

    def add_total(self, n: int) -> None:
        self.total += int(n)
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def check(self) -> None:
        """Raise Cancelled if the cancel event is set."""
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled(
                f"Cancelled on request (the cancel event was set) after {self.done} of "
                f"{self.total} {'images' if self._unit == 'img' else self._unit}."
            )

    def advance(self, n: int, message: str = "") -> None:
        """Record ``n`` more units done, report them, then honour a cancel request."""
        self.done += int(n)
        if self._bar is not None:
            self._bar.update(int(n))
            if message:
                self._bar.set_postfix_str(message, refresh=False)
        if self._callback is not None and self._callback(self.done, self.total, message) is False:
            raise Cancelled(
                f"Cancelled on request (the progress callback returned False) after "
                f"{self.done} of {self.total} images."
            )
        self.check()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
