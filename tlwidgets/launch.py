"""Start a recipe on several processes from a notebook without forking the kernel.

``tlw.launch(recipe, nproc=2)`` runs ``python -m torch.distributed.run --standalone
--nproc-per-node 2 -m tlwidgets.run <run_dir>/recipe.json`` as a subprocess and returns a
:class:`Job` at once; the run folder is how the notebook sees it (``job.dashboard()``).

>>> import tlwidgets as tlw
>>> job = tlw.launch({"model": {"name": "resnet18", "weights": None},
...                   "data": {"root": "data/pets", "img_size": 128},
...                   "freeze": "head", "trainer": {"epochs": 3}}, nproc=2)  # doctest: +SKIP
>>> job.dashboard()                                                       # doctest: +SKIP
>>> job.wait()                                                            # doctest: +SKIP
'finished'
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import ConfigError, RunFolderError
from .run import validate_recipe

__all__ = ["launch", "Job"]

_TERMINAL = ("finished", "stopped", "failed")
LAUNCHER_LOG = "launcher.log"


def _default_run_dir(recipe: dict[str, Any]) -> Path:
    label = recipe.get("name") or (recipe.get("model") or {}).get("name") or "recipe"
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(label))
    return Path("runs") / f"{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}-{label}"


def launch(recipe: Any, nproc: int = 2, run_dir: str | os.PathLike[str] | None = None, *,
           resume: bool = False, python: str | None = None,
           torchrun_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> Job:
    """Start ``recipe`` (see :mod:`tlwidgets.run`) on ``nproc`` processes of this machine
    with torchrun, and return a :class:`Job` at once.

    The recipe is checked here first (a bad key is a :class:`RecipeError` now, not in a log
    later) and written to ``<run_dir>/recipe.json``; torchrun's output goes to
    ``<run_dir>/launcher.log``. ``run_dir`` defaults to ``./runs/<timestamp>-<name>``;
    ``resume=True`` continues the run already in ``run_dir`` (with any ``nproc``).

    >>> job = tlw.launch("recipe.json", nproc=4, run_dir="runs/pets-ddp")   # doctest: +SKIP
    >>> job.wait(), job.run_dir                                             # doctest: +SKIP
    ('finished', PosixPath('runs/pets-ddp'))
    """
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ConfigError(f"nproc must be an integer >= 1, got {nproc!r}.")
    spec = validate_recipe(recipe)
    if resume:
        spec["resume"] = True
    folder = Path(run_dir) if run_dir is not None else _default_run_dir(spec)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"the run folder {str(folder)!r} is a file; pass another run_dir.")
    holds_run = (folder / "run.json").exists()
    if holds_run and not spec["resume"]:
        raise RunFolderError(
            f"{str(folder)!r} already holds a run; continue it with tlw.launch(recipe, "
            "run_dir=..., resume=True), or pass a new run_dir."
        )
    if spec["resume"] and not holds_run:
        raise RunFolderError(f"nothing to resume in {str(folder)!r}: it holds no run.json.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        recipe_path = folder / "recipe.json"
        saved = {k: v for k, v in spec.items() if v is not None}
        recipe_path.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
        log = open(folder / LAUNCHER_LOG, "ab")  # noqa: SIM115 - the child writes to it
    except OSError as exc:
        raise RunFolderError(f"cannot write the run folder {str(folder)!r}: {exc}") from exc
    cmd = [python or sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc-per-node", str(nproc), *torchrun_args, "-m", "tlwidgets.run",
           str(recipe_path), "--run-dir", str(folder)]
    if spec["resume"]:
        cmd.append("--resume")
    child_env = {**os.environ, **(env or {})}
    child_env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    try:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=child_env,
                                start_new_session=True)  # a kernel interrupt does not reach it
    finally:
        log.close()
    return Job(proc, folder, nproc, cmd)


class Job:
    """A launched run: ``run_dir``, ``state``, ``wait()``, ``stop()``, ``dashboard()``, ``log()``.

    A watcher thread waits for the process. When it ends without the run folder saying how
    the run ended (a worker killed, torchrun failing), the job writes that into the folder
    itself: an ``error`` with the failed rank and exit code from torchrun's report, then the
    state ``failed``.

    >>> job = tlw.launch("recipe.json", nproc=2)             # doctest: +SKIP
    >>> job.state, job.log()[-200:]                          # doctest: +SKIP
    """

    def __init__(self, proc: subprocess.Popen, run_dir: Path, nproc: int,
                 cmd: list[str]) -> None:
        self.proc = proc
        self.run_dir = run_dir
        self.nproc = nproc
        self.cmd = cmd
        self._follower: Any = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="tlwidgets-job", daemon=True)
        self._watcher.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        """torchrun's exit status once it ended (0: every worker succeeded), else ``None``."""
        return self.proc.poll()

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def _reader(self) -> Any:
        from .training.run_follower import RunFollower

        with self._lock:
            if self._follower is None:
                if not self.run_dir.is_dir():
                    return None
                self._follower = RunFollower(self.run_dir, live=False)
            else:
                self._follower.refresh()
            return self._follower

    @property
    def state(self) -> str:
        """The run's state as its folder says (``idle`` until a worker has started it)."""
        follower = self._reader()
        return follower.state if follower is not None else "idle"

    def log(self) -> str:
        """torchrun's output so far (``<run_dir>/launcher.log``)."""
        try:
            return (self.run_dir / LAUNCHER_LOG).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def wait(self, timeout: float | None = None) -> str:
        """Block until the job ends (or ``timeout`` seconds pass); returns the run's state."""
        self._done.wait(timeout)
        return self.state

    def stop(self, timeout: float = 60.0) -> str:
        """Ask the run to stop after its current step (through ``control.json``); if it has not
        ended within ``timeout`` seconds, terminate torchrun (SIGTERM, then SIGKILL)."""
        from .training.run_reader import RunReader

        if self.running:
            follower = self._reader()
            if follower is not None and follower.state not in _TERMINAL:
                RunReader(self.run_dir).send("stop")
            if not self._done.wait(timeout):
                self.terminate()
        return self.wait()

    def terminate(self, grace: float = 30.0) -> None:
        """End torchrun and its workers now: SIGTERM, then SIGKILL after ``grace`` seconds."""
        if not self.running:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if not self._done.wait(grace):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._done.wait(grace)

    def dashboard(self, **kwargs: Any) -> Any:
        """A :class:`tlwidgets.TrainingDashboard` following this run's folder (the widget is
        imported here, on first use, through the package's public names)."""
        import tlwidgets

        TrainingDashboard = tlwidgets.TrainingDashboard  # noqa: N806 - the class
        follow = getattr(TrainingDashboard, "follow", None)
        if follow is not None:
            return follow(self.run_dir, **kwargs)
        from .training.run_follower import RunFollower

        kwargs.setdefault("evaluate", False)
        return TrainingDashboard(RunFollower(self.run_dir), **kwargs)

    def __repr__(self) -> str:
        status = "running" if self.running else f"exit {self.returncode}"
        return f"Job({str(self.run_dir)!r}, nproc={self.nproc}, {status}, state={self.state!r})"

    # ------------------------------------------------------------------ after the end
    def _watch(self) -> None:
        code = self.proc.wait()
        try:
            self._record_end(code)
        finally:
            self._done.set()

    def _record_end(self, code: int) -> None:
        from .training.run_files import RunWriter

        follower = self._reader()
        state = follower.state if follower is not None else "idle"
        if code == 0:  # every worker exited normally: the folder says how the run ended
            return
        failure = torchrun_failure(self.log())
        if state == "failed" and failure.get("rank") is None:
            return  # the run said why itself, and torchrun's report adds nothing
        message = failure.get("message") or (
            f"torchrun exited with status {code} before the run ended; see "
            f"{self.run_dir / LAUNCHER_LOG}")
        writer = RunWriter(self.run_dir)
        try:
            writer.open(append=True)
        except RunFolderError:
            return  # no run folder to write to (a full disk, or it never started one)
        try:
            if state in ("finished", "stopped"):  # ended, then a worker failed on the way out
                writer.warning(f"after the run ended: {message}", source="launcher")
                return
            writer.error(message, failure.get("type", "WorkerFailed"), _last_step(follower),
                         rank=failure.get("rank"), exitcode=failure.get("exitcode", code),
                         source="launcher")
            if state != "failed":
                writer.state("failed", previous=state)
        finally:
            writer.close()
            if follower is not None:
                follower.refresh()


