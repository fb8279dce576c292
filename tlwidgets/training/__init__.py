"""The training loop, its events, schedules, checkpoints, LR finder and feature cache.

>>> from tlwidgets.training import Trainer, TrainerEvent
>>> TrainerEvent("log", {"message": "hello"}).kind
'log'
"""

from __future__ import annotations

from .events import EVENT_KINDS, TrainerEvent
from .lr_finder import LRFindResult
from .schedules import Schedule
from .trainer import STATES, Trainer

__all__ = ["EVENT_KINDS", "STATES", "LRFindResult", "Schedule", "Trainer", "TrainerEvent"]
