"""How a run that ended early is reported and what is put back, in one place.

:func:`describe_failure` turns whatever left the loop into the final state, the error the user
sees (a :class:`~tlwidgets.TrainingError` naming the step, the learning rate and the fix) and the
original exception, and puts the model back to its last good weights where a failure left it
worse: the weights of the last finite step, else the ``best`` checkpoint (a diverging run), else
``last``, else the weights the run started with. Nothing ends a run silently: a ``SystemExit``
raised in a callback is a failure like any other exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..errors import TLWidgetsError, TrainingError
from .events import SubscriberError
from .hooks import Diverged
from .loop import NonFiniteLoss, StopRun

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["describe_failure"]


def _finite(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())


def _put_back(trainer: Trainer, order: tuple[str, ...]) -> str:
    for which in order:
        try:
            return trainer.checkpoints.restore(trainer.run, which)
        except TrainingError:
            continue
    return "no checkpoint or starting weights were kept, so the model is as the failure left it"


def describe_failure(trainer: Trainer, exc: BaseException
                     ) -> tuple[str, BaseException | None, BaseException | None]:
    """``(final state, error to report or None, cause)`` for an exception that ended a run."""
    step = trainer.run.global_step
    if isinstance(exc, (StopRun, KeyboardInterrupt)):
        why = "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else "stop()"
        trainer.run.log(f"stopped by {why} at step {step}")
        return "stopped", None, None
    if isinstance(exc, SubscriberError):
        return "failed", TrainingError(
            f"{exc}; the run was stopped and the model kept its last completed step. Fix the "
            "callback and train again."), exc.exc
    if isinstance(exc, NonFiniteLoss):
        restored = "the model kept the weights of the last finite step"
        if not _finite(trainer.model):
            # a finite loss can still come with infinite gradients (the CPU path checks the loss)
            restored = _put_back(trainer, ("last",))
        lrs = ", ".join(f"{x:.3g}" for x in exc.lrs)
        return "failed", TrainingError(
            f"the loss became {exc.value} at step {exc.step} (learning rate {lrs}); {restored}. "
            "Lower the learning rate (trainer.lr_find() suggests one), or set clip_grad=1.0."), None
    if isinstance(exc, Diverged):
        restored = _put_back(trainer, ("best", "last"))
        return "failed", TrainingError(f"{exc} {restored[0].upper()}{restored[1:]}."), None
    if isinstance(exc, torch.OutOfMemoryError):
        if trainer.device.type == "cuda":
            torch.cuda.empty_cache()
        return "failed", TrainingError(
            f"out of memory on {trainer.device} at step {step + 1}: {exc}. The model kept its "
            "last completed step. Try a smaller batch_size (e.g. ImageData(..., batch_size=16)), "
            "amp=True on a GPU, or freeze more layers (tlw.freeze_to(model, -2))."), exc
    if isinstance(exc, TLWidgetsError) and not isinstance(exc, TrainingError):
        return "failed", exc, None  # says what is wrong and the fix already (a full disk, ...)
    if isinstance(exc, SystemExit):
        return "failed", TrainingError(
            f"training was ended at step {step + 1} by SystemExit({exc.code!r}) raised inside the "
            "run (a callback called sys.exit()?); the model kept its last completed step."), exc
    err: Any = exc if isinstance(exc, TrainingError) else TrainingError(
        f"training failed at step {step + 1}: {type(exc).__name__}: {exc}. The model kept its "
        "last completed step.")
    return "failed", err, exc
