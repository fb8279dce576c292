"""The run folder as the interface between a training process and any reader.

A run folder holds JSON-lines files that only grow, one whole line per record, and small JSON
files that are replaced atomically. The format (``FORMAT``, version ``VERSION``) is documented in
``docs/ARCHITECTURE.md``; in short:

========================  ======================================================  ===========
file                      what                                                    written by
========================  ======================================================  ===========
``run.json``              format, version, config, classes, world size, writer    the run
``steps.jsonl``           one line per logged step                                the run
``epochs.jsonl``          one line per completed epoch                            the run
``events.jsonl``          state changes, log lines, warnings, errors, rewinds     the run
``heartbeat.json``        time, pid, state, step, progress; replaced <= 1/s       the run
``control.json``          ``{"command": "pause"|"resume"|"stop", "seq": n}``      a reader
========================  ======================================================  ===========

Every line carries ``seq``, one counter across the three ``.jsonl`` files, so a reader can put
them back in the order they happened. A writer appends steps, then epochs, then events in each
flush; a reader reads events, then epochs, then steps, so a terminal state is never seen before
the steps written ahead of it. Readers consume complete lines only (an unterminated last line is
left for the next poll) and skip a damaged line, counting it.

>>> import tempfile
>>> from tlwidgets.training.run_files import RunWriter
>>> from tlwidgets.training.run_reader import RunReader
>>> folder = tempfile.mkdtemp()
>>> with RunWriter(folder) as w:
...     w.open({"epochs": 1}, classes=["cat", "dog"])
...     w.state("running")
...     w.step({"step": 1, "epoch": 1, "batch": 1, "loss": 0.69, "lrs": [1e-3]})
>>> [r.kind for r in RunReader(folder).poll()]
['state', 'step']
"""

from __future__ import annotations

import itertools
import json
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import RunFolderError

try:  # POSIX; elsewhere the folder lock is skipped
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ACTIVE_STATES",
    "COMMANDS",
    "CONTROL",
    "EPOCHS",
    "EVENTS",
    "FORMAT",
    "HEARTBEAT",
    "RUN_JSON",
    "STEPS",
    "TERMINAL_STATES",
    "VERSION",
    "WRITE_ORDER",
    "RunWriter",
    "file_key",
    "read_json",
    "write_json_atomic",
]

