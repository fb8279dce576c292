"""Plotted series for the dashboard: growing buffers, debiased smoothing and decimation.

Pure numpy, no widgets, so the bounds on what travels to the browser are unit-tested directly.
"""

from __future__ import annotations

import math
import threading

import numpy as np

__all__ = ["LossSeries", "decimate_minmax", "decimate_stride"]


def decimate_minmax(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most ~``max_points`` points, preserving each bucket's minimum and maximum.

    Spikes survive (a raw loss curve must still show them), and the last point is always kept.

    >>> x = np.arange(10_000); y = np.sin(x / 100)
    >>> xd, yd = decimate_minmax(x, y, 1000)
    >>> len(xd) <= 1002 and xd[-1] == 9999
    True
    """
    n = len(y)
    if n <= max_points:
        return x, y
    buckets = max(1, max_points // 2)
    size = math.ceil(n / buckets)
    full = (n // size) * size
    offsets = np.arange(0, full, size)
    block = y[:full].reshape(-1, size)
    keep = [offsets + np.nanargmin(block, axis=1), offsets + np.nanargmax(block, axis=1)]
    if full < n:
        tail = y[full:]
        keep.append(np.array([full + np.nanargmin(tail), full + np.nanargmax(tail)]))
    keep.append(np.array([n - 1]))
    idx = np.unique(np.concatenate(keep))
    return x[idx], y[idx]


def decimate_stride(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most ``max_points`` evenly spaced points, first and last included (for smooth lines).

    >>> xd, yd = decimate_stride(np.arange(5000), np.arange(5000.0), 500)
    >>> len(xd), int(xd[0]), int(xd[-1])
    (500, 0, 4999)
    """
    n = len(y)
    if n <= max_points:
        return x, y
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
    return x[idx], y[idx]


class LossSeries:
    """A per-step loss buffer with a debiased exponential moving average kept incrementally.

    The moving average is fastai's and TensorBoard's smoothing: ``s_t = b*s_(t-1) + (1-b)*x_t``
    divided by ``1 - b**t`` so that the first points are not pulled towards zero.
    Appending is O(1) amortised and thread-safe (the trainer's thread appends, the publisher reads).

    >>> s = LossSeries(beta=0.9)
    >>> for i, v in enumerate([1.0, 1.0, 1.0]): s.append(i, v)
    >>> [round(float(v), 6) for v in s.arrays()[2]]
    [1.0, 1.0, 1.0]
    """

    def __init__(self, beta: float = 0.9, capacity: int = 1024) -> None:
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"smoothing must be in [0, 1), got {beta}")
        self.beta = beta
        self._lock = threading.Lock()
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self._s = np.empty(capacity, dtype=np.float64)
        self._n = 0
        self._avg = 0.0
        self._count = 0  # finite values seen, for debiasing

    def __len__(self) -> int:
        return self._n

    def clear(self) -> None:
        with self._lock:
            self._n = 0
            self._avg = 0.0
            self._count = 0

    def append(self, x: float, y: float) -> None:
        with self._lock:
            if self._n == len(self._x):
                self._x = np.concatenate([self._x, np.empty_like(self._x)])
                self._y = np.concatenate([self._y, np.empty_like(self._y)])
                self._s = np.concatenate([self._s, np.empty_like(self._s)])
            if math.isfinite(y):
                self._count += 1
                self._avg = self.beta * self._avg + (1.0 - self.beta) * y
            smooth = self._avg / (1.0 - self.beta**self._count) if self._count else math.nan
            i = self._n
            self._x[i], self._y[i], self._s[i] = x, y, smooth
            self._n = i + 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies of (x, raw, smoothed) as float64 arrays."""
        with self._lock:
            n = self._n
            return self._x[:n].copy(), self._y[:n].copy(), self._s[:n].copy()

    def last_smoothed(self) -> float:
        with self._lock:
            return float(self._s[self._n - 1]) if self._n else math.nan
