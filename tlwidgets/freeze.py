"""Layer groups, freezing, BatchNorm policy and per-group learning rates.

Freezing here means frozen: parameters stop receiving gradients *and*, under the default
``bn="eval"`` policy, the running statistics of frozen BatchNorm layers stop moving, whoever
calls ``model.train()`` (the trainer or a hand-written loop). ``param_groups`` leaves frozen
parameters out, so an optimizer cannot update them either.

>>> import timm, torch, tlwidgets as tlw
>>> model = timm.create_model("resnet18", pretrained=False, num_classes=3)
>>> [g.name for g in tlw.layer_groups(model)]
['stem', 'layer1', 'layer2', 'layer3', 'layer4', 'head']
>>> tlw.freeze_to(model, -1)           # fastai's meaning: only the last group (the head) trains
>>> [g.trainable_params > 0 for g in tlw.layer_groups(model)]
[False, False, False, False, False, True]
>>> opt = torch.optim.AdamW(tlw.param_groups(model, lr=1e-3))
"""

from __future__ import annotations

import contextlib
import difflib
import math
import threading
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import pandas as pd
import torch
from torch import nn

from . import _bn_policy as bnp
from ._runtime import side_state
from .errors import ConfigError, FreezeError, ModulePathError, NothingTrainableError

__all__ = [
    "PRESETS",
    "LayerGroup",
    "apply_preset",
    "freeze",
    "freeze_to",
    "freeze_version",
    "layer_groups",
    "lr_multipliers",
    "on_freeze_change",
    "param_counts",
    "param_groups",
    "parameters_with_owners",
    "set_lr_multipliers",
    "trainable_summary",
    "unfreeze",
]

#: Preset name -> what it trains. Presets name what is *trained*, the rest is frozen.
PRESETS: dict[str, str] = {
    "head": "train only the head (the last layer group); the backbone is frozen",
    "last-stage": "train the last backbone group and the head; everything before is frozen",
    "all": "train everything (full fine-tuning); nothing is frozen",
    "none": "train nothing (pure feature extraction / inference); everything is frozen",
}

#: What freeze()/unfreeze() accept: one of these, a list of them, or None for the whole model.
Selectable = Union[str, nn.Module, nn.Parameter, "LayerGroup"]
Selection = Union[Selectable, Iterable[Selectable], None]


# --------------------------------------------------------------------------------------------
# per-model notification state


