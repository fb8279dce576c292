"""The table :meth:`ImageData.summary` returns (images per class and split) and the notes
printed under it: what was skipped and why, which non-image files were ignored.

>>> s = summary_table(["cat", "dog"], [("a.png", 0), ("b.png", 1)], [("c.png", 1)], ["a note"])
>>> s["total"].tolist(), s.notes
([1, 2], ['a note'])
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pandas as pd

from ._class_folders import rel
from ._image_files import IMAGE_EXTENSIONS

__all__ = ["DataSummary", "reading_notes", "summary_table"]


class DataSummary(pd.DataFrame):
    """What :meth:`ImageData.summary` returns: the table of images per class and split, plus
    ``notes`` (a list of strings: what was skipped and why, what was ignored), printed under
    the table. Any operation on it gives a plain DataFrame.

    >>> s = data.summary()          # doctest: +SKIP
    >>> s.notes                     # doctest: +SKIP
    ['1 file skipped (data.skipped lists each with its reason): cat/cut.jpg: the file is cut off']
    """

    _metadata: ClassVar[list[str]] = ["notes"]

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _notes_text(self) -> str:
        return "\n".join(f"- {n}" for n in getattr(self, "notes", []))

    def __repr__(self) -> str:
        table = pd.DataFrame(self).__repr__()
        notes = self._notes_text()
        return f"{table}\n{notes}" if notes else table

    def _repr_html_(self) -> str | None:
        import html

        table = pd.DataFrame(self)._repr_html_() or ""
        notes = getattr(self, "notes", [])
        if not notes:
            return table
        items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
        return f"{table}<ul class='tlw-data-notes'>{items}</ul>"


def summary_table(
    classes: Sequence[str],
    train_items: Sequence[tuple[str | None, int]],
    valid_items: Sequence[tuple[str | None, int]],
    notes: list[str],
) -> DataSummary:
    """Images per class and split (rows: ``classes``; columns ``train``, ``valid``, ``total``,
    int64) with ``notes`` printed under the table.

    >>> summary_table(["a", "b"], [(None, 0), (None, 1)], [], [])["train"].tolist()
    [1, 1]
    """
    train = Counter(y for _, y in train_items)
    valid = Counter(y for _, y in valid_items)
    df = pd.DataFrame(
        {
            "train": [train.get(i, 0) for i in range(len(classes))],
            "valid": [valid.get(i, 0) for i in range(len(classes))],
        },
        index=pd.Index(classes, name="class"),
    )
    df["total"] = df["train"] + df["valid"]
    out = DataSummary(df.astype("int64"))
    out.notes = notes
    return out


def reading_notes(
    skipped: Sequence[tuple[str, str]], ignored: dict[str, int], root: Path | None
) -> list[str]:
    """Sentences about files ``skipped`` (the first five, paths relative to ``root``) and the
    non-image files ``ignored`` (``{extension: count}``).

    >>> reading_notes([("/p/cat/cut.jpg", "the file is cut off")], {}, Path("/p"))
    ['1 file skipped (data.skipped lists each with its reason): cat/cut.jpg: the file is cut off']
    """
    notes: list[str] = []
    if skipped:
        shown = "; ".join(f"{rel(p, root)}: {why}" for p, why in skipped[:5])
        more = f"; and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        n = len(skipped)
        notes.append(
            f"{n} file{'s' if n != 1 else ''} skipped (data.skipped lists each with its "
            f"reason): {shown}{more}"
        )
    if ignored:
        n = sum(ignored.values())
        exts = ", ".join(f"{ext} ({c})" for ext, c in
                         sorted(ignored.items(), key=lambda kv: (-kv[1], kv[0]))[:8])
        notes.append(
            f"{n} non-image file{'s' if n != 1 else ''} ignored: {exts}. Read as images: "
            f"{', '.join(IMAGE_EXTENSIONS)}."
        )
    return notes
