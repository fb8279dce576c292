"""Errors raised by tlwidgets.

Every error a user can cause is a :class:`TLWidgetsError` whose message names the problem and
says what to do about it. Each also derives from the built-in exception a Python user would
expect (``ValueError``, ``LookupError``, ``RuntimeError``, ...), so existing ``except`` clauses
keep working.

>>> import tlwidgets as tlw
>>> try:
...     tlw.create_model("resnet5O", num_classes=3)
... except tlw.ModelNotFoundError as err:
...     print(err)  # doctest: +SKIP
"""

from __future__ import annotations

__all__ = [
    "TLWidgetsError",
    "ConfigError",
    "ModelNotFoundError",
    "WeightsError",
    "WeightsUnavailableError",
    "WeightsMismatchError",
    "UnsafeWeightsError",
    "DataError",
    "FreezeError",
    "NothingTrainableError",
    "ModulePathError",
    "TrainerStateError",
    "TrainingError",
    "CheckpointError",
    "ExportError",
    "FrontendNotBuiltError",
    "CatalogError",
    "Cancelled",
    "RunFolderError",
    "RecipeError",
]


class TLWidgetsError(Exception):
    """Base class of every error tlwidgets raises on purpose."""


class ConfigError(TLWidgetsError, ValueError):
    """An argument has a value that cannot work (say, ``num_classes=0``)."""


class ModelNotFoundError(TLWidgetsError, LookupError):
    """No timm model or pretrained weight has this name."""


class WeightsError(TLWidgetsError):
    """Base class of problems with pretrained weights."""


class WeightsUnavailableError(WeightsError, FileNotFoundError):
    """The weights are needed but cannot be had without a network (or the file is missing)."""


class WeightsMismatchError(WeightsError, ValueError):
    """A weights file's tensors do not fit the model."""


class UnsafeWeightsError(WeightsError, ValueError):
    """A weights file would run code when loaded; it was refused, not executed."""


class DataError(TLWidgetsError, ValueError):
    """The data cannot be used as given (empty folder, one class, bad labels, ...)."""


class FreezeError(TLWidgetsError, ValueError):
    """A freeze request cannot be carried out."""


class NothingTrainableError(FreezeError):
    """Every parameter is frozen, so there is nothing to train."""


class ModulePathError(FreezeError, LookupError):
    """A dotted module path does not exist in the model."""


class TrainerStateError(TLWidgetsError, RuntimeError):
    """The trainer cannot do this in its current state (say, ``start()`` while running)."""


class TrainingError(TLWidgetsError, RuntimeError):
    """Training failed (non-finite loss, out of memory, a failing callback)."""


class CheckpointError(TrainingError):
    """A checkpoint is missing, damaged or torn (its two files from different epochs)."""


class ExportError(TLWidgetsError, OSError):
    """A model cannot be exported there (a read-only folder, a path under a file, a clash)."""


class FrontendNotBuiltError(TLWidgetsError, FileNotFoundError):
    """A widget's built JS (``tlwidgets/static/<view>.js``) is missing: the JS build did not run."""


class CatalogError(TLWidgetsError, RuntimeError):
    """The model catalog cannot be built (say, its shipped snapshot is missing or unreadable)."""


class Cancelled(TLWidgetsError, RuntimeError):
    """Work was stopped on request (a cancel ``threading.Event`` was set, or a progress
    callback returned False) before it finished; nothing half-done was kept."""


class RunFolderError(TLWidgetsError, OSError):
    """A run folder cannot be written or read (full disk, read-only, taken by another run)."""


class RecipeError(ConfigError):
    """A launch recipe (``tlw.launch``, ``python -m tlwidgets.run``) cannot build a run."""
