"""The run's state machine: states, events, the background thread, pause/stop, Ctrl-C.

:class:`RunMachine` is the part of :class:`~tlwidgets.Trainer` that knows nothing of models or
epochs: it moves between the states of :data:`STATES`, publishes :class:`TrainerEvent` s to
subscribers, runs a list of phases in the calling thread (``fit``) or a daemon thread (``start``),
holds the model's lock for the whole run (state ``waiting`` while another user has it), turns
every way a run can end into a final state, and never ends without one. The Trainer fills in
``_begin_run``, ``_end_run``, ``_describe_failure`` and ``_failed_at_step``.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

import pandas as pd
from torch import nn

from .._runtime import model_lock
from ..errors import TrainerStateError
from .events import EventBus, TrainerEvent
from .loop import Control, StopRun

__all__ = ["ACTIVE", "STATES", "RunMachine"]

#: Every state a trainer can be in.
STATES = ("idle", "waiting", "running", "paused", "stopping", "finished", "stopped", "failed")
#: The states of a run in progress.
ACTIVE = ("waiting", "running", "paused", "stopping")
logger = logging.getLogger("tlwidgets")


class RunMachine(abc.ABC):
    """States, events, thread and commands of a run (see the module docstring)."""

    model: nn.Module

    def __init__(self) -> None:
        self._events = EventBus()
        self._displays = 0  # subscribers that show progress themselves (a dashboard)
        self._state = "idle"
        self._state_lock = threading.RLock()
        self._control = Control(on_pause=self._on_pause)
        self._thread: threading.Thread | None = None
        self._cleaning_up = False
        self.error: BaseException | None = None

    # what the Trainer provides
    @abc.abstractmethod
    def _begin_run(self) -> None:
        """Inside the model's lock, before the first phase (seed, place the model, hooks)."""

    @abc.abstractmethod
    def _end_run(self, final: str) -> None:
        """After the last phase or a failure, before the final state is set (files, restore)."""

    @abc.abstractmethod
    def _describe_failure(self, exc: BaseException
                          ) -> tuple[str, BaseException | None, BaseException | None]:
        """``(final state, error to report, cause)`` for what ended the run."""

    @abc.abstractmethod
    def _failed_at_step(self) -> int:
        """The global step a reported error happened at."""

    @abc.abstractmethod
    def _wait_for_files(self) -> None:
        """Until the run's background writes are on disk."""

    @abc.abstractmethod
    def _history_frame(self) -> pd.DataFrame:
        """What a blocking run returns."""

    @property
    def state(self) -> str:
        """``idle``, ``waiting`` (for another user of the model), ``running``, ``paused``,
        ``stopping``, ``finished``, ``stopped`` or ``failed``."""
        return self._state

    def subscribe(self, fn: Callable[[TrainerEvent], Any], *, display: bool = False
                  ) -> Callable[[], None]:
        """Call ``fn(event)`` for every :class:`TrainerEvent`; returns a function that unsubscribes.

        ``fn`` runs on the training thread: it must be quick and must not touch widgets. If it
        raises, the run stops cleanly in state ``failed``. ``display=True`` says ``fn`` shows
        progress itself (a dashboard), so ``verbose="auto"`` prints nothing to the console.

        >>> unsubscribe = trainer.subscribe(lambda e: print(e.kind, e.data))   # doctest: +SKIP
        """
        unsubscribe = self._events.subscribe(fn)
        if not display:
            return unsubscribe
        self._displays += 1
        done = [False]

        def undo() -> None:
            if not done[0]:
                done[0] = True
                self._displays -= 1
            unsubscribe()

        return undo

    def pause(self) -> None:
        """Pause a running run after the current step (the loop blocks until ``resume()``)."""
        with self._state_lock:
            if self._state not in ("running", "paused", "waiting"):
                raise TrainerStateError(
                    f"cannot pause: the trainer is {self._state!r}; pause works while running.")
            self._control.pause()

    def _unpause(self) -> None:
        with self._state_lock:
            if self._state not in ("running", "paused", "waiting"):
                raise TrainerStateError(
                    f"cannot resume: the trainer is {self._state!r}, not paused. To continue a "
                    "saved run use Trainer.resume(run_dir, model, data); to train more, start().")
            self._control.resume()

    def stop(self) -> None:
        """Stop after the current step; the model keeps the weights of the last completed step."""
        with self._state_lock:
            if self._state not in ACTIVE:
                return
            self._control.request_stop()
            self._set_state("stopping")

    def wait(self, timeout: float | None = None) -> str:
        """Block until the background run ends (or ``timeout`` seconds pass) and its last
        checkpoint is on disk; returns ``state``.

        >>> trainer.fit(); trainer.wait()   # the files of the run are complete  # doctest: +SKIP
        'finished'
        """
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return self._state
        self._wait_for_files()
        return self._state

    def _check_not_active(self, what: str) -> None:
        with self._state_lock:
            if self._state in ACTIVE or (self._thread is not None and self._thread.is_alive()):
                raise TrainerStateError(
                    f"cannot {what}: the trainer is {self._state!r}. Call trainer.stop() and "
                    "trainer.wait() first, or wait for the run to end.")

    def _run_blocking(self, phases: list[Callable[[], None]]) -> pd.DataFrame:
        self._control.reset()
        self.error = None
        self._execute(phases, in_thread=False)
        if self._state == "failed" and self.error is not None:
            raise self.error
        return self._history_frame()

    def _launch(self, phases: list[Callable[[], None]]) -> None:
        with self._state_lock:
            self._check_not_active("start()")
            self._control.reset()
            self.error = None
            self._thread = threading.Thread(target=self._execute, args=(phases, True),
                                            name="tlwidgets-trainer", daemon=True)
            self._launch_previous = self._state
            # "running" before the thread runs, so a start() right after this one sees it
            self._set_state("running", publish=False)
        self._thread.start()

    _launch_previous = "idle"

    def _set_state(self, new: str, publish: bool = True) -> None:
        with self._state_lock:
            old, self._state = self._state, new
        if publish and old != new:
            self._publish("state", {"state": new, "previous": old})

    def _on_pause(self, paused: bool) -> None:
        self._set_state("paused" if paused else "running")

    def _publish(self, kind: str, data: dict[str, Any], *, swallow: bool = False) -> None:
        self._events.publish(TrainerEvent(kind, data), swallow=swallow)

    def _log(self, message: str) -> None:
        logger.info(message)
        self._publish("log", {"message": message}, swallow=True)

    @contextlib.contextmanager
    def _interrupt_guard(self, in_thread: bool) -> Any:
        """On the main thread: the first Ctrl-C stops after the current step, a second one
        interrupts at once, and one during the final clean-up is ignored."""
        if in_thread or threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self._cleaning_up:
                logger.warning("Ctrl-C ignored while the run's files are being finished")
                return
            if self._control.stop_requested:
                raise KeyboardInterrupt
            self._control.request_stop()

        try:
            previous = signal.signal(signal.SIGINT, handler)
        except ValueError:
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _execute(self, phases: list[Callable[[], None]], in_thread: bool) -> None:
        final = "failed"
        with self._interrupt_guard(in_thread):
            try:
                if in_thread:
                    self._publish("state", {"state": "running", "previous": self._launch_previous})
                else:
                    self._set_state("running")
                with self._model_held():
                    self._begin_run()
                    for phase in phases:
                        phase()
                        if self._control.stop_requested:
                            raise StopRun
                    final = "finished"
            except BaseException as exc:  # noqa: BLE001 - every way out ends in a final state
                final, err, cause = self._describe_failure(exc)
                if err is not None:
                    if cause is not None and err is not cause:
                        err.__cause__ = cause
                    self.error = err
                    self._publish("error", {"message": str(err),
                                            "type": type(cause or err).__name__,
                                            "step": self._failed_at_step()}, swallow=True)
            finally:
                self._finish(final)

    @contextlib.contextmanager
    def _model_held(self) -> Any:
        # An evaluation or another trainer using this model finishes first: they switch module
        # modes, which would leak into training. Meanwhile the state says so.
        lock = model_lock(self.model)
        if not lock.acquire(blocking=False):
            self._set_state("waiting")
            self._log("waiting for the model: another trainer or an evaluation is using it; "
                      "this run starts when that one ends (stop() cancels)")
            while not lock.acquire(timeout=0.1):
                if self._control.stop_requested:
                    raise StopRun
            self._set_state("running")
        try:
            yield
        finally:
            lock.release()

    def _finish(self, final: str) -> None:
        self._cleaning_up = True
        try:
            self._end_run(final)
        finally:
            self._cleaning_up = False
            previous = self._state
            self._set_state(final, publish=False)
            self._publish("state", {"state": final, "previous": previous}, swallow=True)
