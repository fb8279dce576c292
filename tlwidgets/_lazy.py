"""Names of a package imported on first use (PEP 562), so ``import tlwidgets`` and its
subpackages stay cheap: torch, timm, transformers and ipywidgets load only when a name that
needs them is used.

>>> namespace = {}
>>> get = lazy_getattr("email", {"Parser": ".parser"}, namespace)
>>> get("Parser").__name__, "Parser" in namespace
('Parser', True)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_getattr"]


def lazy_getattr(package: str, table: Mapping[str, str],
                 namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``table`` maps each public name to the
    submodule (relative, e.g. ``".trainer"``) that defines it; the value is imported on first
    use and kept in ``namespace`` (the package's ``globals()``), so the next lookup is plain.

    >>> __getattr__ = lazy_getattr(__name__, {"Trainer": ".trainer"}, globals())  # doctest: +SKIP
    """
    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    return __getattr__
