"""The Studio's Data tab (a mixin of :class:`~tlwidgets.widgets.studio.Studio`): images (the
offline sample photos or a folder per class) or text (the offline sample sentences, a CSV file
with a text and a label column, or a folder of ``.txt`` files per class).

A CSV's columns are detected from their names (``text``/``label`` and their usual synonyms);
when they cannot be, the tab says which columns the file has and offers two lists to pick them.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..errors import ConfigError, TLWidgetsError

__all__ = ["LABEL_COLUMNS", "TEXT_COLUMNS", "DataTab", "detect_column", "studio_error_html"]

#: Column names taken for the text and for the label of a CSV, in order of preference
#: (compared without case).
TEXT_COLUMNS = ("text", "sentence", "review", "content", "document", "body", "comment")
LABEL_COLUMNS = ("label", "labels", "sentiment", "class", "category", "target", "y")

_SOURCES = {
    "image": [("Sample photos (offline)", "sample"), ("My image folder", "folder")],
    "text": [("Sample sentences (offline)", "text_sample"), ("My CSV file", "csv"),
             ("My text folder", "text_folder")],
}
_TIPS = {
    "image": ["Real photographs shipped in an installed package: no download",
              "A folder with one subfolder of images per class"],
    "text": ["Rotten Tomatoes movie-review sentences shipped in an installed package: no download",
             "A .csv or .tsv file with a text column and a label column",
             "A folder with one subfolder of .txt files per class"],
}
_BUTTON = {"sample": "sample photos", "folder": "my folder", "text_sample": "sample sentences",
           "csv": "my CSV file", "text_folder": "my text folder"}
_PLACEHOLDER = {"image": "path/to/images (one subfolder per class)",
                "text": "path/to/reviews.csv, or path/to/texts (one subfolder of .txt per class)"}
_AUTO = "(detect)"


def studio_error_html(err: BaseException) -> str:
    """An error as the page shows it: its own line breaks and bullets kept (pre-wrap)."""
    return (
        "<div class='tlw-error' style='color:var(--jp-error-color1,#d32f2f);"
        "white-space:pre-wrap;line-height:1.4;max-width:900px'>"
        f"{html.escape(f'{type(err).__name__}: {err}')}</div>"
    )


def detect_column(columns: list[str], wanted: tuple[str, ...]) -> str | None:
    """The first of ``columns`` named like one of ``wanted`` (case-insensitive), else None.

    >>> detect_column(["Review", "Sentiment"], TEXT_COLUMNS), detect_column(["a"], TEXT_COLUMNS)
    ('Review', None)
    """
    lower = {str(c).strip().lower(): str(c) for c in columns}
    return next((lower[w] for w in wanted if w in lower), None)


def _csv_columns(path: Path) -> list[str]:
    import pandas as pd

    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        return [str(c) for c in pd.read_csv(path, sep=sep, nrows=0).columns]
    except (pd.errors.EmptyDataError, UnicodeDecodeError, pd.errors.ParserError):
        return []  # from_csv itself says what is wrong with the file


class DataTab:
    """The Data tab's widgets and steps; ``Studio`` provides ``img_size``, ``batch_size``,
    ``text_sample_size`` and :meth:`use_data`."""

    img_size: int
    batch_size: int
    text_sample_size: int
    data: Any

    def _data_page(self) -> widgets.Widget:
        self.data_kind = widgets.ToggleButtons(
            options=[("Images", "image"), ("Text", "text")], value="image",
            style={"button_width": "auto"},
            tooltips=["Classify images (timm models)", "Classify texts (Hugging Face encoders)"])
        self.data_source = widgets.ToggleButtons(
            options=_SOURCES["image"], value="sample", style={"button_width": "auto"},
            tooltips=_TIPS["image"])
        self.folder_input = widgets.Text(placeholder=_PLACEHOLDER["image"],
                                         layout=widgets.Layout(width="420px"))
        self.load_data_button = widgets.Button(button_style="primary", icon="folder-open",
                                               layout=widgets.Layout(width="auto"))
        self.load_data_button.on_click(lambda _: self._load_data())
        style = {"description_width": "auto"}
        self.text_column = widgets.Dropdown(options=[_AUTO], value=_AUTO, style=style,
                                            description="Text column",
                                            layout=widgets.Layout(width="240px"))
        self.label_column = widgets.Dropdown(options=[_AUTO], value=_AUTO, style=style,
                                             description="Label column",
                                             layout=widgets.Layout(width="240px"))
        self.columns_box = widgets.HBox([self.text_column, self.label_column],
                                        layout=widgets.Layout(display="none"))
        # Typing a path means "my folder" (or "my CSV file"); the button says what it will load.
        self.folder_input.observe(self._on_folder_typed, "value")
        self.data_source.observe(lambda _: self._on_source(), "value")
        self.data_kind.observe(self._on_kind, "value")
        self._on_source()
        self.data_status = widgets.HTML("")
        self.data_summary = widgets.HTML("")
        self.data_thumbs = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        from .studio import explain_html

        return widgets.VBox([
            explain_html("data", "data = tlw.sample_data()  # or tlw.ImageData.from_folder(path),"
                         " tlw.sample_text_data(), tlw.TextData.from_csv(path)"),
            self.data_kind, self.data_source,
            widgets.HBox([self.folder_input, self.load_data_button]), self.columns_box,
            self.data_status, self.data_summary, self.data_thumbs,
        ])

    def _on_kind(self, change: dict[str, Any]) -> None:
        kind = change["new"]
        self.data_source.options = _SOURCES[kind]
        self.data_source.tooltips = _TIPS[kind]
        self.data_source.value = _SOURCES[kind][0][1]
        self.folder_input.placeholder = _PLACEHOLDER[kind]
        self._on_source()

    def _on_source(self) -> None:
        source = self.data_source.value or "sample"
        self.load_data_button.description = f"Load data: {_BUTTON[source]}"
        self.load_data_button.tooltip = (
            "Read the path typed on the left" if source in ("folder", "csv", "text_folder")
            else "Load the offline samples")
        self.columns_box.layout.display = "flex" if (
            source == "csv" and len(self.text_column.options) > 1) else "none"

    def _on_folder_typed(self, change: dict[str, Any]) -> None:
        new, old = str(change["new"]).strip(), str(change["old"]).strip()
        if self.data_kind.value == "image":
            if new and not old:
                self.data_source.value = "folder"
            return
        if new != old:  # a new file: its columns are read again on Load
            self._set_columns([])
        if new and (not old or self.data_source.value == "text_sample"):
            csv = new.lower().endswith((".csv", ".tsv"))
            self.data_source.value = "csv" if csv else "text_folder"

    def _set_columns(self, columns: list[str]) -> None:
        for box in (self.text_column, self.label_column):
            box.options = [_AUTO, *columns]
            box.value = _AUTO
        self._on_source()

    def _csv_choice(self, path: Path) -> tuple[str, str]:
        """The text and label columns of ``path``: picked in the lists, else detected."""
        columns = _csv_columns(path) if path.is_file() else []
        if columns and list(self.text_column.options[1:]) != columns:
            self._set_columns(columns)
        text = self.text_column.value if self.text_column.value != _AUTO else \
            detect_column(columns, TEXT_COLUMNS)
        label = self.label_column.value if self.label_column.value != _AUTO else \
            detect_column(columns, LABEL_COLUMNS)
        if columns and (text is None or label is None):
            missing = " and ".join(
                f"the {what} (looked for {', '.join(repr(c) for c in names[:4])}, …)"
                for what, found, names in (("text", text, TEXT_COLUMNS),
                                           ("label", label, LABEL_COLUMNS)) if found is None)
            raise ConfigError(
                f"Which columns of {path.name} hold the text and the label? Could not tell "
                f"{missing}; its columns are {', '.join(repr(c) for c in columns)}.\n"
                "Pick them in the Text column and Label column lists above, then press Load "
                "again (in code: tlw.TextData.from_csv(path, text='...', label='...')).")
        return text or "text", label or "label"

    def _load_data(self) -> None:
        import tlwidgets as tlw

        self.data_status.value = "<i>Loading…</i>"
        source = self.data_source.value
        try:
            if source == "sample":
                data = tlw.sample_data(img_size=self.img_size, batch_size=self.batch_size)
            elif source == "text_sample":
                data = tlw.sample_text_data(size=self.text_sample_size,
                                            batch_size=self.batch_size)
            else:
                path = self.folder_input.value.strip()
                if not path:
                    what = {"folder": "your image folder (one subfolder per class)",
                            "csv": "your CSV file (a text and a label column)",
                            "text_folder": "your text folder (one subfolder of .txt files "
                                           "per class)"}[source]
                    raise ConfigError(f"Type the path of {what} first, or choose the sample.")
                if source == "folder":
                    data = tlw.ImageData.from_folder(path, img_size=self.img_size,
                                                     batch_size=self.batch_size)
                elif source == "csv":
                    text, label = self._csv_choice(Path(path).expanduser())
                    data = tlw.TextData.from_csv(path, text=text, label=label,
                                                 batch_size=self.batch_size)
                else:
                    data = tlw.TextData.from_folder(path, batch_size=self.batch_size)
        except TLWidgetsError as err:
            self.data_status.value = studio_error_html(err)
            return
        self.use_data(data)

    def _show_data(self, data: Any) -> None:
        """The tab's status line, per-class table and examples for ``data``."""
        text = getattr(data, "modality", "image") == "text"
        summary = data.summary()
        noun = "texts" if text else "images"
        skipped = (f" Skipped {len(data.skipped)} unreadable {'rows or files' if text else 'files'}."
                   if data.skipped else "")
        cut = ""
        if text and getattr(data, "truncated", 0):
            cut = f" {html.escape(data.truncation_report())}"
        self.data_status.value = (
            f"<b>{data.num_classes} classes</b>, {int(summary['train'].sum())} training and "
            f"{int(summary['valid'].sum())} validation {noun}.{skipped}{cut}")
        self.data_summary.value = summary.to_html(classes="tlw-table", border=0)
        self.data_thumbs.children = _sentences(data) if text else _thumbnails(data)
        if self.data_kind.value != ("text" if text else "image"):  # data given in code
            self.data_kind.value = "text" if text else "image"