class _NotifyState:
    """Version counter, requires_grad fingerprint, listeners and LR multipliers of one model.

    Kept beside the model with :func:`tlwidgets._runtime.side_state` (it dies with the model; a
    copy or a pickle of the model starts afresh: listeners belong to the original only).
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.version = 0
        self.fingerprint: int | None = None
        self.listeners: list[Callable[[int], Any]] = []
        # layer group name -> learning-rate multiplier (absent = 1.0)
        self.lr_mults: dict[str, float] = {}


def _state(model: nn.Module) -> _NotifyState:
    return side_state(model, "freeze", _NotifyState)


def _fingerprint(model: nn.Module) -> int:
    # Identity and requires_grad of every parameter: catches p.requires_grad_(False) behind our
    # back and a swapped head (reset_classifier), for one walk over the parameters.
    params = list(model.parameters())
    return hash((tuple(map(id, params)), bytes(p.requires_grad for p in params)))


def _notify(model: nn.Module, state: _NotifyState, version: int) -> None:
    for fn in list(state.listeners):
        try:
            fn(version)
        except Exception as err:  # a broken view must not undo or hide a freeze that happened
            warnings.warn(
                f"on_freeze_change callback {fn!r} raised {err!r}; the freeze change itself "
                "was applied. Fix the callback or unsubscribe it.",
                RuntimeWarning,
                stacklevel=3,
            )


@contextlib.contextmanager
def _changing(model: nn.Module) -> Iterator[None]:
    """Make one freeze change atomic for other threads (a panel polling, a trainer between
    epochs) and announce it once, after the lock is released."""
    state = _state(model)
    ok = False
    with state.lock:
        try:
            yield
            ok = True
        finally:
            fp = _fingerprint(model)
            # a change that failed half-way is still announced if it changed any flag
            bumped = ok or (state.fingerprint is not None and fp != state.fingerprint)
            state.fingerprint = fp
            if bumped:
                state.version += 1
            version = state.version
    if bumped:
        _notify(model, state, version)


def freeze_version(model: nn.Module) -> int:
    """A counter that grows whenever the model's freeze state changes.

    Changes made through tlwidgets bump it at once; a change made directly
    (``p.requires_grad_(False)``, a new head) is noticed when this is called, by comparing a
    fingerprint of every parameter's ``requires_grad`` flag, and the listeners registered with
    :func:`on_freeze_change` are then called. Cheap enough to poll a few times a second.

    >>> import timm, tlwidgets as tlw
    >>> model = timm.create_model("resnet18", pretrained=False)
    >>> v = tlw.freeze_version(model)
    >>> _ = model.fc.weight.requires_grad_(False)
    >>> tlw.freeze_version(model) > v
    True
    """
    state = _state(model)
    with state.lock:
        fp = _fingerprint(model)
        if state.fingerprint is None:
            state.fingerprint = fp
            return state.version
        if fp == state.fingerprint:
            return state.version
        state.fingerprint = fp
        state.version += 1
        version = state.version
    _notify(model, state, version)
    return version


def on_freeze_change(model: nn.Module, fn: Callable[[int], Any]) -> Callable[[], None]:
    """Call ``fn(version)`` after every freeze change of ``model``; returns an unsubscribe function.

    ``fn`` runs in the thread that made the change (or that polled :func:`freeze_version` and
    noticed one). The callback is held until unsubscribed.

    >>> import timm, tlwidgets as tlw
    >>> model = timm.create_model("resnet18", pretrained=False)
    >>> seen = []
    >>> unsubscribe = tlw.on_freeze_change(model, seen.append)
    >>> tlw.apply_preset(model, "head")
    >>> len(seen)
    1
    >>> unsubscribe()
    """
    if not callable(fn):
        raise ConfigError(
            f"on_freeze_change needs a callable taking the new version, got {fn!r}; "
            "pass e.g. a function `def changed(version): ...`."
        )
    state = _state(model)
    with state.lock:
        if state.fingerprint is None:
            state.fingerprint = _fingerprint(model)
        state.listeners.append(fn)

    def unsubscribe() -> None:
        with state.lock:
            if fn in state.listeners:
                state.listeners.remove(fn)

    return unsubscribe


# --------------------------------------------------------------------------------------------
# parameters, including those of BN layers replaced by the "frozen" policy


def parameters_with_owners(model: nn.Module) -> Iterator[tuple[str, nn.Parameter, nn.Module]]:
    """``(name, parameter, owner)`` for every parameter, counting a ``"frozen"``-policy layer's
    original affine parameters as (frozen) parameters so groups and counts do not depend on the
    BN policy. Tied parameters (one tensor under two names) come once, under the first name.

    >>> import torch
    >>> [n for n, _, _ in parameters_with_owners(torch.nn.Linear(2, 2))]
    ['weight', 'bias']
    """
    seen: set[int] = set()
    for path, module in model.named_modules():
        original = bnp.original_of(module)
        source = original if original is not None else module
        prefix = f"{path}." if path else ""
        for name, p in source._parameters.items():
            if p is None or id(p) in seen:
                continue
            seen.add(id(p))
            yield prefix + name, p, module


def param_counts(p: torch.Tensor, owner: nn.Module) -> tuple[int, int]:
    """``(numel, trainable numel)`` of a parameter from :func:`parameters_with_owners`: a
    ``"frozen"``-policy BN layer's affine values count as frozen.

    >>> import torch
    >>> lin = torch.nn.Linear(2, 2)
    >>> param_counts(lin.weight, lin)
    (4, 4)
    """
    n = p.numel()
    trainable = p.requires_grad and bnp.original_of(owner) is None
    return n, n if trainable else 0


# --------------------------------------------------------------------------------------------
# layer groups


@dataclass(eq=False)
class LayerGroup:
    """One layer group: a span of the network from the stem to the head that freezes as a unit.

    ``paths`` are the dotted paths of the modules the group consists of; ``param_names`` every
    parameter in it (a ViT's ``cls_token`` belongs to the stem without a module of its own).
    ``params`` is the group's parameter count; ``trainable_params``, ``state`` and ``modules``
    are read live from the model.

    >>> import timm, tlwidgets as tlw
    >>> g = tlw.layer_groups(timm.create_model("resnet18", pretrained=False))[-1]
    >>> g.name, g.paths, g.params
    ('head', ['fc'], 513000)
    """

    name: str
    index: int
    paths: list[str]
    param_names: list[str] = field(repr=False)
    params: int
    _model: weakref.ref = field(repr=False, compare=False)

    def _root(self) -> nn.Module:
        model = self._model()
        if model is None:
            raise FreezeError(
                f"layer group {self.name!r} outlived its model; call tlw.layer_groups(model) "
                "again on the model you are working with."
            )
        return model

    @property
    def modules(self) -> list[tuple[str, nn.Module]]:
        """``(path, module)`` pairs, resolved now (a ``"frozen"`` BN swap replaces modules)."""
        root = self._root()
        return [(p, root.get_submodule(p) if p else root) for p in self.paths]

    def _owned(self) -> Iterator[tuple[torch.Tensor, nn.Module]]:
        root = self._root()
        cache: dict[str, nn.Module] = {}
        for name in self.param_names:
            owner_path, _, attr = name.rpartition(".")
            owner = cache.get(owner_path)
            if owner is None:
                owner = root.get_submodule(owner_path) if owner_path else root
                cache[owner_path] = owner
            tensor = owner._parameters.get(attr)
            if tensor is None:
                # a "frozen"-policy replacement holds the affine values as buffers
                tensor = owner._buffers.get(attr)
            if tensor is not None:
                yield tensor, owner

    @property
    def trainable_params(self) -> int:
        """How many of the group's parameters train now."""
        return sum(param_counts(t, owner)[1] for t, owner in self._owned())

    @property
    def state(self) -> str:
        """``"trainable"``, ``"frozen"`` or ``"partial"``."""
        trainable = self.trainable_params
        if trainable == 0:
            return "frozen"
        return "trainable" if trainable == self.params else "partial"

    def parameters(self) -> list[nn.Parameter]:
        """The group's ``nn.Parameter`` objects as the model holds them now."""
        return [t for t, _ in self._owned() if isinstance(t, nn.Parameter)]


def _classifier_paths(model: nn.Module, module_paths: dict[int, str]) -> list[str]:
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    names: Any = cfg.get("classifier") if isinstance(cfg, dict) else None
    if isinstance(names, str):
        names = [names]
    found = []
    for name in names or ():
        try:
            model.get_submodule(name)
        except AttributeError:
            continue
        found.append(name)
    if found:
        return found
    get_classifier = getattr(model, "get_classifier", None)
    if callable(get_classifier):
        try:
            heads = get_classifier()
        except Exception:  # a model's own helper failing must not break grouping
            heads = None
        for head in heads if isinstance(heads, (tuple, list)) else [heads]:
            if isinstance(head, nn.Module) and id(head) in module_paths:
                found.append(module_paths[id(head)])
    return found


def _under(name: str, path: str) -> bool:
    return not path or name == path or name.startswith(path + ".")


def _timm_assignment(
    model: nn.Module, names: list[str], fine: bool
) -> tuple[list[int], Any] | None:
    matcher_fn = getattr(model, "group_matcher", None)
    if not callable(matcher_fn):
        from ._hf_groups import hf_group_matcher  # a Hugging Face model used directly

        matcher_fn = hf_group_matcher(model)
    if not callable(matcher_fn):
        return None
    from timm.models._manipulate import group_with_matcher

    try:
        matcher = matcher_fn(coarse=not fine)
        grouped = group_with_matcher(((n, None) for n in names), matcher, reverse=True)
    except Exception:  # models whose matcher is unimplemented fall back to top-level children
        return None
    return [grouped[n] for n in names], matcher


def _fallback_assignment(names: list[str]) -> list[int]:
    order: dict[str, int] = {}
    gids = []
    for name in names:
        child, dot, _ = name.partition(".")
        if not dot:
            # the root's own parameters (embeddings, tokens) go with the first group
            gids.append(0)
            continue
        gids.append(order.setdefault(child, len(order)))
    return gids


def _stem_regexes(matcher: Any) -> list:
    import re

    if not isinstance(matcher, dict) or matcher.get("stem") is None:
        return []
    spec = matcher["stem"]
    specs = [s[0] for s in spec] if isinstance(spec, (list, tuple)) else [spec]
    return [re.compile(s) for s in specs]


def _cover(
    model: nn.Module, names: list[str], gids: list[int], modules: list[tuple[str, nn.Module]]
) -> dict[int, list[str]]:
    """The coarsest module paths whose parameters all lie in one group, per group."""
    gid_of = dict(zip(names, gids, strict=True))
    below: dict[str, set[int]] = {}
    for path, module in reversed(modules):
        original = bnp.original_of(module)
        source = original if original is not None else module
        prefix = f"{path}." if path else ""
        mine = {gid_of[prefix + n] for n, p in source._parameters.items() if p is not None
                and prefix + n in gid_of}
        for child_name in module._modules:
            mine |= below.get(prefix + child_name, set())
        below[path] = mine
    covers: dict[int, list[str]] = {}
    stack = [("", model)]
    while stack:
        path, module = stack.pop()
        mine = below.get(path, set())
        if len(mine) == 1:
            covers.setdefault(next(iter(mine)), []).append(path)
            continue
        if not mine:
            continue
        prefix = f"{path}." if path else ""
        children = [(prefix + n, m) for n, m in module._modules.items() if m is not None]
        stack.extend(reversed(children))
    return covers


def _group_name(paths: list[str], sizes: dict[str, int]) -> str:
    if not paths:
        return "params"
    main = max(paths, key=lambda p: sizes.get(p, 0))
    rest = [p for p in paths if p != main]
    if not rest:
        return main or "model"
    if len(rest) <= 2:
        return " + ".join([main, *rest])
    return f"{main} + {len(rest)} more"


def layer_groups(model: nn.Module, fine: bool = False) -> list[LayerGroup]:
    """The model's layer groups, ordered from the stem to the head.

    For timm models the grouping is timm's own ``model.group_matcher()`` (coarse: stem, stages,
    head; ``fine=True``: one group per block), the one timm's layer-wise LR decay uses. Any other
    module falls back to its top-level children. Every parameter belongs to exactly one group,
    and the classifier (``pretrained_cfg["classifier"]`` / ``get_classifier()``) is always in
    the last group, named ``"head"``.

    >>> import timm, tlwidgets as tlw
    >>> model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32)
    >>> groups = tlw.layer_groups(model)
    >>> groups[0].name, groups[-1].name, len(groups)
    ('stem', 'head', 14)
    """
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"layer_groups needs a torch.nn.Module, got {type(model).__name__}; pass the model."
        )
    modules = list(model.named_modules())
    named = list(parameters_with_owners(model))
    if not named:
        return []
    names = [n for n, _, _ in named]
    timm_groups = _timm_assignment(model, names, fine)
    matcher = None
    if timm_groups is not None:
        gids, matcher = timm_groups
    else:
        gids = _fallback_assignment(names)

    module_paths = {id(m): p for p, m in modules}
    heads = _classifier_paths(model, module_paths)
    head_mask = [any(_under(n, h) for h in heads) for n in names] if heads else [False] * len(names)
    has_head = any(head_mask)
    if has_head:
        last = max(gids)
        head_gids = {g for g, is_head in zip(gids, head_mask, strict=True) if is_head}
        if head_gids != {last}:
            # timm put (part of) the classifier among the backbone: give it a group of its own
            gids = [last + 1 if is_head else g for g, is_head in zip(gids, head_mask, strict=True)]
    # renumber densely in stem-to-head order
    dense = {g: i for i, g in enumerate(sorted(set(gids)))}
    gids = [dense[g] for g in gids]
    count = len(dense)

    covers = _cover(model, names, gids, modules)
    per_group_names: list[list[str]] = [[] for _ in range(count)]
    per_group_size = [0] * count
    for (name, p, _), g in zip(named, gids, strict=True):
        per_group_names[g].append(name)
        per_group_size[g] += p.numel()
    path_sizes: dict[str, int] = {}
    for (name, p, _), g in zip(named, gids, strict=True):
        for path in covers.get(g, ()):
            if _under(name, path):
                path_sizes[path] = path_sizes.get(path, 0) + p.numel()
                break

    stem_res = _stem_regexes(matcher)
    ref = weakref.ref(model)
    groups: list[LayerGroup] = []
    used: set[str] = set()
    for g in range(count):
        paths = covers.get(g, [])
        first = per_group_names[g][0]
        if has_head and g == count - 1:
            name = "head"
        elif g == 0 and stem_res and any(r.match(first) for r in stem_res):
            name = "stem"
        elif matcher is None and paths and paths[0].isdigit():
            # nn.Sequential children are called "0", "1", ...: add the type to make them readable
            name = f"{paths[0]} ({type(model.get_submodule(paths[0])).__name__})"
        else:
            name = _group_name(paths, path_sizes)
        base, k = name, 2
        while name in used:
            name, k = f"{base} #{k}", k + 1
        used.add(name)
        groups.append(LayerGroup(name, g, paths, per_group_names[g], per_group_size[g], ref))
    return groups


