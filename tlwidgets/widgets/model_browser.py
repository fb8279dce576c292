"""ModelBrowser: the timm catalog as one searchable, sortable, virtual-scrolled table.

The catalog travels to the page once, columnar: numbers as float32 binary buffers, flags as
uint8, repetitive strings (family, pretraining, licence, interpolation) dictionary-encoded, the
rest as one list per column. Filtering, sorting, scrolling and the scatter run in the page
(js/model_browser.js); only the selected model's name comes back, in ``selected``.
"""

from __future__ import annotations

import difflib
import math
import os
import socket
import threading
from urllib.parse import urlparse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import traitlets

from ..errors import ConfigError, ModelNotFoundError
from ._static import static_file

if TYPE_CHECKING:
    import pandas as pd
    import torch

__all__ = ["ModelBrowser", "encode_catalog", "recommended_rank", "ORDER_NOTE", "CPU_GMACS"]

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


def _flag(value: Any) -> int:
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
            data = np.fromiter((_flag(v) for v in frame[key]), dtype=np.uint8, count=n)
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


#: A model this light (multiply-accumulates per image, billions) fine-tunes on a laptop CPU in
#: minutes at 128-224 px; without a GMACs figure, CPU_PARAMS_M (millions of parameters) decides.
CPU_GMACS = 5.0
CPU_PARAMS_M = 30.0
ORDER_NOTE = (
    "Sorted for a first choice: models whose weights are on this machine (✓ Offline) first, then "
    f"models light enough for a laptop CPU (at most {CPU_GMACS:g} GMACs per image) by ImageNet "
    "top-1, then the rest by top-1. Click a column heading to sort by it."
)


