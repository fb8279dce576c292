"""Export of a text model: a Hugging Face folder a user reloads with ``tlw.create_model``.

``trainer.export(path)`` (and :func:`tlwidgets.evaluation.export`) call :func:`export_text` when
the data is text. ``path`` names a folder (a ``.safetensors``/``.pt``/``.onnx`` suffix is
dropped: ``"out/sentiment.safetensors"`` writes ``out/sentiment/``), which receives:

- the encoder as Hugging Face writes it (``config.json``, ``model.safetensors``), with any LoRA
  adapters merged in, so ``transformers.AutoModel.from_pretrained(folder)`` reads it too;
- the tokenizer the data was tokenized with (``tokenizer.json`` and its configs);
- the head (``tlwidgets_head.safetensors``) and ``tlwidgets_text.json`` (classes, pooling,
  layers, dropout), which ``tlw.create_model(folder, num_classes=k)`` reads back;
- ``format="torchscript"`` adds ``model.pt``: a traced module taking the tokenizer's tensors as
  positional arguments (their order is the sidecar's ``inputs``), returning logits, any batch
  size and length, loadable with ``torch.jit.load`` alone;
- ``tlwidgets_export.json``, the sidecar: ``modality: "text"``, ``classes``, ``max_length`` (the
  tokens per text the model was trained and predicts with: tokenize with
  ``truncation=True, max_length=...``), ``pooling``, ``layers``, ``inputs``, ``lora_merged``,
  and ``files`` (every format written to this folder).

ONNX is refused with an :class:`~tlwidgets.errors.ExportError` that says how to get one from the
folder (Hugging Face ``optimum``): tracing a dict-input encoder through ``torch.onnx`` here would
need the ``onnx`` packages and gives no more than optimum's exporter does.

>>> folder = trainer.export("out/sentiment")                         # doctest: +SKIP
>>> model = tlw.create_model(folder, num_classes=2)                  # doctest: +SKIP
>>> meta = json.loads((folder / "tlwidgets_export.json").read_text())  # doctest: +SKIP
>>> batch = model.tokenizer(["loved it"], truncation=True, max_length=meta["max_length"],
...                         padding=True, return_tensors="pt")       # doctest: +SKIP
>>> model.eval()(batch).softmax(1)                                   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._runtime import atomic_write
from ..errors import ExportError
from .lora import has_lora, merge_lora
from .model import TEXT_CONFIG_FILE, TextClassifier, copy_model, quiet_transformers

__all__ = ["EXPORT_SIDECAR", "TEXT_EXPORT_FORMATS", "export_text", "is_text_export",
           "text_export_config"]

TEXT_EXPORT_FORMATS = ("safetensors", "torchscript")
EXPORT_SIDECAR = "tlwidgets_export.json"
_FILES = {"safetensors": "model.safetensors", "torchscript": "model.pt"}
_SUFFIXES = (".safetensors", ".pt", ".onnx", ".json")
# what must agree for a second export into the same folder to add to it rather than clash
_SAME = ("architecture", "classes", "pooling", "layers", "max_length")


def is_text_export(model: Any, data: Any) -> bool:
    """Whether ``export(model, data, ...)`` is a text export (text data or a TextClassifier)."""
    return getattr(data, "modality", None) == "text" or isinstance(model, TextClassifier)


def _inputs(model: TextClassifier, tokenizer: Any) -> list[str]:
    names = list(getattr(tokenizer, "model_input_names", ["input_ids", "attention_mask"]))
    order = ["input_ids", "attention_mask", "token_type_ids"]
    # what the collate gives (ids, mask, token types where the tokenizer makes them) and the
    # encoder takes, in a fixed order
    wanted = [n for n in order if n in ("input_ids", "attention_mask") or n in names]
    return [n for n in wanted if n in model._accepts or n == "input_ids"]


def text_export_config(model: TextClassifier, data: Any, format: str) -> dict[str, Any]:
    """The sidecar written into an exported text folder (see the module docstring).

    >>> text_export_config(model, data, "safetensors")["max_length"]     # doctest: +SKIP
    128
    """
    cfg = model.pretrained_cfg
    tok = getattr(data, "tokenizer", None) or model.tokenizer
    layers = model.layers
    return {
        "format": format,
        "modality": "text",
        "architecture": cfg.get("architecture"),
        "model_type": cfg.get("model_type"),
        "classes": list(data.classes),
        "num_classes": len(data.classes),
        "max_length": int(getattr(data, "max_length", None) or cfg.get("max_length") or 512),
        "model_max_length": cfg.get("max_length"),
        "pooling": model.pooling,
        "layers": list(layers) if isinstance(layers, tuple) else layers,
        "tokenizer": getattr(tok, "name_or_path", "") or "",
        "padding_side": getattr(tok, "padding_side", "right"),
        "inputs": _inputs(model, tok),
        "lora_merged": has_lora(model),
        "load": f"tlw.create_model(folder, num_classes={len(data.classes)})",
    }


class _Positional(nn.Module):
    """The classifier as ``forward(input_ids, attention_mask[, token_type_ids]) -> logits``:
    TorchScript traces tensors given positionally, not a dict."""

    def __init__(self, model: TextClassifier, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = list(names)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(dict(zip(self.names, tensors, strict=True)))


def _folder(path: str | os.PathLike[str]) -> Path:
    folder = Path(path).expanduser()
    if folder.suffix.lower() in _SUFFIXES:
        folder = folder.with_suffix("")
    return folder


def _check_target(folder: Path, meta: dict[str, Any]) -> dict[str, str]:
    """The files already exported to ``folder`` by the same model, or refuse another's."""
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"cannot export a text model to {folder}: it is a file; a text model "
                          "exports as a folder. Pass a folder path.")
    sidecar = folder / EXPORT_SIDECAR
    if sidecar.is_file():
        try:
            old = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict):
            if any(old.get(k) != meta[k] for k in _SAME):
                raise ExportError(
                    f"{folder} holds another exported model ({old.get('architecture')}, classes "
                    f"{old.get('classes')}, max_length {old.get('max_length')}); pass another "
                    "path so neither is lost.")
            return dict(old.get("files") or {})
    if folder.is_dir() and (folder / "config.json").exists():
        raise ExportError(f"{folder} already holds a model (config.json) that tlwidgets did not "
                          "export; pass another (or an empty) folder so it is not overwritten.")
    return {}


