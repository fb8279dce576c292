"""The dashboard's publisher thread: flushes buffered metrics to the widgets a few times a second.

The trainer's thread only appends to buffers; this thread pushes them to the browser at most
``hz`` times a second while events arrive, and once more at the end (then the dashboard evaluates).
"""

from __future__ import annotations

import html
import threading
import time
import weakref
from typing import Any

__all__ = ["Publisher"]


class Publisher:
    """Flushes a dashboard at most ``hz`` times a second while events arrive, then once more.

    Holds the dashboard weakly so an unused dashboard can be garbage collected; sleeps without
    waking when nothing happens. The dashboard needs ``flush(final=)``, ``_maybe_evaluate()`` and
    an ``error_box``.
    """

    def __init__(self, dash: Any, hz: float) -> None:
        self._dash = weakref.ref(dash)
        self._period = 1.0 / hz
        self._cond = threading.Condition()
        self._dirty = False
        self._final = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="tlw-dashboard-publisher",
                                         daemon=True)
        self._thread.start()

    def kick(self, final: bool = False) -> None:
        with self._cond:
            self._dirty = True
            self._final = self._final or final
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        last = 0.0
        while True:
            with self._cond:
                while not self._dirty and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                final = self._final
                wait = 0.0 if final else self._period - (time.monotonic() - last)
            if wait > 0:
                time.sleep(wait)
            with self._cond:
                self._dirty = False
                final = final or self._final
                self._final = False
            dash = self._dash()
            if dash is None:
                return
            try:
                dash.flush(final=final)
                if final:
                    dash._maybe_evaluate()
            except Exception as err:  # keep publishing; show the problem instead of dying
                try:
                    dash.error_box.value = html.escape(f"Dashboard update failed: {err!r}")
                    dash.error_box.layout.display = "block"
                except Exception:  # noqa: BLE001 - the view is gone: nothing to show it in
                    pass
            del dash
            last = time.monotonic()