# --------------------------------------------------------------------------------------------
# selection


def _close_paths(path: str, candidates: Sequence[str]) -> list[str]:
    close = difflib.get_close_matches(path, candidates, n=6, cutoff=0.6)
    if not close:
        # a typo in the last component: offer the siblings under the longest valid prefix
        parts = path.split(".")
        for k in range(len(parts) - 1, 0, -1):
            prefix = ".".join(parts[:k]) + "."
            siblings = [
                c for c in candidates if c.startswith(prefix) and "." not in c[len(prefix):]
            ]
            if siblings:
                return siblings[:6]
        close = [c for c in candidates if c and "." not in c][:6]
    return close


def _resolve(model: nn.Module, items: Any) -> list[tuple[str, bool]]:
    """``(path, is_module)`` for each item: a module path, or the path of a single parameter."""
    if items is None:
        return [("", True)]
    if isinstance(items, (str, nn.Module, nn.Parameter, LayerGroup)):
        items = [items]
    elif not isinstance(items, Iterable):
        raise ConfigError(
            f"cannot select {items!r} to freeze; pass a dotted module path, a module of the model, "
            "a LayerGroup, or a list of these."
        )
    module_paths: dict[int, str] | None = None
    param_paths: dict[int, str] | None = None
    out: list[tuple[str, bool]] = []
    for item in items:
        if isinstance(item, LayerGroup):
            if item._model() is not model:
                raise FreezeError(
                    f"layer group {item.name!r} belongs to another model; get the groups with "
                    "tlw.layer_groups(model) from the model you freeze."
                )
            out.extend((p, True) for p in item.paths)
            covered = item.paths
            out.extend((n, False) for n in item.param_names
                       if not any(_under(n, p) for p in covered))
        elif isinstance(item, nn.Parameter):
            if param_paths is None:
                param_paths = {id(p): n for n, p in model.named_parameters()}
            if id(item) not in param_paths:
                raise ModulePathError(
                    "this parameter is not part of the model; pass a parameter (or module) "
                    "taken from the model you are freezing."
                )
            out.append((param_paths[id(item)], False))
        elif isinstance(item, nn.Module):
            if module_paths is None:
                module_paths = {id(m): p for p, m in model.named_modules()}
            if id(item) not in module_paths:
                raise ModulePathError(
                    f"this {type(item).__name__} is not a submodule of the model; pass a module "
                    "taken from the model itself, or its dotted path."
                )
            out.append((module_paths[id(item)], True))
        elif isinstance(item, str):
            out.append(_resolve_path(model, item))
        else:
            raise ConfigError(
                f"cannot select {item!r} ({type(item).__name__}) to freeze; pass a dotted module "
                "path, a module of the model, a LayerGroup, or a list of these."
            )
    return out