def _last_step(follower: Any) -> int | None:
    if follower is None:
        return None
    steps = follower.steps
    return int(steps["step"].iloc[-1]) if len(steps) else None


_ROOT = re.compile(
    r"Root Cause \(first observed failure\):\s*\[\d+\]:\s*time\s*:\s*(?P<time>.*?)\s*"
    r"host\s*:\s*(?P<host>.*?)\s*rank\s*:\s*(?P<rank>\d+)\s*\(local_rank:\s*(?P<local>\d+)\)\s*"
    r"exitcode\s*:\s*(?P<exitcode>-?\d+)\s*\(pid:\s*(?P<pid>\d+)\)(?P<signal>[^\n]*)\n\s*"
    r"error_file\s*:\s*(?P<error_file>.*?)\n\s*traceback\s*:\s*(?P<traceback>.*?)\n\s*={5,}",
    re.S,
)


def torchrun_failure(log: str) -> dict[str, Any]:
    """The root cause in torchrun's failure report: ``rank``, ``exitcode``, ``host``, ``type``
    and a ``message``; ``{}`` when the log has none.

    >>> torchrun_failure("nothing failed")
    {}
    """
    matches = list(_ROOT.finditer(log))
    if not matches:
        return {}
    m = matches[-1]
    rank, code = int(m["rank"]), int(m["exitcode"])
    trace = m["traceback"].strip()
    sig = m["signal"].strip().strip("()")
    if code < 0:
        name = sig or (signal.Signals(-code).name if -code in signal.valid_signals() else "")
        message = f"rank {rank} was killed by {name or f'signal {-code}'} ({trace})"
        kind = "WorkerKilled"
    else:
        last = [ln for ln in trace.splitlines() if ln.strip()]
        detail = last[-1].strip() if last else f"exit code {code}"
        message = f"rank {rank} failed: {detail}"
        kind = "WorkerFailed"
    return {"rank": rank, "exitcode": code, "host": m["host"].strip(), "type": kind,
            "message": message, "time": time.time()}