def recommended_rank(frame: pd.DataFrame) -> np.ndarray:
    """Each row's place (0 = first) in the order the browser opens in, :data:`ORDER_NOTE`:
    offline weights first, then CPU-friendly models (``gmacs <= CPU_GMACS``, or
    ``params_m <= CPU_PARAMS_M`` where GMACs are unknown) by top-1, then the rest by top-1;
    rows without a top-1 figure last in each group, ties by name.

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"name": ["big.x", "small.x", "here.x"], "top1": [88.0, 80.0, 75.0],
    ...                       "gmacs": [300.0, 1.0, 0.4], "cached": [False, False, True]})
    >>> recommended_rank(frame).tolist()
    [2, 1, 0]
    """
    import pandas as pd

    n = len(frame)

    def num(key: str) -> np.ndarray:
        if key not in frame:
            return np.full(n, np.nan)
        return pd.to_numeric(frame[key], errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    cached = (np.array([_flag(v) for v in frame["cached"]], dtype=bool) if "cached" in frame
              else np.zeros(n, dtype=bool))
    gmacs, params, top1 = num("gmacs"), num("params_m"), num("top1")
    light = np.where(np.isfinite(gmacs), gmacs <= CPU_GMACS,
                     np.isfinite(params) & (params <= CPU_PARAMS_M))
    names = frame["name"].astype(str).to_numpy()
    # np.lexsort: the last key is the primary one
    order = np.lexsort((names, np.where(np.isfinite(top1), -top1, np.inf), ~light, ~cached))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank


def _hub_host() -> tuple[str, int] | None:
    url = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    parsed = urlparse(url)
    if not parsed.hostname:
        return None
    return parsed.hostname, parsed.port or (80 if parsed.scheme == "http" else 443)


def hub_status(timeout: float = 3.0) -> tuple[str, str]:
    """``("reachable" | "unreachable", why)`` for the Hugging Face Hub, from this machine now.

    ``HF_HUB_OFFLINE=1`` counts as unreachable without trying; otherwise one TCP connection to
    the hub's host (``HF_ENDPOINT`` or huggingface.co), ``timeout`` seconds at most.

    >>> hub_status()                                           # doctest: +SKIP
    ('unreachable', 'huggingface.co could not be reached: no answer')
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "unreachable", "HF_HUB_OFFLINE is set"
    host = _hub_host()
    if host is None:
        return "unreachable", "HF_ENDPOINT is not a URL"
    try:
        socket.create_connection(host, timeout=timeout).close()
    except OSError as err:
        why = "no answer" if isinstance(err, socket.timeout) else (
            "name not found" if isinstance(err, socket.gaierror) else type(err).__name__)
        return "unreachable", f"{host[0]} could not be reached: {why}"
    return "reachable", f"{host[0]} answers"


def _check_catalog(frame: Any) -> pd.DataFrame:
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(
            f"catalog must be a pandas DataFrame like tlw.catalog(), not {type(frame).__name__}: "
            "pass tlw.catalog() or a filtered copy of it (tlw.catalog().query('top1 > 80'))."
        )
    if "name" not in frame.columns:
        raise ConfigError(
            "The catalog has no 'name' column: the browser needs one 'arch.tag' name per row. "
            "Pass tlw.catalog() or a DataFrame with the same columns."
        )
    names = frame["name"]
    if names.isna().any() or (names.astype(str) == "").any():
        raise ConfigError(
            "The catalog has rows without a name: drop them first "
            "(catalog[catalog['name'].notna() & (catalog['name'] != '')])."
        )
    duplicated = names[names.duplicated()].astype(str).unique().tolist()
    if duplicated:
        shown = ", ".join(duplicated[:5])
        raise ConfigError(
            f"The catalog names {shown} more than once: each row must be one model. "
            "Drop the duplicates first (catalog.drop_duplicates('name'))."
        )
    return frame.reset_index(drop=True)


class ModelBrowser(anywidget.AnyWidget):
    """Browse timm's pretrained models: search, filter, sort, compare, pick one.

    The page shows a search box (substring or wildcards such as ``resnet*`` and ``*in21k*``),
    filters (family, pretraining data, licence and a commercial-use switch, parameter range,
    input size, available offline), a sortable table, the selected model's details and a scatter
    of top-1 against speed or size. It opens in the order a newcomer would choose from
    (:data:`ORDER_NOTE`, :func:`recommended_rank`): offline weights first, then models light
    enough for a CPU by top-1. Where the hub cannot be reached (checked in the background,
    ``check_hub=False`` to skip), rows whose weights are not on this machine say so, and the
    details pane gives the ways out, before ``create_model`` would fail. Click a row or a dot, or use the arrow keys and Enter, to set
    :attr:`selected`; setting it from Python selects and scrolls to that row.

    >>> import tlwidgets as tlw
    >>> browser = tlw.ModelBrowser(selected="resnet18.a1_in1k")  # doctest: +SKIP
    >>> browser                                                   # doctest: +SKIP
    >>> browser.observe(lambda change: print(change["new"]), "selected")  # doctest: +SKIP
    >>> model = browser.create_model(num_classes=5)              # doctest: +SKIP
    """

    _esm = static_file("model_browser.js")
    _css = static_file("model_browser.css")

    selected = traitlets.Unicode(
        "",
        help="The selected model's name ('arch.tag', as in tlw.catalog()['name']), or '' for none. "
        "Set by a click, Enter or a dot in the page; setting it here selects and reveals the row.",
    ).tag(sync=True)

    _catalog = traitlets.Dict(
        help="The catalog, columnar and binary-encoded by encode_catalog(); sent once, with "
        "the recommended order (a 'rank' column) and the note that explains it."
    ).tag(sync=True)

    hub = traitlets.Unicode(
        "unknown",
        help="Whether models without offline weights can be created now: 'unknown' (not "
        "checked), 'checking', 'reachable' or 'unreachable' (the Hugging Face Hub cannot be "
        "reached, or HF_HUB_OFFLINE is set). The page marks such rows and says the way out.",
    ).tag(sync=True)
    hub_detail = traitlets.Unicode(
        "", help="Why the hub is unreachable (say, 'HF_HUB_OFFLINE is set')."
    ).tag(sync=True)

    def __init__(
        self,
        catalog: pd.DataFrame | None = None,
        selected: str | None = None,
        check_hub: bool = True,
        **kwargs: Any,
    ) -> None:
        if catalog is None:
            from ..catalog import catalog as load_catalog

            catalog = load_catalog()
        frame = _check_catalog(catalog)
        self._frame = frame
        self._names = frozenset(frame["name"].astype(str))
        payload = encode_catalog(frame)
        rank = recommended_rank(frame).astype(np.float32)  # exact below 2**24 rows
        payload["columns"]["rank"] = {"kind": "num", "dtype": "float32", "data": rank.tobytes()}
        payload["order_note"] = ORDER_NOTE
        # only rows without offline weights need the hub: no probe when every row is cached
        probe = bool(check_hub) and not all(_flag(v) for v in frame.get("cached", [0]))
        super().__init__(_catalog=payload, hub="checking" if probe else "unknown", **kwargs)
        if selected:
            self.selected = selected
        if probe:
            self.check_hub(wait=False)

    def check_hub(self, wait: bool = True, timeout: float = 3.0) -> str:
        """Find out whether the hub can be reached now, so the page can mark the rows whose
        weights would need it; in a background thread unless ``wait``. Returns ``hub``.

        >>> browser.check_hub()          # doctest: +SKIP
        'unreachable'
        """
        if self.hub != "checking":
            self.hub = "checking"

        def probe() -> None:
            status, why = hub_status(timeout)
            with self.hold_sync():
                self.hub_detail = why
                self.hub = status

        if wait:
            probe()
        else:
            threading.Thread(target=probe, name="tlw-hub-probe", daemon=True).start()
        return self.hub

    @traitlets.validate("selected")
    def _validate_selected(self, proposal: dict[str, Any]) -> str:
        name = proposal["value"]
        if name and name not in self._names:
            close = difflib.get_close_matches(name, sorted(self._names), n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ModelNotFoundError(
                f"{name!r} is not in this browser's catalog.{hint} Use a name from "
                "browser.catalog['name'] (timm 'arch.tag' names such as 'resnet50.a1_in1k'), "
                "or '' to clear the selection."
            )
        return name

    @property
    def catalog(self) -> pd.DataFrame:
        """The catalog this browser shows (a copy), one row per model.

        >>> browser.catalog.query("cached")["name"].tolist()  # doctest: +SKIP
        """
        return self._frame.copy()

    @property
    def selected_row(self) -> pd.Series | None:
        """The selected model's catalog row, or None when nothing is selected.

        >>> browser.selected = "resnet18.a1_in1k"     # doctest: +SKIP
        >>> browser.selected_row["img_size"]          # doctest: +SKIP
        224.0
        """
        if not self.selected:
            return None
        frame = self._frame
        return frame.loc[frame["name"] == self.selected].iloc[0].copy()

    def create_model(
        self, num_classes: int, weights: str | os.PathLike[str] = "auto", **timm_kwargs: Any
    ) -> torch.nn.Module:
        """Build the selected model with a fresh ``num_classes`` head, through ``tlw.create_model``.

        ``weights`` (``"auto"``, ``"hub"``, ``"none"`` or a file) and ``timm_kwargs`` are passed
        on unchanged: see :func:`tlwidgets.create_model`.

        >>> browser.selected = "resnet18.a1_in1k"                     # doctest: +SKIP
        >>> model = browser.create_model(num_classes=3, weights="none")  # doctest: +SKIP
        """
        if not self.selected:
            raise ConfigError(
                "No model is selected in the browser, so there is nothing to create: click a "
                "row (or a dot in the scatter) first, or set browser.selected = "
                "'resnet18.a1_in1k' in code."
            )
        from ..weights import create_model

        return create_model(self.selected, num_classes, weights=weights, **timm_kwargs)
