"""The Trainer: configuration + state machine + a thread + hooks, around the one step loop.

>>> import tlwidgets as tlw
>>> model = tlw.create_model("resnet18", num_classes=4, weights="none")   # doctest: +SKIP
>>> trainer = tlw.Trainer(model, tlw.sample_data(model=model), epochs=2)  # doctest: +SKIP
>>> trainer.start()            # returns at once; the next cell runs while it trains  # doctest: +SKIP
>>> trainer.pause(); trainer.resume(); trainer.stop(); trainer.wait()    # doctest: +SKIP
>>> trainer.history                                                    # doctest: +SKIP

How it is built (docs/ARCHITECTURE.md has the picture):

- **One loop.** Every optimizer step of ``fit``, ``fine_tune``, ``lr_find`` and the cached-feature
  path happens in :class:`~tlwidgets.training.loop.StepLoop`, with one
  :class:`~tlwidgets._runtime.DeviceContext` (device, AMP, grad scaler, channels-last, moving
  tensors or dicts of tensors).
- **Hooks** (:mod:`.hooks`) do what happens around it: rebuilding the optimizer when the freeze
  state changes, the divergence guard, early stopping, the run's files, checkpoints, console
  progress. Their state is saved in the checkpoint and restored by ``Trainer.resume``.
- **Threading.** The loop never touches a widget; it publishes :class:`TrainerEvent` s to
  subscribers on the thread that runs it. Pause and stop go in through a
  :class:`~tlwidgets.training.loop.Control` checked between steps. During a blocking ``fit()`` on
  the main thread the first Ctrl-C asks for a stop after the current step, a second one
  interrupts at once; while the run's files are being finished Ctrl-C is ignored, so the trainer
  always reaches a final state with its last checkpoint on disk.
- **Training again.** ``fit()``/``start()`` after a run ended starts a new cycle (a fresh
  schedule over ``epochs`` more epochs) in the same run folder; after ``Trainer.resume(...)`` the
  first ``fit()`` without arguments finishes the interrupted cycle instead.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from torch import nn

from .._runtime import DeviceContext, model_lock
from ..errors import ConfigError, TrainerStateError, TrainingError
from .config import TrainerConfig, check_epochs, check_lr
from .cycles import EpochRunner
from .describe import bn_policy_now, model_name, run_label
from .distributed import Distributed, DistributedHook
from .events import TrainerEvent
from .failures import describe_failure
from .feature_store import FeatureStore
from .hooks import (
    BusyCPUHint,
    Checkpoints,
    DivergenceGuard,
    EarlyStopping,
    OptimizerRebuild,
    RunFiles,
)
from .loop import StepLoop
from .machine import ACTIVE, STATES, RunMachine
from .optim import build_optimizer
from .preflight import check_head, check_run_folder, expected_checkpoint_bytes
from .progress import ConsoleProgress
from .resume import read_run, restore_run
from .run_hook import RunFolder
from .state import HISTORY_COLUMNS, STEP_COLUMNS, RunState

if TYPE_CHECKING:
    from ..evaluation import Evaluation
    from .lr_finder import LRFindResult

__all__ = ["STATES", "Trainer", "run_label"]



def _fz() -> Any:
    return importlib.import_module("tlwidgets.freeze")  # the package binds `freeze` to the function


class _ResumeDescriptor:
    """``Trainer.resume(run_dir, model, data, **overrides)`` on the class builds a trainer that
    continues that run; ``trainer.resume()`` un-pauses, ``trainer.resume(run_dir)`` loads a run
    into this trainer."""

    def __get__(self, obj: Trainer | None, objtype: type | None = None) -> Callable[..., Any]:
        if obj is None:
            assert objtype is not None
            return objtype._resume_run
        return obj._resume_instance


class Trainer(RunMachine):
    """Train ``model`` on ``data`` with a one-cycle schedule, live events and checkpoints.

    Arguments (checked once, into :class:`~tlwidgets.training.config.TrainerConfig`):
    ``lr`` (a float, or ``slice(lo, hi)`` / ``slice(hi)`` for discriminative rates; each layer
    group's rate is also multiplied by ``tlw.lr_multipliers(model)``), ``epochs`` (per
    ``fit()``), ``optimizer`` (``"adamw"``, ``"adam"``, ``"sgd"``), ``schedule``
    (``"one_cycle"``, ``"cosine"``, ``"constant"``), ``weight_decay``, ``amp`` (``"auto"``: mixed
    precision on CUDA; ``"bf16"``/``"fp16"`` pick the dtype, fp16 with a grad scaler),
    ``channels_last`` (``"auto"``: on CUDA for conv nets), ``device`` (``"auto"``), ``grad_accum``, ``clip_grad``,
    ``early_stopping`` (an int patience or ``{"patience", "metric", "min_delta"}``), ``run_dir``
    (default ``./runs/<timestamp>-<model>``), ``cache_features`` (``"auto"``, ``True``,
    ``False``), ``callbacks`` (event observers), ``metric`` (picks ``best``: ``"accuracy"``,
    ``"valid_loss"``, ``"train_loss"``), ``seed``, ``name`` (the label in dashboards; default
    :func:`run_label`), ``verbose`` (console progress: ``"auto"`` prints unless a dashboard
    shows it), ``restore_best`` (put the best epoch's weights back when a run ends, like Keras'
    ``restore_best_weights``).

    >>> import torch, tlwidgets as tlw
    >>> data = tlw.ImageData.from_arrays(torch.rand(40, 3, 32, 32), [0, 1] * 20)  # doctest: +SKIP
    >>> model = tlw.create_model("resnet18", num_classes=2, weights="none")          # doctest: +SKIP
    >>> trainer = tlw.Trainer(model, data, lr=1e-3, epochs=2)                       # doctest: +SKIP
    >>> trainer.fit()                                                               # doctest: +SKIP
    """

    resume = _ResumeDescriptor()

    def __init__(self, model: nn.Module, data: Any, lr: float | slice = 1e-3, epochs: int = 3,
                 optimizer: str = "adamw", schedule: str = "one_cycle", weight_decay: float = 0.01,
                 amp: bool | str = "auto", device: Any = "auto", grad_accum: int = 1,
                 clip_grad: float | None = None, early_stopping: int | dict[str, Any] | None = None,
                 run_dir: str | os.PathLike[str] | None = None, cache_features: bool | str = "auto",
                 callbacks: Iterable[Callable[[TrainerEvent], Any]] = (), metric: str = "accuracy",
                 seed: int | None = None, name: str | None = None, verbose: bool | str = "auto",
                 restore_best: bool = False, channels_last: bool | str = "auto") -> None:
        if not isinstance(model, nn.Module):
            raise ConfigError(
                f"Trainer needs a torch.nn.Module as model, got {type(model).__name__}; "
                "make one with tlw.create_model(name, num_classes).")
        for attr in ("classes", "train_loader", "valid_loader"):
            if not hasattr(data, attr):
                raise ConfigError(
                    f"Trainer needs a tlw.ImageData as data (it has no {attr!r}); build one with "
                    "tlw.ImageData.from_folder(...) or tlw.ImageData.from_arrays(...).")
        self.config = TrainerConfig.create(
            lr=lr, epochs=epochs, optimizer=optimizer, schedule=schedule,
            weight_decay=weight_decay, amp=amp, device=device, grad_accum=grad_accum,
            clip_grad=clip_grad, early_stopping=early_stopping, cache_features=cache_features,
            metric=metric, seed=seed, verbose=verbose, restore_best=restore_best,
            channels_last=channels_last)
        check_head(model, data)
        self.model, self.data = model, data
        #: the torchrun job this process is part of, or None (docs: training/distributed.py)
        self.distributed = Distributed.from_env(device)
        dist = self.distributed
        self.device_context = DeviceContext.create(dist.device if dist else device, amp, model,
                                                   channels_last)
        self._name = str(name) if name is not None else None
        self._run_dir_arg = Path(run_dir) if run_dir is not None else None
        if dist is not None and run_dir is None:  # one folder for the job: rank 0 names it
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
            self._run_dir_arg = Path(dist.agree(f"runs/{stamp}-{model_name(model)}"))
        self._writes_files = dist is None or dist.is_main
        self._run_dir: Path | None = None
        super().__init__()
        for fn in callbacks:
            self._events.subscribe(fn)
        self.run = RunState(model=model, data=data, config=self.config, ctx=self.device_context,
                            run_dir=lambda: self.run_dir, log=self._log, publish=self._publish,
                            dist=dist)
        self._placed = False
        self._freeze_facts: tuple[int, dict[str, Any]] | None = None
        self._restored = False  # True once this trainer ran in (or resumed) its run folder
        self._label_at_start: str | None = None
        self._cycles = EpochRunner(self.run, self._control,
                                   StepLoop(self.device_context, self._control,
                                            self.config.grad_accum, self.config.clip_grad),
                                   self._hook, store=FeatureStore(),
                                   progress=self._console_wanted)
        self.checkpoints = Checkpoints(self.config.metric, self._payload, self._cycles.freeze_version)
        self._run_files = RunFiles()
        self._run_folder = RunFolder(self._run_info, progress=self.progress, command=self._command,
                                     dist=dist)
        hooks: list[Any] = [OptimizerRebuild(self._cycles.rebuild_optimizer, self._cycles.freeze_version),
                            DivergenceGuard(), BusyCPUHint()]
        if self._writes_files:  # under torchrun only rank 0 writes files
            hooks += [self._run_files, self._run_folder, self.checkpoints,
                      ConsoleProgress(self._console_wanted, self._steps_per_epoch_safe)]
            self._events.subscribe(self._run_folder.on_event)
        if dist is not None:
            hooks.append(DistributedHook(dist))
            dist.on_command = self._command
        self._control.on_wait = dist.wait_tick if dist is not None else self._run_folder.poll
        if self.config.early_stopping is not None:
            hooks.append(EarlyStopping(self.config.early_stopping))
        self.hooks = sorted(hooks, key=lambda h: h.order)
        self.run.hooks = {h.name: h for h in self.hooks}

    # ------------------------------------------------------------------ public state
    @property
    def lr(self) -> float | slice:
        """The peak learning rate of the next ``fit()``/``start()`` (settable, checked)."""
        return self.config.lr

    @lr.setter
    def lr(self, value: float | slice) -> None:
        self._reconfigure(lr=value)

    @property
    def epochs(self) -> int:
        """Epochs per ``fit()``/``start()`` call (settable, checked)."""
        return self.config.epochs

    @epochs.setter
    def epochs(self, value: int) -> None:
        self._reconfigure(epochs=value)

    def _reconfigure(self, **changes: Any) -> None:
        self._check_not_active("change the configuration")
        self.config = self.run.config = self.config.replace(**changes)

    device = property(lambda self: self.device_context.device, doc="Where the model trains.")
    optimizer = property(lambda self: self.run.optimizer,
                         doc="The live torch optimizer (read-only), or None before a run.")
    param_group_names = property(lambda self: list(self.run.group_names),
                                 doc="One name per optimizer param group (as in step 'lrs').")
    step_loop = property(lambda self: self._cycles.loop,
                         doc="The StepLoop every optimizer step runs in (its sync_seconds says "
                             "how long the loop waited for losses on an accelerator).")
    feature_cache = property(lambda self: self.run.feature_cache,
                             doc="The FeatureCache in use (head-only runs), or None.")
    warnings = property(lambda self: list(self.run.warnings),
                        doc="Problems that did not stop a run (say, a checkpoint not written).")

    @property
    def name(self) -> str:
        """The run's label in dashboards and comparisons (``name=``, else :func:`run_label` of the
        model as it was when the last run started)."""
        return self._name or self._label_at_start or run_label(self.model)

    @name.setter
    def name(self, value: str) -> None:
        self._name = str(value)

    @property
    def run_dir(self) -> Path:
        """The folder holding ``history.csv``, ``steps.csv`` and ``checkpoints/`` of this run."""
        if self._run_dir is None:
            if self._run_dir_arg is not None:
                if self._writes_files:  # rank 0's folder: other ranks only read it
                    check_run_folder(self._run_dir_arg, fresh=False, need_bytes=0)
                self._run_dir = self._run_dir_arg.resolve()
            else:
                stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
                candidate = Path("runs") / f"{stamp}-{model_name(self.model)}"
                try:
                    candidate.mkdir(parents=True, exist_ok=False)
                    self._run_dir = candidate.resolve()
                except OSError:  # a read-only working directory: keep the run in a temp folder
                    self._run_dir = Path(tempfile.mkdtemp(prefix=f"tlwidgets-{model_name(self.model)}-"))
        return self._run_dir

    @property
    def history(self) -> pd.DataFrame:
        """One row per completed epoch: epoch, train_loss, valid_loss, accuracy, seconds, lr."""
        return pd.DataFrame(list(self.run.history), columns=HISTORY_COLUMNS)

    @property
    def steps(self) -> pd.DataFrame:
        """One row per training step: step, epoch, batch, loss, lr, img_s, time."""
        return pd.DataFrame(list(self.run.steps), columns=STEP_COLUMNS)

    def progress(self) -> dict[str, Any]:
        """Where the run is: epoch, epochs, step, steps_per_epoch, total_steps, elapsed (paused
        time excluded), eta, img_s, device and memory (peak CUDA bytes, else the process RSS).

        >>> trainer.progress()["eta"]                                          # doctest: +SKIP
        12.5
        """
        r, spe, cyc = self.run, self._steps_per_epoch_safe(), self.run.cycle
        epochs_total = (cyc.start_epoch + cyc.epochs) if cyc else r.epochs_done + self.epochs
        elapsed = 0.0
        if self._cycles.run_started is not None:
            elapsed = time.perf_counter() - self._cycles.run_started - self._control.paused_total()
        eta = None
        if cyc is not None and spe and self._state in ACTIVE:
            left = cyc.epochs * spe - ((r.epochs_done - cyc.start_epoch) * spe + cyc.batch_in_epoch)
            rate, bs = self._cycles.img_s_avg, getattr(self.data, "batch_size", 1) or 1
            if rate == rate and rate > 0:
                eta = left * bs / rate
        elif self._state in ("finished", "stopped", "failed", "idle"):
            eta = 0.0 if r.history else None
        return {"epoch": r.epochs_done + (1 if self._state in ACTIVE else 0),
                "epochs": epochs_total, "step": r.global_step, "steps_per_epoch": spe,
                "total_steps": epochs_total * spe if spe else None, "elapsed": elapsed,
                "eta": eta, "img_s": self._cycles.img_s_avg, "device": str(self.device),
                "memory": self._memory()}

    def _memory(self) -> int | None:
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        try:
            import resource

            return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # KiB on Linux
        except (ImportError, OSError):
            return None

    def _steps_per_epoch_safe(self) -> int | None:
        # Called from other threads (a dashboard's timer): never build a loader here.
        try:
            cache, loader = self.run.feature_cache, self._cycles.train_loader
            if cache is not None:
                return len(cache)
            if loader is not None:
                return len(loader)
            return math.ceil(len(self.data.train_items) / self.data.batch_size)
        except Exception:  # noqa: BLE001 - progress() must never raise
            return None

    # ------------------------------------------------------------------ commands
    def fit(self, epochs: int | None = None, lr: float | slice | None = None) -> pd.DataFrame:
        """Train for ``epochs`` (default: the trainer's) and block until done; returns ``history``.

        Ctrl-C stops cleanly after the current step (state ``stopped``, nothing raised). A failure
        (non-finite or diverging loss, out of memory, a failing subscriber) ends in state
        ``failed`` and raises :class:`TrainingError`, the model put back to its last good weights.

        >>> trainer.fit(epochs=2)                                             # doctest: +SKIP
        """
        return self._run_blocking(self._plan_fit(epochs, lr))

    def start(self, epochs: int | None = None, lr: float | slice | None = None) -> Trainer:
        """Run ``fit()`` in a background thread and return at once.

        >>> trainer.start(); trainer.state                                    # doctest: +SKIP
        'running'
        """
        self._launch(self._plan_fit(epochs, lr))
        return self

    def fine_tune(self, epochs: int, freeze_epochs: int = 1, base_lr: float = 2e-3,
                  lr_mult: float = 100, background: bool = False) -> pd.DataFrame | Trainer:
        """fastai's recipe: train the head for ``freeze_epochs`` (one-cycle at ``base_lr``,
        ``pct_start=0.99``), then unfreeze and train ``epochs`` with one-cycle and rates
        ``slice(base_lr/2/lr_mult, base_lr/2)`` (``pct_start=0.3``, ``div=5``), as fastai's
        ``Learner.fine_tune``. Blocks like ``fit()``; ``background=True`` runs like ``start()``.

        >>> trainer.fine_tune(3)                                             # doctest: +SKIP
        """
        check_epochs(epochs)
        if isinstance(freeze_epochs, bool) or not isinstance(freeze_epochs, int) or freeze_epochs < 0:
            raise ConfigError(f"freeze_epochs must be an integer >= 0, got {freeze_epochs!r}.")
        check_lr(base_lr)
        if isinstance(lr_mult, bool) or not isinstance(lr_mult, (int, float)) \
                or not (math.isfinite(lr_mult) and lr_mult >= 1):
            raise ConfigError(f"lr_mult must be a number >= 1 (the head's rate over the stem's), "
                              f"got {lr_mult!r}; fastai's default is 100.")
        self._check_not_active("fine_tune()")
        self._preflight()
        half = base_lr / 2

        def phase_head() -> None:
            _fz().freeze_to(self.model, -1)
            self._cycles.fit_cycle(freeze_epochs, base_lr, "one_cycle", pct_start=0.99)

        def phase_all() -> None:
            _fz().unfreeze(self.model)
            self._cycles.fit_cycle(epochs, slice(half / lr_mult, half), "one_cycle", pct_start=0.3, div=5.0)

        phases = ([phase_head] if freeze_epochs > 0 else []) + [phase_all]
        if background:
            self._launch(phases)
            return self
        return self._run_blocking(phases)

    def restore(self, which: str = "best") -> str:
        """Put the ``"best"`` or ``"last"`` checkpoint's weights back into the model (the weights
        the run started with when no checkpoint exists yet); returns what it did.

        >>> trainer.restore("best")                                           # doctest: +SKIP
        "the model was put back to its 'best' checkpoint"
        """
        if which not in ("best", "last"):
            raise ConfigError(f"restore() takes 'best' or 'last', got {which!r}.")
        self._check_not_active("restore()")
        message = self.checkpoints.restore(self.run, which)
        self._log(message)
        return message

    # ------------------------------------------------------------------ resume (both meanings)
    @classmethod
    def _resume_run(cls, run_dir: str | os.PathLike[str], model: nn.Module, data: Any,
                    **overrides: Any) -> Trainer:
        """``Trainer.resume(run_dir, model, data, **overrides)``: a trainer continuing that run."""
        cfg = TrainerConfig.from_dict(read_run(run_dir)["config"]).to_dict()
        cfg["lr"] = TrainerConfig.from_dict({"lr": cfg["lr"]}).lr
        trainer = cls(model, data, **{**cfg, **overrides, "run_dir": run_dir})
        trainer._restore(run_dir)
        return trainer

    def _resume_instance(self, run_dir: str | os.PathLike[str] | None = None) -> None:
        if run_dir is None:
            self._unpause()
            return
        self._check_not_active("resume(run_dir)")
        self._run_dir_arg, self._run_dir = Path(run_dir), None
        self._restore(run_dir)

    def _restore(self, run_dir: str | os.PathLike[str]) -> None:
        self._place_model()
        self._cycles.pending_cycle = restore_run(run_dir, self.run, self.hooks, self._cycles.rebuild_optimizer)
        self._run_files.steps_written = len(self.run.steps)
        self._restored = True

    # ------------------------------------------------------------------ run plumbing
    def _plan_fit(self, epochs: int | None, lr: float | slice | None) -> list[Callable[[], None]]:
        self._check_not_active("start a run")
        self._preflight()
        if epochs is not None:
            check_epochs(epochs)
        if lr is not None:
            check_lr(lr)
        if self._cycles.pending_cycle and epochs is None and lr is None:
            return [self._cycles.continue_cycle]
        n, peak = self.epochs if epochs is None else epochs, self.lr if lr is None else lr
        return [lambda: self._cycles.fit_cycle(n, peak, self.config.schedule)]

    def _command(self, name: str) -> None:
        """A command from the run folder's control.json (or rank 0's, under torchrun)."""
        action = {"pause": self.pause, "resume": self._unpause, "stop": self.stop}.get(name)
        if action is not None:
            with contextlib.suppress(TrainerStateError):
                action()

    def _hook(self, method: str, *args: Any) -> None:
        for h in self.hooks:
            getattr(h, method)(self.run, *args)

    def _preflight(self) -> None:
        """Refuse, at the call, a run that could not save its work or would mix two runs."""
        self._check_not_active("start a run")
        if self._writes_files:
            check_run_folder(self.run_dir, fresh=not self._restored,
                             need_bytes=expected_checkpoint_bytes(self.model))
        self._restored = True  # this trainer's own run is in the folder now: later fits continue it

    def _begin_run(self) -> None:
        self._cycles.run_started = time.perf_counter()
        if self.config.seed is not None:
            torch.manual_seed(self.config.seed)
            random.seed(self.config.seed)
        self._place_model()
        self._label_at_start = run_label(self.model)
        self._hook("on_run_start")

    def _end_run(self, final: str) -> None:
        for h in self.hooks:
            try:
                h.on_run_end(self.run, final)
            except BaseException as exc:  # noqa: BLE001 - a full disk must not hide the outcome
                self.run.warn(f"{h.name}: could not finish the run's files: {exc}")
        if final == "finished" and self.config.restore_best:
            with contextlib.suppress(TrainingError):
                self._log(self.checkpoints.restore(self.run, "best"))

    def _describe_failure(self, exc: BaseException
                          ) -> tuple[str, BaseException | None, BaseException | None]:
        return describe_failure(self, exc)

    def _failed_at_step(self) -> int:
        return self.run.global_step

    def _history_frame(self) -> pd.DataFrame:
        return self.history

    def _wait_for_files(self) -> None:
        self.checkpoints.join(self.run, fail=False)

    def _console_wanted(self) -> bool:
        verbose = self.config.verbose
        return verbose is True or (verbose == "auto" and self._displays == 0)

    def _place_model(self) -> None:
        if not self._placed:
            self.device_context.prepare(self.model)
            self._placed = True

    # ------------------------------------------------------------------ what checkpoints hold
    def _run_info(self) -> dict[str, Any]:
        r = self.run
        return {"model": model_name(self.model), "name": self.name, "classes": r.classes,
                "epochs_done": r.epochs_done, "global_step": r.global_step,
                "config": self.config.to_dict()}

    def _payload(self) -> dict[str, Any]:
        from .checkpoints import snapshot_state

        r = self.run
        version = self._cycles.freeze_version()
        if self._freeze_facts is None or self._freeze_facts[0] != version:
            # what only a freeze change can change: read once per change, not once per epoch
            self._freeze_facts = (version, {
                "trainable": [n for n, p in self.model.named_parameters() if p.requires_grad],
                "bn_policy": bn_policy_now(self.model),
                "lr_multipliers": _fz().lr_multipliers(self.model)})
        return {
            "format": 2, "config": self.config.to_dict(),
            "history": [dict(x) for x in r.history], "global_step": r.global_step,
            "epochs_done": r.epochs_done, "cycle": r.cycle.to_dict() if r.cycle else None,
            "optimizer": snapshot_state(r.optimizer.state_dict()) if r.optimizer else None,
            "scaler": snapshot_state(r.scaler.state_dict()) if r.scaler is not None else None,
            **self._freeze_facts[1], "classes": r.classes,
            "hooks": {h.name: h.state_dict() for h in self.hooks if h.state_dict()},
        }

    # ------------------------------------------------------------------ lr_find, evaluation
    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100,
                stop_div: bool = True) -> LRFindResult:
        """Sweep the learning rate exponentially over ``num_it`` optimizer steps of the same loop,
        optimizer, per-group rates (LR multipliers, slices), gradient accumulation and clipping
        that ``fit`` uses; return the losses and fastai's ``valley`` suggestion. Stops early when
        the smoothed loss passes 4x its best. Afterwards weights, buffers, ``requires_grad``,
        module modes, the trainer's optimizer and the random generators are exactly as before.

        >>> result = trainer.lr_find(); result.suggestion                     # doctest: +SKIP
        """
        from .lr_finder import lr_sweep

        self._check_not_active("lr_find()")
        self._place_model()
        had_loader = self._cycles.train_loader is not None
        gen = getattr(self._cycles.train_loader, "generator", None)
        gen_state = gen.get_state() if gen is not None else None
        with model_lock(self.model):
            try:
                self.model.train()
                self._cycles.refresh_cache()
                forward = self._cycles.batches()[1]
                result = lr_sweep(
                    self.model, lambda: self._cycles.batches()[0], forward,
                    lambda lr: build_optimizer(self.model, self.config.optimizer, lr,
                                               weight_decay=self.config.weight_decay,
                                               device_type=self.device.type),
                    self.device_context, grad_accum=self.config.grad_accum,
                    clip_grad=self.config.clip_grad, lr=self.lr, start_lr=start_lr,
                    end_lr=end_lr, num_it=num_it, stop_div=stop_div)
            finally:
                # the loader's shuffling is rewound: the next fit() sees the batches it would
                # have seen without the sweep
                if gen is not None and gen_state is not None:
                    gen.set_state(gen_state)
                elif not had_loader and self._cycles.train_loader is not None:
                    new_gen = getattr(self._cycles.train_loader, "generator", None)
                    seed = getattr(self.data, "seed", None)
                    if new_gen is not None and seed is not None:
                        new_gen.manual_seed(seed)
        self._log(f"lr_find: {len(result.df)} steps, suggestion {result.suggestion:.3g} (valley), "
                  f"steep {result.steep:.3g}")
        return result

    def evaluate(self) -> Evaluation:
        """Predictions on the validation split: accuracy, confusion matrix, per-class metrics,
        top losses. ``>>> trainer.evaluate().confusion   # doctest: +SKIP``"""
        from ..evaluation import evaluate

        self._check_not_active("evaluate()")
        self._place_model()
        return evaluate(self.model, self.data, ctx=self.device_context)

    def predict(self, images: Any, k: int = 3, preprocessed: bool = False) -> pd.DataFrame:
        """Top-``k`` classes and probabilities for image paths, PIL images, arrays or tensors
        (raw images go through the data's eval transform unless ``preprocessed=True``).

        >>> trainer.predict(["cat.jpg", "dog.jpg"], k=2)                      # doctest: +SKIP
        """
        from ..evaluation import predict

        self._check_not_active("predict()")
        self._place_model()
        return predict(self.model, self.data, images, k=k, ctx=self.device_context,
                       preprocessed=preprocessed)

    def export(self, path: str | os.PathLike[str], format: str = "safetensors") -> Path:
        """Write the model for inference and return where it went.

        An image model: one file (``"safetensors"``, ``"torchscript"`` or ``"onnx"``) with
        ``<path>.json`` beside it. A text model: a folder (``path`` without its suffix) holding
        the Hugging Face model (LoRA merged), its tokenizer and ``tlwidgets_export.json``, which
        ``tlw.create_model(folder, num_classes=k)`` loads again; ``"torchscript"`` adds
        ``model.pt`` (see :mod:`tlwidgets.text.export`).

        >>> trainer.export("model.safetensors")          # doctest: +SKIP
        """
        from ..evaluation import export

        self._check_not_active("export()")
        return export(self.model, self.data, path, format=format)

    def __repr__(self) -> str:
        return (f"Trainer({self.name}, state={self._state!r}, "
                f"epochs_done={self.run.epochs_done}, device={self.device})")