def _resolve_path(model: nn.Module, path: str) -> tuple[str, bool]:
    if path == "":
        return "", True
    try:
        model.get_submodule(path)
        return path, True
    except AttributeError:
        pass
    owner_path, _, attr = path.rpartition(".")
    try:
        owner = model.get_submodule(owner_path) if owner_path else model
    except AttributeError:
        owner = None
    if owner is not None and isinstance(owner._parameters.get(attr), nn.Parameter):
        return path, False
    candidates = [p for p, _ in model.named_modules() if p]
    close = _close_paths(path, candidates)
    raise ModulePathError(
        f"no module {path!r} in this {type(model).__name__}. Close paths: "
        + ", ".join(repr(c) for c in close)
        + ". Paths are dotted names from model.named_modules(); tlw.trainable_summary(model) "
        "lists them all."
    )


def _check_bn(bn: str) -> str:
    if bn not in bnp.BN_POLICIES:
        raise FreezeError(
            f"unknown BatchNorm policy {bn!r}; use one of "
            + ", ".join(repr(b) for b in bnp.BN_POLICIES)
            + " ('eval' keeps frozen BN statistics fixed, 'train' lets them move, 'frozen' "
            "swaps in timm's FrozenBatchNorm2d)."
        )
    return bn


def _set_trainable(p: nn.Parameter, trainable: bool) -> None:
    if not (p.is_floating_point() or p.is_complex()):
        return  # integer parameters cannot require grad
    p.requires_grad_(trainable)
    if not trainable:
        # an optimizer that still holds the parameter would apply a stale gradient on its next
        # step() (no zero_grad in between): frozen must mean frozen
        p.grad = None


