"""Fitting a state dict onto a model (the core of :func:`tlwidgets.load_weights`):
keys by name, by name without wrapper prefixes, or by order, every shape checked, and what was
left over. :mod:`tlwidgets.weights` documents the contract and re-exports :class:`LoadReport`
and :func:`load_weights`.

>>> import tlwidgets as tlw
>>> model = tlw.create_model("resnet18", num_classes=3, weights="none")  # doctest: +SKIP
>>> print(tlw.load_weights(model, "finetuned.safetensors"))              # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import warnings
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from ._weights_io import check_weights_file, read_weights_file, unwrap
from .errors import ConfigError, WeightsMismatchError

__all__ = ["LoadReport", "fit", "is_random_init", "load_into"]

# Prefixes added by DataParallel (module.), Lightning/wrappers (model., backbone.) and
# torch.compile (_orig_mod.).
_PREFIXES = ("module.", "model.", "backbone.", "_orig_mod.")
FIRST_MISMATCHES = 5


@dataclasses.dataclass
class LoadReport:
    """What a weights load did, tensor by tensor.

    ``matched`` lists every model tensor that received a value from the file; ``remapped`` maps
    those that came under another name (model key -> file key); ``missing`` are model tensors the
    file had nothing for (left as initialised); ``unexpected`` are file tensors that went nowhere;
    ``skipped`` maps model keys deliberately left out (the old classifier) to the reason.
    ``method`` is ``"name"``, ``"order"`` or ``"timm"`` (timm's own loader), or ``"none"`` for a
    model made with ``weights="none"`` (:meth:`random_init`: nothing loaded, every tensor starts
    from its random initialisation; :attr:`pretrained` is False). ``warnings`` says
    what looks wrong about the load though it went through (say, a file for another
    architecture whose names happen to cover the model's); ``create_model`` refuses such a load.
    ``trainable`` (and a line of ``str()``) says what trains in the model now, e.g.
    ``"5,124 of 3.4M parameters (head only)"``, read live from the model.

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
    warnings: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def random_init(cls) -> LoadReport:
        """The report of a model made with ``weights="none"``: nothing loaded."""
        return cls(source="random initialisation (weights='none')", method="none")

    @property
    def pretrained(self) -> bool:
        """False for a model made with ``weights="none"``, True when weights were loaded."""
        return self.method != "none"

    def watch(self, model: nn.Module, describe: Callable[[nn.Module], str]) -> None:
        """Keep a weak link to the loaded model and the function that puts what trains in it
        into words, so :attr:`trainable` and ``str()`` say what trains now, after any later
        ``freeze_to``/``apply_preset``. Not pickled; a deep copy of the model gets a report
        linked to the copy."""
        self._model = weakref.ref(model)
        self._describe = describe

    @property
    def trainable(self) -> str:
        """What trains in the loaded model now, e.g. ``"5,124 of 3.4M parameters (head
        only)"``; empty when the model is gone, or the report was unpickled or copied
        without it."""
        ref = self.__dict__.get("_model")
        model = ref() if ref is not None else None
        return self._describe(model) if model is not None else ""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for link in ("_model", "_describe"):  # a weakref does not pickle; nor belongs in one
            state.pop(link, None)
        return state

    def __deepcopy__(self, memo: dict[int, Any]) -> LoadReport:
        new = object.__new__(type(self))
        new.__dict__.update(copy.deepcopy(self.__getstate__(), memo))
        ref = self.__dict__.get("_model")
        model = ref() if ref is not None else None
        if model is not None and id(model) in memo:  # copied with its model: follow the copy
            new.watch(memo[id(model)], self._describe)
        return new

    def summary(self) -> str:
        """A few readable lines: how many tensors loaded, from where, and what was left out."""
        total = len(self.matched) + len(self.missing) + len(self.skipped)
        if not self.pretrained:
            lines = ["No pretrained weights: every tensor starts from random initialisation "
                     "(weights='none')"]
            if self.trainable:
                lines.append(f"  trainable: {self.trainable}")
            return "\n".join(lines)
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
        trainable = self.trainable
        if trainable:
            lines.append(f"  trainable: {trainable}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def is_random_init(model: Any) -> bool | None:
    """True for a model made with ``weights="none"``, False for one whose weights were loaded
    (``model.tlw_load_report``), None when nothing says (a model not made by ``create_model``).

    >>> import tlwidgets as tlw
    >>> tlw.is_random_init(tlw.create_model("resnet18", 3, weights="none"))   # doctest: +SKIP
    True
    """
    report = getattr(model, "tlw_load_report", None)
    if isinstance(report, LoadReport):
        return not report.pretrained
    return None


# --------------------------------------------------------------------------------------------
# fitting a state dict onto a model


def strip_prefixes(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return key


def classifier_keys(model: nn.Module, keys: list[str]) -> set[str]:
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


def model_label(model: nn.Module) -> str:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    arch = cfg.get("architecture") if isinstance(cfg, Mapping) else None
    return arch or type(model).__name__


def mismatch_text(mismatches: list[tuple[str, tuple[int, ...], str, tuple[int, ...]]]) -> str:
    parts = []
    for target, expected, source, found in mismatches[:FIRST_MISMATCHES]:
        where = f"{target!r}" if source == target else f"{target!r} (file key {source!r})"
        parts.append(f"{where}: model expects {expected}, file has {found}")
    more = (
        f"; ... {len(mismatches) - FIRST_MISMATCHES} more"
        if len(mismatches) > FIRST_MISMATCHES
        else ""
    )
    return "; ".join(parts) + more


def fit(
    model: nn.Module, sd: dict[str, torch.Tensor], source: str, strict_shapes: bool
) -> LoadReport:
    target = model.state_dict()
    tkeys = list(target)
    head = classifier_keys(model, tkeys)

    # by name: exact first, then after stripping wrapper prefixes on both sides
    by_canon: dict[str, list[str]] = {}
    for k in sd:
        by_canon.setdefault(strip_prefixes(k), []).append(k)
    mapping: dict[str, str] = {}
    skipped: dict[str, str] = {}
    mismatches: list[tuple[str, tuple[int, ...], str, tuple[int, ...]]] = []
    used: set[str] = set()
    for t in tkeys:
        if t in sd:
            s = t
        else:
            cands = [
                c
                for c in by_canon.get(strip_prefixes(t), [])
                if c not in used and c not in target
            ]
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
        order = fit_by_order(tkeys, target, sd, head)
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
            guess = guess_architecture(model, sd) if len(mismatches) >= _FOREIGN_MIN else None
            if guess:
                other_arch += (
                    f" The file matches {guess} exactly: "
                    f"tlw.create_model({guess!r}, n, weights=path) takes it."
                )
            raise WeightsMismatchError(
                f"The weights from {source} do not fit {model_label(model)}: "
                f"{len(mismatches)} tensors have other shapes: {mismatch_text(mismatches)}."
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
                why = f"paired by order they do not fit: {mismatch_text(order[2])}"
            raise WeightsMismatchError(
                f"None of the {len(sd)} tensors from {source} fit {model_label(model)} by "
                f"name (e.g. file key {next(iter(sd))!r}, model key {tkeys[0]!r}), and {why}. "
                f"Check that the file belongs to this architecture; create the matching model "
                f"with tlw.create_model(<its architecture>, ...)."
            )
    for t, expected, s, found in mismatches:  # only reached with strict_shapes=False
        skipped[t] = f"shape: file has {found}, model has {expected}"
        used.add(s)

    model.load_state_dict({t: sd[s] for t, s in mapping.items()}, strict=False)
    report = LoadReport(
        matched=[t for t in tkeys if t in mapping],
        remapped={t: s for t, s in mapping.items() if t != s},
        missing=[t for t in tkeys if t not in mapping and t not in skipped],
        unexpected=[s for s in sd if s not in used],
        skipped=skipped,
        source=source,
        method=method,
    )
    other = other_architecture(model, sd, report)
    if other:
        report.warnings.append(other)
    return report


def _counter(key: str) -> bool:
    return key.endswith("num_batches_tracked")


# A file whose unused tensors (BatchNorm counters aside) are at least this share of its tensors,
# and at least _FOREIGN_MIN of them, is for another architecture: an auxiliary or distillation
# head left in a checkpoint is a handful of tensors, another depth or width is dozens.
_FOREIGN_SHARE = 0.1
_FOREIGN_MIN = 4
_GUESS_CANDIDATES = 24  # architectures built (on the meta device, no memory) to name the file's


def guess_architecture(model: nn.Module, sd: Mapping[str, torch.Tensor]) -> str | None:
    """The timm architecture near ``model``'s whose tensors are exactly ``sd``'s (names and
    shapes, the classifier's shape aside), or None. Tries at most a couple of dozen names from
    the model's own timm module, closest names first, each built on the meta device."""
    want = tuple((k, tuple(v.shape)) for k, v in sd.items() if not _counter(k))
    return _guess(model_label(model), type(model).__module__.rpartition(".")[2], want)


@functools.lru_cache(maxsize=8)
def _guess(label: str, module: str, signature: tuple[tuple[str, tuple[int, ...]], ...]) -> Any:
    import difflib
    import re

    import timm

    try:
        names = [n for n in timm.list_models(module=module) if n != label]
    except Exception:  # an unknown module: not a timm model
        return None
    family = re.match(r"[a-z]*", label).group(0)  # resnet, convnext, vit, tf, ...
    near = [n for n in names if n.startswith(family)] or names

    def closeness(name: str) -> tuple[int, float, str]:
        shared = len(os.path.commonprefix([label, name]))
        return (-shared, -difflib.SequenceMatcher(None, label, name).ratio(), name)

    near.sort(key=closeness)
    want = dict(signature)
    for name in near[:_GUESS_CANDIDATES]:
        try:
            with warnings.catch_warnings(), torch.device("meta"):
                warnings.simplefilter("ignore")
                candidate = timm.create_model(name)
        except Exception:  # some architectures need arguments; they cannot be the file's
            continue
        have = {k: tuple(v.shape) for k, v in candidate.state_dict().items() if not _counter(k)}
        if have.keys() != want.keys():
            continue
        head = classifier_keys(candidate, list(have))
        if all(have[k] == want[k] or k in head for k in have):
            return name
    return None


def other_architecture(
    model: nn.Module, sd: Mapping[str, torch.Tensor], report: LoadReport
) -> str | None:
    """Why ``sd`` looks like weights for another architecture than ``model``, or None: many of
    its tensors found no place in the model, though the model's names may all be covered."""
    foreign = [k for k in report.unexpected if not _counter(k)]
    total = sum(1 for k in sd if not _counter(k))
    if len(foreign) < max(_FOREIGN_MIN, _FOREIGN_SHARE * total):
        return None
    label = model_label(model)
    guess = guess_architecture(model, sd)
    match = f"; the file matches {guess} exactly" if guess else ""
    return (
        f"{report.source} looks like weights for another architecture than {label}: "
        f"{len(foreign)} of its {total} tensors have no place in {label} (e.g. "
        f"{', '.join(foreign[:3])}){match}."
    )


def fit_by_order(
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


def load_into(
    model: nn.Module,
    path_or_state_dict: str | os.PathLike[str] | Mapping[str, Any],
    strict_shapes: bool = True,
) -> LoadReport:
    """:func:`tlwidgets.load_weights` without the live ``trainable`` link (which needs
    :mod:`tlwidgets.freeze`, a layer above this module): read, unwrap, fit, warn."""
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"load_weights needs a torch model as its first argument, not "
            f"{type(model).__name__}. Create one with tlw.create_model(name, num_classes)."
        )
    if isinstance(path_or_state_dict, (Mapping, nn.Module)):
        source = "a state dict" if isinstance(path_or_state_dict, Mapping) else "a model"
        sd, wrapped = unwrap(path_or_state_dict, source)
    else:
        file = check_weights_file(path_or_state_dict)
        source = str(file)
        sd, wrapped = unwrap(read_weights_file(file), source)
    report = fit(model, sd, source + (f" {wrapped}" if wrapped else ""), strict_shapes)
    for warning in report.warnings:
        warnings.warn(warning, UserWarning, stacklevel=3)
    return report
