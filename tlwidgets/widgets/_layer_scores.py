"""The FreezePanel's "Score layers": ``tlw.rank_layers`` run behind the panel, and its answer.

:class:`LayerScoring` is mixed into :class:`~tlwidgets.widgets.freeze_panel.FreezePanel` (which
declares the synced traits ``layer_scores`` and ``scoring``): it keeps the data, runs
``rank_layers`` in a :class:`~tlwidgets.widgets._rank_job.RankJob` (the worker never touches the
widget; the job's publisher thread sets the traits inside ``hold_sync()``), and applies the
suggested freeze point with ``tlw.freeze_to(model, n)``.
"""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, TLWidgetsError
from ._rank_job import RankJob

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LAYER_SENTENCE", "LayerScoring", "encode_layer_scores", "scoring_text"]

#: What the Score column means, in one sentence (the panel shows it under the tree).
LAYER_SENTENCE = (
    "Score: k-NN accuracy of each layer group's pooled output: the share of your sampled "
    "validation images whose 5 nearest training images, in the features after that group, "
    "carry their label (LogME, in the hover text, breaks ties). The star marks the best group: "
    "where the pretrained features fit your data best, so freezing up to it and training what "
    "follows is the suggested freeze point."
)


def _number(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def encode_layer_scores(df: pd.DataFrame, groups: list[str]) -> dict[str, Any]:
    """The ``layer_scores`` trait for a ``tlw.rank_layers`` frame over the panel's ``groups``.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"group": [0, 1], "name": ["stem", "body"], "feature_dim": [8, 16],
    ...     "logme": [0.1, 0.4], "knn_accuracy": [0.5, 0.9], "freeze_to": [1, 2],
    ...     "suggested": [False, True]})
    >>> df.attrs["suggested_freeze_to"] = 2
    >>> encode_layer_scores(df, ["stem", "body", "head"])["suggested_name"]
    'body'
    """
    rows = [
        {
            "group": int(r["group"]), "name": str(r["name"]), "feature_dim": int(r["feature_dim"]),
            "logme": _number(r["logme"]), "knn_pct": _number(100 * r["knn_accuracy"]),
            "freeze_to": int(r["freeze_to"]), "suggested": bool(r["suggested"]),
        }
        for _, r in df.iterrows()
    ]
    n = int(df.attrs.get("suggested_freeze_to", 0))
    best = next((r for r in rows if r["suggested"]), None)
    return {
        "rows": rows,
        "suggested_freeze_to": n,
        "suggested_name": best["name"] if best else "",
        "trains_from": groups[n] if 0 <= n < len(groups) else "",
        "by": str(df.attrs.get("by", "logme")),
        "n_images": int(df.attrs.get("n_images", 0)),
        "seconds": float(df.attrs.get("seconds", 0.0)),
        "explain": LAYER_SENTENCE,
    }


def scoring_text(state: str, update: dict[str, Any], has_data: bool,
                 scores: dict[str, Any] | None = None) -> str:
    """The line beside "Score layers" for a scoring ``state``."""
    if state == "unavailable" or not has_data:
        return ("Score layers needs your images: tlw.FreezePanel(model, data=data), "
                "panel.data = data or panel.score_layers(data).")
    if state == "ready":
        return "Score each layer group on your images to see where the pretrained features fit."
    if state == "running":
        return (f"Scoring the layer groups: {int(update.get('done', 0)):,} of "
                f"{int(update.get('total', 0)):,} images")
    if state == "cancelled":
        return "Cancelled: no scores."
    if state == "failed":
        return f"Scoring failed: {update.get('error', '')}"
    scores = scores or {}
    return (f"Scored on {scores.get('n_images', 0):,} images in "
            f"{float(update.get('seconds', scores.get('seconds', 0.0))):.1f} s. Suggested: freeze "
            f"up to {scores.get('suggested_name', '?')} and train from "
            f"{scores.get('trains_from') or 'the head'}.")


class LayerScoring:
    """The panel's side of "Score layers" (a mixin: the panel holds ``layer_scores``,
    ``scoring``, ``_model``, ``_groups``, ``bn`` and ``hold_sync``)."""

    _scoring_data: Any = None
    _scoring_job: RankJob | None = None
    _layer_table: pd.DataFrame | None = None

    @property
    def data(self) -> Any:
        """The images "Score layers" scores the groups on (a ``tlw.ImageData``), or None.

        >>> panel.data = tlw.sample_data(img_size=128)     # doctest: +SKIP
        """
        return self._scoring_data

    @data.setter
    def data(self, data: Any) -> None:
        if data is not None:
            from ..ranking.features import check_data

            check_data(data, "train")
        self._scoring_data = data
        if self._scoring_job is None or not self._scoring_job.running:
            state = "unavailable" if data is None else (
                "done" if self._layer_table is not None else "ready")
            self.scoring = self._scoring_state(state)

    @property
    def layer_score_table(self) -> pd.DataFrame | None:
        """The last ``tlw.rank_layers`` frame (a copy), or None before any.

        >>> panel.layer_score_table[["name", "logme", "knn_accuracy", "suggested"]]  # doctest: +SKIP
        """
        return None if self._layer_table is None else self._layer_table.copy()

    @property
    def suggested_freeze_to(self) -> int | None:
        """The ``n`` of ``tlw.freeze_to(model, n)`` the last scoring suggests, or None."""
        table = self._layer_table
        return None if table is None else int(table.attrs["suggested_freeze_to"])

    def _scoring_state(self, state: str, update: dict[str, Any] | None = None) -> dict[str, Any]:
        update = update or {}
        return {
            "state": state,
            "done": int(update.get("done", 0)),
            "total": int(update.get("total", 0)),
            "text": scoring_text(state, update, self._scoring_data is not None,
                                 self.layer_scores or None),
        }

    def score_layers(self, data: Any = None, per_class: int | None = 50, wait: bool = False,
                     timeout: float | None = None, **kwargs: Any) -> pd.DataFrame | None:
        """Score every layer group of the model on ``data`` (default :attr:`data`) with
        :func:`tlwidgets.rank_layers` in a background thread, as "Score layers" does; the panel
        then shows a Score column and the suggested freeze point. Returns at once (None), or
        with ``wait`` the scores' DataFrame. Keyword arguments go to ``rank_layers``.

        >>> panel.score_layers(tlw.sample_data(img_size=128), wait=True)   # doctest: +SKIP
        >>> panel.apply_suggested()                                       # doctest: +SKIP
        """
        from ..ranking import rank_layers

        if data is not None:
            self.data = data
        if self._scoring_data is None:
            raise ConfigError(
                "The panel has no data to score the layers on: pass your images, "
                "panel.score_layers(data) or panel.data = data (a tlw.ImageData)."
            )
        if self._scoring_job is not None and self._scoring_job.running:
            raise ConfigError(
                "The layers are being scored already: wait for it (panel.score_layers(wait="
                "True) next time) or press Cancel."
            )
        model, images = self._model, self._scoring_data

        def work(progress: Any, cancel: threading.Event) -> pd.DataFrame:
            return rank_layers(model, images, per_class=per_class, progress=progress,
                               cancel=cancel, **kwargs)

        self._scoring_job = RankJob(work, self._publish_scores, name="tlw-rank-layers")
        self.scoring = self._scoring_state("running")
        self._scoring_job.start()
        if not wait:
            return None
        if not self._scoring_job.wait(timeout):
            raise TLWidgetsError(f"Scoring the layers took longer than {timeout} s; it goes on "
                                 "in the background.")
        return self.layer_score_table

    def cancel_scoring(self) -> None:
        """Stop a running "Score layers" after its current batch."""
        job = self._scoring_job
        if job is not None:
            job.cancel()

    def apply_suggested(self) -> int:
        """Freeze up to the suggested group: ``tlw.freeze_to(model, n)`` with the panel's BN
        policy (what the "Apply" button does); returns ``n``.

        >>> panel.score_layers(data, wait=True); panel.apply_suggested()   # doctest: +SKIP
        5
        """
        from ..freeze import freeze_to

        n = self.suggested_freeze_to
        if n is None:
            raise ConfigError(
                "There is no suggested freeze point yet: score the layers first "
                "(panel.score_layers(data), or the Score layers button)."
            )
        freeze_to(self._model, n, bn=self.bn)
        return n

    def _publish_scores(self, update: dict[str, Any]) -> None:
        # The job's publisher thread: the only place scoring state reaches the widget.
        state = update["state"]
        result = update.get("result") if state == "done" else None
        with self.hold_sync():
            if result is not None:
                self._layer_table = result
                self.layer_scores = encode_layer_scores(result, [g.name for g in self._groups])
            self.scoring = self._scoring_state(state, update)

    def _scoring_command(self, cmd: str) -> bool:
        """Run a page command of this feature; False when ``cmd`` is not one."""
        if cmd == "score_layers":
            self.score_layers()
        elif cmd == "cancel_scoring":
            self.cancel_scoring()
        elif cmd == "apply_suggested":
            self.apply_suggested()
        else:
            return False
        return True