def _apply(model: nn.Module, selection: list[tuple[str, bool]], trainable: bool, bn: str) -> None:
    """Set requires_grad and the BN policy over a resolved selection (no notification)."""
    for path, is_module in selection:
        if not is_module:
            _set_trainable(model.get_parameter(path), trainable)
            continue
        target = model.get_submodule(path) if path else model
        norms = [
            (f"{path}.{sub}" if path and sub else path or sub, m)
            for sub, m in target.named_modules()
            if bnp.is_norm_with_stats(m) or bnp.original_of(m) is not None
        ]
        if trainable or bn != "frozen":
            # bring "frozen" replacements back first so their parameters are the ones we set
            for npath, m in norms:
                if bnp.original_of(m) is not None:
                    bnp.restore(model, npath, m)
            target = model.get_submodule(path) if path else model
        for p in target.parameters():
            _set_trainable(p, trainable)
        for npath, _ in norms:
            m = model.get_submodule(npath) if npath else model
            if trainable:
                bnp.unlock(m, training=model.training)
            elif bn == "eval":
                bnp.lock_eval(m)
            elif bn == "train":
                bnp.unlock(m, training=model.training)
            elif bnp.original_of(m) is None and bnp.swap_frozen(model, npath, m) is None:
                bnp.lock_eval(m)


def freeze(model: nn.Module, modules: Selection = None, bn: str = "eval") -> None:
    """Freeze ``modules`` of ``model`` (all of it by default).

    ``modules`` is a dotted path (``"layer1.0"``), a module or parameter of the model, a
    :class:`LayerGroup`, or a list of these. ``bn`` says what frozen BatchNorm layers do:
    ``"eval"`` (default) keeps them in eval mode even when ``model.train()`` is called, so their
    running statistics stay fixed; ``"train"`` lets ``model.train()`` update their statistics;
    ``"frozen"`` replaces them by timm's ``FrozenBatchNorm2d`` (BatchNorm1d/3d, which it cannot
    replace, get ``"eval"``). :func:`unfreeze` undoes all three.

    >>> import timm, tlwidgets as tlw
    >>> model = timm.create_model("resnet18", pretrained=False)
    >>> tlw.freeze(model, ["conv1", "bn1", "layer1"])
    >>> model.layer1[0].conv1.weight.requires_grad, model.train().bn1.training
    (False, False)
    """
    bn = _check_bn(bn)
    selection = _resolve(model, modules)
    with _changing(model):
        _apply(model, selection, trainable=False, bn=bn)


def unfreeze(model: nn.Module, modules: Selection = None) -> None:
    """Make ``modules`` (all of the model by default) trainable again, BatchNorm layers included.

    BatchNorm layers get back their normal behaviour (and their original class if the
    ``"frozen"`` policy replaced them), in the model's current train/eval mode.

    >>> import timm, tlwidgets as tlw
    >>> model = timm.create_model("resnet18", pretrained=False)
    >>> tlw.freeze(model)
    >>> tlw.unfreeze(model, "fc")
    >>> model.fc.weight.requires_grad, model.conv1.weight.requires_grad
    (True, False)
    """
    selection = _resolve(model, modules)
    with _changing(model):
        _apply(model, selection, trainable=True, bn="train")


def _split_at(model: nn.Module, groups: list[LayerGroup], k: int, bn: str) -> None:
    trained = _resolve(model, groups[k:]) if k < len(groups) else []
    frozen = _resolve(model, groups[:k]) if k > 0 else []
    with _changing(model):
        _apply(model, trained, trainable=True, bn="train")
        _apply(model, frozen, trainable=False, bn=bn)


def freeze_to(model: nn.Module, n: int, bn: str = "eval", fine: bool = False) -> None:
    """Freeze the layer groups before ``n`` and make the rest trainable (fastai's ``freeze_to``).

    ``n`` counts groups from the stem; a negative ``n`` counts from the end, so
    ``freeze_to(model, -1)`` trains only the head and ``freeze_to(model, 0)`` trains everything.
    Valid values run from ``-len(groups)`` to ``len(groups)`` (all frozen).

    >>> import timm, tlwidgets as tlw
    >>> model = timm.create_model("resnet18", pretrained=False)
    >>> tlw.freeze_to(model, -2)      # layer4 and the head train
    >>> [g.name for g in tlw.layer_groups(model) if g.trainable_params]
    ['layer4', 'head']
    """
    bn = _check_bn(bn)
    if isinstance(n, bool) or not isinstance(n, int):
        raise FreezeError(
            f"freeze_to needs an integer group index, got {n!r}; e.g. freeze_to(model, -1) "
            "trains only the head."
        )
    groups = layer_groups(model, fine=fine)
    count = len(groups)
    if count == 0:
        raise FreezeError(
            f"this {type(model).__name__} has no parameters, so there is nothing to freeze."
        )
    if not -count <= n <= count:
        names = ", ".join(f"{i}={g.name}" for i, g in enumerate(groups))
        raise FreezeError(
            f"freeze_to(model, {n}) is out of range: this model has {count} layer groups "
            f"({names}), so n must be between {-count} and {count}."
        )
    _split_at(model, groups, n if n >= 0 else count + n, bn)