def export_text(model: nn.Module, data: Any, path: str | os.PathLike[str],
                format: str = "safetensors") -> Path:
    """Write a trained text classifier as a reloadable Hugging Face folder (module docstring).
    Returns the folder.

    >>> export_text(model, data, "out/sentiment", format="torchscript")    # doctest: +SKIP
    PosixPath('out/sentiment')
    """
    if format == "onnx":
        raise ExportError(
            "ONNX export of a text model is not built in; export format='safetensors' (a "
            "Hugging Face folder) and convert that folder with Hugging Face optimum "
            "(`pip install optimum[exporters]`, then `optimum-cli export onnx --model <folder> "
            "--task feature-extraction <out>`; the head is tlwidgets_head.safetensors), or use "
            "format='torchscript'.")
    if format not in TEXT_EXPORT_FORMATS:
        raise ExportError(f"a text model exports as {' or '.join(map(repr, TEXT_EXPORT_FORMATS))}, "
                          f"not {format!r}.")
    if not isinstance(model, TextClassifier):
        raise ExportError(
            f"text data goes with a TextClassifier (tlw.create_model('<org/name>', k)); this "
            f"model is a {type(model).__name__}, which export cannot write as a text model.")
    if model.num_classes != len(data.classes):
        raise ExportError(
            f"the model has {model.num_classes} outputs but the data {len(data.classes)} classes "
            f"({', '.join(data.classes)}); export the model trained on this data.")
    folder = _folder(path)
    meta = text_export_config(model, data, format)
    files = _check_target(folder, meta)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(
            f"cannot export to {folder}: it cannot be made ({exc.strerror or exc}; is a part of "
            "the path a file?). Pass another path.") from exc
    if not os.access(folder, os.W_OK):
        raise ExportError(f"cannot export to {folder}: it is not writable; pass a folder you can "
                          "write to.")
    merged = merge_lora(model) if has_lora(model) else model
    tok = getattr(data, "tokenizer", None)
    try:
        merged.save_pretrained(folder, classes=data.classes)
        if tok is not None and tok is not merged.tokenizer:
            with quiet_transformers():
                tok.save_pretrained(folder)  # the tokenizer the model was trained with
        files["safetensors"] = _FILES["safetensors"]
        if format == "torchscript":
            _write_torchscript(merged, meta["inputs"], folder / _FILES["torchscript"], tok)
            files["torchscript"] = _FILES["torchscript"]
        meta["files"] = files
        text = json.dumps(meta, indent=2)
        atomic_write(folder / EXPORT_SIDECAR, lambda tmp: Path(tmp).write_text(text))
    except OSError as exc:
        raise ExportError(f"could not write {folder} ({exc.strerror or exc}); pass a path on a "
                          "writable disk with free space.") from exc
    assert (folder / TEXT_CONFIG_FILE).is_file()
    return folder


def _write_torchscript(model: TextClassifier, names: list[str], path: Path, tok: Any) -> None:
    cpu = copy_model(model).cpu().eval()
    tok = tok or model.tokenizer
    if tok is not None:
        enc = tok(["an example sentence to trace", "short"], padding=True, return_tensors="pt")
        example = tuple(enc[n] if n in enc else torch.zeros_like(enc["input_ids"]) for n in names)
    else:
        ids = torch.tensor([[1, 5, 7, 2], [1, 6, 2, 0]])
        mask = (ids != 0).long()
        example = tuple({"input_ids": ids, "attention_mask": mask}.get(n, torch.zeros_like(ids))
                        for n in names)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # TorchScript is deprecated upstream and transformers warns on traced branches; the
            # user asked for it explicitly (the export test checks other shapes give the same)
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(_Positional(cpu, names), example, strict=False)
    except Exception as exc:  # a model TorchScript cannot trace: say so, not a deep traceback
        raise ExportError(
            f"TorchScript cannot trace this {type(model.encoder).__name__} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); export "
            "format='safetensors' (a Hugging Face folder) instead.") from exc

    def write(tmp: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.save(traced, tmp)

    atomic_write(path, write)
