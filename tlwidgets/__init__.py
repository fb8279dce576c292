"""tlwidgets: Jupyter widgets for transfer learning.

>>> import tlwidgets as tlw
>>> model = tlw.create_model("tf_efficientnet_lite0", num_classes=5)   # doctest: +SKIP
>>> tlw.freeze_to(model, -1)                                          # doctest: +SKIP
>>> trainer = tlw.Trainer(model, tlw.sample_data(model=model), epochs=3)  # doctest: +SKIP
>>> tlw.TrainingDashboard(trainer)                                    # doctest: +SKIP

The core (catalog, weights, data, freeze, training, evaluation) never imports ipywidgets;
the widgets are imported only when first used, so ``import tlwidgets`` stays cheap in scripts.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from ._lazy import lazy_getattr
from .errors import (
    CatalogError,
    CheckpointError,
    ConfigError,
    DataError,
    ExportError,
    FreezeError,
    FrontendNotBuiltError,
    ModelNotFoundError,
    ModulePathError,
    NothingTrainableError,
    TLWidgetsError,
    TrainerStateError,
    TrainingError,
    UnsafeWeightsError,
    WeightsError,
    WeightsMismatchError,
    WeightsUnavailableError,
)

__version__ = "0.1.0"

# public name -> module that defines it (imported on first use)
_LAZY = {
    # catalog and weights
    "catalog": ".catalog",
    "create_model": ".weights",
    "register_weights": ".weights",
    "load_weights": ".weights",
    "LoadReport": ".weights",
    "is_random_init": ".weights",
    # data
    "ImageData": ".data",
    "sample_data": ".data",
    # freezing
    "layer_groups": ".freeze",
    "LayerGroup": ".freeze",
    "freeze": ".freeze",
    "unfreeze": ".freeze",
    "freeze_to": ".freeze",
    "apply_preset": ".freeze",
    "trainable_summary": ".freeze",
    "param_groups": ".freeze",
    "set_lr_multipliers": ".freeze",
    "lr_multipliers": ".freeze",
    "on_freeze_change": ".freeze",
    "freeze_version": ".freeze",
    # text (Hugging Face encoders; tlw.create_model("org/name", k) builds one)
    "TextData": ".text",
    "sample_text_data": ".text",
    "TextClassifier": ".text",
    "add_lora": ".text",
    "merge_lora": ".text",
    "lora_summary": ".text",
    "text_catalog": ".text",
    # training and evaluation
    "Trainer": ".training",
    "TrainerEvent": ".training",
    "LRFindResult": ".training",
    "Evaluation": ".evaluation",
    # run folders, and runs on several processes (torchrun)
    "RunFollower": ".training.run_follower",
    "launch": ".launch",
    "Job": ".launch",
    "RunFolderError": ".errors",
    "RecipeError": ".errors",
    # ranking backbones and layers on the user's data
    "logme": ".ranking",
    "knn_accuracy": ".ranking",
    "rank_models": ".ranking",
    "rank_layers": ".ranking",
    "imagenet_similarity": ".ranking",
    "ImageNetSimilarity": ".ranking",
    "Cancelled": ".errors",
    # widgets (the only names that import ipywidgets)
    "RunControls": ".widgets",
    "ModelBrowser": ".widgets",
    "FreezePanel": ".widgets",
    "TrainingDashboard": ".widgets",
    "RunRecord": ".widgets",
    "Studio": ".widgets",
    "ExperimentView": ".widgets.experiment_view",
}

__all__ = [
    "__version__",
    "TLWidgetsError",
    "CatalogError",
    "CheckpointError",
    "ExportError",
    "ConfigError",
    "DataError",
    "FreezeError",
    "FrontendNotBuiltError",
    "ModelNotFoundError",
    "ModulePathError",
    "NothingTrainableError",
    "TrainerStateError",
    "TrainingError",
    "UnsafeWeightsError",
    "WeightsError",
    "WeightsMismatchError",
    "WeightsUnavailableError",
    *_LAZY,
    "experiments",
]

# subpackages reached as attributes (tlw.experiments.data_efficiency), imported on first use
_SUBPACKAGES = ("experiments",)


_lazy_name = lazy_getattr(__name__, _LAZY, globals())


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module("." + name, __name__)
    return _lazy_name(name)


def __dir__() -> list[str]:
    return sorted(__all__)


class _Package(types.ModuleType):
    # ``freeze`` is both the submodule tlwidgets/freeze.py and the public function it defines.
    # Importing a submodule binds it as a package attribute, which would replace the function
    # or not depending on import order. ``tlwidgets.freeze`` is always the function; the
    # module's other names come from ``tlwidgets`` or ``from tlwidgets.freeze import ...``.
    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == "." + name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