def apply_preset(model: nn.Module, name: str, bn: str = "eval", fine: bool = False) -> None:
    """Apply a named freeze preset; the name says what is *trained* (see :data:`PRESETS`).

    ``"head"``: only the head; ``"last-stage"``: the last backbone group and the head;
    ``"all"``: everything (full fine-tuning); ``"none"``: nothing (feature extraction).

    >>> import timm, tlwidgets as tlw
    >>> model = timm.create_model("resnet18", pretrained=False)
    >>> tlw.apply_preset(model, "last-stage")
    >>> [g.name for g in tlw.layer_groups(model) if g.trainable_params]
    ['layer4', 'head']
    """
    if name not in PRESETS:
        raise FreezeError(
            f"unknown freeze preset {name!r}; the presets are "
            + "; ".join(f"{k!r}: {v}" for k, v in PRESETS.items())
            + "."
        )
    bn = _check_bn(bn)
    groups = layer_groups(model, fine=fine)
    count = len(groups)
    if count == 0:
        raise FreezeError(
            f"this {type(model).__name__} has no parameters, so there is nothing to freeze."
        )
    k = {"head": count - 1, "last-stage": max(count - 2, 0), "all": 0, "none": count}[name]
    _split_at(model, groups, k, bn)


# --------------------------------------------------------------------------------------------
# summary


def _shape_of(out: Any) -> str:
    if isinstance(out, torch.Tensor):
        return "(" + ", ".join(str(s) for s in out.shape) + ")"
    if isinstance(out, (tuple, list)):
        shapes = [_shape_of(o) for o in out]
        return "[" + ", ".join(s for s in shapes if s) + "]"
    if isinstance(out, dict):
        return "{" + ", ".join(f"{k}: {_shape_of(v)}" for k, v in out.items()) + "}"
    return ""


def _output_shapes(model: nn.Module, modules: list[tuple[str, nn.Module]],
                   input_size: Sequence[int]) -> dict[str, str]:
    size = tuple(int(s) for s in input_size)
    if len(size) == 3:
        size = (1, *size)
    ref = next(iter(model.parameters()), None)
    if ref is None:
        ref = next(iter(model.buffers()), None)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    shapes: dict[str, str] = {}
    handles = []

    def hook_for(path: str) -> Callable:
        def hook(module: nn.Module, args: Any, out: Any) -> None:
            shapes[path] = _shape_of(out)
        return hook

    for path, module in modules:
        handles.append(module.register_forward_hook(hook_for(path)))
    # eval() would unlock nothing and change nothing lasting, but BN in train mode would update
    # statistics from the dummy input: remember every flag and put each back exactly.
    flags = [(m, m.training) for _, m in model.named_modules()]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(size, device=device, dtype=dtype))
    except Exception as err:
        expected = (getattr(model, "pretrained_cfg", None) or {}).get("input_size")
        hint = f" Its pretrained_cfg says input_size={tuple(expected)}." if expected else ""
        raise ConfigError(
            f"could not run a dummy input of shape {size} through {type(model).__name__} to "
            f"measure output shapes ({type(err).__name__}: {err}).{hint} Pass the (C, H, W) the "
            "model expects as input_size, or leave input_size=None."
        ) from err
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags:
            m.training = flag
    return shapes


def trainable_summary(model: nn.Module, depth: int | None = None,
                      input_size: Sequence[int] | None = None) -> pd.DataFrame:
    """One row per submodule: what it is, how many parameters it has and which of them train.

    Columns: ``path``, ``type``, ``depth`` (1 for top-level children), ``params``,
    ``trainable_params``, ``state`` (``"trainable"``, ``"frozen"``, ``"partial"``, or ``"—"``
    without parameters), ``group`` (the layer group; ``"a … b"`` for a container spanning
    several), ``bn`` (for BatchNorm-like layers: ``"eval"`` held in eval mode, ``"frozen"``
    replaced, ``"train"`` following ``model.train()``; else empty), and ``output_shape`` when
    ``input_size`` (``(C, H, W)``) is given, measured with one dummy forward pass without grad.
    ``depth`` limits the rows to that many levels below the model.

    >>> import timm, tlwidgets as tlw
    >>> model = timm.create_model("resnet18", pretrained=False)
    >>> tlw.apply_preset(model, "head")
    >>> df = tlw.trainable_summary(model, depth=1)
    >>> df.set_index("path").loc[["layer4", "fc"], "state"].tolist()
    ['frozen', 'trainable']
    """
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise ConfigError(
            f"depth must be a positive integer or None (all levels), got {depth!r}; depth=1 "
            "lists the top-level children."
        )
    modules = list(model.named_modules())
    groups = layer_groups(model)
    gid_of: dict[str, int] = {}
    for g in groups:
        for n in g.param_names:
            gid_of[n] = g.index

    total: dict[str, int] = {}
    train: dict[str, int] = {}
    span: dict[str, tuple[int, int]] = {}
    seen: set[int] = set()
    for path, module in reversed(modules):
        original = bnp.original_of(module)
        source = original if original is not None else module
        prefix = f"{path}." if path else ""
        n_all = n_train = 0
        lo, hi = math.inf, -math.inf
        for name, p in source._parameters.items():
            if p is None or id(p) in seen:
                continue
            seen.add(id(p))
            n, t = param_counts(p, module)
            n_all += n
            n_train += t
            g = gid_of.get(prefix + name)
            if g is not None:
                lo, hi = min(lo, g), max(hi, g)
        for child in module._modules:
            cpath = prefix + child
            if cpath in total:
                n_all += total[cpath]
                n_train += train[cpath]
                clo, chi = span.get(cpath, (math.inf, -math.inf))
                lo, hi = min(lo, clo), max(hi, chi)
        total[path], train[path] = n_all, n_train
        if lo <= hi:
            span[path] = (int(lo), int(hi))

    names = [g.name for g in groups]
    rows_modules = []
    rows: dict[str, list] = {k: [] for k in ("path", "type", "depth", "params",
                                              "trainable_params", "state", "group", "bn")}
    inherited: dict[str, str] = {"": ""}
    for path, module in modules:
        if not path:
            continue
        parent = path.rpartition(".")[0]
        level = path.count(".") + 1
        if path in span:
            lo, hi = span[path]
            group = names[lo] if lo == hi else f"{names[lo]} … {names[hi]}"
        else:
            # parameter-less layers (activations, pooling) take the group of what holds them
            parent_span = span.get(parent)
            single = parent_span is not None and parent_span[0] == parent_span[1]
            group = names[parent_span[0]] if single else ""
        inherited[path] = group
        if depth is not None and level > depth:
            continue
        n_all, n_train = total[path], train[path]
        if n_all == 0:
            state = "—"
        elif n_train == n_all:
            state = "trainable"
        elif n_train == 0:
            state = "frozen"
        else:
            state = "partial"
        rows["path"].append(path)
        rows["type"].append(type(module).__name__)
        rows["depth"].append(level)
        rows["params"].append(n_all)
        rows["trainable_params"].append(n_train)
        rows["state"].append(state)
        rows["group"].append(group)
        rows["bn"].append(bnp.policy_of(module))
        rows_modules.append((path, module))
    df = pd.DataFrame(rows)
    if input_size is not None:
        shapes = _output_shapes(model, rows_modules, input_size)
        df["output_shape"] = [shapes.get(p, "") for p in rows["path"]]
    return df


