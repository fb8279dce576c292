"""Learning-rate schedules, as pure functions of the step.

A schedule maps the position in a cycle (``step`` out of ``total``) to a factor that multiplies
each param group's peak learning rate, and (for one-cycle) to a momentum. Being pure functions of
the step, they need no state beyond the step counter, which is why a run restored from a
checkpoint continues the curve exactly where it stopped.

>>> s = Schedule("one_cycle", total_steps=100)
>>> round(s.factor(0), 3), round(s.factor(25), 3), s.factor(99) < 1e-3
(0.04, 1.0, True)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import ConfigError

__all__ = ["SCHEDULES", "Schedule"]

SCHEDULES = ("one_cycle", "cosine", "constant")


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)


@dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule over one cycle of ``total_steps`` optimizer steps.

    - ``"one_cycle"`` (fastai's ``fit_one_cycle``): cosine warm-up from ``peak/div`` to the peak
      over ``pct_start`` of the steps, then cosine annealing to ``peak/div_final``; momentum
      (Adam's beta1 or SGD's momentum) goes 0.95 -> 0.85 -> 0.95 the other way round.
    - ``"cosine"``: linear warm-up over ``warmup_pct`` of the steps, then cosine to zero.
    - ``"constant"``: the peak all along.

    >>> Schedule("constant", total_steps=10).factor(7)
    1.0
    >>> Schedule("cosine", total_steps=100, warmup_pct=0.1).factor(10)
    1.0
    """

    name: str = "one_cycle"
    total_steps: int = 1
    pct_start: float = 0.25
    div: float = 25.0
    div_final: float = 1e5
    warmup_pct: float = 0.05
    moms: tuple[float, float, float] = (0.95, 0.85, 0.95)

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise ConfigError(
                f"unknown schedule {self.name!r}; use one of {', '.join(map(repr, SCHEDULES))}."
            )
        if self.total_steps < 1:
            raise ConfigError(
                f"a schedule needs at least one step, got total_steps={self.total_steps}; "
                "check that the training data is not empty."
            )

    def _pct(self, step: int) -> float:
        return min(max(step, 0), self.total_steps - 1) / max(self.total_steps - 1, 1)

    def factor(self, step: int) -> float:
        """The multiplier of the peak learning rate at optimizer step ``step`` (0-based)."""
        pct = self._pct(step)
        if self.name == "constant":
            return 1.0
        if self.name == "cosine":
            warm = max(int(round(self.warmup_pct * self.total_steps)), 0)
            if step < warm:
                return (step + 1) / (warm + 1)
            span = max(self.total_steps - warm - 1, 1)
            return _cos(1.0, 0.0, min((step - warm) / span, 1.0))
        # one_cycle
        if pct < self.pct_start:
            return _cos(1.0 / self.div, 1.0, pct / self.pct_start)
        rest = (pct - self.pct_start) / max(1.0 - self.pct_start, 1e-12)
        return _cos(1.0, 1.0 / self.div_final, rest)

    def momentum(self, step: int) -> float | None:
        """The momentum at ``step`` for one-cycle, else ``None`` (leave the optimizer's own)."""
        if self.name != "one_cycle":
            return None
        pct = self._pct(step)
        hi, lo, end = self.moms
        if pct < self.pct_start:
            return _cos(hi, lo, pct / self.pct_start)
        return _cos(lo, end, (pct - self.pct_start) / max(1.0 - self.pct_start, 1e-12))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["moms"] = list(self.moms)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Schedule:
        d = dict(d)
        d["moms"] = tuple(d.get("moms", (0.95, 0.85, 0.95)))
        return cls(**d)
