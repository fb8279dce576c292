"""The learning-rate finder: an exponential sweep on the training loop, leaving no trace.

The sweep runs :class:`~tlwidgets.training.loop.StepLoop` — the loop ``fit`` runs — with the
optimizer ``fit`` would build (the model's LR multipliers and ``lr`` slices keep their ratios
between groups: the sweep's rate is the head's), the same gradient accumulation and clipping;
``num_it`` counts optimizer steps, as ``fit``'s schedule does. Only the learning-rate function
and the stop rule differ. Everything it changes is put back with
:func:`tlwidgets._runtime.preserved`.

>>> result = trainer.lr_find()                  # doctest: +SKIP
>>> result.suggestion                           # fastai's "valley" point  # doctest: +SKIP
0.0012
>>> result.df.plot(x="lr", y="smoothed_loss", logx=True)                  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import nn

from .._runtime import DeviceContext, preserved
from ..errors import ConfigError
from .loop import Control, NonFiniteLoss, StepLoop, StopRun

__all__ = ["LRFindResult", "lr_sweep", "steepest", "valley"]


def valley(lrs: list[float], losses: list[float]) -> float:
    """fastai's ``valley`` suggestion: find the longest decreasing run of the loss and take the
    point ``int(len/3) + int(len/6)`` steps into it (about half-way down the valley).

    >>> lrs = [10 ** (-6 + i / 2) for i in range(10)]
    >>> valley(lrs, [2.0, 1.9, 1.7, 1.4, 1.0, 0.7, 0.5, 0.6, 1.5, 4.0])
    1e-05
    """
    n = len(losses)
    if n == 0:
        return float("nan")
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[min(max(idx, 0), n - 1)])


def steepest(lrs: list[float], losses: list[float]) -> float:
    """The learning rate where the loss falls fastest against log(lr) (fastai's ``steep``).

    >>> steepest([1e-4, 1e-3, 1e-2, 1e-1], [2.0, 1.9, 1.0, 3.0])
    0.001
    """
    if len(losses) < 2:
        return float(lrs[0]) if lrs else float("nan")
    grads = [
        (losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i]))
        for i in range(len(losses) - 1)
    ]
    return float(lrs[min(range(len(grads)), key=grads.__getitem__)])


@dataclass
class LRFindResult:
    """What ``Trainer.lr_find()`` found.

    ``df`` has one row per optimizer step: ``lr`` (the head's rate), ``loss`` (raw, the mean over
    the step's accumulated batches) and ``smoothed_loss`` (exponential average, beta 0.98,
    debiased, as fastai). ``suggestion`` is fastai's ``valley`` point; ``steep`` the
    steepest-descent point; ``diverged`` says whether the sweep stopped because the smoothed loss
    passed 4x its best. ``extra["optimizer_steps"]`` counts the steps taken.
    """

    df: pd.DataFrame
    suggestion: float
    steep: float
    diverged: bool
    method: str = "valley"
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"LRFindResult(suggestion={self.suggestion:.3g} ({self.method}), "
                f"steep={self.steep:.3g}, {len(self.df)} steps, diverged={self.diverged})")


def _forever(make: Callable[[], Any]) -> Iterator[Any]:
    while True:
        empty = True
        for batch in make():
            empty = False
            yield batch
        if empty:
            return


def lr_sweep(model: nn.Module, make_batches: Callable[[], Any],
             forward: Callable[[Any], torch.Tensor],
             make_optimizer: Callable[[Any], tuple[torch.optim.Optimizer, list[float], list[str]]],
             ctx: DeviceContext, *, grad_accum: int = 1, clip_grad: float | None = None,
             lr: float | slice = 1e-3, start_lr: float = 1e-7, end_lr: float = 10,
             num_it: int = 100, stop_div: bool = True, beta: float = 0.98) -> LRFindResult:
    """The sweep behind :meth:`Trainer.lr_find` (see the module docstring)."""
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (start_lr, end_lr)) \
            or not 0 < start_lr < end_lr:
        raise ConfigError(
            f"lr_find needs 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}; "
            "the defaults 1e-7 and 10 suit most models.")
    if isinstance(num_it, bool) or not isinstance(num_it, int) or num_it < 2:
        raise ConfigError(f"num_it must be an integer >= 2, got {num_it!r}.")
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    diverged = False
    control = Control()
    loop = StepLoop(ctx, control, grad_accum, clip_grad)
    with preserved(model, modes=True, requires_grad=True, rng=True, weights=True, grads=True):
        model.train()
        opt, peaks, _ = make_optimizer(lr)
        # the ratio of each group's rate to the head's, as fit() would train them
        ratios = [p / peaks[-1] for p in peaks]
        scaler = ctx.new_scaler()
        state = {"update": 0, "sum": 0.0, "n": 0, "avg": 0.0, "best": math.inf}

        def before_update() -> None:
            k = state["update"]
            rate = start_lr * (end_lr / start_lr) ** (k / (num_it - 1))
            for g, r in zip(opt.param_groups, ratios):
                g["lr"] = rate * r
            lrs.append(rate)

        def after_update() -> None:
            state["update"] += 1

        def on_step(info: dict[str, Any]) -> None:
            nonlocal diverged
            state["sum"] += info["loss"]
            state["n"] += 1
            if info["batch"] % grad_accum:
                return  # the optimizer step this batch belongs to is not complete yet
            value = state["sum"] / state["n"]
            state["sum"], state["n"] = 0.0, 0
            losses.append(value)
            state["avg"] = beta * state["avg"] + (1 - beta) * value
            smooth = state["avg"] / (1 - beta ** len(losses))
            smoothed.append(smooth)
            state["best"] = min(state["best"], smooth)
            if stop_div and smooth > 4 * state["best"]:
                diverged = True
                control.request_stop()

        try:
            loop.run(_forever(make_batches), forward, model, opt, scaler=scaler,
                     max_batches=num_it * grad_accum, before_update=before_update,
                     after_update=after_update, on_step=on_step)
        except StopRun:
            pass
        except NonFiniteLoss as exc:  # the sweep went too far: that is its end, not a failure
            diverged = True
            losses.append(exc.value)
            smoothed.append(float("nan"))
        steps_taken = state["update"]
    n = min(len(lrs), len(losses))
    df = pd.DataFrame({"lr": lrs[:n], "loss": losses[:n], "smoothed_loss": smoothed[:n]})
    # fastai drops the first tenth and the last five points before suggesting (too noisy).
    finite = df[df["smoothed_loss"].apply(math.isfinite)]
    lo = num_it // 10
    trimmed = finite.iloc[lo:-5] if len(finite) > lo + 5 + 2 else finite
    sug = valley(trimmed["lr"].tolist(), trimmed["smoothed_loss"].tolist())
    steep = steepest(trimmed["lr"].tolist(), trimmed["smoothed_loss"].tolist())
    return LRFindResult(df=df, suggestion=sug, steep=steep, diverged=diverged,
                        extra={"optimizer_steps": steps_taken})
