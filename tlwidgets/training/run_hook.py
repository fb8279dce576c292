"""The Trainer's run-folder hook: everything a trainer publishes goes into the run folder
(:class:`~tlwidgets.training.run_files.RunWriter`), and commands come back from it.

The hook is subscribed to the trainer's events, so the folder holds exactly what a subscriber in
the kernel sees (state changes, steps, epochs, logs, errors); a
:class:`~tlwidgets.training.run_follower.RunFollower` in another process publishes the same events
again. It opens the writer when a run starts (a folder that cannot be written, or that another
process is writing, fails the run before its first step), beats the heartbeat once a second from
a small thread while the run is active (paused and validating included), reads ``control.json``
between steps and while paused (``poll()``), and closes the writer on the final state. Under
torchrun only rank 0 has this hook, and a command it reads goes to every rank through
:class:`~tlwidgets.training.distributed.Distributed`.

>>> hook = RunFolder(info=lambda: {"config": {}, "classes": ["a", "b"]})   # doctest: +SKIP
>>> trainer.subscribe(hook.on_event)                                       # doctest: +SKIP
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from ..errors import RunFolderError
from .events import TrainerEvent
from .hooks import Hook
from .run_files import TERMINAL_STATES, RunWriter
from .state import RunState

__all__ = ["RunFolder"]

_EARLY_EVENTS = 100  # events published before the run started (its "running" state) kept


class RunFolder(Hook):
    """Writes the run folder and reads its control file (see the module docstring).

    - ``info()``: ``run.json``'s fields (``config``, ``classes``, ``model``, ``name``, ...);
    - ``progress()``: the trainer's ``progress()``, put in each heartbeat;
    - ``command(name)``: carries out ``"pause"``/``"resume"``/``"stop"`` in this process;
    - ``dist``: the :class:`Distributed` job, if any (its commands then go to every rank).
    """

    name, order = "run_folder", 31

    def __init__(self, info: Callable[[], dict[str, Any]],
                 progress: Callable[[], dict[str, Any]] | None = None,
                 command: Callable[[str], None] | None = None, dist: Any = None,
                 heartbeat_interval: float = 1.0) -> None:
        self.info, self.progress, self.command, self.dist = info, progress, command, dist
        self.heartbeat_interval = float(heartbeat_interval)
        self.writer: RunWriter | None = None
        self.run: RunState | None = None
        self._opened = False
        self._early: list[TrainerEvent] = []
        self._beating: threading.Event | None = None
        self._warned: set[str] = set()
        self._pending: dict[str, Any] | None = None
        if dist is not None:
            dist.command_source = self.read_control

    # ------------------------------------------------------------------ hook points
    def on_run_start(self, run: RunState) -> None:
        self.run = run
        info = dict(self.info())
        config = info.pop("config", None)
        world = self.dist.world_size if self.dist is not None else 1
        writer = RunWriter(run.run_dir(), progress=self.progress, world_size=world)
        append = self._opened or bool(run.history) or run.global_step > 0
        writer.open(config, append=append, **info, world_size=world,
                    device=str(run.ctx.device))
        self.writer, self._opened = writer, True
        if writer.last_step is not None and writer.last_step > run.global_step:
            # resumed from a checkpoint older than the last steps logged (a crash mid-epoch)
            writer.rewind(run.global_step, run.epochs_done)
        early, self._early = self._early, []
        for event in early:
            self.on_event(event)
        self._start_heartbeat(writer)

    def on_cycle_start(self, run: RunState) -> None:
        self._guard(lambda w: w.update(param_group_names=list(run.group_names)))

    def on_step(self, run: RunState, row: dict[str, Any]) -> None:
        self.poll()

    def on_epoch_end(self, run: RunState, row: dict[str, Any]) -> None:
        # run.json's counters are written by the heartbeat thread (an atomic replace costs
        # milliseconds; a cached head-only epoch is a few milliseconds) and on close
        self._pending = {"epochs_done": run.epochs_done, "global_step": run.global_step}

    def on_run_end(self, run: RunState, final: str) -> None:
        self._guard(lambda w: w.flush())

    # ------------------------------------------------------------------ events -> files
    def on_event(self, event: TrainerEvent) -> None:
        """Subscribed to the trainer: write ``event`` (the writer closes on a final state)."""
        w = self.writer
        if w is None or not w.is_open:
            if len(self._early) < _EARLY_EVENTS:
                self._early.append(event)
            return
        d = dict(event.data)
        kind = event.kind
        if kind == "step":
            w.step(d)  # never raises: a failed timed write is kept for the next flush
            return
        rank = self.dist.rank if self.dist is not None else None
        if kind == "epoch":
            self._guard(lambda w: w.epoch(d))
        elif kind == "log":
            self._guard(lambda w: w.log(str(d.pop("message", "")), **d))
        elif kind == "error":
            self._guard(lambda w: w.error(str(d.get("message")), str(d.get("type")),
                                          d.get("step"), rank=rank))
        elif kind == "state":
            state = str(d.get("state"))
            self._guard(lambda w: w.state(state, d.get("previous")))
            if state in TERMINAL_STATES:
                self.close()

    def close(self) -> None:
        """Stop the heartbeat, write what is buffered, close the files, drop the folder lock."""
        if self._beating is not None:
            self._beating.set()
            self._beating = None
        w, self.writer = self.writer, None
        if w is not None:
            try:
                pending, self._pending = self._pending, None
                if pending:
                    w.info.update(pending)  # close() writes run.json last
                w.close()
            except RunFolderError as exc:
                self._warn(str(exc))

    def _guard(self, write: Callable[[RunWriter], None]) -> None:
        w = self.writer
        if w is None:
            return
        try:
            write(w)
        except RunFolderError as exc:  # a full disk ends nothing: the run says so in warnings
            self._warn(str(exc))

    def _warn(self, message: str) -> None:
        if message in self._warned or self.run is None:
            return
        self._warned.add(message)
        self.run.warn(message)

    # ------------------------------------------------------------------ heartbeat, control
    def _start_heartbeat(self, writer: RunWriter) -> None:
        stop = threading.Event()
        self._beating = stop

        def beat() -> None:
            while not stop.wait(self.heartbeat_interval):
                try:
                    pending, self._pending = self._pending, None
                    if pending:
                        writer.update(**pending)
                    writer.heartbeat(force=True)
                except RunFolderError:
                    continue  # a failing disk is reported by the loop's own writes
        threading.Thread(target=beat, name="tlwidgets-heartbeat", daemon=True).start()

    def read_control(self) -> str | None:
        """The command a reader wrote into ``control.json`` since the last look, if any."""
        w = self.writer
        return w.read_control() if w is not None and w.is_open else None

    def poll(self) -> None:
        """Between steps and while paused: carry out a command from ``control.json`` (under
        torchrun it waits for the next all-reduce, which takes it to every rank)."""
        cmd = self.read_control()
        if cmd is None:
            return
        if self.dist is not None:
            self.dist.pending = cmd
        elif self.command is not None:
            self.command(cmd)
