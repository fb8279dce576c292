"""Studio: the whole transfer-learning workflow in one widget, for workshops.

Tabs Data → Model → Layers → Train → Evaluate → Predict, each with a short explanation for
newcomers, built from the other widgets. Every step calls the core, so what a student does here
can be redone in code with the same names (shown under each tab).

>>> import tlwidgets as tlw
>>> tlw.Studio()        # doctest: +SKIP
"""

from __future__ import annotations

import html
import io
import math
from typing import Any

import ipywidgets as widgets

from ..errors import ConfigError, TLWidgetsError, TrainerStateError

__all__ = ["Studio"]

OFFLINE_ARCH = "tf_efficientnet_lite0"
TAB_TITLES = ("1 · Data", "2 · Model", "3 · Layers", "4 · Train", "5 · Evaluate", "6 · Predict")

_EXPLAIN = {
    "data": (
        "Transfer learning starts from <b>your</b> images: one folder per class. The sample "
        "below is real photographs shipped inside an installed package, so it works offline. "
        "A fifth of each class is kept aside to check the model on images it never trained on."
    ),
    "model": (
        "Pick a model <b>pretrained</b> on ImageNet: its early layers already detect edges, "
        "textures and shapes. tlwidgets replaces its last layer (the <i>head</i>) with a new one "
        "that has one output per class of your data. Models marked offline load without network."
    ),
    "layers": (
        "Freeze the pretrained layers so training only adjusts the new head: fewer images and "
        "less compute are needed, and what the model already knows is kept. Unfreeze more "
        "layers later for a last bit of accuracy."
    ),
    "train": (
        "Press <b>Start</b>. Training runs in the background: watch the loss fall and the "
        "validation accuracy rise. Pause, resume or stop at any time; nothing is lost."
    ),
    "evaluate": (
        "Where does the model go wrong? Each cell of the confusion matrix is a count: the "
        "validation images of one true class (row) that the model predicted as one class "
        "(column). The diagonal is right, every other cell a mix-up; hover a cell for its share "
        "of the row, or switch the matrix to row %. Below: the images it got most confidently "
        "wrong, with the probability it gave to the class it chose."
    ),
    "predict": (
        "Upload a photo (JPEG or PNG) and see the classes the model thinks it belongs to. "
        "Wait for training to end first: the model cannot predict while it trains."
    ),
}


def _explain(key: str, code: str) -> widgets.HTML:
    return widgets.HTML(
        f"<div class='tlw-explain' style='max-width:900px;margin:4px 0 10px 0'>{_EXPLAIN[key]}"
        "<div style='margin-top:4px;color:var(--jp-ui-font-color2)'>In code: "
        f"<code>{html.escape(code)}</code></div></div>"
    )


def _error_html(err: BaseException) -> str:
    """An error as the page shows it: its own line breaks and bullets kept (pre-wrap)."""
    return (
        "<div class='tlw-error' style='color:var(--jp-error-color1,#d32f2f);"
        "white-space:pre-wrap;line-height:1.4;max-width:900px'>"
        f"{html.escape(f'{type(err).__name__}: {err}')}</div>"
    )


def _check_int(name: str, value: Any, lo: int, hi: int, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"Studio({name}=...) must be a whole number from {lo:,} to {hi:,}, "
                          f"got {value!r}; e.g. tlw.Studio({name}={example}).")
    return value


