"""Where the built JS views live, for the widgets' ``_esm``/``_css`` traits."""

from __future__ import annotations

import pathlib

from ..errors import FrontendNotBuiltError

STATIC_DIR = pathlib.Path(__file__).resolve().parent.parent / "static"


def static_file(name: str) -> pathlib.Path:
    """The path of a built file in ``tlwidgets/static/``; raises if the JS build never ran.

    >>> from tlwidgets.widgets._static import static_file
    >>> static_file("run_controls.js").name
    'run_controls.js'
    """
    path = STATIC_DIR / name
    if not path.is_file():
        # Without this check anywidget would ship the path string as the module source and
        # the page would show an opaque "Failed to load" error instead.
        raise FrontendNotBuiltError(
            f"{path} is missing: tlwidgets' JS views were not built. In a checkout, run "
            "`npm ci && npm run build` (or `pip install -e .`, which runs the build); "
            "an installed wheel always carries them, so reinstall tlwidgets if it came from one."
        )
    return path
