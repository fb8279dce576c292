"""ModelBrowser: the timm catalog as one searchable, sortable, virtual-scrolled table, and a
Text tab of Hugging Face text encoders (``tlw.text_catalog()``, see ``_text_browser.py``).

The catalog travels to the page once, columnar: numbers as float32 binary buffers, flags as
uint8, repetitive strings (family, pretraining, licence, interpolation) dictionary-encoded, the
rest as one list per column. Filtering, sorting, scrolling and the scatter run in the page
(js/model_browser.js); only the selected model's name comes back, in ``selected``.
"""

from __future__ import annotations

import difflib
import os
import threading
from typing import TYPE_CHECKING, Any

import anywidget
import numpy as np
import traitlets

from .._hub_probe import no_answer
from ..errors import ConfigError, ModelNotFoundError, TLWidgetsError
from ._browser_scores import RANDOM_INIT, SCORE_SENTENCES, encode_scores, ranking_text
from ._catalog_wire import encode_catalog, flag
from ._rank_job import RankJob
from ._static import static_file
from ._text_browser import check_text_catalog, text_state

if TYPE_CHECKING:
    import pandas as pd
    import torch

__all__ = [
    "CPU_GMACS",
    "ORDER_NOTE",
    "SCORE_SENTENCES",
    "ModelBrowser",
    "encode_catalog",
    "hub_status",
    "recommended_rank",
]

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

    cached = (np.array([flag(v) for v in frame["cached"]], dtype=bool) if "cached" in frame
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


def _hub_endpoint() -> str:
    try:
        from huggingface_hub import constants

        return str(constants.ENDPOINT)  # HF_ENDPOINT as huggingface_hub read it
    except ImportError:  # pragma: no cover - huggingface_hub comes with timm
        return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def hub_status(timeout: float = 3.0) -> tuple[str, str]:
    """``("reachable" | "unreachable", why)`` for the Hugging Face Hub, from this machine now.

    ``HF_HUB_OFFLINE=1`` counts as unreachable without trying; otherwise the probe that
    ``tlw.create_model`` runs before a download (``tlwidgets._hub_probe.no_answer``: one HTTP
    ``HEAD /`` to ``HF_ENDPOINT`` or huggingface.co, answered within ``timeout`` seconds in all).

    >>> hub_status()                                           # doctest: +SKIP
    ('unreachable', 'huggingface.co could not be reached ([Errno -3] ...)')
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "unreachable", "HF_HUB_OFFLINE is set"
    url = _hub_endpoint()
    why = no_answer(url, timeout)
    if why is not None:
        return "unreachable", why
    return "reachable", f"{url} answers"


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
    details pane gives the ways out, before ``create_model`` would fail. Click a row or a dot,
    or use the arrow keys and Enter, to set :attr:`selected`; setting it from Python selects and
    scrolls to that row.

    Given your images (``data=``, or ``browser.data = data`` later), "Rank on my data" scores
    the candidates (``candidates=``; default: the rows whose weights are on this machine) with
    :func:`tlwidgets.rank_models` in a background thread, with progress and Cancel in the page,
    then adds the scores (rank, LogME, k-NN accuracy; feature size, seconds and why a
    candidate failed in the details) to the table, sorts by rank, and shows each ranked
    model's ImageNet-similarity card in the details pane. :meth:`rank` does the same from code.

    >>> import tlwidgets as tlw
    >>> browser = tlw.ModelBrowser(selected="resnet18.a1_in1k")  # doctest: +SKIP
    >>> browser                                                   # doctest: +SKIP
    >>> browser.observe(lambda change: print(change["new"]), "selected")  # doctest: +SKIP
    >>> model = browser.create_model(num_classes=5)              # doctest: +SKIP
    >>> browser.data = tlw.sample_data(img_size=128)              # doctest: +SKIP
    >>> browser.rank(wait=True)[["rank", "model", "logme", "knn_accuracy"]]  # doctest: +SKIP

    The Text tab (``modality="text"``, or a click on "Text" in the page) lists text encoders
    from :func:`tlwidgets.text_catalog` (packaged, in the local Hugging Face cache, curated),
    with size, licence, languages, source and "available offline" as for images; selecting one
    and :meth:`create_model` make a text classifier through ``tlw.create_model``.

    >>> browser = tlw.ModelBrowser(modality="text")                        # doctest: +SKIP
    >>> browser.selected = "sentence-transformers/all-MiniLM-L6-v2"       # doctest: +SKIP
    >>> model = browser.create_model(num_classes=2)                        # doctest: +SKIP
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

    ranking = traitlets.Dict(
        help="'Rank on my data': state ('unavailable' without data, 'ready', 'running', "
        "'done', 'cancelled', 'failed'), done and total (images scored over all candidates), "
        "message (the candidate being scored) and text (the line the page shows)."
    ).tag(sync=True)
    _scores = traitlets.Dict(
        help="The last ranking's scores for the page (encode_scores() in _browser_scores.py): "
        "index (table row of each ranked candidate), extra (rows for candidates not in the "
        "catalog), columns (score_rank, score_order, logme, knn_pct, feature_dim, n_images, "
        "rank_seconds, rank_error, looks_like, imagenet_*), similarity cards, explain."
    ).tag(sync=True)

    modality = traitlets.Unicode(
        "image",
        help="Which models the page lists: 'image' (timm) or 'text' (Hugging Face encoders, "
        "tlw.text_catalog(), built in the background the first time the Text tab opens).",
    ).tag(sync=True)
    _text = traitlets.Dict(
        help="The Text tab: state ('unloaded', 'loading', 'ready', 'failed'), rows (name, "
        "source, params_m, layers, hidden, model_type, licence, languages, cached, url), "
        "note (the order they are in) and error; see _text_browser.text_state()."
    ).tag(sync=True)

    def __init__(
        self,
        catalog: pd.DataFrame | None = None,
        selected: str | None = None,
        check_hub: bool = True,
        data: Any = None,
        candidates: Any = None,
        per_class: int | None = 50,
        text_catalog: pd.DataFrame | None = None,
        modality: str = "image",
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
        probe = bool(check_hub) and not all(flag(v) for v in frame.get("cached", [0]))
        self._data: Any = None
        self._candidates = candidates
        self._per_class = per_class
        self._job: RankJob | None = None
        self._result: pd.DataFrame | None = None
        self._extra: pd.DataFrame | None = None
        if data is not None:  # checked here, so bad data fails at the call
            from ..ranking.features import check_data

            check_data(data, "train")
        self._data = data
        self._text_frame: pd.DataFrame | None = None
        self._text_lock = threading.Lock()
        if text_catalog is not None:
            self._text_frame = check_text_catalog(text_catalog)
        super().__init__(_catalog=payload, hub="checking" if probe else "unknown",
                         _text=text_state("ready" if self._text_frame is not None
                                          else "unloaded", self._text_frame),
                         ranking=self._ranking_state("ready" if data is not None
                                                     else "unavailable"), **kwargs)
        self.on_msg(self._handle_message)
        self.observe(self._on_modality, "modality")
        self.modality = modality
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

    # ---- ranking on the user's data ----------------------------------------------------------
    @property
    def data(self) -> Any:
        """The images "Rank on my data" scores the models on (a ``tlw.ImageData``), or None.

        Setting it enables the button; bad data is refused here (``ConfigError``/``DataError``).

        >>> browser.data = tlw.sample_data(img_size=128)   # doctest: +SKIP
        """
        return self._data

    @data.setter
    def data(self, data: Any) -> None:
        if data is not None:
            from ..ranking.features import check_data

            check_data(data, "train")
        self._data = data
        if self._job is None or not self._job.running:
            self.ranking = self._ranking_state("ready" if data is not None else "unavailable")

    @property
    def scores(self) -> pd.DataFrame | None:
        """The last ranking (``tlw.rank_models``' frame, a copy), or None before any.

        >>> browser.scores[["rank", "model", "logme", "knn_accuracy"]]   # doctest: +SKIP
        """
        return None if self._result is None else self._result.copy()

    def _what(self, candidates: Any) -> str:
        if candidates is None:
            n = len(self._default_candidates() or [])
            return (f"the {n} model{'s' if n != 1 else ''} with weights on this machine" if n
                    else "the models with weights on this machine")
        count = len(candidates) if isinstance(candidates, (list, tuple, dict)) else 1
        return f"{count} candidate{'s' if count != 1 else ''}"

    def _data_text(self) -> str:
        data = self._data
        if data is None:
            return ""
        per = f"up to {self._per_class} per class" if self._per_class else "all of them"
        return (f"{len(data.classes)} classes, {len(data.train_items):,} training images; "
                f"{per}")

    def _ranking_state(self, state: str, update: dict[str, Any] | None = None) -> dict[str, Any]:
        update = update or {}
        return {
            "state": state,
            "done": int(update.get("done", 0)),
            "total": int(update.get("total", 0)),
            "message": str(update.get("message", "")),
            "text": ranking_text(state, update, self._data_text(), self._what(self._candidates)),
        }

    def _default_candidates(self) -> list[str] | None:
        frame = self._frame
        if "cached" not in frame:
            return None
        names = frame.loc[[bool(flag(v)) for v in frame["cached"]], "name"].astype(str).tolist()
        return names or None

    def rank(self, candidates: Any = None, per_class: int | None = None, wait: bool = False,
             timeout: float | None = None, **kwargs: Any) -> pd.DataFrame | None:
        """Rank ``candidates`` on :attr:`data` with :func:`tlwidgets.rank_models` in a
        background thread, as "Rank on my data" does; the page shows the progress and then the
        scores. Returns at once (None), or with ``wait`` the ranking's DataFrame.

        ``candidates`` and ``per_class`` default to the browser's own (``ModelBrowser(
        candidates=..., per_class=...)``; candidates default to the rows whose weights are on
        this machine). Other keyword arguments go to ``rank_models`` (``k``, ``by``, ``seed``,
        ``batch_size``, ``device``). A second call while one runs is a ``ConfigError``.

        >>> browser.rank(["tf_efficientnet_lite0",
        ...               tlw.create_model("tf_efficientnet_lite0", 4, weights="none")],
        ...              per_class=20, wait=True)                          # doctest: +SKIP
        """
        from ..ranking import rank_models

        if self._data is None:
            raise ConfigError(
                "The browser has no data to rank the models on: pass your images first, "
                "tlw.ModelBrowser(data=data) or browser.data = data (a tlw.ImageData)."
            )
        if self._job is not None and self._job.running:
            raise ConfigError(
                "A ranking is already running in this browser: wait for it "
                "(browser.wait_ranking()) or cancel it (browser.cancel_ranking()) first."
            )
        if candidates is not None:
            self._candidates = candidates
        if per_class is not None:
            self._per_class = per_class
        data, chosen, per = self._data, self._candidates, self._per_class
        names = chosen if chosen is not None else self._default_candidates()

        def work(progress: Any, cancel: threading.Event) -> pd.DataFrame:
            return rank_models(data, names, per_class=per, progress=progress, cancel=cancel,
                               **kwargs)

        self._job = RankJob(work, self._publish_ranking, name="tlw-rank-models")
        self.ranking = self._ranking_state("running", {"message": "loading"})
        self._job.start()
        return self.wait_ranking(timeout) if wait else None

    def cancel_ranking(self) -> None:
        """Stop a running ranking after its current batch (what Cancel in the page does); the
        models scored so far are kept, the rest say "cancelled"."""
        job = getattr(self, "_job", None)  # None too when __init__ failed before setting it
        if job is not None:
            job.cancel()

    def wait_ranking(self, timeout: float | None = None) -> pd.DataFrame | None:
        """Wait for the running ranking to end and be shown; its DataFrame (None if it failed).

        >>> browser.rank(); browser.wait_ranking(120)        # doctest: +SKIP
        """
        job = self._job
        if job is not None and not job.wait(timeout):
            raise TLWidgetsError(
                f"The ranking did not finish within {timeout} s; it goes on in the background "
                "(browser.cancel_ranking() stops it)."
            )
        return self.scores

    def _publish_ranking(self, update: dict[str, Any]) -> None:
        # The job's publisher thread: the only place ranking state reaches the widget.
        state = update["state"]
        if state == "running":
            self.ranking = self._ranking_state(state, update)
            return
        result = update.get("result")
        with self.hold_sync():
            if result is not None:
                payload, extra = encode_scores(result, self._frame)
                self._result, self._extra = result, extra
                self._names = frozenset(self._frame["name"].astype(str)) | frozenset(
                    extra["name"].astype(str) if len(extra) else ())
                self._scores = payload
            self.ranking = self._ranking_state(state, update)

    def _handle_message(self, _widget: Any, content: Any, _buffers: Any = None) -> None:
        if not isinstance(content, dict):
            return
        if content.get("cmd") == "rank":
            try:
                self.rank()
            except TLWidgetsError as err:
                self.ranking = {**self._ranking_state("failed", {"error": str(err)})}
        elif content.get("cmd") == "cancel":
            self.cancel_ranking()

    def close(self) -> None:
        """Cancel a running ranking and close the widget."""
        self.cancel_ranking()
        super().close()

    # ---- the Text tab ------------------------------------------------------------------------
    @traitlets.validate("modality")
    def _validate_modality(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in ("image", "text"):
            raise ConfigError(f"modality must be 'image' or 'text', not {proposal['value']!r}.")
        return proposal["value"]

    def _on_modality(self, change: dict[str, Any]) -> None:
        if change["new"] == "text" and self._text_frame is None and \
                self._text.get("state") != "loading":
            self._text = text_state("loading")
            threading.Thread(target=self._load_text, args=(False,), name="tlw-text-catalog",
                             daemon=True).start()

    def _load_text(self, reraise: bool = True) -> pd.DataFrame | None:
        with self._text_lock:  # the page's first click and a call from code build it once
            if self._text_frame is None:
                from ..text.catalog import text_catalog

                try:
                    self._text_frame = check_text_catalog(text_catalog())
                except Exception as err:  # the page says why; a call from code re-raises
                    self._text = text_state("failed", error=f"{type(err).__name__}: {err}")
                    if reraise:
                        raise
                    return None
                self._text = text_state("ready", self._text_frame)
        return self._text_frame

    @property
    def text_catalog(self) -> pd.DataFrame:
        """The Text tab's encoders (``tlw.text_catalog()``, built on first use; a copy).

        >>> browser.text_catalog.query("available_offline")["name"].tolist()  # doctest: +SKIP
        ['sentence-transformers/all-MiniLM-L6-v2']
        """
        frame = self._load_text()
        assert frame is not None
        return frame.copy()

    def _text_names(self, build: bool) -> frozenset[str]:
        frame = self._load_text() if build else self._text_frame
        return frozenset(frame["name"].astype(str)) if frame is not None else frozenset()

    @traitlets.validate("selected")
    def _validate_selected(self, proposal: dict[str, Any]) -> str:
        name = proposal["value"]
        if name and name not in self._names and "/" in name and \
                name in self._text_names(build=True):
            if self.modality != "text":
                self.modality = "text"
            return name
        if name and name not in self._names:
            pool = self._names | (self._text_names(build=False) if "/" in name else frozenset())
            close = difflib.get_close_matches(name, sorted(pool), n=3, cutoff=0.6)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ModelNotFoundError(
                f"{name!r} is not in this browser's catalog.{hint} Use a name from "
                "browser.catalog['name'] (timm 'arch.tag' names such as 'resnet50.a1_in1k'), "
                "browser.text_catalog['name'] for a text encoder, or '' to clear the selection."
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
        if self._text_frame is not None and self.selected in self._text_names(build=False):
            frame = self._text_frame
        hit = frame.loc[frame["name"] == self.selected]
        if hit.empty and self._extra is not None and len(self._extra):
            hit = self._extra.loc[self._extra["name"] == self.selected]
        row = hit.iloc[0].copy()
        result = self._result
        if result is not None:  # a ranked model's row carries its scores too
            ranked = result[(result["name"] == self.selected) | (result["model"] == self.selected)]
            if len(ranked):
                for key in ("rank", "logme", "knn_accuracy", "feature_dim", "n_images",
                            "seconds", "imagenet_max_prob", "imagenet_entropy", "looks_like",
                            "error"):
                    row[f"score_{key}" if key in ("rank", "seconds", "error") else key] = (
                        ranked.iloc[0][key])
        return row

    def create_model(
        self, num_classes: int, weights: str | os.PathLike[str] = "auto", **timm_kwargs: Any
    ) -> torch.nn.Module:
        """Build the selected model with a fresh ``num_classes`` head, through ``tlw.create_model``.

        ``weights`` (``"auto"``, ``"hub"``, ``"none"`` or a file) and ``timm_kwargs`` are passed
        on unchanged: see :func:`tlwidgets.create_model`. A text encoder selected in the Text tab
        makes a text classifier the same way (``tlw.create_model(name, num_classes)``).

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

        name = self.selected
        if name in self._text_names(build=False):
            return create_model(name, num_classes, weights=weights, **timm_kwargs)
        if name not in set(self._frame["name"].astype(str)):  # a ranked model, not a catalog row
            if not name.endswith(RANDOM_INIT):
                raise ConfigError(
                    f"{name!r} is a model you passed to the ranking, not a catalog row: use "
                    "that model object itself, or select a catalog row to create a new one."
                )
            name, weights = name.removesuffix(RANDOM_INIT), "none"
        return create_model(name, num_classes, weights=weights, **timm_kwargs)
