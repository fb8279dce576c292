"""A run folder seen the way a :class:`Trainer` is seen: :class:`RunFollower` publishes the
records another process writes as the same :class:`TrainerEvent` s, and takes pause / resume /
stop back to it through ``control.json``. ``TrainingDashboard.follow(run_dir)`` is built on it.

>>> follower = RunFollower("runs/20260101-120000-resnet18")          # doctest: +SKIP
>>> follower.state, follower.history                                 # doctest: +SKIP
>>> unsubscribe = follower.subscribe(lambda e: print(e.kind, e.data))  # doctest: +SKIP
>>> follower.stop()     # asks the training process to stop, via control.json  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import threading
import time
import weakref
from array import array
from collections import deque
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError, RunFolderError, TrainerStateError
from .events import EventBus, TrainerEvent
from .run_files import ACTIVE_STATES, TERMINAL_STATES
from .run_reader import Record, RunReader

__all__ = ["RunFollower"]

_STEP_COLUMNS = ("step", "epoch", "batch", "loss", "lr", "img_s", "time")
_HISTORY_COLUMNS = ["epoch", "train_loss", "valid_loss", "accuracy", "seconds", "lr"]
_STEP_NUMS = ("loss", "img_s", "time")
_EPOCH_NUMS = ("train_loss", "valid_loss", "accuracy", "seconds", "lr")


def _int_or_none(v: float | None) -> int | None:
    return int(v) if v is not None and math.isfinite(v) else None


def _num(v: Any) -> float:
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


class _Columns:
    """Step rows as compact columns (8 bytes a value): 100,000 steps take ~6 MB, not ~100 MB
    of dicts."""

    def __init__(self) -> None:
        self.cols = {name: array("d") for name in _STEP_COLUMNS}

    def append(self, data: dict[str, Any]) -> None:
        lrs = data.get("lrs")
        lr = data.get("lr", lrs[-1] if isinstance(lrs, list) and lrs else None)
        for name in _STEP_COLUMNS:
            self.cols[name].append(_num(lr if name == "lr" else data.get(name)))

    def extend(self, rows: list[dict[str, Any]]) -> None:
        """Many rows at once, a column at a time (opening a long run)."""
        for name in _STEP_COLUMNS:
            if name == "lr":
                vals = [r["lr"] if "lr" in r else (r.get("lrs") or [None])[-1] for r in rows]
            else:
                vals = [r.get(name) for r in rows]
            try:
                self.cols[name].extend(array("d", vals))
            except TypeError:  # a null or a string somewhere
                self.cols[name].extend(array("d", [_num(v) for v in vals]))

    def truncate(self, step: float) -> int:
        """Drop the rows after ``step`` (a rewind to a checkpoint); returns how many went."""
        col = self.cols["step"]
        keep = len(col)
        while keep and col[keep - 1] > step:
            keep -= 1
        gone = len(col) - keep
        if gone:
            for c in self.cols.values():
                del c[keep:]
        return gone

    def __len__(self) -> int:
        return len(self.cols["step"])

    def last(self, name: str) -> float | None:
        col = self.cols[name]
        return col[-1] if col else None

    def frame(self) -> Any:
        import numpy as np
        import pandas as pd

        df = pd.DataFrame({k: np.frombuffer(v, dtype=np.float64).copy() if v else
                           np.array([], dtype=np.float64) for k, v in self.cols.items()})
        for k in ("step", "epoch", "batch"):
            if len(df) and df[k].notna().all():
                df[k] = df[k].astype("int64")
        return df


class RunFollower:
    """A run folder seen the way a :class:`Trainer` is seen: ``state``, ``history``,
    ``steps``, ``progress()``, ``subscribe(fn)``, ``pause()``/``resume()``/``stop()``.

    It reads everything already in the folder when made, then (``live=True``) polls it every
    ``poll_interval`` seconds on a daemon thread and publishes what is new as the same
    :class:`TrainerEvent` s (``state``, ``step``, ``epoch``, ``error``, ``log``) with the same
    payload keys; subscribers run on that thread. A warning record arrives as a ``log`` event
    with ``"warning": True`` and is kept in ``warnings``. When the run says it is active but its
    heartbeat stops for ``stale_after`` seconds, one ``error`` event says "the training process
    stopped answering" (``stale`` turns true); a later heartbeat logs that it answers again.
    Commands go to the training process through ``control.json``; it reads them between steps.

    >>> follower = RunFollower("runs/20260101-120000-resnet18")        # doctest: +SKIP
    >>> follower.state, len(follower.steps)                           # doctest: +SKIP
    ('running', 1234)
    >>> follower.stop(); follower.wait(timeout=60)                    # doctest: +SKIP
    'stopped'
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, live: bool = True,
                 poll_interval: float = 0.25, stale_after: float = 20.0) -> None:
        if not 0.01 <= float(poll_interval) <= 60:
            raise ConfigError(f"poll_interval must be between 0.01 and 60 s, got {poll_interval}.")
        self.reader = RunReader(run_dir, stale_after=stale_after)
        self.run_dir = self.reader.run_dir
        self.poll_interval = float(poll_interval)
        self.state = "idle"
        self.error: str | None = None
        self.warnings: list[str] = []
        self.logs: deque[str] = deque(maxlen=1000)
        self.stale = False
        self._steps = _Columns()
        self._history: list[dict[str, Any]] = []
        self._last_lrs: list[float] = []
        self._events = EventBus()
        self.subscriber_errors: list[str] = []
        self._lock = threading.RLock()
        self._ended = threading.Event()
        self._closed = threading.Event()
        while True:  # what is there already: no events, just the state it leaves
            self._apply(self.reader.poll(release_gaps=True), publish=False)
            if not self.reader.behind:
                break
        self._check_stale(publish=False)
        self._thread: threading.Thread | None = None
        if live:
            self.watch()

    def watch(self) -> None:
        """Start polling the folder on a daemon thread (``live=True`` does it when made). A view
        made with ``live=False`` reads ``steps``/``history``, subscribes, then calls this, so no
        record falls between what it loaded and what it is sent."""
        if self._thread is not None or self._closed.is_set():
            return
        self._thread = threading.Thread(target=_follow, args=(weakref.ref(self),),
                                        name="tlwidgets-follow", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ what a Trainer has
    @property
    def info(self) -> dict[str, Any]:
        """The run's ``run.json``: config, classes, world size, model, ..."""
        return self.reader.info

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.info.get("config") or {})

    @property
    def name(self) -> str:
        info = self.info
        return str(info.get("name") or info.get("model") or self.run_dir.name)

    @property
    def epochs(self) -> int:
        return int(self.config.get("epochs") or 1)

    @property
    def lr(self) -> float | slice:
        lr = self.config.get("lr", 1e-3)
        return slice(lr[0], lr[1]) if isinstance(lr, list) and len(lr) == 2 else _num(lr)

    @property
    def param_group_names(self) -> list[str] | None:
        names = self.info.get("param_group_names")
        return list(names) if isinstance(names, list) else None

    data = None  # the data lives with the training process

    @property
    def history(self) -> Any:
        """One row per completed epoch: epoch, train_loss, valid_loss, accuracy, seconds, lr."""
        import pandas as pd

        with self._lock:
            rows = [dict(r) for r in self._history]
        return pd.DataFrame(rows, columns=_HISTORY_COLUMNS)

    @property
    def steps(self) -> Any:
        """One row per logged step: step, epoch, batch, loss, lr, img_s, time."""
        with self._lock:
            return self._steps.frame()

    def progress(self) -> dict[str, Any]:
        """The keys of ``Trainer.progress()``, from the last heartbeat (the training process
        puts its own ``progress()`` there) or, failing that, from the records."""
        with self._lock:
            hb = self.reader.heartbeat() or {}
            step = self._steps.last("step")
            spe = self.info.get("steps_per_epoch")
            epochs_done = int(self._history[-1]["epoch"]) if self._history else 0
            active = self.state in ACTIVE_STATES
            p: dict[str, Any] = {
                "epoch": epochs_done + (1 if active else 0), "epochs": self.epochs,
                "step": _int_or_none(step) or 0,
                "steps_per_epoch": spe, "total_steps": spe * self.epochs if spe else None,
                "elapsed": self._steps.last("time") or 0.0, "eta": None,
                "img_s": self._steps.last("img_s") or math.nan,
                "device": str(self.info.get("device", "?")), "memory": None,
            }
            p.update({k: v for k, v in (hb.get("progress") or {}).items() if k in p})
            age = self.reader.heartbeat_age()
            if active and age is not None and hb.get("progress"):
                p["elapsed"] = _num(p["elapsed"]) + age
                if p["eta"] is not None:
                    p["eta"] = max(0.0, _num(p["eta"]) - age)
            if not active and self._history:
                p["eta"] = 0.0
            if p.get("img_s") is None:
                p["img_s"] = math.nan
            return p

    def subscribe(self, fn: Callable[[TrainerEvent], Any], *, display: bool = False
                  ) -> Callable[[], None]:
        """Call ``fn(event)`` for each new :class:`TrainerEvent` (on the follower's thread);
        returns a function that unsubscribes. A subscriber that raises is reported in
        ``subscriber_errors`` and the others still get the event. ``display`` is accepted as
        ``Trainer.subscribe`` takes it (a followed run prints nothing here either way)."""
        return self._events.subscribe(fn)

    # ------------------------------------------------------------------ commands
    def pause(self) -> None:
        """Ask the training process to pause after its current step."""
        self._command("pause", ("running",))

    def resume(self) -> None:
        """Ask a paused training process to continue."""
        self._command("resume", ("paused", "running"))

    def stop(self) -> None:
        """Ask the training process to stop after its current step (a no-op once it ended)."""
        if self.state in ACTIVE_STATES or self.state == "idle":
            self.reader.send("stop")

    def _command(self, command: str, states: tuple[str, ...]) -> None:
        if self.state not in states:
            raise TrainerStateError(
                f"cannot {command}: the followed run is {self.state!r}; {command} works while "
                f"it is {' or '.join(states)}."
            )
        self.reader.send(command)

    def start(self) -> None:
        raise TrainerStateError(
            "a followed run is started by its own process: tlw.launch(recipe, ...) or "
            "`python -m tlwidgets.run recipe.json` start one; tlw.Trainer.resume(run_dir, model, "
            "data) continues this one in the kernel."
        )

    def evaluate(self) -> Any:
        raise TrainerStateError(
            "the followed run's model lives in another process; load its checkpoint with "
            "tlw.Trainer.resume(run_dir, model, data) and call evaluate() on that trainer."
        )

    def wait(self, timeout: float | None = None) -> str:
        """Block until the run reaches ``finished``, ``stopped`` or ``failed`` (or ``timeout``
        seconds pass); returns ``state``."""
        if self._thread is None:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._ended.is_set():
                self.refresh()
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self._ended.wait(self.poll_interval)
        else:
            self._ended.wait(timeout)
        return self.state

    def close(self) -> None:
        """Stop polling (the run itself is not touched)."""
        self._closed.set()

    def __repr__(self) -> str:
        return f"RunFollower({str(self.run_dir)!r}, state={self.state!r}, steps={len(self._steps)})"

    # ------------------------------------------------------------------ records -> events
    def refresh(self) -> int:
        """Read what is new now and publish it; returns the number of records read."""
        n = 0
        while True:
            records = self.reader.poll()
            n += len(records)
            self._apply(records, publish=True)
            if not self.reader.behind:
                break
        self._check_stale(publish=True)
        return n

    def _apply(self, records: list[Record], publish: bool) -> None:
        events = []
        with self._lock:
            if not publish:  # opening: runs of steps go into the columns in bulk, no events
                run: list[dict[str, Any]] = []
                for rec in records:
                    if rec.kind == "step":
                        run.append(rec.data)
                        continue
                    if run:
                        self._steps.extend(run)
                        run = []
                    self._event_of(rec)
                if run:
                    self._steps.extend(run)
                return
            for rec in records:
                ev = self._event_of(rec)
                if ev is not None:
                    events.append(ev)
        for ev in events:
            self._publish(ev)

    def _event_of(self, rec: Record) -> TrainerEvent | None:
        d = {k: v for k, v in rec.data.items() if k != "seq"}
        kind = rec.kind
        if kind == "step":
            for k in _STEP_NUMS:
                d[k] = _num(d.get(k))
            self._steps.append(d)
            return TrainerEvent("step", d)
        if kind == "epoch":
            for k in _EPOCH_NUMS:
                d[k] = _num(d.get(k))
            self._history.append({k: d.get(k) for k in _HISTORY_COLUMNS})
            return TrainerEvent("epoch", d)
        d.pop("kind", None)
        d.pop("time", None)
        if kind == "state":
            state = str(d.get("state"))
            if state == "running" and self.state != "running":
                self.error = None
            self.state = state
            if state in TERMINAL_STATES:
                self._ended.set()
            elif state in ACTIVE_STATES:
                self._ended.clear()
            return TrainerEvent("state", d)
        if kind == "error":
            self.error = str(d.get("message"))
            return TrainerEvent("error", d)
        if kind == "log":
            self.logs.append(str(d.get("message")))
            return TrainerEvent("log", d)
        if kind == "rewind":
            step, epoch = _num(d.get("step")), _num(d.get("epoch"))
            gone = self._steps.truncate(step)
            self._history = [h for h in self._history if not _num(h.get("epoch")) > epoch]
            msg = (f"the run went back to its checkpoint at step {_int_or_none(step)} "
                   f"(epoch {_int_or_none(epoch)}); {gone} later steps no longer count")
            self.logs.append(msg)
            return TrainerEvent("log", {"message": msg, "rewind": True, "step": d.get("step"),
                                        "epoch": d.get("epoch")})
        if kind == "warning":
            self.warnings.append(str(d.get("message")))
            return TrainerEvent("log", {**d, "warning": True})
        return None  # a kind from a newer writer: skipped

    def _check_stale(self, publish: bool) -> None:
        stale = self.reader.stale
        if stale == self.stale:
            return
        self.stale = stale
        if stale:
            age = self.reader.heartbeat_age() or 0.0
            step = _int_or_none(self._steps.last("step"))
            msg = (f"the training process stopped answering: no heartbeat for {age:.0f} s"
                   + (f" (last step {step})" if step is not None else ""))
            self.error = msg
            ev = TrainerEvent("error", {"message": msg, "type": "StaleHeartbeat", "step": step})
        else:
            ev = TrainerEvent("log", {"message": "the training process answers again"})
        if publish:
            self._publish(ev)

    def _publish(self, event: TrainerEvent) -> None:
        self._events.publish(event, on_error=self._subscriber_failed)

    def _subscriber_failed(self, fn: Callable[..., Any], exc: Exception) -> None:
        name = getattr(fn, "__qualname__", None) or repr(fn)
        self.subscriber_errors.append(f"{name} raised {type(exc).__name__}: {exc}")


def _follow(ref: weakref.ref[RunFollower]) -> None:
    """The polling thread; holds the follower weakly so a dropped follower is collected."""
    while True:
        follower = ref()
        if follower is None or follower._closed.is_set():
            return
        try:
            follower.refresh()
        except RunFolderError as exc:  # the folder went away: say so once and stop
            follower.error = str(exc)
            follower._publish(TrainerEvent("error", {"message": str(exc),
                                                     "type": "RunFolderError", "step": None}))
            return
        interval, closed = follower.poll_interval, follower._closed
        del follower
        if closed.wait(interval):
            return
