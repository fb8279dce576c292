"""The training loop: one loop for ``fit()`` (blocking) and ``start()`` (a background thread).

>>> import tlwidgets as tlw
>>> model = tlw.create_model("resnet18", num_classes=4, weights=None)   # doctest: +SKIP
>>> trainer = tlw.Trainer(model, tlw.sample_data(model=model), epochs=2)  # doctest: +SKIP
>>> trainer.start()            # returns at once; the next cell runs while it trains  # doctest: +SKIP
>>> trainer.pause(); trainer.resume(); trainer.stop(); trainer.wait()    # doctest: +SKIP
>>> trainer.history                                                    # doctest: +SKIP

Design notes (why it is built this way):

- **Threading.** The loop never touches a widget; it publishes :class:`TrainerEvent` s to
  subscribers on the thread that runs it. Commands come in through ``threading.Event`` s checked
  between steps: pause blocks the loop on an Event (no spinning), stop ends it at the next step
  boundary. During a blocking ``fit()`` on the main thread, the first Ctrl-C (kernel interrupt)
  only asks the loop to stop after the current step, so a half-applied optimizer step never
  happens; a second Ctrl-C interrupts at once. A ``KeyboardInterrupt`` raised anywhere else in
  the loop also ends the run in state ``stopped`` with the model and history intact; ``fit()``
  then returns normally instead of raising, so the kernel keeps everything.
- **No sync per step.** On CUDA and MPS the loss stays on the device; it is copied to pinned host
  memory without blocking and read one step later (after the next step's work is queued), so the
  GPU never idles waiting for Python to print a number. ``step`` events therefore arrive one step
  late on accelerators. On the CPU there is nothing to overlap and the loss is read at once.
- **Non-finite loss.** On the CPU the loss is checked before the optimizer step, so the model
  keeps the weights of the last finite step. On accelerators the check is one step late, so the
  trainable weights and buffers are copied (device to device) before each optimizer step and put
  back when the loss of that step turns out non-finite.
- **Runs on disk.** ``history.csv`` gets a row per epoch and ``steps.csv`` rows every 50 steps
  and at the end of each epoch, so a dead kernel loses at most the epoch in progress.
  ``checkpoints/last`` is written after every epoch and when a run stops or fails;
  ``checkpoints/best`` whenever ``metric`` improves.
- **Training again.** Calling ``fit()``/``start()`` again after a run ended starts a new cycle
  (a fresh schedule over ``epochs`` more epochs) in the same run folder; epochs, steps and the
  history continue from where they were. A trainer restored with ``Trainer.resume(run_dir, ...)``
  instead continues the interrupted cycle: same schedule, from the step it stopped at.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import os
import random
import re
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    from ..evaluation import Evaluation
    from .lr_finder import LRFindResult

import pandas as pd
import torch
from torch import nn

from ..errors import ConfigError, NothingTrainableError, TrainerStateError, TrainingError
from .checkpoints import (
    atomic_write,
    link_checkpoint,
    load_checkpoint,
    save_checkpoint,
    snapshot_state,
    snapshot_weights,
)
from .events import EventBus, SubscriberError, TrainerEvent
from .feature_cache import CacheDecision, FeatureCache, cache_decision
from .schedules import SCHEDULES, Schedule

__all__ = ["Trainer", "STATES"]

#: Every state a trainer can be in.
STATES = ("idle", "running", "paused", "stopping", "finished", "stopped", "failed")
_ACTIVE = ("running", "paused", "stopping")
_OPTIMIZERS = ("adamw", "adam", "sgd")
_METRICS = {"accuracy": "max", "valid_loss": "min", "train_loss": "min"}
_STEPS_FLUSH_EVERY = 50
_HISTORY_COLUMNS = ["epoch", "train_loss", "valid_loss", "accuracy", "seconds", "lr"]
_STEP_COLUMNS = ["step", "epoch", "batch", "loss", "lr", "img_s", "time"]


class _StopRun(Exception):
    """Internal: the loop saw the stop flag (or a Ctrl-C) and leaves at a step boundary."""


class _NonFiniteLoss(Exception):
    def __init__(self, step: int, lrs: list[float], value: float) -> None:
        super().__init__(step, lrs, value)
        self.step, self.lrs, self.value = step, lrs, value


def _resolve_device(device: Any) -> torch.device:
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"device={device!r} is not a device torch knows; use 'auto', 'cpu', 'cuda' or 'mps'."
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but torch sees no CUDA GPU here; use device='auto'.")
    return dev


def _model_name(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None) or {}
    name = cfg.get("architecture") if isinstance(cfg, dict) else None
    name = name or type(model).__name__
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(name))


def _default_run_dir(model: nn.Module) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    candidate = Path("runs") / f"{stamp}-{_model_name(model)}"
    try:
        candidate.mkdir(parents=True, exist_ok=False)
        return candidate.resolve()
    except OSError:
        # A read-only working directory (some hosted notebooks): keep the run in a temp folder.
        return Path(tempfile.mkdtemp(prefix=f"tlwidgets-{_model_name(model)}-"))


def _spread_lrs(lr: float | slice, n: int) -> list[float]:
    """Peak learning rate per param group, fastai's way: a float for all groups; ``slice(hi)``
    gives ``hi/10`` to every group but the last; ``slice(lo, hi)`` spreads geometrically."""
    if isinstance(lr, slice):
        hi = lr.stop
        if hi is None:
            raise ConfigError("lr=slice(...) needs a stop value, e.g. slice(1e-5, 1e-3).")
        if lr.start is None:
            return [hi / 10] * (n - 1) + [hi]
        lo = lr.start
        if n == 1:
            return [hi]
        step = (hi / lo) ** (1 / (n - 1))
        return [lo * step**i for i in range(n)]
    return [float(lr)] * n


def _check_lr(lr: Any) -> float | slice:
    values = [lr.start, lr.stop] if isinstance(lr, slice) else [lr]
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 and math.isfinite(v)):
            raise ConfigError(
                f"lr must be a positive number (or a slice of two, for discriminative rates); "
                f"got {lr!r}. Try lr=1e-3, or run trainer.lr_find() for a suggestion."
            )
    return lr if isinstance(lr, slice) else float(lr)


def _lr_to_plain(lr: float | slice) -> Any:
    return [lr.start, lr.stop] if isinstance(lr, slice) else lr


def _lr_from_plain(v: Any) -> float | slice:
    return slice(v[0], v[1]) if isinstance(v, list) else float(v)


@dataclass
class _Cycle:
    """One call of fit(): a schedule over ``epochs`` epochs starting at ``start_epoch``."""

    epochs: int
    start_epoch: int  # epochs completed before this cycle
    lr: float | slice  # as given: a float, or a slice for discriminative rates
    peak_lrs: list[float]
    schedule: Schedule
    opt_step: int = 0  # optimizer steps done in this cycle
    batch_in_epoch: int = 0  # batches done in the epoch in progress (for resume mid-epoch)
    epoch_loss_sum: float = 0.0
    epoch_loss_n: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs, "start_epoch": self.start_epoch, "lr": _lr_to_plain(self.lr),
            "peak_lrs": list(self.peak_lrs), "schedule": self.schedule.to_dict(),
            "opt_step": self.opt_step, "batch_in_epoch": self.batch_in_epoch,
            "epoch_loss_sum": self.epoch_loss_sum, "epoch_loss_n": self.epoch_loss_n,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "_Cycle":
        return cls(
            epochs=int(d["epochs"]), start_epoch=int(d["start_epoch"]),
            lr=_lr_from_plain(d["lr"]),
            peak_lrs=[float(x) for x in d["peak_lrs"]],
            schedule=Schedule.from_dict(d["schedule"]), opt_step=int(d["opt_step"]),
            batch_in_epoch=int(d["batch_in_epoch"]), epoch_loss_sum=float(d["epoch_loss_sum"]),
            epoch_loss_n=int(d["epoch_loss_n"]),
        )


class _ResumeDescriptor:
    """``Trainer.resume`` means two things, told apart by how it is called.

    - On the class, ``Trainer.resume(run_dir, model, data, **overrides)`` returns a trainer
      restored from the run's last checkpoint (weights, optimizer, schedule position, history),
      ready to continue the interrupted cycle with ``fit()`` or ``start()``.
    - On an instance, ``trainer.resume()`` un-pauses a paused run;
      ``trainer.resume(run_dir)`` restores that run's checkpoint into this trainer.
    """

    def __get__(self, obj: "Trainer | None", objtype: type | None = None) -> Callable[..., Any]:
        if obj is None:
            assert objtype is not None
            return objtype._resume_run
        return obj._resume_instance


class Trainer:
    """Train ``model`` on ``data`` with a one-cycle schedule, live events and checkpoints.

    Arguments:

    - ``lr``: peak learning rate; a float for every param group, or ``slice(lo, hi)`` for
      discriminative rates spread from the first layer group to the head.
    - ``epochs``: epochs per ``fit()``/``start()`` call.
    - ``optimizer``: ``"adamw"`` (default), ``"adam"`` or ``"sgd"`` (momentum 0.9).
    - ``schedule``: ``"one_cycle"`` (fastai's), ``"cosine"`` (with linear warm-up) or
      ``"constant"``.
    - ``weight_decay``: decoupled for AdamW, L2 for Adam and SGD.
    - ``amp``: ``"auto"`` (mixed precision on CUDA: bf16 where supported, else fp16 with a grad
      scaler), ``True`` or ``False``.
    - ``device``: ``"auto"`` (CUDA, else MPS, else CPU) or a torch device.
    - ``grad_accum``: batches per optimizer step. ``clip_grad``: max gradient norm, or ``None``.
    - ``early_stopping``: ``None``, an int patience (epochs without improvement of ``metric``),
      or a dict ``{"patience": 3, "metric": "valid_loss", "min_delta": 0.0}``.
    - ``run_dir``: where history, steps and checkpoints go; by default a new folder
      ``./runs/<timestamp>-<model>`` (or a temporary folder when ``./runs`` is not writable).
    - ``cache_features``: ``"auto"``, ``True`` or ``False`` (see :mod:`.feature_cache`).
    - ``callbacks``: functions subscribed to the events before the run starts.
    - ``metric``: what picks the best checkpoint: ``"accuracy"``, ``"valid_loss"`` or
      ``"train_loss"``.
    - ``seed``: if given, seeds torch and Python before each run, for reproducible runs.
    - ``name``: the run's label in dashboards and comparisons (default: the architecture).

    >>> import torch, tlwidgets as tlw
    >>> data = tlw.ImageData.from_arrays(torch.rand(40, 3, 32, 32), [0, 1] * 20)  # doctest: +SKIP
    >>> model = tlw.create_model("resnet18", num_classes=2, weights=None)          # doctest: +SKIP
    >>> trainer = tlw.Trainer(model, data, lr=1e-3, epochs=2)                       # doctest: +SKIP
    >>> trainer.fit()                                                               # doctest: +SKIP
    """

    resume = _ResumeDescriptor()

    def __init__(
        self,
        model: nn.Module,
        data: Any,
        lr: float | slice = 1e-3,
        epochs: int = 3,
        optimizer: str = "adamw",
        schedule: str = "one_cycle",
        weight_decay: float = 0.01,
        amp: bool | str = "auto",
        device: Any = "auto",
        grad_accum: int = 1,
        clip_grad: float | None = None,
        early_stopping: int | dict[str, Any] | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        cache_features: bool | str = "auto",
        callbacks: Iterable[Callable[[TrainerEvent], Any]] = (),
        metric: str = "accuracy",
        seed: int | None = None,
        name: str | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ConfigError(
                f"Trainer needs a torch.nn.Module as model, got {type(model).__name__}; "
                "make one with tlw.create_model(name, num_classes)."
            )
        for attr in ("classes", "train_loader", "valid_loader"):
            if not hasattr(data, attr):
                raise ConfigError(
                    f"Trainer needs a tlw.ImageData as data (it has no {attr!r}); build one with "
                    "tlw.ImageData.from_folder(...) or tlw.ImageData.from_arrays(...)."
                )
        self.model = model
        self.data = data
        self.lr = _check_lr(lr)
        self.epochs = self._check_epochs(epochs)
        if optimizer not in _OPTIMIZERS:
            raise ConfigError(
                f"optimizer={optimizer!r} is not supported; use one of {', '.join(_OPTIMIZERS)}."
            )
        self.optimizer_name = optimizer
        if schedule not in SCHEDULES:
            raise ConfigError(
                f"schedule={schedule!r} is not supported; use one of {', '.join(SCHEDULES)}."
            )
        self.schedule_name = schedule
        if not isinstance(weight_decay, (int, float)) or weight_decay < 0:
            raise ConfigError(f"weight_decay must be a number >= 0, got {weight_decay!r}.")
        self.weight_decay = float(weight_decay)
        if amp not in ("auto", True, False):
            raise ConfigError(f"amp must be 'auto', True or False, got {amp!r}.")
        self.device = _resolve_device(device)
        self.amp_dtype = self._amp_dtype(amp)
        if not isinstance(grad_accum, int) or isinstance(grad_accum, bool) or grad_accum < 1:
            raise ConfigError(f"grad_accum must be an integer >= 1, got {grad_accum!r}.")
        self.grad_accum = grad_accum
        if clip_grad is not None and not (isinstance(clip_grad, (int, float)) and clip_grad > 0):
            raise ConfigError(f"clip_grad must be a positive number or None, got {clip_grad!r}.")
        self.clip_grad = clip_grad
        if metric not in _METRICS:
            raise ConfigError(f"metric={metric!r} is not supported; use one of {', '.join(_METRICS)}.")
        self.metric = metric
        self.early_stopping = self._check_early_stopping(early_stopping)
        if cache_features not in ("auto", True, False):
            raise ConfigError(
                f"cache_features must be 'auto', True or False, got {cache_features!r}."
            )
        self.cache_features = cache_features
        self.seed = seed
        # the run's label in dashboards and comparisons ("pretrained", "from scratch", ...)
        self.name = str(name) if name is not None else _model_name(model)
        self._run_dir_arg = Path(run_dir) if run_dir is not None else None
        self._run_dir: Path | None = None

        self._events = EventBus()
        for fn in callbacks:
            self._events.subscribe(fn)
        self._state = "idle"
        self._state_lock = threading.RLock()
        self._go = threading.Event()
        self._go.set()
        self._stop_flag = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

        self._history: list[dict[str, Any]] = []
        self._steps: list[dict[str, Any]] = []
        self._steps_written = 0
        self._global_step = 0
        self._epochs_done = 0
        self._best: float | None = None
        self._bad_epochs = 0
        self._cycle: _Cycle | None = None
        self._continue_cycle = False
        self._optimizer: torch.optim.Optimizer | None = None
        self._opt_freeze_version: int | None = None
        self._scaler: Any = None
        self._cache: FeatureCache | None = None
        self._train_loader: Any = None
        self._train_loader_aug: Any = "unset"
        self._t_start = time.perf_counter()
        self._run_started: float | None = None
        self._last_img_s = float("nan")
        self._img_s_avg = float("nan")
        self._epoch_t0 = time.perf_counter()
        self._channels_last = self.device.type == "cuda" and any(
            isinstance(m, nn.Conv2d) for m in model.modules()
        )
        self._placed = False

    # ------------------------------------------------------------------ validation helpers
    @staticmethod
    def _check_epochs(epochs: Any) -> int:
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise ConfigError(f"epochs must be an integer >= 1, got {epochs!r}.")
        return epochs

    def _amp_dtype(self, amp: Any) -> torch.dtype | None:
        if amp is False:
            return None
        if self.device.type != "cuda":
            if amp is True:
                raise ConfigError(
                    f"amp=True needs a CUDA GPU; this trainer runs on {self.device.type}. "
                    "Use amp='auto' (mixed precision only where it helps)."
                )
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def _check_early_stopping(self, es: Any) -> dict[str, Any] | None:
        if es is None or es is False:
            return None
        if isinstance(es, int) and not isinstance(es, bool):
            es = {"patience": es}
        if not isinstance(es, dict):
            raise ConfigError(
                f"early_stopping must be None, an int patience or a dict, got {es!r}; e.g. "
                "early_stopping=3 or {'patience': 3, 'metric': 'valid_loss'}."
            )
        out = {"patience": es.get("patience", 3), "metric": es.get("metric", self.metric),
               "min_delta": float(es.get("min_delta", 0.0))}
        unknown = set(es) - set(out)
        if unknown or not isinstance(out["patience"], int) or out["patience"] < 1:
            raise ConfigError(
                f"early_stopping={es!r}: use keys patience (int >= 1), metric, min_delta."
            )
        if out["metric"] not in _METRICS:
            raise ConfigError(
                f"early_stopping metric {out['metric']!r} unknown; use one of {', '.join(_METRICS)}."
            )
        return out

    # ------------------------------------------------------------------ public state
    @property
    def state(self) -> str:
        """``idle``, ``running``, ``paused``, ``stopping``, ``finished``, ``stopped`` or ``failed``."""
        return self._state

    @property
    def run_dir(self) -> Path:
        """The folder holding ``history.csv``, ``steps.csv`` and ``checkpoints/`` of this run."""
        if self._run_dir is None:
            if self._run_dir_arg is not None:
                self._run_dir_arg.mkdir(parents=True, exist_ok=True)
                self._run_dir = self._run_dir_arg.resolve()
            else:
                self._run_dir = _default_run_dir(self.model)
        return self._run_dir

    @property
    def history(self) -> pd.DataFrame:
        """One row per completed epoch: epoch, train_loss, valid_loss, accuracy, seconds, lr."""
        return pd.DataFrame(list(self._history), columns=_HISTORY_COLUMNS)

    @property
    def steps(self) -> pd.DataFrame:
        """One row per training step: step, epoch, batch, loss, lr, img_s, time."""
        return pd.DataFrame(list(self._steps), columns=_STEP_COLUMNS)

    def subscribe(self, fn: Callable[[TrainerEvent], Any]) -> Callable[[], None]:
        """Call ``fn(event)`` for every :class:`TrainerEvent`; returns a function that unsubscribes.

        ``fn`` runs on the training thread: it must be quick and must not touch widgets. If it
        raises, the run stops cleanly in state ``failed`` and the error names the subscriber.

        >>> unsubscribe = trainer.subscribe(lambda e: print(e.kind, e.data))   # doctest: +SKIP
        >>> unsubscribe()                                                      # doctest: +SKIP
        """
        return self._events.subscribe(fn)

    def progress(self) -> dict[str, Any]:
        """Where the run is: epoch, epochs, step, steps_per_epoch, total_steps, elapsed, eta,
        img_s, device and memory (peak CUDA memory in bytes on CUDA, else the process RSS).

        >>> trainer.progress()["eta"]                                          # doctest: +SKIP
        12.5
        """
        spe = self._steps_per_epoch_safe()
        cyc = self._cycle
        epochs_total = (cyc.start_epoch + cyc.epochs) if cyc else self._epochs_done + self.epochs
        total = epochs_total * spe if spe else None
        elapsed = (time.perf_counter() - self._run_started) if self._run_started else 0.0
        eta = None
        if cyc is not None and spe and self._state in _ACTIVE:
            done_in_cycle = (self._epochs_done - cyc.start_epoch) * spe + cyc.batch_in_epoch
            left = cyc.epochs * spe - done_in_cycle
            rate = self._img_s_avg
            bs = getattr(self.data, "batch_size", 1) or 1
            if rate and rate == rate and rate > 0:
                eta = left * bs / rate
        elif self._state in ("finished", "stopped", "failed", "idle"):
            eta = 0.0 if self._history else None
        return {
            "epoch": self._epochs_done + (1 if self._state in _ACTIVE else 0),
            "epochs": epochs_total,
            "step": self._global_step,
            "steps_per_epoch": spe,
            "total_steps": total,
            "elapsed": elapsed,
            "eta": eta,
            "img_s": self._img_s_avg,
            "device": str(self.device),
            "memory": self._memory(),
        }

    def _memory(self) -> int | None:
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        try:
            import resource

            # ru_maxrss is KiB on Linux: the peak resident set of this process
            return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
        except (ImportError, OSError):
            return None

    def _steps_per_epoch_safe(self) -> int | None:
        # Called from other threads (a dashboard's timer): never build a loader here, that is
        # the training thread's job.
        try:
            cache, loader = self._cache, self._train_loader
            if cache is not None:
                return len(cache)
            if loader is not None:
                return len(loader)
            return math.ceil(len(self.data.train_items) / self.data.batch_size)
        except Exception:  # noqa: BLE001 - progress() must never raise
            return None

    def _steps_per_epoch(self) -> int:
        if self._cache is not None:
            return len(self._cache)
        return len(self._get_train_loader())

    # ------------------------------------------------------------------ commands
    def fit(self, epochs: int | None = None, lr: float | slice | None = None) -> pd.DataFrame:
        """Train for ``epochs`` (default: the trainer's) and block until done; returns ``history``.

        Ctrl-C stops cleanly after the current step (state ``stopped``, nothing raised). A failure
        (non-finite loss, out of memory, a failing subscriber) ends in state ``failed`` and raises
        :class:`TrainingError` after the model was put back to its last good weights.

        >>> trainer.fit(epochs=2)                                             # doctest: +SKIP
        """
        phases = self._plan_fit(epochs, lr)
        self._begin()
        self._execute(phases, in_thread=False)
        if self._state == "failed" and self.error is not None:
            raise self.error
        return self.history

    def start(self, epochs: int | None = None, lr: float | slice | None = None) -> "Trainer":
        """Run ``fit()`` in a background thread and return at once.

        >>> trainer.start(); trainer.state                                    # doctest: +SKIP
        'running'
        """
        phases = self._plan_fit(epochs, lr)
        self._launch(phases)
        return self

    def fine_tune(
        self, epochs: int, freeze_epochs: int = 1, base_lr: float = 2e-3, lr_mult: float = 100,
        background: bool = False,
    ) -> "pd.DataFrame | Trainer":
        """fastai's recipe: train the head for ``freeze_epochs`` (everything else frozen,
        one-cycle at ``base_lr``, warm-up over 99% of it), then unfreeze and train ``epochs``
        with one-cycle and discriminative rates ``slice(base_lr/2/lr_mult, base_lr/2)`` spread
        over the layer groups (``pct_start=0.3``, ``div=5``), exactly as fastai's
        ``Learner.fine_tune``.

        Blocks like ``fit()``; with ``background=True`` both phases run in the training thread
        like ``start()`` and the trainer is returned at once.

        >>> trainer.fine_tune(3)                                             # doctest: +SKIP
        """
        fz = importlib.import_module("tlwidgets.freeze")  # not `from .. import freeze`: the lazy API binds that name to the function

        self._check_epochs(epochs)
        if freeze_epochs < 0 or not isinstance(freeze_epochs, int):
            raise ConfigError(f"freeze_epochs must be an integer >= 0, got {freeze_epochs!r}.")
        _check_lr(base_lr)
        self._check_not_active("fine_tune()")

        def phase_head() -> None:
            fz.freeze_to(self.model, -1)
            self._fit_cycle(freeze_epochs, base_lr, "one_cycle", pct_start=0.99)

        def phase_all() -> None:
            fz.unfreeze(self.model)
            half = base_lr / 2
            self._fit_cycle(epochs, slice(half / lr_mult, half), "one_cycle", pct_start=0.3, div=5.0)

        phases = ([phase_head] if freeze_epochs > 0 else []) + [phase_all]
        if background:
            self._launch(phases)
            return self
        self._begin()
        self._execute(phases, in_thread=False)
        if self._state == "failed" and self.error is not None:
            raise self.error
        return self.history

    def pause(self) -> None:
        """Pause a running run after the current step (the loop blocks until ``resume()``).

        >>> trainer.pause(); trainer.state                                    # doctest: +SKIP
        'paused'
        """
        with self._state_lock:
            if self._state not in ("running", "paused"):
                raise TrainerStateError(
                    f"cannot pause: the trainer is {self._state!r}; pause works while running."
                )
            self._go.clear()

    def _unpause(self) -> None:
        with self._state_lock:
            if self._state not in ("running", "paused"):
                raise TrainerStateError(
                    f"cannot resume: the trainer is {self._state!r}, not paused. To continue a "
                    "saved run use Trainer.resume(run_dir, model, data); to train more, start()."
                )
            self._go.set()

    def stop(self) -> None:
        """Stop after the current step; the model keeps the weights of the last completed step.

        >>> trainer.stop(); trainer.wait()                                   # doctest: +SKIP
        'stopped'
        """
        with self._state_lock:
            if self._state not in _ACTIVE:
                return
            self._stop_flag.set()
            self._go.set()  # wake a paused loop so it can leave
            self._set_state("stopping")

    def wait(self, timeout: float | None = None) -> str:
        """Block until the background run ends (or ``timeout`` seconds pass); returns ``state``.

        >>> trainer.start(); trainer.wait()                                   # doctest: +SKIP
        'finished'
        """
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self._state

    # ------------------------------------------------------------------ resume (both meanings)
    @classmethod
    def _resume_run(
        cls, run_dir: str | os.PathLike[str], model: nn.Module, data: Any, **overrides: Any
    ) -> "Trainer":
        """``Trainer.resume(run_dir, model, data, **overrides)``: a trainer continuing that run.

        >>> trainer = tlw.Trainer.resume("runs/20250101-resnet18", model, data)   # doctest: +SKIP
        >>> trainer.fit()          # finishes the interrupted cycle on the same schedule  # doctest: +SKIP
        """
        state = cls._read_state(run_dir)
        cfg = dict(state["config"])
        cfg["lr"] = _lr_from_plain(cfg["lr"])
        cfg.update(overrides)
        cfg["run_dir"] = run_dir
        trainer = cls(model, data, **cfg)
        trainer._restore(run_dir)
        return trainer

    def _resume_instance(self, run_dir: str | os.PathLike[str] | None = None) -> None:
        """``trainer.resume()`` un-pauses; ``trainer.resume(run_dir)`` loads that run into it."""
        if run_dir is None:
            self._unpause()
            return
        self._check_not_active("resume(run_dir)")
        self._run_dir_arg = Path(run_dir)
        self._run_dir = None
        self._restore(run_dir)

    @staticmethod
    def _read_state(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
        folder = Path(run_dir) / "checkpoints"
        return load_checkpoint(folder, "last", None)

    def _restore(self, run_dir: str | os.PathLike[str]) -> None:
        fz = importlib.import_module("tlwidgets.freeze")  # not `from .. import freeze`: the lazy API binds that name to the function

        folder = Path(run_dir) / "checkpoints"
        state = load_checkpoint(folder, "last", None)
        self._apply_freeze_state(state.get("trainable"), state.get("bn_policy", "eval"))
        load_checkpoint(folder, "last", self.model, device="cpu")
        self._place_model()
        self._history = [dict(r) for r in state["history"]]
        self._global_step = int(state["global_step"])
        self._epochs_done = int(state["epochs_done"])
        self._best = state.get("best")
        self._bad_epochs = int(state.get("bad_epochs", 0))
        self._cycle = _Cycle.from_dict(state["cycle"]) if state.get("cycle") else None
        history_csv = Path(run_dir) / "history.csv"
        hist = pd.DataFrame(self._history, columns=_HISTORY_COLUMNS)
        atomic_write(history_csv, lambda tmp: hist.to_csv(tmp, index=False))
        steps_csv = Path(run_dir) / "steps.csv"
        if steps_csv.exists():
            df = pd.read_csv(steps_csv)
            df = df[df["step"] <= self._global_step]
            self._steps = df.to_dict("records")
            self._steps_written = len(self._steps)
            # rewrite so rows logged after the checkpoint (a crash mid-epoch) do not duplicate
            atomic_write(steps_csv, lambda tmp: df.to_csv(tmp, index=False))
        if self._cycle is not None:
            self._build_optimizer(self._cycle.lr, self._cycle.schedule, self._cycle.opt_step)
            assert self._optimizer is not None
            if state.get("optimizer"):
                self._optimizer.load_state_dict(state["optimizer"])
            if self._scaler is not None and state.get("scaler"):
                self._scaler.load_state_dict(state["scaler"])
            self._opt_freeze_version = fz.freeze_version(self.model)
            done = self._epochs_done - self._cycle.start_epoch
            self._continue_cycle = done < self._cycle.epochs
        self._log(f"restored run {run_dir} at epoch {self._epochs_done}, step {self._global_step}")

    def _apply_freeze_state(self, trainable: list[str] | None, bn_policy: str) -> None:
        """Make the model's freeze state match a checkpoint's: requires_grad per parameter
        and BN layers held in eval, through tlwidgets.freeze so its version and hooks follow."""
        if trainable is None:
            return
        fz = importlib.import_module("tlwidgets.freeze")  # not `from .. import freeze`: the lazy API binds that name to the function

        keep = set(trainable)
        names = [n for n, _ in self.model.named_parameters()]
        frozen_params = [n for n in names if n not in keep]
        if not frozen_params:
            fz.unfreeze(self.model)
            return
        # Freeze whole modules whose parameters are all frozen (the topmost such modules).
        frozen_modules: list[str] = []
        for mname, module in self.model.named_modules():
            if not mname or any(mname.startswith(f + ".") for f in frozen_modules):
                continue
            pnames = [f"{mname}.{n}" for n, _ in module.named_parameters()]
            if pnames and all(p not in keep for p in pnames):
                frozen_modules.append(mname)
        fz.unfreeze(self.model)
        fz.freeze(self.model, frozen_modules, bn=bn_policy)

    # ------------------------------------------------------------------ run plumbing
    def _check_not_active(self, what: str) -> None:
        with self._state_lock:
            if self._state in _ACTIVE or (self._thread is not None and self._thread.is_alive()):
                raise TrainerStateError(
                    f"cannot {what}: the trainer is {self._state!r}. Call trainer.stop() and "
                    "trainer.wait() first, or wait for the run to end."
                )

    def _plan_fit(self, epochs: int | None, lr: float | slice | None) -> list[Callable[[], None]]:
        self._check_not_active("start a run")
        if epochs is not None:
            self._check_epochs(epochs)
        if lr is not None:
            _check_lr(lr)
        if self._continue_cycle and epochs is None and lr is None:
            return [self._continue]
        n = self.epochs if epochs is None else epochs
        peak = self.lr if lr is None else lr
        return [lambda: self._fit_cycle(n, peak, self.schedule_name)]

    def _launch(self, phases: list[Callable[[], None]]) -> None:
        with self._state_lock:
            self._check_not_active("start()")
            self._begin()
            thread = threading.Thread(
                target=self._execute, args=(phases, True), name="tlwidgets-trainer", daemon=True
            )
            self._thread = thread
            # Set before the thread runs so a start() right after this one sees "running";
            # the thread publishes the state event itself.
            self._launch_previous = self._state
            self._set_state("running", publish=False)
        thread.start()

    def _begin(self) -> None:
        self._stop_flag.clear()
        self._go.set()
        self.error = None

    def _set_state(self, new: str, publish: bool = True) -> None:
        with self._state_lock:
            old, self._state = self._state, new
        if publish and old != new:
            self._publish("state", {"state": new, "previous": old})

    def _publish(self, kind: str, data: dict[str, Any], *, swallow: bool = False) -> None:
        self._events.publish(TrainerEvent(kind, data), swallow=swallow)

    def _log(self, message: str) -> None:
        self._publish("log", {"message": message}, swallow=True)

    @contextlib.contextmanager
    def _interrupt_guard(self, in_thread: bool) -> Any:
        """During a blocking fit() on the main thread, the first Ctrl-C asks for a stop at the
        next step boundary; a second one raises KeyboardInterrupt at once."""
        if in_thread or threading.current_thread() is not threading.main_thread():
            yield
            return
        try:
            previous = signal.getsignal(signal.SIGINT)
        except ValueError:
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self._stop_flag.is_set():
                raise KeyboardInterrupt
            self._stop_flag.set()
            self._go.set()

        try:
            signal.signal(signal.SIGINT, handler)
        except ValueError:
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _execute(self, phases: list[Callable[[], None]], in_thread: bool) -> None:
        from ..evaluation import model_lock

        # An evaluation of this model in another thread (the dashboard's, right after the last
        # run ended) finishes first: it switches module modes, which would leak into training.
        with model_lock(self.model):
            self._execute_locked(phases, in_thread)

    def _execute_locked(self, phases: list[Callable[[], None]], in_thread: bool) -> None:
        final = "finished"
        self._run_started = time.perf_counter()
        with self._interrupt_guard(in_thread):
            try:
                if in_thread:
                    self._publish("state", {"state": "running",
                                            "previous": self._launch_previous})
                else:
                    self._set_state("running")
                if self.seed is not None:
                    torch.manual_seed(self.seed)
                    random.seed(self.seed)
                self._place_model()
                for phase in phases:
                    phase()
                    if self._stop_flag.is_set():
                        raise _StopRun
            except (_StopRun, KeyboardInterrupt) as exc:
                final = "stopped"
                self._after_interrupt()
                why = "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else "stop()"
                self._log(f"stopped by {why} at step {self._global_step}")
            except SubscriberError as exc:
                final = "failed"
                self._fail(TrainingError(f"{exc}; the run was stopped and the model kept its "
                                         "last completed step. Fix the callback and train again."),
                           exc.exc)
            except _NonFiniteLoss as exc:
                final = "failed"
                restored = self._after_nonfinite()
                lrs = ", ".join(f"{x:.3g}" for x in exc.lrs)
                self._fail(TrainingError(
                    f"the loss became {exc.value} at step {exc.step} (learning rate {lrs}); "
                    f"{restored}. Lower the learning rate (trainer.lr_find() suggests one), or "
                    "set clip_grad=1.0."), None)
            except torch.OutOfMemoryError as exc:
                final = "failed"
                self._after_interrupt()
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                self._fail(TrainingError(
                    f"out of memory on {self.device} at step {self._global_step + 1}: {exc}. "
                    "The model kept its last completed step. Try a smaller batch_size (e.g. "
                    "ImageData(..., batch_size=16)), amp=True on a GPU, or freeze more layers "
                    "(tlw.freeze_to(model, -2))."), exc)
            except NothingTrainableError as exc:
                final = "failed"
                self._fail(exc, None)
            except Exception as exc:  # noqa: BLE001 - any failure ends the run, reported
                final = "failed"
                self._after_interrupt()
                err = exc if isinstance(exc, TrainingError) else TrainingError(
                    f"training failed at step {self._global_step + 1}: "
                    f"{type(exc).__name__}: {exc}. The model kept its last completed step."
                )
                self._fail(err, exc)
            finally:
                self._finish_files(final)
                previous = self._state
                self._set_state(final, publish=False)
                self._publish("state", {"state": final, "previous": previous}, swallow=True)

    def _fail(self, err: BaseException, cause: BaseException | None) -> None:
        if cause is not None and err is not cause:
            err.__cause__ = cause
        self.error = err
        self._publish(
            "error",
            {"message": str(err), "type": type(cause or err).__name__, "step": self._global_step},
            swallow=True,
        )

    def _after_interrupt(self) -> None:
        if self._optimizer is not None:
            self._optimizer.zero_grad(set_to_none=True)
        if self._step_open and self._buffers is not None:
            self._buffers.restore()
        self._step_open = False

    def _after_nonfinite(self) -> str:
        self._after_interrupt()
        snap = getattr(self, "_snapshot", None)
        if snap is not None and snap.valid:
            snap.restore()
        if all(torch.isfinite(t).all() for t in self.model.state_dict().values()
               if t.is_floating_point()):
            return "the model kept the weights of the last finite step"
        # A finite loss can still come with infinite gradients (the CPU path checks the loss
        # only); then the last epoch's checkpoint is the last known good state.
        folder = self.run_dir / "checkpoints"
        self._join_writer()
        try:
            load_checkpoint(folder, "last", self.model, device=str(self.device))
            return "the model was put back to the checkpoint of the last completed epoch"
        except TrainingError:
            return ("some weights are no longer finite and there is no checkpoint yet; "
                    "recreate the model")

    def _finish_files(self, final: str) -> None:
        try:
            self._flush_steps()
            self._join_writer()
            if final in ("stopped", "failed") and self._cycle is not None:
                self._save_checkpoint("last")
        except Exception as exc:  # noqa: BLE001 - a full disk must not hide the real outcome
            self._log(f"could not write the run files to {self._run_dir}: {exc}")

    # ------------------------------------------------------------------ model, optimizer, data
    def _place_model(self) -> None:
        if self._placed:
            return
        self.model.to(self.device)
        if self._channels_last:
            self.model.to(memory_format=torch.channels_last)
        self._placed = True

    def _build_optimizer(self, lr: float | slice, schedule: Schedule, step: int = 0) -> list[float]:
        """Optimizer over ``tlwidgets.freeze.param_groups`` (frozen parameters left out; biases
        and norm weights without weight decay); returns the peak learning rate per group."""
        fz = importlib.import_module("tlwidgets.freeze")  # not `from .. import freeze`: the lazy API binds that name to the function

        if isinstance(lr, slice) and lr.start is not None:
            groups = fz.param_groups(self.model, lr=lr.stop, lr_min=lr.start,
                                     weight_decay=self.weight_decay)
        elif isinstance(lr, slice):
            # fastai's slice(hi): the head at hi, every other group at hi / 10
            head = fz.layer_groups(self.model)[-1].name
            groups = fz.param_groups(self.model, lr=lr.stop, weight_decay=self.weight_decay)
            for g in groups:
                if g.get("group") != head:
                    g["lr"] = lr.stop / 10
        else:
            groups = fz.param_groups(self.model, lr=float(lr), weight_decay=self.weight_decay)
        peaks = [float(g["lr"]) for g in groups]
        for g, peak in zip(groups, peaks):
            g["lr"] = peak * schedule.factor(step)
        opt = self._new_optimizer(groups, peaks[-1])
        self.model.zero_grad(set_to_none=True)
        self._optimizer = opt
        self._opt_freeze_version = fz.freeze_version(self.model)
        if self.amp_dtype == torch.float16:
            self._scaler = torch.amp.GradScaler("cuda")
        else:
            self._scaler = None
        return peaks

    def _new_optimizer(self, groups: list[dict[str, Any]], lr: float) -> torch.optim.Optimizer:
        """The trainer's optimizer over ``groups``; lr_find uses it too, so it sweeps the same one."""
        kwargs: dict[str, Any] = {}
        if self.device.type == "cuda":
            kwargs["fused"] = True  # one kernel per step instead of one per tensor
        else:
            # torch's CPU default is a Python loop over tensors; the multi-tensor path does the
            # same arithmetic in fewer, larger operations.
            kwargs["foreach"] = True
        if self.optimizer_name == "adamw":
            return torch.optim.AdamW(groups, lr=lr, **kwargs)
        if self.optimizer_name == "adam":
            return torch.optim.Adam(groups, lr=lr, **kwargs)
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, **kwargs)

    def _get_train_loader(self, augment: Any = None) -> Any:
        # One loader per trainer and augment choice: its seeded generator then advances from
        # epoch to epoch, so each epoch sees a new order (a fresh loader would repeat it).
        if self._train_loader is None or self._train_loader_aug != augment:
            self._train_loader = (
                self.data.train_loader() if augment is None else self.data.train_loader(augment=augment)
            )
            self._train_loader_aug = augment
        return self._train_loader

    def _refresh_cache(self) -> None:
        fz = importlib.import_module("tlwidgets.freeze")  # not `from .. import freeze`: the lazy API binds that name to the function

        decision: CacheDecision = cache_decision(self.model, self.data, self.cache_features)
        if not decision.use:
            if self._cache is not None:
                self._cache = None
            if self._last_cache_reason != decision.reason:
                self._log(decision.reason)
                self._last_cache_reason = decision.reason
            return
        key = (fz.freeze_version(self.model), id(self.data), decision.augment)
        if self._cache is not None and self._cache.key == key:
            return
        loader = self._get_train_loader(decision.augment)
        t0 = time.perf_counter()
        self._cache = FeatureCache(
            self.model, self.data, decision, self.device, self._channels_last, self._autocast, key,
            loader,
        )
        self._last_cache_reason = decision.reason
        self._log(
            f"{decision.reason}; features of {len(self._cache.train_y)} train and "
            f"{len(self._cache.valid_y)} valid images computed in {time.perf_counter() - t0:.1f} s"
        )

    _last_cache_reason: str | None = None
    _launch_previous: str = "idle"
    _snapshot: "_Snapshot | None" = None
    _buffers: "_Snapshot | None" = None
    _step_open = False

    def _autocast(self) -> Any:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    # ------------------------------------------------------------------ the loop
    def _continue(self) -> None:
        assert self._cycle is not None
        self._continue_cycle = False
        self._run_cycle(self._cycle)

    def _fit_cycle(self, epochs: int, lr: float | slice, schedule: str,
                   **schedule_kwargs: Any) -> None:
        self._continue_cycle = False
        self.model.train()
        self._refresh_cache()
        spe = self._steps_per_epoch()
        if spe == 0:
            raise TrainingError(
                "the training split is empty, so there is nothing to train on; give the data "
                "more images or a smaller valid_pct."
            )
        opt_steps = epochs * math.ceil(spe / self.grad_accum)
        sched = Schedule(schedule, total_steps=max(opt_steps, 1), **schedule_kwargs)
        peaks = self._build_optimizer(lr, sched)
        self._cycle = _Cycle(epochs=epochs, start_epoch=self._epochs_done, lr=lr,
                             peak_lrs=peaks, schedule=sched)
        self._best_in_cycle_reset()
        self._run_cycle(self._cycle)

    def _best_in_cycle_reset(self) -> None:
        self._bad_epochs = 0

    def _run_cycle(self, cycle: _Cycle) -> None:
        fz = importlib.import_module("tlwidgets.freeze")  # not `from .. import freeze`: the lazy API binds that name to the function

        self.model.train()
        while self._epochs_done - cycle.start_epoch < cycle.epochs:
            if self._opt_freeze_version != fz.freeze_version(self.model):
                # The freeze state changed between epochs (say, in the FreezePanel): train the
                # parameters that are trainable now, at the cycle's current schedule position.
                self._log("freeze state changed: rebuilding the optimizer's param groups")
                cycle.peak_lrs = self._build_optimizer(cycle.lr, cycle.schedule, cycle.opt_step)
            self._refresh_cache()
            self._run_epoch(cycle)
            if self._should_stop_early():
                break

    def _run_epoch(self, cycle: _Cycle) -> None:
        epoch = self._epochs_done + 1
        self._epoch_t0 = time.perf_counter()
        lag = self.device.type != "cpu"
        # BN statistics change in the forward pass: a step that fails half-way (out of memory,
        # non-finite loss, Ctrl-C) puts them back as they were before it. A few small tensors.
        self._buffers = _Snapshot(self.model, params=False)
        self._snapshot = _Snapshot(self.model) if lag else None
        model, opt, scaler = self.model, self._optimizer, self._scaler
        assert opt is not None
        cache = self._cache
        if cache is not None:
            batches: Iterable[Any] = cache.train_batches()
            forward: Callable[[torch.Tensor], torch.Tensor] = cache.forward
            cache.head.train()
        else:
            batches = self._get_train_loader()
            forward = model
        spe = self._steps_per_epoch()
        skip = cycle.batch_in_epoch
        remaining = spe - skip
        accum = self.grad_accum
        criterion = nn.functional.cross_entropy
        pending: list[tuple[dict[str, Any], torch.Tensor, Any]] = []
        self._last_step_time = time.perf_counter()
        micro = 0
        for i, (x, y) in enumerate(batches):
            if i >= remaining:
                break
            self._between_steps()
            if micro == 0:
                self._set_lr(cycle)
            self._buffers.take()
            self._step_open = True
            if cache is None:
                x = x.to(self.device, non_blocking=True)
                if self._channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                y = y.to(self.device, non_blocking=True)
            n = int(y.shape[0])
            with self._autocast():
                out = forward(x)
                loss = criterion(out.float(), y)
            scaled = loss / accum if accum > 1 else loss
            if scaler is not None:
                scaler.scale(scaled).backward()
            else:
                scaled.backward()
            micro += 1
            batch_index = skip + i + 1
            is_last = i == remaining - 1
            step_no = self._global_step + 1
            lrs = [g["lr"] for g in opt.param_groups]
            if not lag:
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise _NonFiniteLoss(step_no, lrs, value)
            if micro == accum or is_last:
                if lag:
                    # The previous step's loss, read now that this step's work is queued.
                    self._resolve_pending(pending, keep_last=0)
                    self._snapshot.take()
                self._optimizer_step(cycle)
                micro = 0
            self._step_open = False
            self._global_step = step_no
            cycle.batch_in_epoch = batch_index
            info = {"step": step_no, "epoch": epoch, "batch": batch_index, "lrs": lrs, "n": n}
            if lag:
                if self.device.type == "cuda":
                    # lands in pinned host memory; the event says when it is there
                    host = loss.detach().to("cpu", non_blocking=True)
                    ev: Any = torch.cuda.Event()
                    ev.record()
                else:
                    # MPS: keep it on the device; reading it a step later syncs then
                    host, ev = loss.detach(), None
                pending.append((info, host, ev))
            else:
                info["loss"] = value
                self._emit_step(info, cycle)
        if lag:
            self._resolve_pending(pending, keep_last=0)
        self._end_epoch(cycle, epoch)

    def _between_steps(self) -> None:
        """Where commands take effect: stop leaves, pause blocks on an Event (no spinning)."""
        if self._stop_flag.is_set():
            raise _StopRun
        if not self._go.is_set():
            self._set_state("paused")
            self._go.wait()
            if self._stop_flag.is_set():
                raise _StopRun
            self._set_state("running")

    def _set_lr(self, cycle: _Cycle) -> None:
        """Learning rate (and one-cycle momentum) of the coming optimizer step."""
        opt = self._optimizer
        assert opt is not None
        sched = cycle.schedule
        f = sched.factor(cycle.opt_step)
        mom = sched.momentum(cycle.opt_step)
        for g, peak in zip(opt.param_groups, cycle.peak_lrs):
            g["lr"] = peak * f
            if mom is not None:
                if "betas" in g:
                    g["betas"] = (mom, g["betas"][1])
                elif "momentum" in g:
                    g["momentum"] = mom

    def _optimizer_step(self, cycle: _Cycle) -> None:
        opt, scaler = self._optimizer, self._scaler
        assert opt is not None
        if self.clip_grad is not None:
            if scaler is not None:
                scaler.unscale_(opt)
            params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
            nn.utils.clip_grad_norm_(params, self.clip_grad)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        cycle.opt_step += 1

    def _resolve_pending(self, pending: list[tuple[dict[str, Any], torch.Tensor, Any]],
                         keep_last: int) -> None:
        while len(pending) > keep_last:
            info, host, ev = pending.pop(0)
            if ev is not None:
                ev.synchronize()  # waits for that step only; later steps stay queued
            value = float(host)
            if not math.isfinite(value):
                raise _NonFiniteLoss(info["step"], info["lrs"], value)
            info["loss"] = value
            assert self._cycle is not None
            self._emit_step(info, self._cycle)

    _last_step_time = 0.0

    def _emit_step(self, info: dict[str, Any], cycle: _Cycle) -> None:
        now = time.perf_counter()
        dt = now - self._last_step_time
        self._last_step_time = now
        n = info.pop("n")
        img_s = n / dt if dt > 0 else float("nan")
        # An exponential average keeps the figure steady for progress() and the ETA.
        a = self._img_s_avg
        self._img_s_avg = img_s if not (a == a) else 0.9 * a + 0.1 * img_s
        cycle.epoch_loss_sum += info["loss"] * n
        cycle.epoch_loss_n += n
        t = now - (self._run_started or now)
        row = {"step": info["step"], "epoch": info["epoch"], "batch": info["batch"],
               "loss": info["loss"], "lr": info["lrs"][-1], "img_s": img_s, "time": t}
        self._steps.append(row)
        if len(self._steps) - self._steps_written >= _STEPS_FLUSH_EVERY:
            self._flush_steps()
        self._publish("step", {**{k: row[k] for k in ("step", "epoch", "batch", "loss", "img_s",
                                                      "time")}, "lrs": list(info["lrs"])})

    def _end_epoch(self, cycle: _Cycle, epoch: int) -> None:
        valid_loss, accuracy = self._validate()
        train_loss = cycle.epoch_loss_sum / cycle.epoch_loss_n if cycle.epoch_loss_n else float("nan")
        seconds = time.perf_counter() - self._epoch_t0
        assert self._optimizer is not None
        lrs = [g["lr"] for g in self._optimizer.param_groups]
        row = {"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss,
               "accuracy": accuracy, "seconds": seconds, "lr": lrs[-1]}
        self._history.append(row)
        self._epochs_done = epoch
        cycle.batch_in_epoch = 0
        cycle.epoch_loss_sum, cycle.epoch_loss_n = 0.0, 0
        self._write_epoch_files(row)
        self._publish("epoch", {**row, "lrs": lrs})

    @torch.no_grad()
    def _validate(self) -> tuple[float, float]:
        modes = [(m, m.training) for m in self.model.modules()]
        total_loss = torch.zeros((), device=self.device, dtype=torch.float64)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        count = 0
        try:
            self.model.eval()
            if self._cache is not None:
                batches: Iterable[Any] = self._cache.valid_batches(self.data.batch_size)
                forward: Callable[[torch.Tensor], torch.Tensor] = self._cache.forward
            else:
                batches, forward = self.data.valid_loader(), self.model
            for x, y in batches:
                if self._cache is None:
                    x = x.to(self.device, non_blocking=True)
                    if self._channels_last:
                        x = x.contiguous(memory_format=torch.channels_last)
                    y = y.to(self.device, non_blocking=True)
                with self._autocast():
                    out = forward(x).float()
                total_loss += nn.functional.cross_entropy(out, y, reduction="sum").double()
                correct += (out.argmax(1) == y).sum()
                count += int(y.shape[0])
        finally:
            # Put every module back as it was (this keeps the BN policy of tlwidgets.freeze).
            for m, was_training in modes:
                m.training = was_training
        if count == 0:
            return float("nan"), float("nan")
        return float(total_loss) / count, float(correct) / count

    def _should_stop_early(self) -> bool:
        row = self._history[-1]
        # best checkpoint by self.metric
        value = row[self.metric]
        better = self._improves(value, self._best, _METRICS[self.metric], 0.0)
        if better:
            self._best = value
        self._save_checkpoint("last", link_best=better, background=True)
        es = self.early_stopping
        if es is None:
            return False
        v = row[es["metric"]]
        improved = self._improves(v, self._es_ref, _METRICS[es["metric"]], es["min_delta"])
        if improved:
            self._es_ref = v
            self._bad_epochs = 0
            return False
        self._bad_epochs += 1
        if self._bad_epochs >= es["patience"]:
            self._log(
                f"early stopping after epoch {row['epoch']}: {es['metric']} did not improve for "
                f"{self._bad_epochs} epochs"
            )
            return True
        return False

    _es_ref: float | None = None

    @staticmethod
    def _improves(v: float, ref: float | None, mode: str, delta: float) -> bool:
        if v != v:  # NaN never improves
            return False
        if ref is None:
            return True
        return v < ref - delta if mode == "min" else v > ref + delta

    # ------------------------------------------------------------------ files
    def _write_epoch_files(self, row: dict[str, Any]) -> None:
        self._flush_steps()
        path = self.run_dir / "history.csv"
        df = pd.DataFrame([row], columns=_HISTORY_COLUMNS)
        header = not path.exists() or path.stat().st_size == 0
        # Appended and closed (flushed to the OS) at once: a dead kernel loses nothing written;
        # no fsync, which would cost more than the epoch's bookkeeping on a slow disk.
        with open(path, "a", encoding="utf-8") as fh:
            df.to_csv(fh, header=header, index=False)

    def _flush_steps(self) -> None:
        new = self._steps[self._steps_written :]
        if not new:
            return
        path = self.run_dir / "steps.csv"
        header = not path.exists() or path.stat().st_size == 0
        with open(path, "a", encoding="utf-8") as fh:
            pd.DataFrame(new, columns=_STEP_COLUMNS).to_csv(fh, header=header, index=False)
        self._steps_written = len(self._steps)

    def _config(self) -> dict[str, Any]:
        return {
            "lr": _lr_to_plain(self.lr), "epochs": self.epochs, "optimizer": self.optimizer_name,
            "schedule": self.schedule_name, "weight_decay": self.weight_decay,
            "grad_accum": self.grad_accum, "clip_grad": self.clip_grad,
            "early_stopping": self.early_stopping, "cache_features": self.cache_features,
            "metric": self.metric, "seed": self.seed,
        }

    def _save_checkpoint(self, name: str, link_best: bool = False,
                         background: bool = False) -> None:
        """Write checkpoint ``name`` (and make "best" a hard link to it when ``link_best``).

        The weights and optimizer state are copied to CPU memory here, at the step boundary;
        with ``background`` a writer thread serialises them while the next epoch trains (one
        write in flight at most; the run waits for it before it ends)."""
        self._join_writer()
        bn_eval: list[str] = []
        bn_frozen = False
        modes = [(m, m.training) for m in self.model.modules()]
        try:
            self.model.train()
            bn_eval = [n for n, m in self.model.named_modules()
                       if isinstance(m, nn.modules.batchnorm._NormBase) and not m.training]
            bn_frozen = any("FrozenBatchNorm" in type(m).__name__ for m in self.model.modules())
        finally:
            for m, was in modes:
                m.training = was
        state = {
            "format": 1,
            "config": self._config(),
            "history": [dict(r) for r in self._history],
            "global_step": self._global_step,
            "epochs_done": self._epochs_done,
            "best": self._best,
            "bad_epochs": self._bad_epochs,
            "cycle": self._cycle.to_dict() if self._cycle else None,
            "optimizer": snapshot_state(self._optimizer.state_dict())
            if self._optimizer is not None else None,
            "scaler": snapshot_state(self._scaler.state_dict()) if self._scaler is not None else None,
            "trainable": [n for n, p in self.model.named_parameters() if p.requires_grad],
            "bn_policy": "frozen" if bn_frozen else ("eval" if bn_eval else "train"),
            "classes": list(getattr(self.data, "classes", [])),
        }
        weights = snapshot_weights(self.model)
        folder = self.run_dir / "checkpoints"
        info = {"model": _model_name(self.model), "classes": state["classes"],
                "epochs_done": self._epochs_done, "global_step": self._global_step,
                "config": self._config()}
        run_json = self.run_dir / "run.json"

        def write() -> None:
            save_checkpoint(folder, name, weights, state)
            if link_best:
                # "best" is this epoch's "last": a hard link costs no second write (the next
                # "last" is a new file, so the link keeps these bytes).
                link_checkpoint(folder, name, "best")
            if name == "last":
                atomic_write(run_json, lambda tmp: Path(tmp).write_text(
                    json.dumps(info, indent=2, default=str)))

        if not background:
            write()
            return

        def run() -> None:
            try:
                write()
            except Exception as exc:  # noqa: BLE001 - reported by _join_writer
                self._writer_error = exc

        self._writer = threading.Thread(target=run, name="tlwidgets-checkpoint", daemon=True)
        self._writer.start()

    _writer: threading.Thread | None = None
    _writer_error: BaseException | None = None

    def _join_writer(self) -> None:
        """Wait for the checkpoint being written in the background, and report its failure."""
        writer = self._writer
        if writer is not None:
            writer.join()
            self._writer = None
        if self._writer_error is not None:
            exc, self._writer_error = self._writer_error, None
            self._log(f"could not write a checkpoint to {self._run_dir}: {exc}")

    # ------------------------------------------------------------------ lr_find, evaluation
    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100,
                stop_div: bool = True) -> "LRFindResult":
        """Sweep the learning rate exponentially and return the losses and a suggestion.

        Stops early when the smoothed loss exceeds 4x its best. Afterwards the model's weights
        and buffers (BN statistics included), ``requires_grad`` flags, module modes, the
        trainer's optimizer and the random number generators are exactly as before.
        The suggestion is fastai's ``valley``; ``steep`` (steepest slope) is given too.

        >>> result = trainer.lr_find()                                        # doctest: +SKIP
        >>> result.suggestion, result.df.head()                               # doctest: +SKIP
        """
        from ..evaluation import model_lock
        from .lr_finder import lr_find as _lr_find

        self._check_not_active("lr_find()")
        with model_lock(self.model):
            return _lr_find(self, start_lr=start_lr, end_lr=end_lr, num_it=num_it,
                            stop_div=stop_div)

    def evaluate(self) -> "Evaluation":
        """Predictions on the validation split: accuracy, confusion matrix, per-class metrics,
        top losses.

        >>> ev = trainer.evaluate(); ev.accuracy, ev.confusion                # doctest: +SKIP
        """
        from ..evaluation import evaluate

        self._check_not_active("evaluate()")
        self._place_model()
        return evaluate(self.model, self.data, device=self.device, autocast=self._autocast,
                        channels_last=self._channels_last)

    def predict(self, images: Any, k: int = 3, preprocessed: bool = False) -> pd.DataFrame:
        """Top-``k`` classes and probabilities for image paths, PIL images, arrays or tensors.

        Arrays and tensors are raw images (uint8 0..255 or float 0..1) and go through the data's
        eval transform, unless ``preprocessed=True`` says they already are model input.

        >>> trainer.predict(["cat.jpg", "dog.jpg"], k=2)                      # doctest: +SKIP
        """
        from ..evaluation import predict

        self._check_not_active("predict()")
        self._place_model()
        return predict(self.model, self.data, images, k=k, device=self.device,
                       autocast=self._autocast, preprocessed=preprocessed)

    def export(self, path: str | os.PathLike[str], format: str = "safetensors") -> Path:
        """Write the model for inference (``"safetensors"``, ``"torchscript"`` or ``"onnx"``)
        with ``<path>.json`` beside it holding the class names and preprocessing.

        >>> trainer.export("model.safetensors")                               # doctest: +SKIP
        """
        from ..evaluation import export

        self._check_not_active("export()")
        return export(self.model, self.data, path, format=format)

    def __repr__(self) -> str:
        return (f"Trainer({self.name}, state={self._state!r}, "
                f"epochs_done={self._epochs_done}, device={self.device})")


class _Snapshot:
    """Device-side copy of what an optimizer step can change (trainable weights, buffers),
    taken before each step on accelerators so a late-detected non-finite loss can be undone."""

    def __init__(self, model: nn.Module, params: bool = True) -> None:
        self.live = [p for p in model.parameters() if p.requires_grad and params] + [
            b for b in model.buffers() if b.is_floating_point() or b.dtype == torch.long
        ]
        self.copies = [t.detach().clone() for t in self.live]
        self.valid = False

    @torch.no_grad()
    def take(self) -> None:
        if self.live:
            torch._foreach_copy_(self.copies, [t.detach() for t in self.live])
        self.valid = True

    @torch.no_grad()
    def restore(self) -> None:
        if self.valid and self.live:
            torch._foreach_copy_([t.detach() for t in self.live], self.copies)

