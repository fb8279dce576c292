"""A ranking run behind a widget: the work in one thread, what the page sees from another.

The worker thread calls the core (``tlw.rank_models``, ``tlw.rank_layers``) with a progress
callback that only writes numbers under a lock, and a ``threading.Event`` that Cancel sets. A
publisher thread hands the latest progress to the widget at most ``hz`` times a second, and the
result once at the end; the widget's ``publish`` sets its traits there, inside ``hold_sync()``.
The worker never touches a widget (the threading rules of docs/ARCHITECTURE.md).

>>> job = RankJob(lambda progress, cancel: 42, publish=print)     # doctest: +SKIP
>>> job.start(); job.wait()                                        # doctest: +SKIP
42
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import Cancelled

__all__ = ["RankJob"]

log = logging.getLogger(__name__)

#: ``publish(update)`` receives dicts with ``state`` ("running", "done", "cancelled",
#: "failed"), ``done``, ``total``, ``message``, ``seconds`` and, at the end, ``result`` or
#: ``error`` (the exception's "Type: message").
Publish = Callable[[dict[str, Any]], None]


class RankJob:
    """Runs ``work(progress, cancel)`` in a daemon thread and publishes from another one.

    ``work`` gets a callback ``progress(done, total, message)`` (the core's ``progress=``
    argument) and the cancel Event (its ``cancel=``). Its return value is the ``result`` of the
    final update; a :class:`~tlwidgets.Cancelled` it raises ends in state "cancelled", any other
    exception in "failed" with the message, never in a dead thread.
    """

    def __init__(self, work: Callable[[Any, threading.Event], Any], publish: Publish,
                 hz: float = 4.0, name: str = "tlw-rank") -> None:
        self._work = work
        self._publish = publish
        self._period = 1.0 / hz
        self._name = name
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._progress = {"done": 0, "total": 0, "message": ""}
        self._dirty = False
        self._final: dict[str, Any] | None = None
        self._published = threading.Event()
        self.cancel_event = threading.Event()
        self.result: Any = None
        self.error: str = ""
        self.state = "ready"
        self._started = 0.0
        self._worker: threading.Thread | None = None
        self._publisher: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._published.is_set()

    def start(self) -> RankJob:
        self.state = "running"
        self._started = time.perf_counter()
        self._worker = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._publisher = threading.Thread(target=self._publish_loop,
                                           name=f"{self._name}-publisher", daemon=True)
        self._publisher.start()
        self._worker.start()
        return self

    def cancel(self) -> None:
        self.cancel_event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the final update has been published; True when it has."""
        return self._published.wait(timeout)

    # ---- the worker thread: numbers under a lock, nothing else -----------------------------
    def _on_progress(self, done: int, total: int, message: str) -> None:
        with self._lock:
            self._progress = {"done": int(done), "total": int(total), "message": str(message)}
            self._dirty = True
            self._wake.notify()

    def _run(self) -> None:
        final: dict[str, Any]
        try:
            result = self._work(self._on_progress, self.cancel_event)
        except Cancelled as err:
            final = {"state": "cancelled", "error": str(err)}
        except Exception as err:  # noqa: BLE001 - the page shows it; the kernel keeps going
            final = {"state": "failed", "error": " ".join(f"{type(err).__name__}: {err}".split())}
        else:
            cancelled = bool(getattr(result, "attrs", {}).get("cancelled"))
            final = {"state": "cancelled" if cancelled else "done", "result": result}
        with self._lock:
            self._final = final
            self._wake.notify()

    # ---- the publisher thread: the only one that hands state to the widget -----------------
    def _publish_loop(self) -> None:
        last = 0.0
        while True:
            with self._lock:
                while not self._dirty and self._final is None:
                    self._wake.wait()
                final = self._final
                wait = 0.0 if final is not None else self._period - (time.monotonic() - last)
            if wait > 0:
                time.sleep(wait)
            with self._lock:
                self._dirty = False
                final = self._final
                update = {**self._progress, "state": "running"}
            update["seconds"] = time.perf_counter() - self._started
            if final is not None:
                update |= final
                self.result = final.get("result")
                self.error = final.get("error", "")
                self.state = final["state"]
            try:
                self._publish(update)
            except Exception:
                log.exception("could not show the ranking's progress")
            last = time.monotonic()
            if final is not None:
                self._published.set()
                return
