"""How a frozen normalization layer behaves: the machinery behind ``bn="eval"|"train"|"frozen"``.

Private to :mod:`tlwidgets.freeze`. Everything this module does to a layer is recorded on the
layer itself (an instance ``train`` override plus a forward pre-hook for ``"eval"``, the original
layer stashed on its frozen replacement for ``"frozen"``), so the policy survives
``copy.deepcopy`` and ``torch.save`` of the model and can always be undone from the module tree
alone, without a registry that could fall out of step with it.
"""

from __future__ import annotations

import functools
from typing import Literal

import torch
from timm.layers import FrozenBatchNormAct2d, freeze_batch_norm_2d
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

BNPolicy = Literal["eval", "train", "frozen"]
BN_POLICIES: tuple[str, ...] = ("eval", "train", "frozen")

_ORIGINAL = "_tlw_original_norm"
_FROZEN_TYPES = (FrozenBatchNorm2d, FrozenBatchNormAct2d)


def is_norm_with_stats(module: nn.Module) -> bool:
    """True for layers whose forward in train mode changes running statistics (BatchNorm-like).

    ``_NormBase`` covers BatchNorm1d/2d/3d, SyncBatchNorm, lazy variants, timm's BatchNormAct2d
    and SyncBatchNormAct, and InstanceNorm with ``track_running_stats=True``.
    """
    return isinstance(module, nn.modules.batchnorm._NormBase) and bool(
        getattr(module, "track_running_stats", False)
    )


def original_of(module: nn.Module) -> nn.Module | None:
    """The layer a ``"frozen"``-policy replacement stands in for (None if it is not ours)."""
    if isinstance(module, _FROZEN_TYPES):
        return module.__dict__.get(_ORIGINAL)
    return None


def _locked_train(self: nn.Module, mode: bool = True) -> nn.Module:
    # Bound onto a frozen norm layer as its own ``train``: nn.Module.train() on any ancestor
    # calls child.train(mode), so this is the one place every caller goes through.
    return nn.Module.train(self, False)


def _keep_eval(module: nn.Module, args: tuple) -> None:
    # Second line of defence for code that sets ``module.training = True`` directly.
    if module.training:
        module.training = False


def is_locked(module: nn.Module) -> bool:
    """True if ``module`` is held in eval mode by the ``"eval"`` policy."""
    bound = module.__dict__.get("train")
    return isinstance(bound, functools.partial) and bound.func is _locked_train


def lock_eval(module: nn.Module) -> None:
    """Keep ``module`` in eval mode whoever calls ``train()`` on it or on any ancestor."""
    if is_locked(module):
        return
    # a partial, not a bound method: it pickles (torch.save(model)) and deep-copies cleanly
    object.__setattr__(module, "train", functools.partial(_locked_train, module))
    module.register_forward_pre_hook(_keep_eval)
    module.training = False


def unlock(module: nn.Module, training: bool) -> None:
    """Undo :func:`lock_eval` and put ``module`` in the given mode."""
    if is_locked(module):
        del module.__dict__["train"]
        for key, hook in list(module._forward_pre_hooks.items()):
            if hook is _keep_eval:
                del module._forward_pre_hooks[key]
    nn.Module.train(module, training)


def _set_child(root: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    parent.add_module(name, new)


def swap_frozen(root: nn.Module, path: str, module: nn.Module) -> nn.Module | None:
    """Replace the BatchNorm2d-like layer at ``path`` by timm's frozen equivalent.

    Returns the replacement, or None when timm has no frozen form for this layer type
    (BatchNorm1d/3d, InstanceNorm): the caller then falls back to :func:`lock_eval`, which
    computes the same function.
    """
    unlock(module, training=False)
    # timm builds the replacement with default factory tensors and then sets ``.data`` from the
    # original, which must be on the same device (cuda, meta)
    with torch.device(module.running_mean.device):
        frozen = freeze_batch_norm_2d(module)
    if frozen is module:
        return None
    object.__setattr__(frozen, _ORIGINAL, module)
    frozen.train(False)
    _set_child(root, path, frozen)
    return frozen


def restore(root: nn.Module, path: str, frozen: nn.Module) -> nn.Module:
    """Put back the original layer behind a ``"frozen"`` replacement, with the frozen values."""
    original = frozen.__dict__[_ORIGINAL]
    # model.to()/.half() while frozen moved only the replacement (the original is not a submodule)
    original.to(device=frozen.running_mean.device, dtype=frozen.running_mean.dtype)
    with torch.no_grad():
        # The replacement's tensors are what the model computed with while frozen (a
        # load_state_dict meanwhile writes there), so they are the truth to carry back.
        if getattr(original, "affine", False):
            original.weight.copy_(frozen.weight)
            original.bias.copy_(frozen.bias)
        if original.running_mean is not None:
            original.running_mean.copy_(frozen.running_mean)
            original.running_var.copy_(frozen.running_var)
    _set_child(root, path, original)
    return original


def policy_of(module: nn.Module) -> str:
    """The BN policy on a layer: ``"eval"``, ``"frozen"``, ``"train"``, or ``""`` if not BN."""
    if original_of(module) is not None:
        return "frozen"
    if is_norm_with_stats(module):
        return "eval" if is_locked(module) else "train"
    return ""
