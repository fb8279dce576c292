"""The widgets: thin views over the core. The only package of tlwidgets that imports ipywidgets."""

from __future__ import annotations

from .._lazy import lazy_getattr

_LAZY = {
    "RunControls": ".run_controls",
    "ModelBrowser": ".model_browser",
    "FreezePanel": ".freeze_panel",
    "TrainingDashboard": ".dashboard",
    "RunRecord": ".dashboard",
    "Studio": ".studio",
}

__all__ = list(_LAZY)


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
