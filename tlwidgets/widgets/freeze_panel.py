"""FreezePanel: see and change which parts of a model train, as one anywidget tree.

The layer groups of :func:`tlwidgets.layer_groups` are the top-level rows, expandable down to
single modules. A click in the page calls :func:`tlwidgets.freeze` / :func:`tlwidgets.unfreeze`
on the kernel's model at once; a change made in code shows up in the panel within half a second.

What travels (see ``js/freeze_panel.js``):

- ``tree``, once per model structure: the nodes in pre-order as binary columns (parent index,
  depth, parameter count, type index) plus the names as one JSON list.
- ``trainable``: one float64 per node, sent again only when the freeze state changed.
- Commands from the page are custom messages ``{"cmd", "req", ...}``; each is answered by
  setting ``ack`` to its ``req`` in the same update as the new state.

How code-side changes reach the page: the panel subscribes to
:func:`tlwidgets.on_freeze_change` (immediate for every change made through tlwidgets, from any
thread) and a daemon thread compares :func:`tlwidgets.freeze_version` every ``poll_interval``
seconds, which catches a bare ``p.requires_grad_(False)``. The thread sends nothing unless the
version moved, and it works while a cell is still running (a training loop unfreezing the
backbone), which a page-side poll answered by the kernel could not: the kernel reads comm
messages only between cells.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from typing import Any

import anywidget
import numpy as np
import traitlets
from torch import nn

from ..freeze import (
    PRESETS,
    apply_preset,
    freeze,
    freeze_to,
    freeze_version,
    layer_groups,
    on_freeze_change,
    unfreeze,
)
from ..freeze import lr_multipliers as _core_lr_multipliers
from ..freeze import param_counts as _core_counts  # the core's own counting, so totals agree
from ..freeze import param_groups as _core_param_groups
from ..freeze import parameters_with_owners as _core_named_params
from ..freeze import set_lr_multipliers as _core_set_lr_multipliers
from ..errors import ConfigError, FreezeError, NothingTrainableError, TLWidgetsError
from ._layer_scores import LayerScoring
from ._static import static_file

__all__ = ["FreezePanel", "PRESET_LABELS"]

# Button labels for the presets of tlwidgets.apply_preset; a preset names what is *trained*.
PRESET_LABELS: dict[str, str] = {
    "head": "Train head",
    "last-stage": "Train last stage + head",
    "all": "Train all",
    "none": "Freeze all",
}

GROUP_TYPE = "layer group"
PARAM_TYPE = "Parameter"


class FreezePanel(LayerScoring, anywidget.AnyWidget):
    """The layer groups of ``model`` as an expandable tree with trainable/frozen checkboxes.

    Each row shows name, type, parameters, trainable parameters and a three-state checkbox
    (checked: trainable; empty: frozen; indeterminate: partly frozen). Above the tree: a "freeze
    up to" slider (:func:`tlwidgets.freeze_to`), the presets (:func:`tlwidgets.apply_preset`) and
    the BatchNorm policy used for every freeze the panel makes; beside each group an optional
    learning-rate multiplier; below, trainable against total parameters.

    >>> import timm, tlwidgets as tlw
    >>> model = timm.create_model("resnet18", pretrained=False, num_classes=3)
    >>> panel = tlw.FreezePanel(model, bn="eval")
    >>> panel.groups[-1]                                  # doctest: +SKIP
    'fc'
    >>> tlw.freeze_to(model, -1)                          # doctest: +SKIP
    >>> panel.totals["trainable"] == 512 * 3 + 3          # doctest: +SKIP
    True
    >>> panel.lr_multipliers = {**panel.lr_multipliers, "head": 10.0}  # = tlw.set_lr_multipliers  # doctest: +SKIP
    >>> tlw.Trainer(model, data).fit()     # the head trains at 10x the base rate   # doctest: +SKIP
    >>> panel.close()

    With your images (``data=``, ``panel.data = data`` or ``panel.score_layers(data)``),
    "Score layers" runs :func:`tlwidgets.rank_layers` in the background and adds a Score column
    (LogME of each group's output) and the suggested freeze point, applied in one click
    (:meth:`apply_suggested`, i.e. ``tlw.freeze_to(model, n)``).
    """

    _esm = static_file("freeze_panel.js")
    _css = static_file("freeze_panel.css")

    tree = traitlets.Dict(
        help="The module tree in pre-order: n, and binary columns parent (int32), depth "
        "(uint16), params (float64), type_index (uint32); names and type_names as lists."
    ).tag(sync=True)
    trainable = traitlets.Bytes(
        b"", help="Trainable parameters of each tree node, float64 little-endian."
    ).tag(sync=True)
    version = traitlets.Int(
        -1, help="tlwidgets.freeze_version(model) when the state shown was read."
    ).tag(sync=True)
    warnings = traitlets.List(
        traitlets.Unicode(), help="Warnings shown above the tree (nothing trainable, head frozen)."
    ).tag(sync=True)
    error = traitlets.Unicode(
        "", help="Why the last command from the page failed; '' when it succeeded."
    ).tag(sync=True)
    ack = traitlets.Unicode(
        "", help="The req id of the last command handled, set with the state it produced."
    ).tag(sync=True)
    bn = traitlets.Unicode(
        "eval", help="BatchNorm policy for every freeze the panel makes: eval, train or frozen."
    ).tag(sync=True)
    show_lr = traitlets.Bool(
        True, help="Show the per-group learning-rate multiplier column."
    ).tag(sync=True)
    lr_multipliers = traitlets.Dict(
        help="Learning-rate multiplier of each layer group (group name -> float >= 0): a view "
        "of tlwidgets.lr_multipliers(model), which tlwidgets.param_groups and the Trainer use."
    ).tag(sync=True)
    presets = traitlets.List(
        help="The preset buttons: [name, label, tooltip] for tlwidgets.apply_preset."
    ).tag(sync=True)
    layer_scores = traitlets.Dict(
        help="The last 'Score layers' (tlw.rank_layers): rows [{group, name, feature_dim, "
        "logme, knn_pct, freeze_to, suggested}], suggested_freeze_to, suggested_name, "
        "trains_from, by, n_images, seconds, explain; {} before any."
    ).tag(sync=True)
    scoring = traitlets.Dict(
        help="'Score layers' state: state ('unavailable' without data, 'ready', 'running', "
        "'done', 'cancelled', 'failed'), done/total images and the line the page shows."
    ).tag(sync=True)

    def __init__(
        self,
        model: nn.Module,
        bn: str = "eval",
        show_lr: bool = True,
        poll_interval: float = 0.5,
        data: Any = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ConfigError(
                f"FreezePanel needs a torch.nn.Module, got {type(model).__name__}: pass the model "
                "itself, e.g. tlw.FreezePanel(tlw.create_model('resnet18', num_classes=3))."
            )
        if not (isinstance(poll_interval, (int, float)) and poll_interval > 0):
            raise ConfigError(
                f"poll_interval must be a positive number of seconds, got {poll_interval!r}; "
                "0.5 is a good value."
            )
        self._model = model
        self._lock = threading.RLock()
        self._groups: list[Any] = []
        self._targets: list[Any] = []  # per node: LayerGroup, module path or parameter name
        self._node_of: dict[str, int] = {}
        self._structure: tuple[int, ...] = ()
        self._depth = np.zeros(0, dtype=np.int32)
        self._pushed_by_core = False
        self._parent = np.zeros(0, dtype=np.int32)
        self._params = np.zeros(0, dtype=np.float64)
        self._counts = np.zeros(0, dtype=np.float64)
        self._syncing_lr = False
        if data is not None:  # bad data fails here, at the call
            from ..ranking.features import check_data

            check_data(data, "train")
        self._scoring_data = data
        super().__init__(bn=bn, show_lr=show_lr, presets=_preset_buttons(),
                         scoring=self._scoring_state("ready" if data is not None
                                                     else "unavailable"), **kwargs)
        with self.hold_sync():
            self._encode_tree()
            self._push_state(force=True)
        self.on_msg(self._handle_message)
        self._unsubscribe = on_freeze_change(model, self._on_core_change)
        self._poller = _VersionPoller(self, poll_interval)
        self._poller.start()

    # ---- public API ----------------------------------------------------------------------------
    @property
    def model(self) -> nn.Module:
        """The model this panel shows and changes."""
        return self._model

    @property
    def groups(self) -> list[str]:
        """The layer group names, stem to head (the top-level rows)."""
        return [g.name for g in self._groups]

    @property
    def totals(self) -> dict[str, int]:
        """Trainable and total parameters, as the footer shows them.

        >>> panel.totals                                   # doctest: +SKIP
        {'trainable': 1539, 'total': 11178051}
        """
        top = self._parent < 0
        return {
            "trainable": int(self._counts[top].sum()),
            "total": int(self._params[top].sum()),
        }

    def refresh(self) -> bool:
        """Re-read the model's freeze state now; True if it changed and the page was updated.

        The panel does this by itself every ``poll_interval`` seconds; call it after changing
        ``requires_grad`` by hand when you need the panel's state at once (in a script or test).

        >>> next(model.parameters()).requires_grad_(False)  # doctest: +SKIP
        >>> panel.refresh()                                  # doctest: +SKIP
        True
        """
        with self._lock:
            shown = self.version
            # Noticing a change calls the core's listeners, ours included, which may already
            # have sent it by the time this returns.
            if freeze_version(self._model) == shown:
                return False
            with self.hold_sync():
                self._push_state()
            return True

    def param_groups(self, lr: float, **kwargs: Any) -> list[dict[str, Any]]:
        """Optimizer parameter groups from :func:`tlwidgets.param_groups`, each group's rate
        multiplied by the panel's ``lr_multipliers`` for its layer group.

        The multipliers are the model's own (:func:`tlwidgets.lr_multipliers`): the panel shows
        and edits them, so this is exactly :func:`tlwidgets.param_groups` and what a
        ``tlw.Trainer`` builds. Keyword arguments go to it (``weight_decay``, ``lr_min``,
        ``layer_decay``, ...). Frozen parameters are left out, and so are layer groups whose
        multiplier is 0. Raises :class:`~tlwidgets.NothingTrainableError` when nothing would train.

        >>> panel.lr_multipliers = {**panel.lr_multipliers, "head": 10.0}   # doctest: +SKIP
        >>> torch.optim.AdamW(panel.param_groups(1e-4, weight_decay=0.01))  # doctest: +SKIP
        """
        return _core_param_groups(self._model, lr, **kwargs)

    def close(self) -> None:
        """Stop following the model (and a running "Score layers") and close the widget."""
        self.cancel_scoring()
        poller = getattr(self, "_poller", None)
        if poller is not None:
            poller.stop()
        unsubscribe = getattr(self, "_unsubscribe", None)
        if unsubscribe is not None:
            unsubscribe()
            self._unsubscribe = None
        super().close()

    # ---- validation ----------------------------------------------------------------------------
    @traitlets.validate("bn")
    def _validate_bn(self, proposal: traitlets.Bunch) -> str:
        value = proposal["value"]
        if value not in ("eval", "train", "frozen"):
            raise ConfigError(
                f"FreezePanel bn cannot be {value!r}: use 'eval' (frozen BatchNorm layers keep "
                "their statistics), 'train' or 'frozen'."
            )
        return value

    @traitlets.validate("lr_multipliers")
    def _validate_lr_multipliers(self, proposal: traitlets.Bunch) -> dict[str, float]:
        # The trait is a view of the model's own multipliers (tlwidgets.set_lr_multipliers):
        # a change from the page or from code goes into the core, which validates it, and the
        # trait then holds what the core holds.
        value = dict(proposal["value"])
        if not self._groups:
            return value
        current = _core_lr_multipliers(self._model)
        if any(current.get(k) != v for k, v in value.items()):
            self._syncing_lr = True
            try:
                _core_set_lr_multipliers(self._model, value)
            finally:
                self._syncing_lr = False
            current = _core_lr_multipliers(self._model)
        return current

    # ---- encoding ------------------------------------------------------------------------------
    def _encode_tree(self) -> None:
        """Build the pre-order node columns from the layer groups and the module tree.

        Each group's rows are its modules (``LayerGroup.paths``) with their whole subtrees, and
        a row per parameter the group holds outside any module of its own (a ViT's
        ``cls_token``).
        """
        model = self._model
        groups = layer_groups(model)
        parent: list[int] = []
        depth: list[int] = []
        names: list[str] = []
        type_index: list[int] = []
        type_names: list[str] = [GROUP_TYPE, PARAM_TYPE]
        type_ids: dict[str, int] = {GROUP_TYPE: 0, PARAM_TYPE: 1}
        targets: list[Any] = []
        node_of: dict[str, int] = {}  # module path or loose parameter name -> node
        seen_modules: set[int] = set()

        def new_node(up: int, level: int, label: str, type_name: str, target: Any) -> int:
            if type_name not in type_ids:
                type_ids[type_name] = len(type_names)
                type_names.append(type_name)
            parent.append(up)
            depth.append(level)
            names.append(label)
            type_index.append(type_ids[type_name])
            targets.append(target)
            return len(parent) - 1

        for group in groups:
            g_index = new_node(-1, 0, group.name, GROUP_TYPE, group)
            # Iterative pre-order walk: deep models must not hit the recursion limit.
            stack = [(path, path or type(module).__name__, g_index, 1, module)
                     for path, module in reversed(group.modules)]
            while stack:
                path, label, up, level, module = stack.pop()
                if id(module) in seen_modules:
                    continue  # a shared module is shown once, as named_modules() lists it once
                seen_modules.add(id(module))
                index = new_node(up, level, label, type(module).__name__, path)
                node_of[path] = index
                prefix = f"{path}." if path else ""
                children = [(n, m) for n, m in module._modules.items() if m is not None]
                stack.extend((prefix + n, n, index, level + 1, m) for n, m in reversed(children))
            for name in group.param_names:
                if not any(_under(name, path) for path in group.paths):
                    node_of[name] = new_node(g_index, 1, name, PARAM_TYPE, name)

        self._groups = groups
        self._targets = targets
        self._node_of = node_of
        self._parent = np.asarray(parent, dtype=np.int32)
        self._depth = np.asarray(depth, dtype=np.int32)
        params, counts, self._structure = self._read_counts()
        self._params, self._counts = params, counts
        self.tree = {
            "n": len(parent),
            "parent": self._parent.astype("<i4").tobytes(),
            "depth": np.asarray(depth, dtype="<u2").tobytes(),
            "params": params.astype("<f8").tobytes(),
            "type_index": np.asarray(type_index, dtype="<u4").tobytes(),
            "names": names,
            "type_names": type_names,
        }
        self.lr_multipliers = _core_lr_multipliers(self._model)

    def _read_counts(self) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
        """Parameters and trainable parameters of every node, from the model as it is now,
        and the identity of every (parameter, owner) pair to tell when the tree is stale.

        Counted the way the core counts them (``freeze._named_params``/``_counts``): a BatchNorm
        layer swapped out by the ``"frozen"`` policy keeps its affine parameters, as frozen ones,
        so totals do not depend on the policy. One walk over the modules: this runs on every
        click and must stay cheap for models with thousands of modules.
        """
        n = len(self._parent)
        node_of = self._node_of
        nodes: list[int] = []
        sizes: list[int] = []
        trains: list[int] = []
        identity: list[int] = []
        for name, p, owner in _core_named_params(self._model):
            owner_path = name.rpartition(".")[0]
            node = node_of.get(owner_path)
            if node is None:
                node = node_of.get(name)
            identity.append(id(p))
            identity.append(id(owner))
            if node is None:
                continue  # a parameter no group covers: the tree is stale (see _push_state)
            size, train = _core_counts(p, owner)
            nodes.append(node)
            sizes.append(size)
            trains.append(train)
        index = np.asarray(nodes, dtype=np.int64)
        params = np.bincount(index, weights=np.asarray(sizes, dtype=np.float64), minlength=n)
        train = np.bincount(index, weights=np.asarray(trains, dtype=np.float64), minlength=n)
        return self._accumulate(params), self._accumulate(train), tuple(identity)

    def _accumulate(self, direct: np.ndarray) -> np.ndarray:
        """Subtree sums, one tree level at a time from the deepest up."""
        total = direct.astype(np.float64, copy=True)
        for level in range(int(self._depth.max(initial=0)), 0, -1):
            nodes = np.flatnonzero(self._depth == level)
            np.add.at(total, self._parent[nodes], total[nodes])
        return total

    def _push_state(self, force: bool = False, version: int | None = None) -> None:
        """Read requires_grad and send the counts, version and warnings (caller holds sync)."""
        with self._lock:
            if version is None:
                version = freeze_version(self._model)
            if not force and version == self.version:
                return
            params, counts, structure = self._read_counts()
            if structure != self._structure:
                # bn="frozen" swaps BatchNorm layers for frozen ones (unfreezing swaps them back),
                # reset_classifier() swaps the head: the page's tree must follow.
                self._encode_tree()
            else:
                self._params, self._counts = params, counts
            self.trainable = self._counts.astype("<f8").tobytes()
            self.warnings = self._warnings()
            if not self._syncing_lr:
                mults = _core_lr_multipliers(self._model)
                if mults != self.lr_multipliers:
                    self.lr_multipliers = mults
            self.version = version

    def _warnings(self) -> list[str]:
        top = np.flatnonzero(self._parent < 0)
        total = self._params[top].sum()
        trainable = self._counts[top].sum()
        if total > 0 and trainable == 0:
            return [
                "Nothing is trainable: every parameter is frozen, so training would change "
                "nothing. Tick the head's checkbox, press 'Train head' or move the slider left."
            ]
        out = []
        head = top[-1] if len(top) else None
        if head is not None and self._params[head] > 0 and self._counts[head] == 0:
            out.append(
                f"The head (group {self._groups[-1].name!r}) is frozen: a new classifier would "
                "keep its random weights. Tick its checkbox or press 'Train head'."
            )
        return out

    # ---- commands ------------------------------------------------------------------------------
    def _handle_message(self, _widget: Any, content: dict, _buffers: Any = None) -> None:
        """Run one command from the page and answer with the new state (one update message)."""
        if not isinstance(content, dict) or "cmd" not in content:
            return
        req = str(content.get("req", ""))
        error = ""
        started = time.perf_counter()
        # One update message carries the new counts and the ack (the core's change callback
        # runs inside this hold_sync too).
        with self._lock, self.hold_sync():
            self._pushed_by_core = False
            try:
                self._run_command(content)
            except TLWidgetsError as err:
                error = str(err)
            except (KeyError, TypeError, ValueError) as err:
                error = (
                    f"FreezePanel could not read the command {content!r} ({err!r}): reload the "
                    "page so that its view matches this version of tlwidgets."
                )
            if not self._pushed_by_core:
                # No change announced (a failed command, or "refresh"): check for one anyway.
                self._push_state()
            self.error = error
            self.ack = req
            # How long the kernel's part of a page round trip took (the browser test prints it).
            self._command_seconds = time.perf_counter() - started

    def _run_command(self, content: dict) -> None:
        cmd = content["cmd"]
        if cmd == "set":
            self._set_node(int(content["node"]), bool(content["trainable"]))
        elif cmd == "freeze_to":
            freeze_to(self._model, int(content["n"]), bn=self.bn)
        elif cmd == "preset":
            apply_preset(self._model, str(content["name"]), bn=self.bn)
        elif cmd != "refresh" and not self._scoring_command(cmd):
            raise ConfigError(
                f"FreezePanel got an unknown command {cmd!r} from the page: reload the page so "
                "that its view matches this version of tlwidgets."
            )

    def _set_node(self, node: int, trainable: bool) -> None:
        if not 0 <= node < len(self._targets):
            raise FreezeError(
                f"Tree row {node} does not exist (the panel has {len(self._targets)} rows): the "
                "page is out of date; re-run the cell that shows the panel."
            )
        target = self._targets[node]
        if trainable:
            unfreeze(self._model, [target])
        else:
            freeze(self._model, [target], bn=self.bn)

    @traitlets.observe("bn")
    def _reapply_bn(self, change: traitlets.Bunch) -> None:
        # The policy applies to what is frozen now, not only to the next click: re-freeze the
        # largest fully frozen subtrees with it.
        if change["old"] == change["new"] or not len(self._targets):
            return
        with self._lock:
            frozen = [
                self._targets[i]
                for i in range(len(self._targets))
                if self._params[i] > 0 and self._counts[i] == 0
                and (self._parent[i] < 0 or self._counts[self._parent[i]] > 0)
            ]
            if frozen:
                with self.hold_sync():
                    freeze(self._model, frozen, bn=change["new"])
                    self._push_state(force=True)

    # ---- code-side changes -----------------------------------------------------------------------
    def _on_core_change(self, version: int) -> None:
        # Called by the core on whatever thread changed the state (a training thread too);
        # one update inside hold_sync, under the panel's lock.
        with self._lock, self.hold_sync():
            self._push_state(version=version)
            self._pushed_by_core = True


class _VersionPoller(threading.Thread):
    """Compares freeze_version(model) with what the panel shows; sends only when it moved."""

    def __init__(self, panel: FreezePanel, interval: float) -> None:
        super().__init__(name="tlwidgets-freeze-panel-poll", daemon=True)
        self._panel = weakref.ref(panel)
        self._interval = interval
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        while not self._halt.wait(self._interval):
            panel = self._panel()
            if panel is None or panel.comm is None:
                return
            try:
                panel.refresh()
            except Exception:  # noqa: BLE001 - a failed poll must not kill the thread's owner
                panel.log.exception("FreezePanel could not refresh its state")
            del panel


def _preset_buttons() -> list[list[str]]:
    return [[name, PRESET_LABELS.get(name, name), what] for name, what in PRESETS.items()]


def _under(name: str, path: str) -> bool:
    return not path or name == path or name.startswith(path + ".")
