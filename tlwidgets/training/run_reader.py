"""Reading a run folder while another process writes it: :class:`RunReader` (records) and
:class:`RunFollower` (the same :class:`TrainerEvent` s a :class:`Trainer` publishes).

The format is in :mod:`tlwidgets.training.run_files` and ``docs/ARCHITECTURE.md``.

>>> follower = RunFollower("runs/20260101-120000-resnet18")          # doctest: +SKIP
>>> follower.state, follower.history                                 # doctest: +SKIP
>>> unsubscribe = follower.subscribe(lambda e: print(e.kind, e.data))  # doctest: +SKIP
>>> follower.stop()     # asks the training process to stop, via control.json  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
import weakref
from array import array
from collections import deque
from pathlib import Path
from typing import Any, Callable, NamedTuple

from ..errors import ConfigError, RunFolderError, TrainerStateError
from .events import TrainerEvent
from .run_files import (
    ACTIVE_STATES, COMMANDS, CONTROL, HEARTBEAT, RUN_JSON, TERMINAL_STATES, WRITE_ORDER,
    file_key, read_json, write_json_atomic,
)

__all__ = ["Record", "RunReader", "RunFollower"]

_READ_ORDER = tuple(reversed(WRITE_ORDER))


class Record(NamedTuple):
    """One line of a run folder: ``kind`` is ``step``, ``epoch`` or the event's kind
    (``state``, ``log``, ``warning``, ``error``); ``data`` is the line as written."""

    kind: str
    data: dict[str, Any]

    @property
    def seq(self) -> int:
        s = self.data.get("seq")
        return s if isinstance(s, int) else -1



class RunReader:
    """Reads a run folder that another process may still be writing.

    ``poll()`` returns the records added since the last call, in the order they happened
    (by ``seq``), reading complete lines only from kept offsets, at most ``chunk_bytes`` per
    file per call (``behind`` says more is waiting or held back). A line that is not a JSON
    object is skipped and counted in ``damaged``. ``stale`` is true when the run says it is
    active but its heartbeat has not changed for ``stale_after`` seconds (on the reader's
    clock, so the two machines' clocks need not agree).

    >>> reader = RunReader("runs/20260101-120000-resnet18")           # doctest: +SKIP
    >>> for record in reader.poll(): print(record.kind, record.data)   # doctest: +SKIP
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, chunk_bytes: int = 4 << 20,
                 stale_after: float = 20.0, gap_timeout: float = 2.0) -> None:
        self.run_dir = Path(run_dir)
        if not self.run_dir.is_dir():
            raise RunFolderError(
                f"there is no run folder at {str(self.run_dir)!r}; pass the run_dir a Trainer "
                "or tlw.launch wrote (it holds run.json and steps.jsonl)."
            )
        self.chunk_bytes = int(chunk_bytes)
        self.stale_after = float(stale_after)
        self.gap_timeout = float(gap_timeout)
        self.missing = 0
        self._next_seq = 0
        self._gap_at = -1
        self._gap_since = 0.0
        self.offsets = {name: 0 for name, _ in _READ_ORDER}
        self.damaged = {name: 0 for name, _ in _READ_ORDER}
        self.behind = False
        self.last_state: str | None = None
        self._pending: list[Record] = []
        self._info: dict[str, Any] = {}
        self._info_key: Any = None
        self._hb: dict[str, Any] | None = None
        self._hb_key: Any = None
        self._hb_seen = 0.0  # reader's monotonic clock when the heartbeat last changed
        self._hb_age0 = 0.0  # its age then

    @property
    def info(self) -> dict[str, Any]:
        """``run.json`` (re-read when it changes); ``{}`` before the run wrote it."""
        path = self.run_dir / RUN_JSON
        key = file_key(path)
        if key is not None and key != self._info_key:
            data = read_json(path)
            if isinstance(data, dict):
                self._info, self._info_key = data, key
        return self._info

    def poll(self, release_gaps: bool = False) -> list[Record]:
        """New complete records since the last call, in ``seq`` order.

        ``seq`` counts every record of the run once, so a missing number is a record not read
        yet (another file, a chunk further on): what follows it waits in the reader until it
        arrives, or until the gap has lasted ``gap_timeout`` seconds (a damaged line's record
        never arrives; ``missing`` counts those). ``release_gaps=True`` lets gaps go once every
        file has been read to its end (a finished run, or the first read of a live one)."""
        new: list[Record] = []
        cut = False
        for name, fname in _READ_ORDER:
            recs, more = self._read(name, fname)
            cut = cut or more
            new.extend(recs)
        held = self._pending + new
        held.sort(key=lambda r: r.seq)
        now = time.monotonic()
        timed_out = (bool(self._pending) and self._gap_at == self._next_seq
                     and now - self._gap_since > self.gap_timeout)
        out: list[Record] = []
        rest: list[Record] = []
        nxt = self._next_seq
        for j, rec in enumerate(held):
            s = rec.seq
            if s > nxt:
                if (release_gaps and not cut) or timed_out:
                    self.missing += s - nxt
                    nxt, timed_out = s, False
                else:
                    rest = held[j:]
                    break
            out.append(rec)
            nxt = max(nxt, s + 1)
        if rest and self._gap_at != nxt:
            self._gap_at, self._gap_since = nxt, now
        self._next_seq, self._pending = nxt, rest
        self.behind = cut or bool(rest)
        for r in out:
            if r.kind == "state":
                self.last_state = str(r.data.get("state"))
        return out

    def _read(self, name: str, fname: str) -> tuple[list[Record], bool]:
        try:
            with open(self.run_dir / fname, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < self.offsets[name]:  # replaced by a shorter file: read it afresh
                    self.offsets[name] = 0
                fh.seek(self.offsets[name])
                chunk = fh.read(self.chunk_bytes)
        except FileNotFoundError:
            return [], False
        except OSError as exc:
            raise RunFolderError(f"cannot read {fname} in {str(self.run_dir)!r}: {exc}") from exc
        full = len(chunk) == self.chunk_bytes
        end = chunk.rfind(b"\n")
        if end < 0:
            if full:  # one line longer than a chunk: no record is that long, so it is damage
                self.offsets[name] += len(chunk)
                self.damaged[name] += 1
            return [], full
        self.offsets[name] += end + 1
        more = full
        lines = [ln for ln in chunk[:end].split(b"\n") if ln.strip()]
        rows = self._parse(name, lines)
        if name == "events":
            recs = [Record(str(r.get("kind")), r) for r in rows]
        else:
            kind = "step" if name == "steps" else "epoch"
            recs = [Record(kind, r) for r in rows]
        return recs, more

    def _parse(self, name: str, lines: list[bytes]) -> list[dict[str, Any]]:
        if not lines:
            return []
        try:  # one parse for the whole chunk; a damaged line sends us line by line
            rows = json.loads(b"[" + b",".join(lines) + b"]")
            if len(rows) == len(lines) and all(type(r) is dict for r in rows):
                return rows
        except ValueError:
            pass
        good = []
        for ln in lines:
            try:
                row = json.loads(ln)
            except ValueError:
                row = None
            if isinstance(row, dict):
                good.append(row)
            else:
                self.damaged[name] += 1
        return good

    # ------------------------------------------------------------------ heartbeat, control
    def heartbeat(self) -> dict[str, Any] | None:
        """The latest ``heartbeat.json`` (``time``, ``pid``, ``state``, ``step``, ...)."""
        path = self.run_dir / HEARTBEAT
        key = file_key(path)
        if key is not None and key != self._hb_key:
            data = read_json(path)
            if isinstance(data, dict):
                first = self._hb is None
                self._hb, self._hb_key = data, key
                self._hb_seen = time.monotonic()
                t = data.get("time")
                # the first beat we see may be old (a run that died yesterday); after that a
                # change means it was just written, whatever the writer's clock says
                self._hb_age0 = (max(0.0, time.time() - t) if first and isinstance(t, (int, float))
                                 else 0.0)
        return self._hb

    def heartbeat_age(self) -> float | None:
        """Seconds since the heartbeat last changed, or ``None`` when there is none yet."""
        if self.heartbeat() is None:
            return None
        return self._hb_age0 + (time.monotonic() - self._hb_seen)

    @property
    def stale(self) -> bool:
        """The run says it is active, but its heartbeat stopped ``stale_after`` seconds ago."""
        age = self.heartbeat_age()
        state = self.last_state or (self._hb or {}).get("state")
        return state in ACTIVE_STATES and age is not None and age > self.stale_after

    def send(self, command: str) -> int:
        """Write ``command`` (``"pause"``, ``"resume"`` or ``"stop"``) into ``control.json``
        for the training process, which reads it between steps; returns its ``seq``."""
        if command not in COMMANDS:
            raise ConfigError(
                f"unknown run command {command!r}; use one of {', '.join(COMMANDS)}."
            )
        path = self.run_dir / CONTROL
        old = read_json(path)
        seq = old["seq"] + 1 if isinstance(old, dict) and isinstance(old.get("seq"), int) else 1
        try:
            write_json_atomic(path, {"command": command, "seq": seq, "time": time.time(),
                                     "by": f"pid {os.getpid()} on {socket.gethostname()}"})
        except OSError as exc:
            raise RunFolderError(
                f"cannot write {CONTROL} in {str(self.run_dir)!r} ({exc.strerror or exc}): the "
                "run can only be controlled from a machine that can write its folder."
            ) from exc
        return seq


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
        self._subscribers: list[Callable[[TrainerEvent], Any]] = []
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

    def subscribe(self, fn: Callable[[TrainerEvent], Any]) -> Callable[[], None]:
        """Call ``fn(event)`` for each new :class:`TrainerEvent` (on the follower's thread);
        returns a function that unsubscribes. A subscriber that raises is reported in
        ``subscriber_errors`` and the others still get the event."""
        if not callable(fn):
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
            for rec in records:
                ev = self._event_of(rec)
                if ev is not None and publish:
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
        with self._lock:
            subscribers = list(self._subscribers)
        for fn in subscribers:
            try:
                fn(event)
            except Exception as exc:  # noqa: BLE001 - kept for the user; others still get it
                name = getattr(fn, "__qualname__", None) or repr(fn)
                self.subscriber_errors.append(f"{name} raised {type(exc).__name__}: {exc}")


def _follow(ref: "weakref.ref[RunFollower]") -> None:
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
