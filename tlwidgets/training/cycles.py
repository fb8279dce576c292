"""Cycles and epochs: what one ``fit()`` does between the step loop and the hooks.

An :class:`EpochRunner` owns the loaders, the feature cache decision, the optimizer's build and
the timing of steps and epochs (paused time excluded); it runs each epoch's batches through the
one :class:`~tlwidgets.training.loop.StepLoop`, validates, and calls the hooks. The
:class:`~tlwidgets.Trainer` holds one and drives it.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable
from typing import Any

import torch

from ..errors import TrainingError
from .feature_cache import FeatureCache, cache_decision
from .feature_store import FeatureStore
from .loop import Control, StepLoop
from .optim import build_optimizer
from .state import Cycle, RunState

__all__ = ["EpochRunner"]


def _fz() -> Any:
    return importlib.import_module("tlwidgets.freeze")  # the package binds `freeze` to the function


class EpochRunner:
    """Runs cycles of epochs on ``run`` (see the module docstring)."""

    def __init__(self, run: RunState, control: Control, loop: StepLoop,
                 hook: Callable[..., None], store: FeatureStore | None = None,
                 progress: Callable[[], bool] = lambda: False) -> None:
        self.run, self.control, self.loop, self.hook = run, control, loop, hook
        self.store, self.progress = store, progress
        self.pending_cycle = False  # a restored run has an interrupted cycle to finish
        self.train_loader: Any = None
        self._train_loader_aug: Any = "unset"
        self._last_cache_reason: str | None = None
        self.run_started: float | None = None
        self._last_step_at = (0.0, 0.0)  # (time, paused total) at the previous step
        self._epoch_started = (0.0, 0.0)
        self.img_s_avg = float("nan")
        self._decision: tuple[Any, Any] | None = None
        self._version: int | None = None

    def freeze_version(self) -> int:
        """The model's freeze version as read at the last epoch boundary (reading it walks every
        parameter; an epoch boundary reads it once for the optimizer, the cache and the
        checkpoint). A change made during an epoch is seen at the next boundary."""
        if self._version is None:
            self._version = _fz().freeze_version(self.run.model)
        return self._version

    def poll_freeze_version(self) -> int:
        self._version = None
        return self.freeze_version()

    def rebuild_optimizer(self) -> None:
        cyc = self.run.cycle
        assert cyc is not None
        cyc.peak_lrs = self.make_optimizer(cyc.lr, cyc.opt_step, cyc)

    def make_optimizer(self, lr: float | slice, step: int = 0, cycle: Cycle | None = None
                         ) -> list[float]:
        cfg, r = self.run.config, self.run
        opt, peaks, names = build_optimizer(self.run.model, cfg.optimizer, lr,
                                            weight_decay=cfg.weight_decay,
                                            device_type=self.run.ctx.device.type)
        if cycle is not None:
            for g, peak in zip(opt.param_groups, peaks):
                g["lr"] = peak * cycle.schedule.factor(step)
        r.optimizer, r.group_names = opt, names
        r.optimizer_freeze_version = self.freeze_version()
        r.scaler = self.run.ctx.new_scaler()
        return peaks

    def get_train_loader(self, augment: Any = None) -> Any:
        # One loader per trainer and augment choice: its seeded generator then advances from
        # epoch to epoch, so each epoch sees a new order (a fresh loader would repeat it).
        if self.train_loader is None or self._train_loader_aug != augment:
            self.train_loader = (self.run.data.train_loader() if augment is None
                                  else self.run.data.train_loader(augment=augment))
            if self.run.dist is not None:  # this rank's part of each epoch
                self.train_loader = self.run.dist.train_loader(
                    self.train_loader, seed=getattr(self.run.data, "seed", 0) or 0)
            self._train_loader_aug = augment
        return self.train_loader

    def refresh_cache(self) -> None:
        r = self.run
        # the decision depends on the freeze state (and BN policy) and the data: once per change
        # under torchrun the cached head path is not distributed (yet): every rank trains whole
        mode = False if r.dist is not None else r.config.cache_features
        dkey = (self.freeze_version(), id(r.data), mode)
        if self._decision is None or self._decision[0] != dkey:
            self._decision = (dkey, cache_decision(r.model, r.data, mode))
        decision = self._decision[1]
        if not decision.use:
            r.feature_cache = None
            if self._last_cache_reason != decision.reason:
                self.run.log(decision.reason)
                self._last_cache_reason = decision.reason
            return
        key = (self.freeze_version(), id(self.run.data), decision.augment)
        if r.feature_cache is not None and r.feature_cache.key == key:
            return
        t0 = time.perf_counter()
        cache = FeatureCache(self.run.model, self.run.data, decision, self.run.ctx, key,
                             self.get_train_loader(decision.augment), store=self.store,
                             progress=self.progress())
        r.feature_cache = cache
        self._last_cache_reason = decision.reason
        how = "read from the feature store on disk" if cache.from_disk else "computed"
        items = "texts" if getattr(self.run.data, "modality", "image") == "text" else "images"
        self.run.log(f"{decision.reason}; features of {len(cache.train_y)} train and "
                     f"{len(cache.valid_y)} valid {items} {how} in "
                     f"{time.perf_counter() - t0:.2f} s")

    def batches(self) -> tuple[Any, Callable[[Any], torch.Tensor], int]:
        """This epoch's training batches, the forward function and the steps per epoch."""
        cache = self.run.feature_cache
        if cache is not None:
            cache.head.train()
            return cache.train_batches(), cache.forward, len(cache)
        loader = self.get_train_loader()
        model = self.run.model
        if self.run.dist is not None:  # gradients averaged over the ranks
            return loader, self.run.dist.wrap(model, self.freeze_version()), len(loader)
        return loader, model, len(loader)

    # ------------------------------------------------------------------ the cycle and epochs
    def continue_cycle(self) -> None:
        self.pending_cycle = False
        assert self.run.cycle is not None
        self.run_cycle(self.run.cycle)

    def fit_cycle(self, epochs: int, lr: float | slice, schedule: str, **kw: Any) -> None:
        self.pending_cycle = False
        self.poll_freeze_version()
        self.run.model.train()
        self.refresh_cache()
        _, _, spe = self.batches()
        if spe == 0:
            raise TrainingError("the training split is empty, so there is nothing to train on; "
                                "give the data more images or a smaller valid_pct.")
        total = epochs * math.ceil(spe / self.run.config.grad_accum)
        cycle = Cycle.new(epochs, self.run.epochs_done, lr, [], schedule, total, **kw)
        cycle.peak_lrs = self.make_optimizer(lr, 0, cycle)
        self.run.cycle = cycle
        self.hook("on_cycle_start")
        self.run_cycle(cycle)

    def run_cycle(self, cycle: Cycle) -> None:
        r = self.run
        self.run.model.train()
        r.end_cycle = None
        while r.epochs_done - cycle.start_epoch < cycle.epochs:
            self.poll_freeze_version()
            self.hook("on_epoch_start")
            self.refresh_cache()
            self.run_epoch(cycle)
            if r.end_cycle:
                self.run.log(r.end_cycle)
                break

    def run_epoch(self, cycle: Cycle) -> None:
        r = self.run
        epoch = r.epochs_done + 1
        now = time.perf_counter()
        self._epoch_started = self._last_step_at = (now, self.control.paused_total())
        batches, forward, spe = self.batches()
        opt = r.optimizer
        assert opt is not None

        def after_update() -> None:
            cycle.opt_step += 1

        def on_step(info: dict[str, Any]) -> None:
            cycle.batch_in_epoch = info["batch"]
            r.global_step = info["step"]
            self.on_step(info, epoch, cycle)

        # what a failed step is rolled back on: the head alone when it trains on cached features
        rollback = r.feature_cache.head if r.feature_cache is not None else r.model
        self.loop.run(batches, forward, rollback, opt, scaler=r.scaler,
                       max_batches=spe - cycle.batch_in_epoch, first_batch=cycle.batch_in_epoch,
                       first_step=r.global_step, before_update=lambda: cycle.set_lr(opt),
                       after_update=after_update, on_step=on_step)
        self.end_epoch(cycle, epoch)

    def on_step(self, info: dict[str, Any], epoch: int, cycle: Cycle) -> None:
        if self.run.dist is not None:  # the loss of the global batch, the same on every rank
            info = self.run.dist.reduce_step(info)
        now, paused = time.perf_counter(), self.control.paused_total()
        dt = (now - self._last_step_at[0]) - (paused - self._last_step_at[1])
        self._last_step_at = (now, paused)
        n = info["n"]
        img_s = n / dt if dt > 0 else float("nan")
        a = self.img_s_avg
        self.img_s_avg = img_s if a != a else 0.9 * a + 0.1 * img_s
        cycle.epoch_loss_sum += info["loss"] * n
        cycle.epoch_loss_n += n
        t = now - (self.run_started or now) - paused
        row = {"step": info["step"], "epoch": epoch, "batch": info["batch"], "loss": info["loss"],
               "lr": info["lrs"][-1], "img_s": img_s, "time": t}
        self.run.steps.append(row)
        self.hook("on_step", {**row, "lrs": info["lrs"]})
        self.run.publish("step", {**{k: row[k] for k in ("step", "epoch", "batch", "loss", "img_s",
                                                      "time")}, "lrs": list(info["lrs"])})

    def end_epoch(self, cycle: Cycle, epoch: int) -> None:
        from ..evaluation import validation_metrics

        r = self.run
        cache = r.feature_cache
        if cache is not None:
            valid_loss, accuracy = validation_metrics(
                cache.forward, cache.valid_batches(self.run.data.batch_size), self.run.ctx,
                cache.head)
        elif self.run.dist is not None:  # each rank its shard, then the sums over ranks
            loader = self.run.dist.valid_loader(self.run.data.valid_loader())
            valid_loss, accuracy = validation_metrics(self.run.model, loader, self.run.ctx,
                                                      self.run.model)
            valid_loss, accuracy = self.run.dist.reduce_validation(valid_loss, accuracy,
                                                                   len(loader.dataset))
        else:
            valid_loss, accuracy = validation_metrics(self.run.model, self.run.data.valid_loader(),
                                                      self.run.ctx, self.run.model)
        train_loss = cycle.epoch_loss_sum / cycle.epoch_loss_n if cycle.epoch_loss_n else math.nan
        now, paused = time.perf_counter(), self.control.paused_total()
        seconds = (now - self._epoch_started[0]) - (paused - self._epoch_started[1])
        assert r.optimizer is not None
        lrs = [g["lr"] for g in r.optimizer.param_groups]
        row = {"epoch": epoch, "train_loss": train_loss, "valid_loss": valid_loss,
               "accuracy": accuracy, "seconds": seconds, "lr": lrs[-1]}
        r.history.append(row)
        r.epochs_done = epoch
        cycle.batch_in_epoch = 0
        cycle.epoch_loss_sum, cycle.epoch_loss_n = 0.0, 0
        self.hook("on_epoch_end", row)
        self.run.publish("epoch", {**row, "lrs": lrs})