def _thumbnails(data: Any, per_class: int = 1) -> list[widgets.Widget]:
    cards, seen = [], set()
    for i, (_, label) in enumerate(getattr(data, "valid_items", [])):
        if label in seen:
            continue
        seen.add(label)
        try:
            img = data.raw_image("valid", i).copy()
            img.thumbnail((96, 96))
            buf = io.BytesIO()
            img.save(buf, format="PNG")
        except Exception:  # noqa: BLE001, S112 - a thumbnail that cannot be made is left out
            continue
        cards.append(widgets.VBox([
            widgets.Image(value=buf.getvalue(), format="png",
                          layout=widgets.Layout(width="96px")),
            widgets.Label(str(data.classes[label]), tooltip=str(data.classes[label]),
                          layout=widgets.Layout(max_width="96px")),
        ], layout=widgets.Layout(margin="4px")))
        if len(seen) >= 12 * per_class:
            break
    return cards


def _sentences(data: Any, per_class: int = 2) -> list[widgets.Widget]:
    """A few validation texts of each class, escaped, three lines at most (all on hover)."""
    cards, count = [], {}
    for text, label in getattr(data, "valid_items", []):
        if count.get(label, 0) >= per_class or len(count) > 12:
            continue
        count[label] = count.get(label, 0) + 1
        name = html.escape(str(data.classes[label]))
        cards.append(widgets.HTML(
            f"<div class='tlw-studio-text' title='{html.escape(text, quote=True)}' "
            "style='width:260px;margin:4px;padding:4px 6px;border-left:3px solid "
            "var(--jp-border-color1,#bbb);background:var(--jp-layout-color2,#f3f3f3);"
            "color:var(--jp-content-font-color1,#222);line-height:1.35'>"
            f"<b>{name}</b><div style='display:-webkit-box;-webkit-box-orient:vertical;"
            "-webkit-line-clamp:3;overflow:hidden;overflow-wrap:anywhere'>"
            f"{html.escape(text[:400])}</div></div>"))
    return cards

