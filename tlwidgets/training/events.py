"""Events the training loop publishes, and the subscription list that delivers them.

Subscribers are called **on the training thread** (or on the caller's thread for ``fit()``), in
the order they subscribed. A view must not touch a widget from the callback: it appends to a
buffer that its own publisher flushes (see ``docs/ARCHITECTURE.md``, threading model).

>>> from tlwidgets.training import TrainerEvent
>>> TrainerEvent("log", {"message": "hello"}).kind
'log'
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EVENT_KINDS", "EventBus", "SubscriberError", "TrainerEvent"]

#: The kinds of event a trainer publishes.
EVENT_KINDS = ("state", "step", "epoch", "error", "log")


@dataclass(frozen=True)
class TrainerEvent:
    """One thing that happened in a run.

    ``kind`` is one of ``"state"``, ``"step"``, ``"epoch"``, ``"error"``, ``"log"``; ``data``
    holds plain Python numbers and strings:

    - ``state``: ``state``, ``previous``
    - ``step``: ``step`` (global batch index, from 1), ``epoch``, ``batch``, ``loss``, ``lrs``
      (one learning rate per optimizer param group), ``img_s``, ``time`` (seconds since the run
      started)
    - ``epoch``: ``epoch``, ``train_loss``, ``valid_loss``, ``accuracy``, ``seconds``, ``lrs``
    - ``error``: ``message``, ``type``, ``step``
    - ``log``: ``message``

    >>> TrainerEvent("step", {"step": 1, "loss": 0.7}).data["loss"]
    0.7
    """

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class SubscriberError(Exception):
    """Internal: wraps an exception raised by a subscriber so the loop can stop cleanly."""

    def __init__(self, fn: Callable[..., Any], exc: BaseException) -> None:
        name = getattr(fn, "__qualname__", None) or repr(fn)
        super().__init__(f"the event subscriber {name} raised {type(exc).__name__}: {exc}")
        self.fn = fn
        self.exc = exc


class EventBus:
    """A thread-safe list of subscribers.

    >>> bus = EventBus()
    >>> seen = []
    >>> unsubscribe = bus.subscribe(seen.append)
    >>> bus.publish(TrainerEvent("log", {"message": "hi"}))
    >>> unsubscribe(); len(seen)
    1
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[TrainerEvent], Any]] = []

    def subscribe(self, fn: Callable[[TrainerEvent], Any]) -> Callable[[], None]:
        if not callable(fn):
            from ..errors import ConfigError

            raise ConfigError(
                f"subscribe() needs a function that takes one TrainerEvent, got {fn!r}; "
                "pass e.g. `lambda event: print(event.kind, event.data)`."
            )
        with self._lock:
            self._subscribers.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._subscribers:
                    self._subscribers.remove(fn)

        return unsubscribe

    def publish(self, event: TrainerEvent, *, swallow: bool = False,
                on_error: Callable[[Callable[..., Any], Exception], Any] | None = None) -> None:
        """Call every subscriber with ``event``.

        A subscriber that raises stops the delivery and is re-raised as :class:`SubscriberError`
        (``KeyboardInterrupt`` passes through untouched), unless ``swallow`` is true, which the
        trainer uses while it is already reporting a failure, or ``on_error(fn, exc)`` is given:
        then it is told and the others still get the event (a run follower keeps the message).
        """
        with self._lock:
            subscribers = list(self._subscribers)
        for fn in subscribers:
            try:
                fn(event)
            except KeyboardInterrupt:
                if swallow:
                    continue
                raise
            except Exception as exc:
                if on_error is not None:
                    on_error(fn, exc)
                    continue
                if swallow:
                    continue
                raise SubscriberError(fn, exc) from exc
