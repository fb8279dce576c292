"""The learning-rate finder: an exponential sweep that leaves the model exactly as it found it.

>>> result = trainer.lr_find()                  # doctest: +SKIP
>>> result.suggestion                           # fastai's "valley" point  # doctest: +SKIP
0.0012
>>> result.df.plot(x="lr", y="smoothed_loss", logx=True)                  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

import pandas as pd
import torch
from torch import nn

from ..errors import ConfigError

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["LRFindResult", "lr_find", "valley", "steepest"]


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
        for j in range(0, i):
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

    ``df`` has one row per step: ``lr``, ``loss`` (raw) and ``smoothed_loss`` (exponential
    average, beta 0.98, debiased, as fastai). ``suggestion`` is fastai's ``valley`` point (its
    default since fastai 2.5); ``steep`` is the steepest-descent point; ``diverged`` says whether
    the sweep stopped early because the smoothed loss passed 4x its best.
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


def _cycle_batches(make: Any) -> Iterator[Any]:
    while True:
        empty = True
        for batch in make():
            empty = False
            yield batch
        if empty:
            return


def lr_find(trainer: "Trainer", start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100,
            stop_div: bool = True, beta: float = 0.98) -> LRFindResult:
    """Run the sweep on ``trainer``'s model and data; see :meth:`Trainer.lr_find`."""
    fz = importlib.import_module("tlwidgets.freeze")  # not `from .. import freeze`: the lazy API binds that name to the function

    if not (0 < start_lr < end_lr) or not all(map(math.isfinite, (start_lr, end_lr))):
        raise ConfigError(
            f"lr_find needs 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}; "
            "the defaults 1e-7 and 10 suit most models."
        )
    if not isinstance(num_it, int) or num_it < 2:
        raise ConfigError(f"num_it must be an integer >= 2, got {num_it!r}.")
    model = trainer.model
    trainer._place_model()

    # Everything the sweep can change, saved to be put back bit for bit.
    saved_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    saved_flags = [(p, p.requires_grad) for p in model.parameters()]
    saved_grads = [(p, None if p.grad is None else p.grad.detach().clone())
                   for p in model.parameters()]
    saved_modes = [(m, m.training) for m in model.modules()]
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    py_rng = random.getstate()
    loader_gen = getattr(trainer._train_loader, "generator", None)
    loader_gen_state = loader_gen.get_state() if loader_gen is not None else None
    had_loader = trainer._train_loader is not None

    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    diverged = False
    try:
        model.train()
        trainer._refresh_cache()
        groups = fz.param_groups(model, lr=start_lr, weight_decay=trainer.weight_decay)
        opt = trainer._new_optimizer(groups, start_lr)
        scaler = torch.amp.GradScaler("cuda") if trainer.amp_dtype == torch.float16 else None
        cache = trainer._cache
        if cache is not None:
            cache.head.train()
            batches = _cycle_batches(cache.train_batches)
            forward = cache.forward
        else:
            loader = trainer._get_train_loader()
            batches = _cycle_batches(lambda: iter(loader))
            forward = model
        avg, best = 0.0, math.inf
        model.zero_grad(set_to_none=True)
        for i, (x, y) in zip(range(num_it), batches):
            lr = start_lr * (end_lr / start_lr) ** (i / (num_it - 1))
            for g in opt.param_groups:
                g["lr"] = lr
            if cache is None:
                x = x.to(trainer.device, non_blocking=True)
                if trainer._channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                y = y.to(trainer.device, non_blocking=True)
            with trainer._autocast():
                loss = nn.functional.cross_entropy(forward(x).float(), y)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            opt.zero_grad(set_to_none=True)
            value = float(loss.detach())
            lrs.append(lr)
            losses.append(value)
            if not math.isfinite(value):
                smoothed.append(float("nan"))
                diverged = True
                break
            avg = beta * avg + (1 - beta) * value
            smooth = avg / (1 - beta ** (i + 1))
            smoothed.append(smooth)
            best = min(best, smooth)
            if stop_div and smooth > 4 * best:
                diverged = True
                break
    finally:
        with torch.no_grad():
            model.load_state_dict(saved_state)
        for p, flag in saved_flags:
            if p.requires_grad != flag:
                p.requires_grad_(flag)
        for p, g in saved_grads:
            p.grad = g
        for m, was_training in saved_modes:
            m.training = was_training
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        random.setstate(py_rng)
        if loader_gen is not None and loader_gen_state is not None:
            loader_gen.set_state(loader_gen_state)
        if not had_loader and trainer._train_loader is not None:
            # the loader made for the sweep stays (the cache refers to it), rewound to its seed
            gen = getattr(trainer._train_loader, "generator", None)
            seed = getattr(trainer.data, "seed", None)
            if gen is not None and seed is not None:
                gen.manual_seed(seed)

    df = pd.DataFrame({"lr": lrs, "loss": losses, "smoothed_loss": smoothed})
    # fastai drops the first tenth and the last five points before suggesting (too noisy).
    finite = df[df["smoothed_loss"].apply(math.isfinite)]
    lo = num_it // 10
    trimmed = finite.iloc[lo:-5] if len(finite) > lo + 5 + 2 else finite
    sug = valley(trimmed["lr"].tolist(), trimmed["smoothed_loss"].tolist())
    steep = steepest(trimmed["lr"].tolist(), trimmed["smoothed_loss"].tolist())
    trainer._log(f"lr_find: {len(df)} steps, suggestion {sug:.3g} (valley), steep {steep:.3g}")
    return LRFindResult(df=df, suggestion=sug, steep=steep, diverged=diverged)
