"""Checkpoints: weights as safetensors, everything else in a ``weights_only``-loadable file.

A checkpoint named ``NAME`` in ``run_dir/checkpoints/`` is two files:

- ``NAME.safetensors``: the model's ``state_dict`` (parameters and buffers, BN statistics
  included), readable by any safetensors tool;
- ``NAME.state.pt``: the optimizer, grad scaler and trainer state, made only of tensors, dicts,
  lists, strings and numbers, so ``torch.load(path, weights_only=True)`` reads it without running
  code.

Both are written to a temporary file in the same folder and moved into place with
``os.replace``, so a crash mid-write never leaves a half-written checkpoint under the real name.

>>> import torch, tempfile
>>> from tlwidgets.training.checkpoints import save_checkpoint, load_checkpoint
>>> model = torch.nn.Linear(2, 2)
>>> folder = tempfile.mkdtemp()
>>> paths = save_checkpoint(folder, "last", model, {"epoch": 1})
>>> load_checkpoint(folder, "last", model)["epoch"]
1
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_file, save_model

from .._runtime import atomic_write
from ..errors import TrainingError

# Checkpoints being written by a background thread, per folder: a reader in this process (a
# resume, restore(), another trainer) waits for them, so it never reads the previous pair while
# the new one is on its way.
_PENDING: dict[str, list[threading.Thread]] = {}
_PENDING_LOCK = threading.Lock()


def write_in_background(folder: str | os.PathLike, write: Any) -> threading.Thread:
    """Run ``write()`` in a (non-daemon) thread registered for ``folder``; returns the thread.

    The interpreter waits for it at exit, and :func:`load_checkpoint` waits for it first."""
    key = str(Path(folder).resolve())
    thread = threading.Thread(target=write, name="tlwidgets-checkpoint", daemon=False)
    with _PENDING_LOCK:
        _PENDING.setdefault(key, []).append(thread)
    thread.start()
    return thread


def wait_for_writes(folder: str | os.PathLike) -> None:
    """Block until every background write to ``folder`` has finished."""
    key = str(Path(folder).resolve())
    with _PENDING_LOCK:
        threads = list(_PENDING.get(key, []))
    for t in threads:
        t.join()
    with _PENDING_LOCK:
        alive = [t for t in _PENDING.get(key, []) if t.is_alive()]
        if alive:
            _PENDING[key] = alive
        else:
            _PENDING.pop(key, None)


__all__ = [
    "atomic_write",
    "checkpoint_paths",
    "link_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    "snapshot_state",
    "snapshot_weights",
    "wait_for_writes",
    "write_in_background",
]


def checkpoint_paths(folder: str | os.PathLike, name: str) -> tuple[Path, Path]:
    """The (weights, state) paths of checkpoint ``name`` in ``folder``."""
    folder = Path(folder)
    return folder / f"{name}.safetensors", folder / f"{name}.state.pt"


def _plain(obj: Any) -> Any:
    """Detach tensors to CPU so the state file holds nothing but plain data."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def snapshot_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of ``model.state_dict()`` that a background thread can write while training
    goes on; tied tensors are kept once, as ``safetensors.torch.save_model`` does.

    >>> import torch
    >>> sorted(snapshot_weights(torch.nn.Linear(2, 2)))
    ['bias', 'weight']
    """
    live = model.state_dict()
    try:
        from safetensors.torch import _remove_duplicate_names

        drop = {n for names in _remove_duplicate_names(live).values() for n in names}
    except ImportError:  # older safetensors: keep every name (tied weights are rare here)
        drop = set()
    return {
        k: v.detach().to("cpu", copy=True).contiguous() for k, v in live.items() if k not in drop
    }


def snapshot_state(obj: Any) -> Any:
    """A deep CPU copy of a state structure (tensors copied, containers rebuilt)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: snapshot_state(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [snapshot_state(v) for v in obj]
    return obj


def _save_state(state: dict[str, Any], path: str) -> None:
    # The per-record CRC32 of torch.save costs about as much as writing the bytes; the file is
    # replaced atomically, so a torn write is never read. The option is global: put it back.
    get = getattr(torch.serialization, "get_crc32_options", None)
    set_ = getattr(torch.serialization, "set_crc32_options", None)
    previous = get() if get is not None else None
    try:
        if set_ is not None:
            set_(False)
        torch.save(state, path)
    finally:
        if set_ is not None and previous is not None:
            set_(previous)


def save_checkpoint(
    folder: str | os.PathLike, name: str, model: torch.nn.Module | dict[str, torch.Tensor],
    state: dict[str, Any],
) -> tuple[Path, Path]:
    """Write ``model``'s weights and ``state`` as checkpoint ``name`` in ``folder``, atomically.

    ``model`` may also be a :func:`snapshot_weights` dict (what the trainer's background writer
    passes, so training can go on while the files are written).

    >>> import torch, tempfile
    >>> w, s = save_checkpoint(tempfile.mkdtemp(), "best", torch.nn.Linear(2, 2), {"step": 3})
    >>> torch.load(s, weights_only=True)["step"]
    3
    """
    weights_path, state_path = checkpoint_paths(folder, name)
    # save_model (not save_file) so tied weights are stored once and loaded back tied;
    # snapshot_weights already dropped the duplicates the same way.
    if isinstance(model, dict):
        weights = model
        atomic_write(weights_path, lambda tmp: save_file(weights, tmp, metadata={"format": "pt"}))
    else:
        atomic_write(weights_path, lambda tmp: save_model(model, tmp))
    atomic_write(state_path, lambda tmp: _save_state(_plain(state), tmp))
    return weights_path, state_path


def link_checkpoint(folder: str | os.PathLike, source: str, name: str) -> None:
    """Make checkpoint ``name`` the same files as ``source`` (hard links, else copies), atomically.

    >>> import torch, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _ = save_checkpoint(folder, "last", torch.nn.Linear(2, 2), {"epoch": 4})
    >>> link_checkpoint(folder, "last", "best")
    >>> load_checkpoint(folder, "best")["epoch"]
    4
    """
    import shutil

    for src, dst in zip(checkpoint_paths(folder, source), checkpoint_paths(folder, name)):
        def place(tmp: str, src: Path = src) -> None:
            os.unlink(tmp)
            try:
                os.link(src, tmp)
            except OSError:  # file systems without hard links
                shutil.copyfile(src, tmp)

        atomic_write(dst, place)


def load_checkpoint(
    folder: str | os.PathLike, name: str, model: torch.nn.Module | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Read checkpoint ``name``: load its weights into ``model`` and return its state dict.

    >>> import torch, tempfile
    >>> folder = tempfile.mkdtemp(); m = torch.nn.Linear(2, 2)
    >>> _ = save_checkpoint(folder, "last", m, {"epoch": 2})
    >>> load_checkpoint(folder, "last", torch.nn.Linear(2, 2))["epoch"]
    2
    """
    wait_for_writes(folder)
    weights_path, state_path = checkpoint_paths(folder, name)
    if not state_path.exists() or not weights_path.exists():
        raise TrainingError(
            f"no checkpoint {name!r} in {folder} (looked for {weights_path.name} and "
            f"{state_path.name}); pass the run_dir of a run that finished at least one epoch."
        )
    if model is not None:
        try:
            load_model(model, str(weights_path), strict=True, device=str(device))
        except RuntimeError as exc:
            raise TrainingError(
                f"the weights in {weights_path} do not fit this model ({exc}); pass the same "
                "architecture and number of classes as the run that wrote them."
            ) from exc
    return torch.load(state_path, map_location=device, weights_only=True)
