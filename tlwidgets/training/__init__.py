"""The training loop, its events, schedules, checkpoints, LR finder and feature cache.

The names below are imported on first use, so reading or following a run folder
(``tlwidgets.training.run_follower``, ``run_reader``, ``run_files``) never imports torch: a
dashboard that follows a ``torchrun`` job needs only the files.

>>> from tlwidgets.training import Trainer, TrainerEvent
>>> TrainerEvent("log", {"message": "hello"}).kind
'log'
"""

from __future__ import annotations

from .._lazy import lazy_getattr

# public name -> submodule that defines it
_LAZY = {
    "EVENT_KINDS": ".events",
    "TrainerEvent": ".events",
    "LRFindResult": ".lr_finder",
    "Schedule": ".schedules",
    "STATES": ".trainer",
    "Trainer": ".trainer",
}

__all__ = ["EVENT_KINDS", "STATES", "LRFindResult", "Schedule", "Trainer", "TrainerEvent"]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
