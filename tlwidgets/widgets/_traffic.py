"""Measure what widgets send to the browser, without a browser.

>>> from tlwidgets.widgets._traffic import record_traffic
>>> import ipywidgets as w
>>> with record_traffic() as traffic:
...     label = w.Label("hello")
...     label.value = "world"
>>> traffic.messages >= 2 and traffic.bytes > 0
True
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import comm
from comm import DummyComm

__all__ = ["Traffic", "record_traffic"]


@dataclass
class Traffic:
    """Counts of kernel→browser widget messages: how many, how many bytes, and when."""

    messages: int = 0
    bytes: int = 0
    binary_bytes: int = 0
    started: float = field(default_factory=time.monotonic)
    log: list[tuple[float, int]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, size: int, binary: int) -> None:
        with self._lock:
            self.messages += 1
            self.bytes += size
            self.binary_bytes += binary
            self.log.append((time.monotonic(), size))

    def reset(self) -> None:
        with self._lock:
            self.messages = self.bytes = self.binary_bytes = 0
            self.log.clear()
            self.started = time.monotonic()

    def rates(self, since: float | None = None, until: float | None = None) -> tuple[float, float]:
        """(bytes per second, messages per second) over a time window (default: since reset)."""
        since = self.started if since is None else since
        until = time.monotonic() if until is None else until
        with self._lock:
            sizes = [s for t, s in self.log if since <= t <= until]
        seconds = max(until - since, 1e-9)
        return sum(sizes) / seconds, len(sizes) / seconds


class _RecordingComm(DummyComm):
    traffic: Traffic

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None,
                    buffers: Any = None, **keys: Any) -> None:
        binary = sum(memoryview(b).nbytes for b in (buffers or ()))
        text = len(json.dumps(data, default=str, separators=(",", ":")))
        self.traffic.add(text + binary, binary)


@contextlib.contextmanager
def record_traffic() -> Iterator[Traffic]:
    """Record every message that widgets created inside the block send (a 'recording comm')."""
    traffic = Traffic()

    # the comm publishes its "open" message from __init__, so it must know the counter already
    recording = type("RecordingComm", (_RecordingComm,), {"traffic": traffic})

    def create(*args: Any, **kwargs: Any) -> DummyComm:
        return recording(*args, **kwargs)

    original = comm.create_comm
    comm.create_comm = create
    try:
        yield traffic
    finally:
        comm.create_comm = original
