"""What a trained model learned: metrics, confusion matrix, top losses, predictions, export.

>>> ev = trainer.evaluate()                       # doctest: +SKIP
>>> ev.accuracy, ev.confusion, ev.per_class       # doctest: +SKIP
>>> ev.top_losses(9)                              # doctest: +SKIP
>>> trainer.predict(["cat.jpg"], k=3)             # doctest: +SKIP
>>> trainer.export("model.safetensors")           # doctest: +SKIP
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ._runtime import DeviceContext, atomic_write, model_lock, preserved
from .errors import ConfigError, DataError, ExportError

__all__ = [
    "EXPORT_FORMATS",
    "Evaluation",
    "evaluate",
    "export",
    "model_lock",
    "predict",
    "validation_metrics",
]

EXPORT_FORMATS = ("safetensors", "torchscript", "onnx")
_SUFFIX = {"safetensors": ".safetensors", "torchscript": ".pt", "onnx": ".onnx"}


class Evaluation:
    """Predictions of a model on a labelled set, with the usual summaries.

    - ``accuracy`` and ``loss`` (mean cross-entropy);
    - ``confusion``: DataFrame classes x classes, rows the true class, columns the predicted one;
    - ``per_class``: DataFrame with ``precision``, ``recall``, ``f1``, ``support`` per class;
    - ``top_losses(k)``: the ``k`` worst-predicted images;
    - ``probs``, ``targets``, ``preds``, ``losses``: the raw arrays (numpy).

    >>> import torch
    >>> ev = Evaluation(torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]]),
    ...                 torch.tensor([0, 1, 1]), ["cat", "dog"])
    >>> round(ev.accuracy, 3), int(ev.confusion.loc["dog", "cat"])
    (0.667, 1)
    """

    def __init__(
        self, logits: torch.Tensor, targets: torch.Tensor, classes: Sequence[str],
        paths: Sequence[str | None] | None = None,
    ) -> None:
        logits = logits.detach().float().cpu()
        targets = targets.detach().long().cpu()
        self.classes = list(classes)
        self.probs = torch.softmax(logits, dim=1).numpy()
        self.targets = targets.numpy()
        self.preds = self.probs.argmax(1) if len(self.probs) else np.zeros(0, dtype=np.int64)
        self.losses = nn.functional.cross_entropy(logits, targets, reduction="none").numpy() \
            if len(targets) else np.zeros(0, dtype=np.float32)
        self.paths = list(paths) if paths is not None else [None] * len(self.targets)

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def accuracy(self) -> float:
        """Fraction of images whose top-1 prediction is the true class."""
        return float((self.preds == self.targets).mean()) if len(self) else float("nan")

    @property
    def loss(self) -> float:
        """Mean cross-entropy over the images."""
        return float(self.losses.mean()) if len(self) else float("nan")

    @property
    def confusion(self) -> pd.DataFrame:
        """Counts of (true, predicted) pairs: rows true classes, columns predicted classes."""
        n = len(self.classes)
        mat = np.zeros((n, n), dtype=np.int64)
        np.add.at(mat, (self.targets, self.preds), 1)
        return pd.DataFrame(
            mat, index=pd.Index(self.classes, name="true"),
            columns=pd.Index(self.classes, name="predicted"),
        )

    @property
    def per_class(self) -> pd.DataFrame:
        """Precision, recall, F1 and support (true images) per class; 0 where undefined."""
        mat = self.confusion.to_numpy()
        tp = np.diag(mat).astype(float)
        predicted = mat.sum(0).astype(float)
        support = mat.sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(predicted > 0, tp / predicted, 0.0)
            recall = np.where(support > 0, tp / support, 0.0)
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        return pd.DataFrame(
            {"precision": precision, "recall": recall, "f1": f1, "support": support},
            index=pd.Index(self.classes, name="class"),
        )

    def top_losses(self, k: int = 9) -> pd.DataFrame:
        """The ``k`` images with the highest loss: ``index`` (into the evaluated set, e.g.
        ``data.valid_ds``), ``path`` (None for in-memory images), ``true``, ``predicted``,
        ``probability`` (of the predicted class) and ``loss``.

        >>> ev.top_losses(3)                     # doctest: +SKIP
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"top_losses needs k >= 1 (an int), got {k!r}; e.g. top_losses(9).")
        order = np.argsort(-self.losses, kind="stable")[:k]
        return pd.DataFrame({
            "index": order.astype(np.int64),
            "path": [self.paths[i] for i in order],
            "true": [self.classes[self.targets[i]] for i in order],
            "predicted": [self.classes[self.preds[i]] for i in order],
            "probability": [float(self.probs[i, self.preds[i]]) for i in order],
            "loss": [float(self.losses[i]) for i in order],
        })

    def __repr__(self) -> str:
        return f"Evaluation({len(self)} images, accuracy={self.accuracy:.4f}, loss={self.loss:.4f})"


