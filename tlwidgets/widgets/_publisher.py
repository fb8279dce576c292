"""The publisher thread of a live view: flushes buffered results to the widgets a few times a
second.

A worker thread (a trainer's, an experiment's) only appends to buffers and kicks the publisher;
this thread pushes them to the browser at most ``hz`` times a second while kicks arrive, and once
more at the end. The dashboard and the ExperimentView both use it.
"""

from __future__ import annotations

import contextlib
import html
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["Publisher"]


def _show_in_error_box(view: Any, err: Exception) -> None:
    view.error_box.value = html.escape(f"Update failed: {err!r}")
    view.error_box.layout.display = "block"


class Publisher:
    """Calls ``view.flush(final=)`` at most ``hz`` times a second while kicked, then once more.

    Holds the view weakly so an unused view can be garbage collected; sleeps without waking when
    nothing happens. ``on_final(view)`` runs after the final flush (the dashboard evaluates);
    ``on_error(view, err)`` shows a failed flush (default: in ``view.error_box``). Pass plain
    functions or unbound methods: a closure over the view would keep it alive.
    """

    def __init__(self, view: Any, hz: float, *,
                 on_final: Callable[[Any], Any] | None = None,
                 on_error: Callable[[Any, Exception], Any] = _show_in_error_box,
                 name: str = "tlw-dashboard-publisher") -> None:
        self._dash = weakref.ref(view)
        self._on_final, self._on_error = on_final, on_error
        self._period = 1.0 / hz
        self._cond = threading.Condition()
        self._dirty = False
        self._final = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
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
                if final and self._on_final is not None:
                    self._on_final(dash)
            except Exception as err:  # keep publishing; show the problem instead of dying
                with contextlib.suppress(Exception):  # the view is gone: nothing to show it in
                    self._on_error(dash, err)
            del dash
            last = time.monotonic()
