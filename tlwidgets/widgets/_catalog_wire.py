"""The ModelBrowser's wire format: a catalog DataFrame as columnar, binary-encoded columns.

Numbers travel as float32 bytes, flags as uint8, repetitive strings dictionary-encoded, the rest
as one list per column; ``decodePayload()`` in ``js/lib/table.js`` reads it back. The ranking's
extra rows (``_browser_scores.py``) use the same encoding.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["encode_catalog", "flag"]

# float32 keeps every figure of the results tables (at most 5 significant digits) exactly
# enough to display and sort, at half the bytes of float64.
NUMERIC_COLUMNS: tuple[str, ...] = (
    "params_m",
    "gmacs",
    "img_size",
    "top1",
    "top5",
    "gpu_img_s",
    "cpu_img_s",
    "crop_pct",
    "num_classes",
)
FLAG_COLUMNS: tuple[str, ...] = ("noncommercial", "cached")
# Few distinct values each (tens of families, a handful of licences): codes + one value list.
DICTIONARY_COLUMNS: tuple[str, ...] = ("family", "pretrain", "license", "interpolation")
TEXT_COLUMNS: tuple[str, ...] = ("name", "hf_hub_id", "paper_ids")
# One (r, g, b) triple per row, sent as 3 * n float32.
TRIPLE_COLUMNS: tuple[str, ...] = ("mean", "std")
# Sent only when they are not simply the two halves of ``name`` ("architecture.tag").
NAME_PART_COLUMNS: tuple[str, ...] = ("architecture", "tag")


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        import pandas as pd

        return value is pd.NA or value is pd.NaT
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False


def _text(value: Any) -> str | None:
    """A cell as display text: lists of ids joined by ", ", missing as None (null in JSON)."""
    if _missing(value):
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in value)
    return str(value)


def _triple(value: Any) -> tuple[float, float, float]:
    if isinstance(value, str) or _missing(value):
        return (math.nan, math.nan, math.nan)
    try:
        items = [float(v) for v in value]
    except (TypeError, ValueError):
        return (math.nan, math.nan, math.nan)
    if len(items) == 1:  # a grey-scale statistic applies to each channel
        items = items * 3
    return (items[0], items[1], items[2]) if len(items) == 3 else (math.nan, math.nan, math.nan)


def flag(value: Any) -> int:
    return 0 if _missing(value) else int(bool(value))


def _dictionary(values: Iterable[str | None]) -> dict[str, Any]:
    codes: dict[str | None, int] = {}
    encoded = [codes.setdefault(v, len(codes)) for v in values]
    dtype = np.uint8 if len(codes) <= 256 else np.uint16 if len(codes) <= 65536 else np.int32
    return {
        "kind": "dict",
        "dtype": np.dtype(dtype).name,
        "codes": np.asarray(encoded, dtype=dtype).tobytes(),
        "values": list(codes),
    }


def _name_references(values: list[str | None], names: list[str], prefix: str) -> dict[str, Any]:
    # Nearly every hub id is "timm/" + the row's name: send 1 for those instead of the string.
    refs: list[str | int | None] = [
        1 if v == prefix + name else v for v, name in zip(values, names)
    ]
    return {"kind": "name_ref", "prefix": prefix, "values": refs}


def encode_catalog(frame: pd.DataFrame) -> dict[str, Any]:
    """Encode a catalog DataFrame as the columnar payload the browser's page decodes.

    Numbers become float32 bytes (NaN kept), flags uint8 bytes, repetitive strings
    ``{"codes": bytes, "values": [...]}``, hub ids that are ``"timm/" + name`` as ``1``, other
    strings one list per column. ``bytes`` values
    travel as binary buffers of the comm message, not as JSON.

    >>> import pandas as pd
    >>> from tlwidgets.widgets.model_browser import encode_catalog
    >>> payload = encode_catalog(pd.DataFrame({"name": ["resnet18.a1_in1k"], "top1": [71.5]}))
    >>> payload["n"], payload["columns"]["top1"]["dtype"], len(payload["columns"]["top1"]["data"])
    (1, 'float32', 4)
    """
    import pandas as pd

    n = len(frame)
    columns: dict[str, Any] = {}
    names = [str(v) for v in frame["name"]]
    columns["name"] = {"kind": "str", "values": names}
    for key in NUMERIC_COLUMNS:
        if key in frame:
            numbers = pd.to_numeric(frame[key], errors="coerce").astype("float64")
            data = numbers.to_numpy(na_value=np.nan).astype(np.float32)
            columns[key] = {"kind": "num", "dtype": "float32", "data": data.tobytes()}
    for key in FLAG_COLUMNS:
        if key in frame:
            data = np.fromiter((flag(v) for v in frame[key]), dtype=np.uint8, count=n)
            columns[key] = {"kind": "bool", "dtype": "uint8", "data": data.tobytes()}
    for key in DICTIONARY_COLUMNS:
        if key in frame:
            columns[key] = _dictionary(_text(v) for v in frame[key])
    for key in TEXT_COLUMNS[1:]:
        if key in frame:
            columns[key] = {"kind": "str", "values": [_text(v) for v in frame[key]]}
    if "hf_hub_id" in columns:
        columns["hf_hub_id"] = _name_references(columns["hf_hub_id"]["values"], names, "timm/")
    for key in TRIPLE_COLUMNS:
        if key in frame:
            data = np.asarray([_triple(v) for v in frame[key]], dtype=np.float32).reshape(n, 3)
            columns[key] = {"kind": "num", "dtype": "float32", "width": 3, "data": data.tobytes()}
    if all(key in frame for key in NAME_PART_COLUMNS):
        derived = [name.partition(".")[::2] for name in names]
        given = list(
            zip((str(v) for v in frame["architecture"]), (_text(v) or "" for v in frame["tag"]))
        )
        if derived != given:
            for j, key in enumerate(NAME_PART_COLUMNS):
                columns[key] = {"kind": "str", "values": [pair[j] for pair in given]}
    return {"n": n, "columns": columns}