def _batches_to_logits(forward: Callable[[Any], torch.Tensor], batches: Any, ctx: DeviceContext,
                       model: nn.Module) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(logits as float32, targets)`` per batch, ``model`` in eval mode (modes put back after),
    under ``ctx``'s autocast: the one inference path of validation, evaluate and predict."""
    with model_lock(model), torch.inference_mode(), preserved(model):
        model.eval()
        for x, y in batches:
            with ctx.autocast():
                out = forward(ctx.move(x))
            yield out.float(), ctx.move(torch.as_tensor(y))


def validation_metrics(forward: Callable[[Any], torch.Tensor], batches: Any, ctx: DeviceContext,
                       model: nn.Module) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over ``batches`` (what the trainer logs each epoch).

    >>> validation_metrics(model, data.valid_loader(), ctx, model)   # doctest: +SKIP
    (0.31, 0.92)
    """
    total = torch.zeros((), device=ctx.device, dtype=torch.float64)
    correct = torch.zeros((), device=ctx.device, dtype=torch.int64)
    count = 0
    for out, y in _batches_to_logits(forward, batches, ctx, model):
        total += nn.functional.cross_entropy(out, y, reduction="sum").double()
        correct += (out.argmax(1) == y).sum()
        count += int(y.shape[0])
    if count == 0:
        return float("nan"), float("nan")
    return float(total) / count, float(correct) / count


def _logits(model: nn.Module, batches: Any, ctx: DeviceContext) -> tuple[torch.Tensor, torch.Tensor]:
    outs, ys = [], []
    for out, y in _batches_to_logits(model, batches, ctx, model):
        outs.append(out.cpu())
        ys.append(y.cpu())
    if not outs:
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return torch.cat(outs), torch.cat(ys)


def _context(model: nn.Module, ctx: DeviceContext | None) -> DeviceContext:
    return ctx if ctx is not None else DeviceContext.for_model(model)


def evaluate(model: nn.Module, data: Any, ctx: DeviceContext | None = None) -> Evaluation:
    """Run ``model`` over ``data``'s validation split and return an :class:`Evaluation`.

    Row ``i`` of the result is ``data.valid_ds[i]`` (the valid loader is not shuffled). ``ctx``
    (a :class:`~tlwidgets._runtime.DeviceContext`, the trainer's) says where and how to compute;
    by default the model's own device, without autocast.

    >>> ev = evaluate(model, data); ev.accuracy    # doctest: +SKIP
    """
    if len(getattr(data, "valid_items", [None])) == 0:
        raise DataError(
            "the data has no validation split to evaluate on; build it with valid_pct > 0."
        )
    logits, targets = _logits(model, data.valid_loader(), _context(model, ctx))
    paths = [p for p, _ in data.valid_items] if hasattr(data, "valid_items") else None
    return Evaluation(logits, targets, data.classes, paths)


def _describe(item: Any) -> str:
    if isinstance(item, (str, os.PathLike)):
        return str(item)
    if isinstance(item, torch.Tensor):
        return f"tensor{tuple(item.shape)}"
    if isinstance(item, np.ndarray):
        return f"array{item.shape}"
    return type(item).__name__


def _as_list(images: Any) -> list[Any]:
    if isinstance(images, (str, os.PathLike)):
        return [images]
    if isinstance(images, (torch.Tensor, np.ndarray)):
        # a 4-d batch is many images; 2-d/3-d is one image
        return list(images) if images.ndim == 4 else [images]
    if isinstance(images, (list, tuple)):
        return list(images)
    return [images]  # a PIL image or anything data.preprocess understands


@torch.no_grad()
def predict(model: nn.Module, data: Any, images: Any, k: int = 3,
            ctx: DeviceContext | None = None, preprocessed: bool = False,
            batch_size: int | None = None) -> pd.DataFrame:
    """Top-``k`` classes and probabilities for each image.

    ``images`` is a path, a PIL image, an HWC/CHW array or tensor (uint8 0..255 or float 0..1),
    a 4-d batch, or a list of these; each goes through the data's eval transform. Pass
    ``preprocessed=True`` for tensors that already are normalised model input (as
    ``data.valid_ds[i][0]``). One row per image: ``input``, then ``class_1``, ``prob_1``, ...,
    ``class_k``, ``prob_k``.

    >>> predict(model, data, ["cat.jpg", "dog.jpg"], k=2)   # doctest: +SKIP
    """
    items = _as_list(images)
    if not items:
        raise DataError("predict() got no images; pass a path, a PIL image, a tensor or a list.")
    n_classes = len(data.classes)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"k must be an integer >= 1, got {k!r}.")
    k = min(k, n_classes)
    text = getattr(data, "modality", "image") == "text"
    tensors = []
    for item in items:
        if preprocessed and not text:
            t = torch.as_tensor(item).float()
            want = tuple(getattr(data, "data_config", {}).get("input_size", ()) or ())
            if t.ndim != 3 or (len(want) == 3 and tuple(t.shape) != want):
                raise DataError(
                    f"a preprocessed image must be a CHW tensor of the model's input size "
                    f"{want or '(C, H, W)'}, got shape {tuple(t.shape)}; pass the raw image "
                    "(path, PIL image, HWC array) without preprocessed=True and it is resized "
                    "and normalised for you."
                )
            tensors.append(t)
        else:
            tensors.append(data.preprocess(item))
    bs = batch_size or getattr(data, "batch_size", 32) or 32
    # text inputs are dicts of token ids of different lengths: the data's collate pads them
    collate = getattr(data, "collate", None) if text else None
    batches = [((collate or torch.stack)(tensors[i : i + bs]), torch.zeros(len(tensors[i : i + bs])))
               for i in range(0, len(tensors), bs)]
    logits, _ = _logits(model, batches, _context(model, ctx))
    probs = torch.softmax(logits, dim=1)
    top_p, top_i = probs.topk(k, dim=1)
    rows = []
    for item, ps, idx in zip(items, top_p.tolist(), top_i.tolist()):
        row: dict[str, Any] = {"input": _describe(item)}
        for r, (p, i) in enumerate(zip(ps, idx), start=1):
            row[f"class_{r}"] = data.classes[i]
            row[f"prob_{r}"] = float(p)
        rows.append(row)
    return pd.DataFrame(rows)


def preprocessing_config(model: nn.Module, data: Any, format: str = "safetensors") -> dict[str, Any]:
    """The JSON written beside an export: classes and how to turn an image into model input."""
    cfg = dict(getattr(data, "data_config", {}) or {})
    pcfg = getattr(model, "pretrained_cfg", None) or {}
    return {
        "format": format,
        "architecture": pcfg.get("architecture", type(model).__name__),
        "classes": list(data.classes),
        "num_classes": len(data.classes),
        "input_size": list(cfg.get("input_size", pcfg.get("input_size", (3, 224, 224)))),
        "mean": list(cfg.get("mean", pcfg.get("mean", (0.485, 0.456, 0.406)))),
        "std": list(cfg.get("std", pcfg.get("std", (0.229, 0.224, 0.225)))),
        "interpolation": cfg.get("interpolation", pcfg.get("interpolation", "bilinear")),
        "crop_pct": cfg.get("crop_pct", pcfg.get("crop_pct", 1.0)),
        "crop_mode": cfg.get("crop_mode", pcfg.get("crop_mode", "center")),
    }


def export(model: nn.Module, data: Any, path: str | os.PathLike[str],
           format: str = "safetensors") -> Path:
    """Write ``model`` for inference, with ``<path>.json`` (classes, preprocessing, and the file
    of each format exported under that base name) beside it.

    - ``"safetensors"``: the ``state_dict`` (load into the same architecture);
    - ``"torchscript"``: a traced module, ``torch.jit.load``-able without tlwidgets or timm
      (TorchScript is deprecated in recent torch but still the simplest self-contained file);
    - ``"onnx"``: needs the ``onnx`` and ``onnxscript`` packages; batch size 1 and dynamic.

    Returns the model file's path (its suffix is added when missing). A text model exports as
    a Hugging Face folder instead (:mod:`tlwidgets.text.export`), and returns the folder.

    >>> export(model, data, "out/model", format="torchscript")   # doctest: +SKIP
    PosixPath('out/model.pt')
    """
    if format not in EXPORT_FORMATS:
        raise ConfigError(
            f"export format {format!r} is not supported; use one of {', '.join(EXPORT_FORMATS)}."
        )
    from .text.export import export_text, is_text_export

    if is_text_export(model, data):  # a Hugging Face folder (tlwidgets.text.export)
        return export_text(model, data, path, format=format)
    path = Path(path)
    if path.suffix != _SUFFIX[format]:
        path = path.with_name(path.name + _SUFFIX[format])
    json_path = path.with_suffix(".json")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(
            f"cannot export to {path}: its folder {path.parent} cannot be made "
            f"({exc.strerror or exc}; is a part of the path a file?). Pass another path.") from exc
    if not os.access(path.parent, os.W_OK):
        raise ExportError(f"cannot export to {path}: {path.parent} is not writable; pass a "
                          "folder you can write to.")
    meta = preprocessing_config(model, data, format)
    # One sidecar describes every format exported under this base name: a second export of the
    # same model adds its file; an export of another model there is refused, not overwritten.
    meta["files"] = {format: path.name}
    if json_path.exists():
        try:
            old = json.loads(json_path.read_text())
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict):
            same = all(old.get(k) == meta[k] for k in ("architecture", "classes", "input_size",
                                                        "mean", "std"))
            if not same:
                raise ExportError(
                    f"{json_path} describes another exported model ({old.get('architecture')}, "
                    f"classes {old.get('classes')}); pass another path so neither is lost.")
            meta["files"] = {**dict(old.get("files") or {old.get("format", format): path.name}),
                             format: path.name}
    size = meta["input_size"]
    if format == "onnx":
        missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(
                f"exporting to ONNX needs the {' and '.join(missing)} package(s), which are not "
                f"installed; run `pip install {' '.join(missing)}` (or pick format='torchscript')."
            )
    try:
        if format == "safetensors":
            from safetensors.torch import save_model

            atomic_write(path, lambda tmp: save_model(model, tmp))
        else:
            cpu_model = copy.deepcopy(model).cpu().eval()
            example = torch.rand(1, *size)
            if format == "torchscript":
                with torch.no_grad(), warnings.catch_warnings():
                    # TorchScript is deprecated upstream; the user asked for it explicitly.
                    warnings.simplefilter("ignore", FutureWarning)
                    warnings.simplefilter("ignore", DeprecationWarning)
                    traced = torch.jit.trace(cpu_model, example)

                def write_ts(tmp: str) -> None:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", FutureWarning)
                        torch.jit.save(traced, tmp)

                atomic_write(path, write_ts)
            else:
                batch = torch.export.Dim("batch", min=1, max=1024)

                def write_onnx(tmp: str) -> None:
                    torch.onnx.export(
                        cpu_model, (example,), tmp, input_names=["image"], output_names=["logits"],
                        dynamo=True, dynamic_shapes=({0: batch},), external_data=False,
                    )

                atomic_write(path, write_onnx)
        atomic_write(json_path, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2)))
    except OSError as exc:
        raise ExportError(f"could not write {path} ({exc.strerror or exc}); pass a path on a "
                          "writable disk with free space.") from exc
    return path