# --------------------------------------------------------------------------------------------
# learning-rate multipliers per layer group (what the FreezePanel's LR column edits)


def _coarse_names(model: nn.Module) -> list[str]:
    return [g.name for g in layer_groups(model)]


def lr_multipliers(model: nn.Module) -> dict[str, float]:
    """The learning-rate multiplier of every (coarse) layer group, stem to head; 1.0 by default.

    :func:`param_groups` multiplies each group's rate by it, and leaves a group at 0 out, so the
    Trainer, the Studio, ``lr_find`` and the FreezePanel's LR column all agree.

    >>> import timm, tlwidgets as tlw
    >>> model = timm.create_model("resnet18", pretrained=False, num_classes=3)
    >>> tlw.set_lr_multipliers(model, {"head": 10})
    >>> tlw.lr_multipliers(model)["head"], tlw.lr_multipliers(model)["stem"]
    (10.0, 1.0)
    """
    state = _state(model)
    with state.lock:
        mults = dict(state.lr_mults)
    return {name: float(mults.get(name, 1.0)) for name in _coarse_names(model)}


def set_lr_multipliers(model: nn.Module, multipliers: dict[str, Any], replace: bool = False) -> None:
    """Set learning-rate multipliers by layer group name (``tlw.layer_groups(model)``).

    Values are numbers >= 0: 1 keeps the base rate, 10 trains a group ten times faster, 0 leaves
    its parameters out of the optimizer (they do not change). Groups not named keep their value
    (or go back to 1 with ``replace=True``). The change counts as a freeze change: the panel and
    a running trainer (between epochs) follow it.

    >>> import timm, tlwidgets as tlw
    >>> model = timm.create_model("resnet18", pretrained=False, num_classes=3)
    >>> tlw.set_lr_multipliers(model, {"head": 10, "stem": 0})
    >>> [g["name"] for g in tlw.param_groups(model, lr=1e-3)][:1]
    ['layer1']
    """
    if not isinstance(multipliers, dict):
        raise ConfigError(
            f"set_lr_multipliers needs a dict of layer group name -> number, got "
            f"{type(multipliers).__name__}; e.g. {{'head': 10}}."
        )
    known = _coarse_names(model)
    clean: dict[str, float] = {}
    for name, value in multipliers.items():
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise ConfigError(
                f"{type(model).__name__} has no layer group {name!r}; its groups are "
                f"{', '.join(map(repr, known))}.{hint}"
            )
        try:
            mult = float(value)
        except (TypeError, ValueError):
            mult = math.nan
        if isinstance(value, bool) or not (math.isfinite(mult) and mult >= 0):
            raise ConfigError(
                f"the learning-rate multiplier of {name!r} must be a number >= 0, got {value!r}; "
                "1.0 keeps the base rate, 0 leaves the group out."
            )
        clean[name] = mult
    state = _state(model)
    with _changing(model):
        if replace:
            state.lr_mults = {}
        state.lr_mults.update(clean)


# --------------------------------------------------------------------------------------------
# optimizer parameter groups


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ConfigError(f"{name} must be a positive finite number, got {value!r}.")
    return float(value)