FORMAT = "tlwidgets.run"
VERSION = 1
RUN_JSON, STEPS, EPOCHS, EVENTS = "run.json", "steps.jsonl", "epochs.jsonl", "events.jsonl"
HEARTBEAT, CONTROL, LOCK = "heartbeat.json", "control.json", ".lock"
COMMANDS = ("pause", "resume", "stop")
TERMINAL_STATES = ("finished", "stopped", "failed")
ACTIVE_STATES = ("running", "paused", "stopping")
# (stream, file) in the order a writer appends them; readers go the other way round
WRITE_ORDER = (("steps", STEPS), ("epochs", EPOCHS), ("events", EVENTS))
_MAX_BUFFERED = 200_000  # step rows kept while the disk refuses them; older ones are dropped
_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _plain(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become null, numpy/torch scalars plain numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    for attr in ("item", "tolist"):
        fn = getattr(value, attr, None)
        if callable(fn):
            try:
                return _plain(fn())
            except (TypeError, ValueError, RuntimeError):
                pass
    return str(value)


def _encode(row: dict[str, Any]) -> str:
    try:
        return _ENCODE(row)
    except (TypeError, ValueError):  # NaN, inf, or a value json does not know
        return _ENCODE(_plain(row))


def write_json_atomic(path: str | os.PathLike[str], obj: Any, fsync: bool = False) -> None:
    """Replace ``path`` with ``obj`` as JSON in one ``os.replace`` (a reader sees the old file
    or the new one, never half of one).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.json"
    >>> write_json_atomic(p, {"a": 1}); read_json(p)
    {'a': 1}
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    data = (_encode(obj) + "\n").encode()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with _suppress_os():
            os.unlink(tmp)
        raise


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON in ``path``, or ``None`` when it is missing, empty or damaged.

    >>> read_json("/nonexistent/run.json") is None
    True
    """
    try:
        with open(path, "rb") as fh:
            return json.loads(fh.read())
    except (OSError, ValueError):
        return None


def file_key(path: str | os.PathLike[str]) -> tuple[int, int, int] | None:
    """What tells a changed file from an unchanged one without reading it (mtime, size,
    inode), or ``None`` when it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class _suppress_os:
    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return exc_type is not None and issubclass(exc_type, OSError)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:  # pragma: no cover - os.write raises instead
            raise OSError("short write")
        view = view[n:]


def _last_line(fd: int) -> dict[str, Any]:
    """The last complete line of the open file as a dict (``{}`` when there is none)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return {}
    start = max(0, size - 65536)
    tail = os.pread(fd, size - start, start)
    lines = tail.rstrip(b"\n").rsplit(b"\n", 1)
    try:
        row = json.loads(lines[-1])
    except ValueError:
        return {}
    return row if isinstance(row, dict) else {}


class RunWriter:
    """Writes one run folder: the Trainer's "run files" hook (only rank 0 makes one).

    Appends are buffered and written as whole lines at most every ``flush_interval`` seconds
    (from whichever call comes due), at every epoch, state change and error, and on
    ``flush()``/``close()``; ``heartbeat.json`` is replaced at most every
    ``heartbeat_interval`` seconds. The loop must call ``heartbeat()`` (or ``step()``) at least
    every few seconds while it waits (paused) or validates, and ``read_control()`` between
    steps. ``progress``, if given, is a function returning ``Trainer.progress()``'s dict, put in
    each heartbeat. Opening takes an exclusive lock on the folder (``.lock``, released when the
    process ends, however it ends) and refuses a folder that already holds a run unless
    ``append=True`` (resume, or another ``fit()`` cycle).

    A folder "holds a run" when its ``events.jsonl`` is not empty; ``run.json`` is merged, not
    replaced, so keys other code keeps there survive. A write that fails (full disk, read-only
    folder) raises :class:`RunFolderError` from the
    call that asked for it; a timed flush inside ``step()`` keeps the rows and lets the next
    ``epoch()``/``flush()``/``close()`` raise, so the hot path never throws. A failed append is
    cut back to the last whole line.

    >>> import tempfile
    >>> w = RunWriter(tempfile.mkdtemp())
    >>> w.open({"lr": 1e-3, "epochs": 2}, classes=["a", "b"], world_size=1)
    >>> w.state("running"); w.step({"step": 1, "epoch": 1, "batch": 1, "loss": 0.7})
    >>> w.epoch({"epoch": 1, "train_loss": 0.7, "valid_loss": 0.6, "accuracy": 0.5})
    >>> w.read_control() is None
    True
    >>> w.state("finished"); w.close()
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, flush_interval: float = 0.25,
                 heartbeat_interval: float = 1.0, control_interval: float = 0.1,
                 progress: Callable[[], dict[str, Any]] | None = None, fsync: bool = True,
                 rank: int = 0, world_size: int = 1) -> None:
        self.run_dir = Path(run_dir)
        self.flush_interval = float(flush_interval)
        self.heartbeat_interval = float(heartbeat_interval)
        self.control_interval = float(control_interval)
        self.progress = progress
        self.fsync = bool(fsync)
        self.rank, self.world_size = int(rank), int(world_size)
        self.info: dict[str, Any] = {}
        self.repaired: dict[str, int] = {}  # stream -> bytes of an unterminated tail cut at open
        self.dropped = 0  # step rows given up while the folder could not be written
        self.last_step: Any = None  # the last step already in steps.jsonl when it was opened
        self._dropped_reported = 0
        self._fds: dict[str, int] = {}
        self._buf: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in WRITE_ORDER}
        self._seq = itertools.count()
        self._lock = threading.RLock()
        self._lock_fd: int | None = None
        self.write_error: RunFolderError | None = None  # the last timed write that failed
        self._state = "idle"
        self._step: Any = None
        self._epoch: Any = None
        self._due = self._next_flush = self._next_hb = self._next_control = 0.0
        self._control_key: Any = None
        self._control_seen = -1
        self._host = socket.gethostname()

    # ------------------------------------------------------------------ open / close
    @property
    def is_open(self) -> bool:
        return bool(self._fds)

    def open(self, config: dict[str, Any] | None = None, *, append: bool = False,
             **info: Any) -> None:
        """Create (or, with ``append``, reopen) the run folder and write ``run.json``:
        ``format``, ``version``, ``created``, ``config`` and every keyword in ``info``
        (``classes``, ``world_size``, ``model``, ``name``, ...)."""
        if self.is_open:
            return
        folder = self.run_dir
        if folder.exists() and not folder.is_dir():
            raise RunFolderError(
                f"the run folder {str(folder)!r} is a file, not a folder; pass another run_dir."
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(
                f"cannot create the run folder {str(folder)!r}: {exc.strerror or exc}; pass a "
                "run_dir in a folder you can write to."
            ) from exc
        self._take_lock()
        try:
            existing = read_json(folder / RUN_JSON)
            events = folder / EVENTS
            if not append and events.exists() and events.stat().st_size > 0:
                info = existing if isinstance(existing, dict) else {}
                steps = info.get("global_step")
                raise RunFolderError(
                    f"{str(folder)!r} already holds a run (created {info.get('created', '?')}"
                    + (f", {steps} steps" if steps is not None else "") + "); continue it with "
                    "tlw.Trainer.resume(run_dir, model, data), or pass a new run_dir."
                )
            seqs = [-1]
            for name, fname in WRITE_ORDER:
                fd = os.open(folder / fname, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                self._fds[name] = fd
                self._repair_tail(name, fd)
                last = _last_line(fd)
                seq = last.get("seq")
                seqs.append(seq if isinstance(seq, int) else -1)
                if name == "steps":
                    self.last_step = last.get("step")
            self._seq = itertools.count(max(seqs) + 1)
            base = existing if isinstance(existing, dict) else {}
            self.world_size = int(info.get("world_size", base.get("world_size", self.world_size)))
            self.info = {**base, **info, "format": FORMAT, "version": VERSION,
                         "created": base.get("created") or _now_iso(), "updated": _now_iso(),
                         "config": _plain(config if config is not None else base.get("config")),
                         "world_size": self.world_size,
                         "writer": {"pid": os.getpid(), "host": self._host, "rank": self.rank}}
            write_json_atomic(folder / RUN_JSON, _plain(self.info), fsync=self.fsync)
            if append:  # commands written for an earlier life of this run are not for us
                ctl = read_json(folder / CONTROL)
                if isinstance(ctl, dict) and isinstance(ctl.get("seq"), int):
                    self._control_seen = ctl["seq"]
        except RunFolderError:
            self._release()
            raise
        except OSError as exc:
            self._release()
            raise self._os_error("open", exc) from exc
        self.heartbeat(force=True)

    def _take_lock(self) -> None:
        if fcntl is None:  # pragma: no cover
            return
        path = self.run_dir / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise self._os_error("lock", exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunFolderError(
                f"{holder} is writing the run folder {str(self.run_dir)!r} now; two runs cannot "
                "share a folder. Wait for it to end, stop it, or pass another run_dir."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {self._host}\n".encode(), 0)
        self._lock_fd = fd

    def _repair_tail(self, name: str, fd: int) -> None:
        # A writer killed mid-append can leave half a line; cut it so our first line is whole.
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        start = max(0, size - (1 << 20))
        cut = os.pread(fd, size - start, start).rfind(b"\n")
        keep = start + cut + 1 if cut >= 0 else 0
        os.ftruncate(fd, keep)
        self.repaired[name] = size - keep

    def _release(self) -> None:
        for fd in self._fds.values():
            with _suppress_os():
                os.close(fd)
        self._fds.clear()
        if self._lock_fd is not None:
            with _suppress_os():
                os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def close(self) -> None:
        """Flush (fsynced), write a last heartbeat, close the files and drop the lock.
        Raises :class:`RunFolderError` if the last writes failed; the files are closed anyway."""
        if not self.is_open:
            return
        try:
            self.flush()
            self.heartbeat(force=True)
            self.update()  # the last word in run.json is the format's, whoever wrote it since
        finally:
            self._release()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ records
    def step(self, row: dict[str, Any]) -> None:
        """Buffer one step row (the Trainer's ``step`` event payload); cheap, never raises."""
        rec = {"seq": next(self._seq), **row}
        if "world_size" not in rec:
            rec["world_size"] = self.world_size
        self._buf["steps"].append(rec)
        self._step, self._epoch = row.get("step", self._step), row.get("epoch", self._epoch)
        now = time.monotonic()
        if now >= self._due:
            self._tick(now)

    def epoch(self, row: dict[str, Any]) -> None:
        """Append one epoch row (the ``epoch`` event payload) and flush, fsynced."""
        self._buf["epochs"].append({"seq": next(self._seq), **row})
        self.flush()

    def state(self, state: str, previous: str | None = None, **info: Any) -> None:
        """Record a state change (``running``, ``paused``, ..., ``failed``) and flush."""
        prev = self._state if previous is None else previous
        self._state = state
        self._event({"kind": "state", "state": state, "previous": prev, **info})
        self.heartbeat(force=True)

    def log(self, message: str, **info: Any) -> None:
        """Record a log line (feature cache on/off, early stopping, ...)."""
        self._event({"kind": "log", "message": str(message), **info}, flush=False)

    def warning(self, message: str, **info: Any) -> None:
        """Record a warning the user should see (a checkpoint that could not be written, ...)."""
        self._event({"kind": "warning", "message": str(message), **info})

    def error(self, message: str, type: str, step: int | None, rank: int | None = None,
              **info: Any) -> None:
        """Record the error that ends a run (``rank``: which process raised it, when known)."""
        self._event({"kind": "error", "message": str(message), "type": str(type), "step": step,
                     "rank": rank, **info})

    def _event(self, data: dict[str, Any], flush: bool = True) -> None:
        self._buf["events"].append({"seq": next(self._seq), "time": time.time(), **data})
        if flush:
            self.flush()
        else:
            now = time.monotonic()
            if now >= self._due:
                self._tick(now)

    def rewind(self, step: int, epoch: int, **info: Any) -> None:
        """Say that the run went back to a checkpoint: the steps after ``step`` and epochs after
        ``epoch`` already in the folder (logged before a crash) no longer count. Readers drop
        them; the files stay append-only."""
        self._event({"kind": "rewind", "step": int(step), "epoch": int(epoch), **info})

    def update(self, **fields: Any) -> None:
        """Merge ``fields`` into ``run.json`` (replaced atomically): e.g. the epochs and steps
        done at a checkpoint."""
        with self._lock:
            self.info.update(_plain(fields), updated=_now_iso())
            # keys another part of the program put there stay; ours win
            current = read_json(self.run_dir / RUN_JSON)
            merged = {**(current if isinstance(current, dict) else {}), **self.info}
            try:
                write_json_atomic(self.run_dir / RUN_JSON, _plain(merged), fsync=self.fsync)
            except OSError as exc:
                raise self._os_error("update", exc) from exc

    # ------------------------------------------------------------------ writing
    def _tick(self, now: float) -> None:
        # timed writes from the hot path: the rows are kept, and the next flush() writes them or
        # raises
        try:
            if now >= self._next_flush:
                self._flush(sync=False)
            if now >= self._next_hb:
                self.heartbeat()
        except RunFolderError as exc:
            self.write_error = exc
            steps = self._buf["steps"]
            if len(steps) > _MAX_BUFFERED:  # a full disk must not fill the memory too
                self.dropped += len(steps) - _MAX_BUFFERED
                del steps[: len(steps) - _MAX_BUFFERED]
        self._due = min(self._next_flush, self._next_hb)

    def flush(self, fsync: bool | None = None) -> None:
        """Write every buffered line now (whole lines only; fsynced unless ``fsync=False``).
        Raises :class:`RunFolderError` for this write or a timed one that failed before."""
        self.write_error = None  # this attempt writes what the failed one kept, or raises anew
        self._flush(self.fsync if fsync is None else fsync)
        if self.dropped > self._dropped_reported:
            n, self._dropped_reported = self.dropped - self._dropped_reported, self.dropped
            raise RunFolderError(
                f"{n} step rows were lost while the run folder {str(self.run_dir)!r} refused "
                "writes (the rows after them are written); free some space on its disk."
            )

    def _flush(self, sync: bool) -> None:
        with self._lock:
            if not self.is_open:
                if any(self._buf.values()):
                    raise RunFolderError("the run files are not open: call open() first.")
                return
            self._next_flush = time.monotonic() + self.flush_interval
            self._due = min(self._next_flush, self._next_hb)
            for name, _ in WRITE_ORDER:
                rows = self._buf[name]
                if not rows:
                    continue
                data = ("\n".join([_encode(r) for r in rows]) + "\n").encode()
                fd = self._fds[name]
                try:
                    size = os.fstat(fd).st_size
                    try:
                        _write_all(fd, data)
                    except OSError:
                        with _suppress_os():
                            os.ftruncate(fd, size)  # never leave half a line behind
                        raise
                    if sync and name != "steps":
                        os.fsync(fd)
                except OSError as exc:
                    raise self._os_error("append to", exc, name) from exc
                rows.clear()

    def heartbeat(self, force: bool = False) -> None:
        """Replace ``heartbeat.json`` if ``heartbeat_interval`` has passed (or ``force``)."""
        now = time.monotonic()
        if not force and now < self._next_hb:
            return
        self._next_hb = now + self.heartbeat_interval
        self._due = min(self._next_flush, self._next_hb)
        beat = {"time": time.time(), "pid": os.getpid(), "host": self._host, "rank": self.rank,
                "world_size": self.world_size, "state": self._state, "step": self._step,
                "epoch": self._epoch}
        if self.progress is not None:
            try:
                beat["progress"] = self.progress()
            except Exception:  # noqa: BLE001 - a heartbeat must not fail for a number
                pass
        if not self.is_open:
            return
        try:
            write_json_atomic(self.run_dir / HEARTBEAT, _plain(beat))
        except OSError as exc:
            raise self._os_error("write", exc, "heartbeat") from exc

    def read_control(self) -> str | None:
        """The command a reader wrote into ``control.json`` since the last call (``"pause"``,
        ``"resume"`` or ``"stop"``), else ``None``. Looks at the file at most every
        ``control_interval`` seconds, so calling it every step costs a clock read."""
        now = time.monotonic()
        if now < self._next_control:
            return None
        self._next_control = now + self.control_interval
        path = self.run_dir / CONTROL
        key = file_key(path)
        if key is None or key == self._control_key:
            return None
        self._control_key = key
        ctl = read_json(path)
        if not isinstance(ctl, dict) or not isinstance(ctl.get("seq"), int):
            return None
        if ctl["seq"] <= self._control_seen:
            return None
        self._control_seen = ctl["seq"]
        cmd = ctl.get("command")
        return cmd if cmd in COMMANDS else None

    def _os_error(self, verb: str, exc: OSError, what: str | None = None) -> RunFolderError:
        target = f"{what} in " if what else ""
        reason = exc.strerror or str(exc)
        return RunFolderError(
            f"could not {verb} {target}the run folder {str(self.run_dir)!r}: {reason}. Free some "
            "space or pass a run_dir on a writable disk; nothing already written is lost."
        )