class Studio(widgets.VBox):
    """One widget for a workshop: data, model, layers, training, evaluation and prediction.

    Parameters
    ----------
    data:
        An :class:`tlwidgets.ImageData` to start from (default: choose in the Data tab).
    img_size:
        Image size used for training, in pixels (16 to 1024; smaller is faster on a laptop
        CPU; default 128).
    epochs:
        Default number of epochs in the Train tab (a whole number, at least 1).
    batch_size:
        Images per training step (default 16).

    Arguments that cannot be used (``epochs=0``, ``img_size="big"``) raise
    :class:`~tlwidgets.ConfigError` here, not later in a tab.

    Attributes ``data``, ``model`` and ``trainer`` hold the current objects, so a cell can
    continue from wherever the Studio got to.

    >>> studio = tlw.Studio()      # doctest: +SKIP
    >>> studio                     # doctest: +SKIP
    >>> studio.trainer.history     # doctest: +SKIP
    """

    def __init__(self, data: Any = None, *, img_size: int = 128, epochs: int = 3,
                 batch_size: int = 16) -> None:
        self.data: Any = None
        self.model: Any = None
        self.trainer: Any = None
        self.browser: Any = None
        self.panel: Any = None
        self.dashboard: Any = None
        self.img_size = _check_int("img_size", img_size, 16, 1024, 128)
        self.epochs = _check_int("epochs", epochs, 1, 10_000, 3)
        self.batch_size = _check_int("batch_size", batch_size, 1, 4096, 16)
        if data is not None and not (hasattr(data, "summary") and hasattr(data, "num_classes")):
            raise ConfigError(f"Studio(data=...) takes a tlw.ImageData, got {type(data).__name__}; "
                              "e.g. tlw.Studio(data=tlw.ImageData.from_folder('photos/')).")
        self.tabs = widgets.Tab()
        self._pages = [self._data_page(), self._model_page(), self._layers_page(),
                       self._train_page(), self._evaluate_page(), self._predict_page()]
        self.tabs.children = self._pages
        for i, title in enumerate(TAB_TITLES):
            self.tabs.set_title(i, title)
        self.status = widgets.HTML("")
        super().__init__(
            children=[widgets.HTML("<h3 style='margin:4px 0'>tlwidgets Studio: transfer "
                                   "learning, step by step</h3>"), self.tabs, self.status],
            layout=widgets.Layout(width="100%"),
        )
        self.add_class("tlw-studio")
        if data is not None:
            self.use_data(data)

    # ------------------------------------------------------------------ Data
    def _data_page(self) -> widgets.Widget:
        self.data_source = widgets.ToggleButtons(
            options=[("Sample photos (offline)", "sample"), ("My image folder", "folder")],
            value="sample", style={"button_width": "auto"},
            tooltips=["Real photographs shipped in an installed package: no download",
                      "A folder with one subfolder of images per class"],
        )
        self.folder_input = widgets.Text(placeholder="path/to/images (one subfolder per class)",
                                         layout=widgets.Layout(width="420px"))
        self.load_data_button = widgets.Button(button_style="primary", icon="folder-open",
                                               layout=widgets.Layout(width="auto"))
        self.load_data_button.on_click(lambda _: self._load_data())
        # Typing a path means "my folder"; the button always says what it will load.
        self.folder_input.observe(self._on_folder_typed, "value")
        self.data_source.observe(lambda _: self._label_load_button(), "value")
        self._label_load_button()
        self.data_status = widgets.HTML("")
        self.data_summary = widgets.HTML("")
        self.data_thumbs = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
        return widgets.VBox([
            _explain("data", "data = tlw.sample_data()  # or tlw.ImageData.from_folder(path)"),
            self.data_source, widgets.HBox([self.folder_input, self.load_data_button]),
            self.data_status, self.data_summary, self.data_thumbs,
        ])

    def _on_folder_typed(self, change: dict[str, Any]) -> None:
        if str(change["new"]).strip() and not str(change["old"]).strip():
            self.data_source.value = "folder"

    def _label_load_button(self) -> None:
        folder = self.data_source.value == "folder"
        self.load_data_button.description = ("Load data: my folder" if folder
                                             else "Load data: sample photos")
        self.load_data_button.tooltip = ("Read the folder typed on the left" if folder
                                         else "Load the offline sample photos")

    def _load_data(self) -> None:
        import tlwidgets as tlw

        self.data_status.value = "<i>Loading…</i>"
        try:
            if self.data_source.value == "sample":
                data = tlw.sample_data(img_size=self.img_size, batch_size=self.batch_size)
            else:
                path = self.folder_input.value.strip()
                if not path:
                    raise ConfigError("Type the path of your image folder first (one subfolder "
                                      "per class), or choose Sample photos.")
                data = tlw.ImageData.from_folder(path, img_size=self.img_size,
                                                 batch_size=self.batch_size)
        except TLWidgetsError as err:
            self.data_status.value = _error_html(err)
            return
        self.use_data(data)

    def use_data(self, data: Any) -> None:
        """Use ``data`` (an ImageData) from now on; later steps are reset to match it."""
        self.data = data
        summary = data.summary()
        self.data_status.value = (
            f"<b>{data.num_classes} classes</b>, {int(summary['train'].sum())} training and "
            f"{int(summary['valid'].sum())} validation images."
            + (f" Skipped {len(data.skipped)} unreadable files." if data.skipped else "")
        )
        self.data_summary.value = summary.to_html(classes="tlw-table", border=0)
        self.data_thumbs.children = self._thumbnails(data)
        if self.browser is not None:  # "Rank on my data" ranks on the new data
            self.browser.data = data
        self.trainer = None
        self.dashboard = None
        self.train_box.children = [self.train_hint]
        if self.model is not None and self._head_outputs() != data.num_classes:
            self.model = None
            self.model_status.value = (
                "<i>The data changed: create the model again for its classes.</i>")
            self.layers_box.children = [self.layers_hint]
        self.tabs.selected_index = 1

    @staticmethod
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
            except Exception:
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

    # ------------------------------------------------------------------ Model
    def _model_page(self) -> widgets.Widget:
        self.weights_choice = widgets.ToggleButtons(
            options=[("Pretrained", "auto"), ("From scratch", "none")], value="auto",
            style={"button_width": "auto"},
            tooltips=["Start from weights learned on ImageNet",
                      "Random weights: see why pretraining matters"],
        )
        self.create_button = widgets.Button(description="Create model", button_style="primary",
                                            icon="cube")
        self.create_button.on_click(lambda _: self._create_model())
        self.model_status = widgets.HTML("")
        self.browser_box = widgets.VBox()
        self.show_browser = widgets.Button(description="Browse all models…", icon="search",
                                           layout=widgets.Layout(width="auto"))
        self.show_browser.on_click(lambda _: self._open_browser())
        self.model_choice = widgets.HTML(
            f"Model: <code>{OFFLINE_ARCH}</code> (pretrained weights ship offline)")
        return widgets.VBox([
            _explain("model", "model = tlw.create_model(name, num_classes=data.num_classes)"),
            self._which_model_step(),
            widgets.HBox([self.model_choice, self.show_browser],
                         layout=widgets.Layout(align_items="center")),
            widgets.HBox([self.weights_choice, self.create_button],
                         layout=widgets.Layout(align_items="center")),
            self.model_status, self.browser_box,
        ])

    def _which_model_step(self) -> widgets.Widget:
        """"Which model?": the ModelBrowser's ranking on the loaded data, one sentence a score."""
        from .model_browser import SCORE_SENTENCES

        self.rank_button = widgets.Button(
            description="Which model? Rank the offline models on my data", icon="list-ol",
            tooltip="Score each model whose weights are on this machine on your images, before "
                    "training any (tlw.rank_models)", layout=widgets.Layout(width="auto"))
        self.rank_button.on_click(lambda _: self.rank_models())
        self.rank_status = widgets.HTML("")
        sentences = "".join(f"<li>{html.escape(text)}</li>" for text in SCORE_SENTENCES.values())
        return widgets.VBox([
            widgets.HTML(
                "<div class='tlw-which-model' style='max-width:900px;line-height:1.4'>"
                "<b>Which model?</b> "
                "Pretrained models differ in how well their features fit <i>your</i> images. "
                "Ranking them takes seconds, training each would take minutes: the ranking "
                "scores each one's frozen features on a sample of your training images and "
                "sorts the table below by it."
                "<ul style='margin:4px 0 4px 18px;padding:0;font-size:var(--jp-ui-font-size0,"
                f"11px);color:var(--jp-ui-font-color1)'>{sentences}</ul>"
                "<div style='color:var(--jp-ui-font-color2)'>In code: "
                "<code>tlw.rank_models(data)</code></div></div>"),
            widgets.HBox([self.rank_button]), self.rank_status,
        ], layout=widgets.Layout(margin="0 0 10px 0"))

    def rank_models(self) -> Any:
        """Rank the offline models on the loaded data in the model browser (the "Which model?"
        button); when it ends, the top-ranked model is selected for "Create model". Returns
        the browser, whose ``wait_ranking()`` gives the ranking.

        >>> studio.rank_models().wait_ranking(120)           # doctest: +SKIP
        """
        if self.data is None:
            self.rank_status.value = _error_html(TLWidgetsError(
                "Load data first (tab 1): the models are ranked on your images."))
            return None
        self._open_browser()
        if self.browser is None:
            return None
        try:
            self.browser.data = self.data
            self.browser.rank()
        except TLWidgetsError as err:
            self.rank_status.value = _error_html(err)
            return None
        self.rank_status.value = "<i>Ranking in the background: see the table below.</i>"
        return self.browser

    def _on_ranking(self, change: dict[str, Any]) -> None:
        # Called where the browser's ranking state is set (its publisher thread): traits only.
        state = change["new"].get("state")
        if state not in ("done", "cancelled") or self.browser is None:
            return
        table = self.browser.scores
        ranked = table[table["error"] == ""] if table is not None else None
        if ranked is None or ranked.empty:
            self.rank_status.value = html.escape(change["new"].get("text", ""))
            return
        top = ranked.iloc[0]
        names = set(self.browser.catalog["name"])
        if top["name"] in names:
            self.browser.selected = top["name"]
        order = ", ".join(f"{int(r['rank'])}. {html.escape(str(r['model']))}"
                          for _, r in ranked.iterrows())
        self.rank_status.value = (
            f"Ranked on your images: {order}. The top one is selected; press "
            "<b>Create model</b>, or pick another row.")

    def _open_browser(self) -> None:
        import tlwidgets as tlw

        if self.browser is None:
            try:
                self.browser = tlw.ModelBrowser(data=self.data)
                self.browser.observe(self._on_browser_select, "selected")
                self.browser.observe(self._on_ranking, "ranking")
            except Exception as err:
                self.model_status.value = _error_html(err)
                return
        self.browser_box.children = [self.browser]

    def _on_browser_select(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.model_choice.value = f"Model: <code>{html.escape(change['new'])}</code>"

    def selected_model_name(self) -> str:
        """The model the Create button builds: the browser's selection, else the offline one."""
        if self.browser is not None and getattr(self.browser, "selected", ""):
            return str(self.browser.selected)
        return OFFLINE_ARCH

    def _create_model(self) -> None:
        import tlwidgets as tlw

        if self.data is None:
            self.model_status.value = _error_html(
                TLWidgetsError("Load data first (tab 1): the new head needs the class count."))
            return
        name = self.selected_model_name()
        self.model_status.value = f"<i>Creating {html.escape(name)}…</i>"
        try:
            model = tlw.create_model(name, num_classes=self.data.num_classes,
                                     weights=self.weights_choice.value)
        except TLWidgetsError as err:
            self.model_status.value = _error_html(err)
            return
        self.use_model(model)

    def use_model(self, model: Any) -> None:
        """Use ``model`` from now on: freeze its backbone and prepare the Layers tab."""
        import tlwidgets as tlw

        self.model = model
        self.data = self.data.with_model(model) if self.data is not None else None
        report = getattr(model, "tlw_load_report", None)
        total = sum(p.numel() for p in model.parameters())
        origin = ("pretrained weights from " + html.escape(str(getattr(report, "source", "")))
                  if report is not None and not tlw.is_random_init(model)
                  else "random weights (from scratch)")
        tlw.apply_preset(model, "head")
        self.model_status.value = (
            f"Created with {origin}: {total / 1e6:.1f}M parameters. Only the new head is "
            "trainable for now (see Layers).")
        self.panel = tlw.FreezePanel(model)
        self.layers_box.children = [self.panel]
        self.trainer = None
        self.dashboard = None
        self.train_box.children = [self.train_hint]
        self.tabs.selected_index = 2

    def _head_outputs(self) -> int | None:
        get = getattr(self.model, "get_classifier", None)
        head = get() if callable(get) else None
        return getattr(head, "out_features", None)

    # ------------------------------------------------------------------ Layers
    def _layers_page(self) -> widgets.Widget:
        self.layers_hint = widgets.HTML("<i>Create a model first (tab 2).</i>")
        self.layers_box = widgets.VBox([self.layers_hint])
        return widgets.VBox([
            _explain("layers", 'tlw.apply_preset(model, "head")  # or tlw.freeze_to(model, -2)'),
            self.layers_box,
        ])

    # ------------------------------------------------------------------ Train
    def _train_page(self) -> widgets.Widget:
        self.train_hint = widgets.HTML("<i>Load data and create a model first.</i>")
        self.prepare_button = widgets.Button(description="Prepare training", icon="play")
        self.prepare_button.on_click(lambda _: self.prepare_training())
        self.train_box = widgets.VBox([self.train_hint])
        return widgets.VBox([
            _explain("train", "trainer = tlw.Trainer(model, data, epochs=3); trainer.start()"),
            self.prepare_button, self.train_box,
        ])

    def prepare_training(self) -> Any:
        """Create the trainer and its dashboard for the current data and model."""
        import tlwidgets as tlw

        if self.data is None or self.model is None:
            self.train_box.children = [widgets.HTML(_error_html(TLWidgetsError(
                "Load data (tab 1) and create a model (tab 2) first.")))]
            return None
        if self.trainer is not None and self.trainer.state in ("running", "paused", "stopping"):
            return self.trainer
        self.trainer = tlw.Trainer(self.model, self.data, epochs=self.epochs, lr=2e-3)
        self.dashboard = tlw.TrainingDashboard(self.trainer, evaluate=True)
        self.train_box.children = [self.dashboard]
        self.eval_box.children = [self.dashboard.eval_box]
        return self.trainer

    # ------------------------------------------------------------------ Evaluate
    def _evaluate_page(self) -> widgets.Widget:
        self.eval_box = widgets.VBox([widgets.HTML("<i>Train a model first (tab 4).</i>")])
        return widgets.VBox([_explain("evaluate", "trainer.evaluate()"), self.eval_box])

    # ------------------------------------------------------------------ Predict
    def _predict_page(self) -> widgets.Widget:
        self.upload = widgets.FileUpload(accept="image/*", multiple=False,
                                         description="Upload a photo",
                                         layout=widgets.Layout(width="auto"))
        self.upload.observe(self._on_upload, "value")
        self.predict_box = widgets.VBox()
        return widgets.VBox([_explain("predict", "trainer.predict([image], k=3)"),
                             self.upload, self.predict_box])

    def _on_upload(self, change: dict[str, Any]) -> None:
        files = change["new"]
        if not files:
            return
        try:
            item = files[0]
            content = bytes(item["content"] if isinstance(item, dict) else item.content)
            self.predict_image(content)
        except Exception as err:  # noqa: BLE001 - an upload handler must show, not escape
            self._predict_error(err)

    def _predict_error(self, err: BaseException) -> None:
        self.predict_box.children = [widgets.HTML(_error_html(err))]

    def predict_image(self, content: bytes | Any, k: int = 3) -> Any:
        """Show the top ``k`` classes for an image (bytes of a file, or a PIL image).

        What cannot be predicted is shown in the Predict tab and gives None: no model yet, a
        file that is not an image, an image too large to open safely (PIL's decompression-bomb
        limit), or a model that is still training.

        >>> studio.predict_image(open("photo.jpg", "rb").read())   # doctest: +SKIP
        """
        from PIL import Image, UnidentifiedImageError

        if self.trainer is None:
            self._predict_error(TLWidgetsError("Train a model first (tab 4), then upload a photo."))
            return None
        try:
            img = Image.open(io.BytesIO(content)) if isinstance(content, bytes) else content
            img = img.convert("RGB")
        except Image.DecompressionBombError as err:
            self._predict_error(TLWidgetsError(
                f"That image is too large to open safely: {err} Resize it to a few megapixels "
                "(a photo of 4000 x 3000 is plenty) and upload it again."))
            return None
        except (UnidentifiedImageError, OSError) as err:
            self._predict_error(TLWidgetsError(
                f"That file is not an image PIL can read ({err}). Try a JPEG or PNG."))
            return None
        try:
            table = self.trainer.predict([img], k=k)
        except TrainerStateError as err:
            self._predict_error(TrainerStateError(
                f"The model is still training, so it cannot predict yet ({err}). Wait for the "
                "run to finish, or press Stop in tab 4, then upload the photo again."))
            return None
        except TLWidgetsError as err:
            self._predict_error(err)
            return None
        thumb = img.copy()
        thumb.thumbnail((160, 160))
        buf = io.BytesIO()
        thumb.save(buf, format="PNG")
        rows = []
        for cls, prob in _top_pairs(table, k):
            bar = widgets.FloatProgress(value=prob, min=0.0, max=1.0,
                                        layout=widgets.Layout(width="200px"))
            rows.append(widgets.HBox([widgets.Label(str(cls), tooltip=str(cls),
                                                    layout=widgets.Layout(width="160px")),
                                      bar, widgets.Label(f"{prob * 100:.1f}%")]))
        self.predict_box.children = [widgets.HBox([
            widgets.Image(value=buf.getvalue(), format="png", layout=widgets.Layout(
                width="160px")),
            widgets.VBox(rows),
        ], layout=widgets.Layout(align_items="center"))]
        return table


def _top_pairs(table: Any, k: int) -> list[tuple[str, float]]:
    """(class, probability) pairs from the first row of ``Trainer.predict``'s table."""
    row = table.iloc[0]
    pairs = []
    for i in range(1, k + 1):
        if f"class_{i}" in row:
            p = float(row[f"prob_{i}"])
            pairs.append((str(row[f"class_{i}"]), p if math.isfinite(p) else 0.0))
    return pairs
