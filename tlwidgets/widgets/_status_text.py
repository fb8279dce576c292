"""Text the dashboard shows: the progress label's parts and the epoch table. No widgets."""

from __future__ import annotations

import html
import math
from typing import Any

__all__ = ["epoch_table_html", "fmt_bytes", "fmt_duration", "where_parts"]


def fmt_duration(seconds: float | None) -> str:
    """``m:ss`` or ``h:mm:ss``; "–" when unknown.

    >>> fmt_duration(75), fmt_duration(3725), fmt_duration(None)
    ('1:15', '1:02:05', '–')
    """
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_bytes(n: float | None) -> str:
    """A byte count for people: ``512 B``, ``3 KB``, ``1.5 GB``.

    >>> fmt_bytes(1.5 * 1024**3)
    '1.5 GB'
    """
    if n is None or not math.isfinite(n):
        return "–"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def where_parts(state: str, epoch: int, epochs: Any, steps_per_epoch: Any, step: int,
                last: tuple[int, int]) -> list[str]:
    """Where the run is, for the progress label.

    ``epoch`` is ``trainer.progress()["epoch"]`` (1-based while a run is active, the number of
    completed epochs otherwise), ``last`` the (epoch, batch) of the last step event. After a stop
    or a failure the label says where the run stopped, not the last completed epoch's counts.

    >>> where_parts("stopped", 2, 40, 10, 25, (3, 5))
    ['stopped in epoch 3/40 at step 5/10', '2 epochs complete']
    >>> where_parts("running", 3, 40, 10, 25, (3, 5))
    ['epoch 3/40', 'step 5/10']
    """
    last_epoch, last_batch = last
    parts = []
    if state in ("stopped", "failed") and last_epoch and epochs:
        verb = "stopped" if state == "stopped" else "failed"
        done = min(epoch, int(epochs))
        if steps_per_epoch and last_batch and (last_epoch > done
                                               or last_batch < int(steps_per_epoch)):
            parts.append(f"{verb} in epoch {last_epoch}/{int(epochs)} at step "
                         f"{last_batch}/{int(steps_per_epoch)}")
            parts.append(f"{done} epoch{'s' if done != 1 else ''} complete")
        else:
            parts.append(f"{verb} after epoch {done}/{int(epochs)}")
        return parts
    if epochs:
        parts.append(f"epoch {min(epoch, int(epochs))}/{int(epochs)}")
    if steps_per_epoch and step:
        in_epoch = (step - 1) % int(steps_per_epoch) + 1
        parts.append(f"step {in_epoch}/{int(steps_per_epoch)}")
    return parts


def epoch_table_html(epochs: list[dict[str, float]]) -> str:
    """The Epochs tab: one row per finished epoch."""
    if not epochs:
        return "<i>No epoch finished yet.</i>"

    def cell(v: float, fmt: str) -> str:
        return html.escape(format(v, fmt)) if math.isfinite(v) else "–"

    rows = "".join(
        "<tr>"
        f"<td>{cell(r['epoch'], '.0f')}</td>"
        f"<td>{cell(r['train_loss'], '.4f')}</td><td>{cell(r['valid_loss'], '.4f')}</td>"
        f"<td>{cell(r['accuracy'] * 100, '.1f')}%</td><td>{cell(r['seconds'], '.1f')} s</td>"
        "</tr>"
        for r in epochs
    )
    return (
        "<style>.tlw-epochs th, .tlw-epochs td {padding: 2px 12px}</style>"
        "<table class='tlw-epochs' style='border-collapse:collapse;text-align:right'>"
        "<thead><tr><th>epoch</th><th>train loss</th><th>valid loss</th><th>accuracy</th>"
        f"<th>time</th></tr></thead><tbody>{rows}</tbody></table>"
    )