def param_groups(
    model: nn.Module,
    lr: float,
    lr_min: float | None = None,
    layer_decay: float | None = None,
    weight_decay: float = 0.0,
    no_decay_bias_norm: bool = True,
    fine: bool | None = None,
) -> list[dict[str, Any]]:
    """Optimizer parameter groups with a learning rate per layer group; frozen parameters left out.

    - ``lr`` alone: every group gets ``lr``.
    - ``lr_min``: fastai's discriminative rates, spread geometrically from ``lr_min`` (stem) to
      ``lr`` (head) over the *coarse* groups.
    - ``layer_decay``: timm's layer-wise decay, ``lr * layer_decay ** (last - i)`` over the
      *fine* groups (``fine`` overrides which grouping is used).

    The spread runs over all groups, frozen ones included, so a group's rate depends on where it
    sits in the network, not on how much is frozen at the moment. With ``weight_decay > 0`` and
    ``no_decay_bias_norm``, biases, norm weights and the model's ``no_weight_decay()`` names get
    no weight decay. Each dict carries ``"name"`` (the layer group, with ``" (no decay)"`` for the
    second half of a split), ``"group"`` (the layer group's name), ``"lr"`` and
    ``"lr_multiplier"``.

    The model's :func:`lr_multipliers` (set with :func:`set_lr_multipliers` or the FreezePanel's
    LR column) scale each coarse group's rate; a group at 0 is left out. With fine groups
    (``layer_decay``) a fine group that spans two coarse groups of different multipliers is
    split, its name suffixed with ``" [<coarse group>]"``.

    >>> import timm, torch, tlwidgets as tlw
    >>> model = timm.create_model("resnet18", pretrained=False)
    >>> tlw.freeze_to(model, -2)
    >>> groups = tlw.param_groups(model, lr=1e-3, lr_min=1e-5)
    >>> [(g["name"], g["lr"]) for g in groups]  # doctest: +SKIP
    [('layer4', 0.0001), ('head', 0.001)]
    >>> opt = torch.optim.SGD(groups, lr=1e-3)
    """
    lr = _positive("lr", lr)
    if lr_min is not None and layer_decay is not None:
        raise ConfigError(
            "pass either lr_min (fastai-style spread) or layer_decay (timm-style decay), not both."
        )
    if lr_min is not None:
        lr_min = _positive("lr_min", lr_min)
        if lr_min > lr:
            raise ConfigError(
                f"lr_min ({lr_min}) is above lr ({lr}); lr_min is the stem's rate, lr the head's."
            )
    if layer_decay is not None:
        layer_decay = _positive("layer_decay", layer_decay)
        if layer_decay > 1:
            raise ConfigError(
                f"layer_decay must be in (0, 1], got {layer_decay}; timm's usual values: 0.65-0.85."
            )
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) \
            or not math.isfinite(weight_decay) or weight_decay < 0:
        raise ConfigError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}.")

    groups = layer_groups(model, fine=(layer_decay is not None) if fine is None else fine)
    count = len(groups)
    # the multipliers are set per coarse group: find each parameter's coarse group
    mults = lr_multipliers(model)
    coarse_of: dict[int, str] = {}
    if any(m != 1.0 for m in mults.values()):
        for cg in layer_groups(model):
            for p in cg.parameters():
                coarse_of[id(p)] = cg.name
    no_wd_names: set[str] = set()
    if weight_decay > 0 and no_decay_bias_norm:
        nwd = getattr(model, "no_weight_decay", None)
        if callable(nwd):
            try:
                no_wd_names = set(nwd())
            except Exception:  # a model's helper failing just means no extra exclusions
                no_wd_names = set()

    out: list[dict[str, Any]] = []
    any_zero = False
    for g in groups:
        if lr_min is not None and count > 1:
            g_lr = lr_min * (lr / lr_min) ** (g.index / (count - 1))
        elif layer_decay is not None:
            g_lr = lr * layer_decay ** (count - 1 - g.index)
        else:
            g_lr = lr
        buckets: dict[tuple[str, bool], list[nn.Parameter]] = {}
        root = g._root()
        for name in g.param_names:
            owner_path, _, attr = name.rpartition(".")
            owner = root.get_submodule(owner_path) if owner_path else root
            p = owner._parameters.get(attr)
            if p is None or not p.requires_grad:
                continue
            no_wd = weight_decay > 0 and no_decay_bias_norm and (
                p.ndim <= 1 or name in no_wd_names or name.split(".")[-1] in no_wd_names
            )
            buckets.setdefault((coarse_of.get(id(p), g.name), no_wd), []).append(p)
        order = {name: i for i, name in enumerate(mults)}
        rows = sorted({row for row, _ in buckets}, key=lambda r: order.get(r, -1))
        for row in rows:
            mult = mults.get(row, 1.0)
            if mult == 0:
                any_zero = True
                continue
            base = g.name if row == g.name else f"{g.name} [{row}]"
            for no_wd in (False, True):
                params = buckets.get((row, no_wd))
                if params:
                    out.append({
                        "params": params, "lr": g_lr * mult,
                        "weight_decay": 0.0 if no_wd else float(weight_decay),
                        "name": f"{base} (no decay)" if no_wd else base, "group": row,
                        "lr_multiplier": mult,
                    })
    if not out and any_zero:
        raise NothingTrainableError(
            "no parameter would train: the trainable layer groups all have a learning-rate "
            "multiplier of 0. Raise one above 0 (tlw.set_lr_multipliers(model, {'head': 1}) or "
            "the FreezePanel's LR column)."
        )
    if not out:
        raise NothingTrainableError(
            f"every parameter of this {type(model).__name__} is frozen, so an optimizer would "
            "have nothing to train. Unfreeze something first: tlw.apply_preset(model, 'head') "
            "trains the head, tlw.apply_preset(model, 'last-stage') the last stage too, "
            "tlw.unfreeze(model) everything."
        )
    return out
