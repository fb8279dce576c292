"""The widgets: thin views over the core. The only package of tlwidgets that imports ipywidgets."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "RunControls": ".run_controls",
    "ModelBrowser": ".model_browser",
    "FreezePanel": ".freeze_panel",
    "TrainingDashboard": ".dashboard",
    "RunRecord": ".dashboard",
    "Studio": ".studio",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tlwidgets.widgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
