"""A trainer's configuration: one frozen dataclass, validated once, saved with the run.

>>> cfg = TrainerConfig.create(lr=1e-3, epochs=2)
>>> cfg.epochs, cfg.optimizer
(2, 'adamw')
>>> TrainerConfig.from_dict(cfg.to_dict()) == cfg
True
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .._runtime import AMP_CHOICES
from ..errors import ConfigError
from .schedules import SCHEDULES

__all__ = ["METRICS", "OPTIMIZERS", "TrainerConfig", "check_epochs", "check_lr", "spread_lrs"]

OPTIMIZERS = ("adamw", "adam", "sgd")
#: metric -> "max" or "min": which way is better
METRICS = {"accuracy": "max", "valid_loss": "min", "train_loss": "min"}


def check_lr(lr: Any) -> float | slice:
    """A peak learning rate (a positive number) or a slice of two for discriminative rates.

    >>> check_lr(slice(1e-5, 1e-3))
    slice(1e-05, 0.001, None)
    """
    if lr is None:
        raise ConfigError("lr=None: give a learning rate, e.g. lr=1e-3, or run "
                          "trainer.lr_find() for a suggestion.")
    if isinstance(lr, slice):
        if lr.stop is None:
            raise ConfigError(
                f"lr={lr!r} needs a stop value: slice(1e-3) trains the head at 1e-3 and the rest "
                "at 1e-4, slice(1e-5, 1e-3) spreads from the stem to the head.")
        values = [v for v in (lr.start, lr.stop) if v is not None]
    else:
        values = [lr]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v > 0 and math.isfinite(v)):
            raise ConfigError(
                f"lr must be a positive number (or a slice of two, for discriminative rates); "
                f"got {lr!r}. Try lr=1e-3, or run trainer.lr_find() for a suggestion."
            )
    if isinstance(lr, slice) and lr.start is not None and lr.start > lr.stop:
        raise ConfigError(f"lr={lr!r}: the start (stem) must not exceed the stop (head).")
    return lr if isinstance(lr, slice) else float(lr)


def check_epochs(epochs: Any) -> int:
    """An integer >= 1."""
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise ConfigError(f"epochs must be an integer >= 1, got {epochs!r}.")
    return epochs


def spread_lrs(lr: float | slice, n: int) -> list[float]:
    """Peak learning rate per group, fastai's way: a float for all groups; ``slice(hi)`` gives
    ``hi/10`` to every group but the last; ``slice(lo, hi)`` spreads geometrically.

    >>> spread_lrs(slice(1e-3), 3)
    [0.0001, 0.0001, 0.001]
    """
    if isinstance(lr, slice):
        hi = float(lr.stop)
        if lr.start is None:
            return [hi / 10] * (n - 1) + [hi]
        lo = float(lr.start)
        if n == 1:
            return [hi]
        step = (hi / lo) ** (1 / (n - 1))
        return [lo * step**i for i in range(n)]
    return [float(lr)] * n


def lr_to_plain(lr: float | slice) -> Any:
    return [lr.start, lr.stop] if isinstance(lr, slice) else lr


def lr_from_plain(v: Any) -> float | slice:
    return slice(v[0], v[1]) if isinstance(v, (list, tuple)) else float(v)


def _early_stopping(es: Any, metric: str) -> dict[str, Any] | None:
    if es is None or es is False:
        return None
    if isinstance(es, int) and not isinstance(es, bool):
        es = {"patience": es}
    if not isinstance(es, dict):
        raise ConfigError(
            f"early_stopping must be None, an int patience or a dict, got {es!r}; e.g. "
            "early_stopping=3 or {'patience': 3, 'metric': 'valid_loss'}."
        )
    out = {"patience": es.get("patience", 3), "metric": es.get("metric", metric),
           "min_delta": es.get("min_delta", 0.0)}
    unknown = set(es) - set(out)
    if unknown or isinstance(out["patience"], bool) or not isinstance(out["patience"], int) \
            or out["patience"] < 1:
        raise ConfigError(
            f"early_stopping={es!r}: use keys patience (int >= 1), metric, min_delta.")
    if out["metric"] not in METRICS:
        raise ConfigError(
            f"early_stopping metric {out['metric']!r} unknown; use one of {', '.join(METRICS)}.")
    md = out["min_delta"]
    if isinstance(md, bool) or not isinstance(md, (int, float)) or not math.isfinite(md) or md < 0:
        raise ConfigError(f"early_stopping min_delta must be a number >= 0, got {md!r}.")
    out["min_delta"] = float(md)
    return out


@dataclass(frozen=True)
class TrainerConfig:
    """Everything a run is configured with (see :class:`~tlwidgets.Trainer` for each field).

    Built and checked once by :meth:`create`; ``to_dict``/``from_dict`` is what the run folder
    and the checkpoints hold, and what ``Trainer.resume`` reads back.
    """

    lr: float | slice = 1e-3
    epochs: int = 3
    optimizer: str = "adamw"
    schedule: str = "one_cycle"
    weight_decay: float = 0.01
    amp: bool | str = "auto"
    device: str = "auto"
    grad_accum: int = 1
    clip_grad: float | None = None
    early_stopping: dict[str, Any] | None = None
    cache_features: bool | str = "auto"
    metric: str = "accuracy"
    seed: int | None = None
    verbose: bool | str = "auto"
    restore_best: bool = False
    channels_last: bool | str = "auto"

    @classmethod
    def create(cls, **kwargs: Any) -> TrainerConfig:
        """Check every value; bad ones raise :class:`~tlwidgets.ConfigError` naming the fix."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(kwargs) - names
        if unknown:
            raise ConfigError(f"unknown Trainer argument(s) {sorted(unknown)}; the options are "
                              f"{', '.join(sorted(names))}.")
        cfg = {f.name: f.default for f in dataclasses.fields(cls)} | kwargs
        lr = check_lr(cfg["lr"])
        epochs = check_epochs(cfg["epochs"])
        if cfg["optimizer"] not in OPTIMIZERS:
            raise ConfigError(f"optimizer={cfg['optimizer']!r} is not supported; use one of "
                              f"{', '.join(OPTIMIZERS)}.")
        if cfg["schedule"] not in SCHEDULES:
            raise ConfigError(f"schedule={cfg['schedule']!r} is not supported; use one of "
                              f"{', '.join(SCHEDULES)}.")
        wd = cfg["weight_decay"]
        if isinstance(wd, bool) or not isinstance(wd, (int, float)) or not math.isfinite(wd) \
                or wd < 0:
            raise ConfigError(f"weight_decay must be a finite number >= 0, got {wd!r}; 0.01 is "
                              "a common value for AdamW.")
        if cfg["amp"] not in AMP_CHOICES:
            raise ConfigError(f"amp must be one of {', '.join(map(repr, AMP_CHOICES))}, got "
                              f"{cfg['amp']!r}.")
        if cfg["channels_last"] not in ("auto", True, False):
            raise ConfigError(f"channels_last must be 'auto', True or False, got "
                              f"{cfg['channels_last']!r}.")
        ga = cfg["grad_accum"]
        if not isinstance(ga, int) or isinstance(ga, bool) or ga < 1:
            raise ConfigError(f"grad_accum must be an integer >= 1, got {ga!r}.")
        cg = cfg["clip_grad"]
        if cg is not None and (isinstance(cg, bool) or not isinstance(cg, (int, float))
                               or not (cg > 0 and math.isfinite(cg))):
            raise ConfigError(f"clip_grad must be a positive number or None, got {cg!r}.")
        if cfg["metric"] not in METRICS:
            raise ConfigError(f"metric={cfg['metric']!r} is not supported; use one of "
                              f"{', '.join(METRICS)}.")
        if cfg["cache_features"] not in ("auto", True, False):
            raise ConfigError(f"cache_features must be 'auto', True or False, got "
                              f"{cfg['cache_features']!r}.")
        seed = cfg["seed"]
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ConfigError(f"seed must be None or an integer >= 0, got {seed!r}.")
        if cfg["verbose"] not in ("auto", True, False):
            raise ConfigError(f"verbose must be 'auto', True or False, got {cfg['verbose']!r}.")
        if not isinstance(cfg["restore_best"], bool):
            raise ConfigError(f"restore_best must be True or False, got {cfg['restore_best']!r}.")
        device = cfg["device"]
        return cls(
            lr=lr, epochs=epochs, optimizer=cfg["optimizer"], schedule=cfg["schedule"],
            weight_decay=float(wd), amp=cfg["amp"],
            device=device if isinstance(device, str) else str(device), grad_accum=ga,
            clip_grad=None if cg is None else float(cg),
            early_stopping=_early_stopping(cfg["early_stopping"], cfg["metric"]),
            cache_features=cfg["cache_features"], metric=cfg["metric"], seed=seed,
            verbose=cfg["verbose"], restore_best=cfg["restore_best"],
            channels_last=cfg["channels_last"],
        )

    def replace(self, **changes: Any) -> TrainerConfig:
        """A checked copy with some fields changed."""
        d = dataclasses.asdict(self) | changes
        return TrainerConfig.create(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (a slice becomes ``[start, stop]``)."""
        d = dataclasses.asdict(self)
        d["lr"] = lr_to_plain(self.lr)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainerConfig:
        """The inverse of :meth:`to_dict`; unknown keys (from a newer version) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "lr" in kw:
            kw["lr"] = lr_from_plain(kw["lr"])
        return cls.create(**kw)
