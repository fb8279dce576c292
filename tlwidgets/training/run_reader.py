"""Reading a run folder while another process writes it: :class:`RunReader` returns its
records in order; :class:`tlwidgets.training.run_follower.RunFollower` turns them into the
events a Trainer publishes.

The format is in :mod:`tlwidgets.training.run_files` and ``docs/ARCHITECTURE.md``.

>>> reader = RunReader("runs/20260101-120000-resnet18")              # doctest: +SKIP
>>> [r.kind for r in reader.poll()][:3]                              # doctest: +SKIP
['state', 'step', 'step']
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import ConfigError, RunFolderError
from .run_files import (
    ACTIVE_STATES,
    COMMANDS,
    CONTROL,
    HEARTBEAT,
    RUN_JSON,
    WRITE_ORDER,
    file_key,
    read_json,
    write_json_atomic,
)

__all__ = ["Record", "RunReader"]

_READ_ORDER = tuple(reversed(WRITE_ORDER))
_record = tuple.__new__  # builds a Record without the Python-level __new__ (100,000s at a time)


class Record(NamedTuple):
    """One line of a run folder: ``kind`` is ``step``, ``epoch`` or the event's kind
    (``state``, ``log``, ``warning``, ``error``); ``data`` is the line as written."""

    kind: str
    data: dict[str, Any]

    @property
    def seq(self) -> int:
        s = self.data.get("seq")
        return s if isinstance(s, int) else -1



def _seq_of(rec: Record) -> int:
    s = rec[1].get("seq")
    return s if type(s) is int else -1


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

    def __init__(self, run_dir: str | os.PathLike[str], *, chunk_bytes: int = 1 << 20,
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
        held.sort(key=_seq_of)
        now = time.monotonic()
        timed_out = (bool(self._pending) and self._gap_at == self._next_seq
                     and now - self._gap_since > self.gap_timeout)
        out: list[Record] = []
        rest: list[Record] = []
        nxt = self._next_seq
        for j, rec in enumerate(held):
            s = _seq_of(rec)
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
            recs = [_record(Record, (str(r.get("kind")), r)) for r in rows]
        else:
            kind = "step" if name == "steps" else "epoch"
            recs = [_record(Record, (kind, r)) for r in rows]
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
