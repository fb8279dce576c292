"""Input checks for the widgets: the dashboard's Epochs and LR fields, and constructor arguments.

A field shows exactly what was typed (a numeric ipywidgets field clamps ``1e9`` to its maximum
and puts back the old value for ``""``, silently), and the view refuses what it cannot use with a
message that says what would work. Constructor arguments get a :class:`~tlwidgets.ConfigError`
at the call, not a ``TypeError`` from deep inside.
"""

from __future__ import annotations

import html
import math
from typing import Any

import ipywidgets as widgets
import traitlets

from ..errors import ConfigError

__all__ = [
    "NumberField",
    "RunInputs",
    "check_int",
    "check_number",
    "fmt_number",
    "parse_epochs",
    "parse_lr",
]

MAX_EPOCHS = 10_000
MAX_LR = 10.0


class NumberField(widgets.Text):
    """A text field for a number: it keeps what was typed; numbers set from code show as text.

    >>> field = NumberField(value=3, description="Epochs")
    >>> field.value
    '3'
    """

    value = traitlets.CUnicode("", help="The text in the field, as typed.").tag(sync=True)


def fmt_number(value: float) -> str:
    """How a number is first shown in a field: ``3``, ``0.002``, ``1e-05``, ``1000000.0``.

    >>> fmt_number(2e-3), fmt_number(3)
    ('0.002', '3')
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return repr(float(value))


def _number(text: str) -> float | None:
    try:
        return float(text.replace("_", ""))
    except ValueError:
        return None


def parse_epochs(text: Any, limit: int = MAX_EPOCHS) -> tuple[int | None, str]:
    """``(epochs, "")`` for a usable field, else ``(None, why and what would work)``.

    >>> parse_epochs("5")
    (5, '')
    >>> parse_epochs("0")[1]
    'Epochs must be at least 1 (got 0): type a whole number such as 3.'
    """
    s = str(text).strip()
    if not s:
        return None, "Epochs is empty: type a whole number of epochs such as 3."
    v = _number(s)
    if v is None or not math.isfinite(v):
        return None, f"Epochs must be a whole number such as 3 (got {s!r})."
    if not v.is_integer():
        return None, f"Epochs must be a whole number such as 3 (got {s})."
    n = int(v)
    if n < 1:
        return None, f"Epochs must be at least 1 (got {s}): type a whole number such as 3."
    if n > limit:
        return None, (f"Epochs {s} is more than {limit:,}: a run that long would never finish "
                      "here; type a smaller whole number such as 10.")
    return n, ""


def parse_lr(text: Any, limit: float = MAX_LR) -> tuple[float | None, str]:
    """``(learning rate, "")`` for a usable field, else ``(None, why and what would work)``.

    >>> parse_lr("1e-3")
    (0.001, '')
    >>> parse_lr("-5")[1]
    'LR must be greater than 0 (got -5): try 1e-3 for a pretrained model, up to 1e-2 for its head.'
    """
    s = str(text).strip()
    if not s:
        return None, "LR is empty: type a learning rate such as 1e-3."
    v = _number(s)
    if v is None:
        return None, f"LR must be a number such as 1e-3 (got {s!r})."
    if not math.isfinite(v):
        return None, f"LR must be a finite number such as 1e-3 (got {s})."
    if v <= 0:
        return None, (f"LR must be greater than 0 (got {s}): try 1e-3 for a pretrained model, "
                      "up to 1e-2 for its head.")
    if v > limit:
        return None, (f"LR {s} is above {limit:g}: at that rate training diverges at once. "
                      "Try 1e-3 (a pretrained model) up to 1e-2 (its head only).")
    return v, ""


def check_number(name: str, value: Any, lo: float, hi: float, example: Any,
                 hi_open: bool = False) -> float:
    """``value`` as a float in ``[lo, hi]`` (``[lo, hi)`` with ``hi_open``), else ConfigError.

    >>> check_number("refresh_hz", 2, 0.2, 20, 2.5)
    2.0
    """
    ok = (not isinstance(value, bool) and isinstance(value, (int, float))
          and math.isfinite(value) and lo <= value and (value < hi if hi_open else value <= hi))
    if not ok:
        bound = f"from {lo:g} up to (not including) {hi:g}" if hi_open else f"from {lo:g} to {hi:g}"
        raise ConfigError(f"{name} must be a number {bound}, got {value!r}; "
                          f"e.g. {name}={example!r}.")
    return float(value)


def check_int(name: str, value: Any, lo: int, example: Any, hi: int | None = None) -> int:
    """``value`` as an int ``>= lo`` (and ``<= hi``), else ConfigError naming the fix.

    >>> check_int("max_points", 500, 10, 1000)
    500
    """
    ok = (not isinstance(value, bool) and isinstance(value, int) and value >= lo
          and (hi is None or value <= hi))
    if not ok:
        bound = f"from {lo:,} to {hi:,}" if hi is not None else f"of at least {lo:,}"
        raise ConfigError(f"{name} must be a whole number {bound}, got {value!r}; "
                          f"e.g. {name}={example!r}.")
    return int(value)


class RunInputs:
    """The dashboard's Epochs and LR fields and the message beside them.

    The fields start with the trainer's own values. Only an edited field is checked and copied
    into the trainer on Start, so a value set in code (a slice of discriminative rates, say)
    survives a press of Start; an edited field that cannot be used shows why beside the fields,
    and :meth:`apply` refuses (the dashboard then does not start).
    """

    def __init__(self, trainer: Any) -> None:
        epochs0 = getattr(trainer, "epochs", 1) or 1
        lr = getattr(trainer, "lr", 1e-3) or 1e-3
        lr0 = lr.stop if isinstance(lr, slice) else lr  # discriminative: the head's rate
        self.epochs_input = NumberField(
            value=fmt_number(int(epochs0)), description="Epochs",
            layout=widgets.Layout(width="130px"), style={"description_width": "50px"},
        )
        self.lr_input = NumberField(
            value=fmt_number(float(lr0)), description="LR",
            layout=widgets.Layout(width="150px"), style={"description_width": "30px"},
        )
        self.shown = (self.epochs_input.value, self.lr_input.value)
        self.message = widgets.HTML("", layout=widgets.Layout(max_width="520px"))
        self.message.add_class("tlw-inputs-message")
        self.epochs_input.observe(self._on_change, "value")
        self.lr_input.observe(self._on_change, "value")

    def problems(self) -> list[str]:
        """What is wrong with the edited fields ([] when Start may go ahead)."""
        shown_epochs, shown_lr = self.shown
        found = []
        if self.epochs_input.value != shown_epochs:
            found.append(parse_epochs(self.epochs_input.value, MAX_EPOCHS)[1])
        if self.lr_input.value != shown_lr:
            found.append(parse_lr(self.lr_input.value, MAX_LR)[1])
        return [p for p in found if p]

    def show(self, problems: list[str], refused: bool = False) -> None:
        """Mark the bad fields and say what is wrong beside them (nothing when all is well)."""
        for field, name in ((self.epochs_input, "Epochs"), (self.lr_input, "LR")):
            bad = any(p.startswith(name) for p in problems)
            (field.add_class if bad else field.remove_class)("tlw-invalid")
        if not problems:
            self.message.value = ""
            return
        lead = "<b>Not started.</b> " if refused else ""
        self.message.value = (
            "<style>.tlw-invalid input{border-color:var(--jp-error-color1,#d32f2f)!important;"
            "outline:1px solid var(--jp-error-color1,#d32f2f)}</style>"
            "<div class='tlw-input-error' style='color:var(--jp-error-color1,#d32f2f);"
            "line-height:1.3;padding:0 8px'>"
            + lead + "<br>".join(html.escape(p) for p in problems) + "</div>"
        )

    def _on_change(self, change: dict[str, Any]) -> None:
        self.show(self.problems())

    def set_disabled(self, disabled: bool) -> None:
        self.epochs_input.disabled = disabled
        self.lr_input.disabled = disabled

    def apply(self, trainer: Any) -> bool:
        """Copy what was edited into ``trainer``; False (with the message shown) if unusable."""
        problems = self.problems()
        self.show(problems, refused=bool(problems))
        if problems:
            return False
        shown_epochs, shown_lr = self.shown
        if hasattr(trainer, "epochs") and self.epochs_input.value != shown_epochs:
            trainer.epochs = parse_epochs(self.epochs_input.value)[0]
        if hasattr(trainer, "lr") and self.lr_input.value != shown_lr:
            lr = parse_lr(self.lr_input.value)[0]
            old = trainer.lr
            if isinstance(old, slice) and old.start and old.stop and lr is not None:
                trainer.lr = slice(old.start * lr / old.stop, lr)  # keep the ratio of groups
            else:
                trainer.lr = lr
        self.shown = (self.epochs_input.value, self.lr_input.value)
        return True
