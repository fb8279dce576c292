"""Checkpoints: what can change as safetensors, the rest of the trainer's state beside it.

A checkpoint named ``NAME`` in ``run_dir/checkpoints/`` is a pair of files written as one unit:

- ``NAME.safetensors``: the tensors that can change while training — the trainable parameters
  and the buffers that move (BN statistics of layers that train) — or, when everything trains,
  the whole ``state_dict``. The frozen rest is in ``frozen-<digest>.safetensors``, written once
  (its name is the hash of its contents, so it is verified when read); a head-only epoch's
  checkpoint of an EfficientNet-Lite0 is a few kilobytes instead of 19 MB. Reading assembles
  the full model, so ``best`` and ``last`` each load on their own.
- ``NAME.state.pt``: the optimizer, grad scaler and trainer state, made only of tensors, dicts,
  lists, strings and numbers, so ``torch.load(path, weights_only=True)`` reads it without running
  code.

Both are written to temporary files in the same folder, then moved into place with two
``os.replace`` calls back to back; each carries the same random ``checkpoint_id`` (in the
safetensors metadata and in the state), so a pair torn by a kill between the two moves is found
and named when read, never loaded. A damaged or missing file is a :class:`CheckpointError` that
says which file and what can still be recovered.

>>> import torch, tempfile
>>> from tlwidgets.training.checkpoints import save_checkpoint, load_checkpoint
>>> model = torch.nn.Linear(2, 2)
>>> folder = tempfile.mkdtemp()
>>> paths = save_checkpoint(folder, "last", model, {"epoch": 1})
>>> load_checkpoint(folder, "last", model)["epoch"]
1
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .._runtime import atomic_write
from ..errors import CheckpointError

__all__ = [
    "save_checkpoint", "load_checkpoint", "link_checkpoint", "atomic_write", "checkpoint_paths",
    "snapshot_weights", "snapshot_state", "write_in_background", "wait_for_writes",
    "write_frozen", "frozen_digest", "clean_folder", "checkpoint_info",
]

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
        if t is not threading.current_thread():
            t.join()
    with _PENDING_LOCK:
        alive = [t for t in _PENDING.get(key, []) if t.is_alive()]
        if alive:
            _PENDING[key] = alive
        else:
            _PENDING.pop(key, None)


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


def _unique_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop every name but the first of tensors that share storage (tied weights), as
    ``safetensors.torch.save_model`` does."""
    seen: dict[tuple[int, int, tuple[int, ...]], str] = {}
    out = {}
    for k, v in state.items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset(), tuple(v.shape)) \
            if v.numel() else (id(v), 0, tuple(v.shape))
        if key in seen:
            continue
        seen[key] = k
        out[k] = v
    return out


def snapshot_weights(model: torch.nn.Module | dict[str, torch.Tensor],
                     names: set[str] | None = None) -> dict[str, torch.Tensor]:
    """A CPU copy of the model's ``state_dict`` (or of the ``names`` in it) that a background
    thread can write while training goes on; tied tensors are kept once.

    >>> import torch
    >>> sorted(snapshot_weights(torch.nn.Linear(2, 2)))
    ['bias', 'weight']
    """
    live = model if isinstance(model, dict) else model.state_dict()
    live = _unique_tensors(live)
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in live.items()
            if names is None or k in names}


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
    # replaced atomically and its pair is checked by id, so a torn write is never read.
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


def frozen_digest(tensors: dict[str, torch.Tensor]) -> str:
    """A short hash of names, shapes, dtypes and bytes: the frozen file's name and its check."""
    h = hashlib.blake2b(digest_size=10)
    for k in sorted(tensors):
        t = tensors[k].detach().cpu().contiguous()
        h.update(f"{k}|{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def write_frozen(folder: str | os.PathLike, tensors: dict[str, torch.Tensor]) -> str:
    """Write the frozen part once as ``frozen-<digest>.safetensors``; returns its file name."""
    tensors = snapshot_weights(tensors)
    name = f"frozen-{frozen_digest(tensors)}.safetensors"
    path = Path(folder) / name
    if not path.exists():
        atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    return name


def _tmp_in(folder: Path, name: str) -> str:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    return tmp


def save_checkpoint(
    folder: str | os.PathLike, name: str, model: torch.nn.Module | dict[str, torch.Tensor],
    state: dict[str, Any], frozen: str | None = None,
) -> tuple[Path, Path]:
    """Write checkpoint ``name`` in ``folder`` as one unit (see the module docstring).

    ``model`` is a module or a :func:`snapshot_weights` dict (what the trainer's background writer
    passes); ``frozen`` names the :func:`write_frozen` file holding the tensors not in it.

    >>> import torch, tempfile
    >>> w, s = save_checkpoint(tempfile.mkdtemp(), "best", torch.nn.Linear(2, 2), {"step": 3})
    >>> torch.load(s, weights_only=True)["step"]
    3
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights_path, state_path = checkpoint_paths(folder, name)
    weights = model if isinstance(model, dict) else snapshot_weights(model)
    cid = uuid.uuid4().hex
    meta = {"format": "pt", "tlw_checkpoint_id": cid, "tlw_frozen": frozen or "",
            "tlw_epochs_done": str(state.get("epochs_done", ""))}
    state = {**_plain(state), "checkpoint_id": cid, "frozen_file": frozen}
    tmp_w, tmp_s = _tmp_in(folder, weights_path.name), _tmp_in(folder, state_path.name)
    try:
        save_file(weights, tmp_w, metadata=meta)
        _save_state(state, tmp_s)
        # both complete: move them into place back to back (the pair is checked by id)
        os.replace(tmp_w, weights_path)
        os.replace(tmp_s, state_path)
    except BaseException:
        for tmp in (tmp_w, tmp_s):
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
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
    for src, dst in zip(checkpoint_paths(folder, source), checkpoint_paths(folder, name)):
        def place(tmp: str, src: Path = src) -> None:
            os.unlink(tmp)
            try:
                os.link(src, tmp)
            except OSError:  # file systems without hard links
                shutil.copyfile(src, tmp)

        atomic_write(dst, place)


def _read_meta(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as fh:
        return dict(fh.metadata() or {})


def checkpoint_info(folder: str | os.PathLike, name: str) -> dict[str, Any]:
    """What is on disk for checkpoint ``name``, without loading it: ``ok`` (a complete pair),
    ``epochs_done`` and ``problem`` (a sentence naming the damaged or missing file)."""
    folder = Path(folder)
    weights_path, state_path = checkpoint_paths(folder, name)
    wait_for_writes(folder)
    if not weights_path.exists() and not state_path.exists():
        return {"ok": False, "epochs_done": None, "problem": f"there is no {name!r} checkpoint"}
    try:
        meta = _read_meta(weights_path) if weights_path.exists() else None
    except Exception as exc:  # noqa: BLE001 - any damage is reported by name
        return {"ok": False, "epochs_done": None,
                "problem": f"{weights_path.name} is damaged ({type(exc).__name__}: {exc})"}
    if meta is None:
        return {"ok": False, "epochs_done": None,
                "problem": f"{weights_path.name} is missing (the process was killed while "
                           "writing the first checkpoint?)"}
    if not state_path.exists():
        return {"ok": False, "epochs_done": meta.get("tlw_epochs_done"),
                "problem": f"{state_path.name} is missing beside {weights_path.name}"}
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError("not a trainer state")
    except Exception as exc:  # noqa: BLE001 - any damage is reported by name
        size = state_path.stat().st_size
        return {"ok": False, "epochs_done": meta.get("tlw_epochs_done"),
                "problem": f"{state_path.name} is damaged ({size} bytes; {type(exc).__name__})"}
    cid = meta.get("tlw_checkpoint_id")
    if cid and state.get("checkpoint_id") and cid != state["checkpoint_id"]:
        return {"ok": False, "epochs_done": state.get("epochs_done"),
                "problem": f"{weights_path.name} (epoch {meta.get('tlw_epochs_done', '?')}) and "
                           f"{state_path.name} (epoch {state.get('epochs_done', '?')}) are from "
                           "different checkpoints: the process was killed between writing them"}
    frozen = meta.get("tlw_frozen") or ""
    if frozen and not (folder / frozen).exists():
        return {"ok": False, "epochs_done": state.get("epochs_done"),
                "problem": f"{frozen}, which holds the frozen layers of {weights_path.name}, is "
                           "missing"}
    return {"ok": True, "epochs_done": state.get("epochs_done"), "problem": "", "state": state,
            "frozen": frozen}


def _recoverable(folder: Path, name: str) -> str:
    others = []
    for other in ("best", "last"):
        if other != name and checkpoint_info(folder, other)["ok"]:
            others.append(f"the {other!r} checkpoint (epoch "
                          f"{checkpoint_info(folder, other)['epochs_done']}) is intact")
    history = folder.parent / "history.csv"
    if history.exists():
        try:
            rows = sum(1 for _ in open(history, encoding="utf-8")) - 1
            others.append(f"history.csv holds {max(rows, 0)} epoch(s)")
        except OSError:
            pass
    return "; ".join(others) if others else "nothing else in the folder can be recovered"


def load_checkpoint(
    folder: str | os.PathLike, name: str, model: torch.nn.Module | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Read checkpoint ``name``: load its weights into ``model`` (assembling the frozen part) and
    return its state dict. A missing, damaged or torn pair is a :class:`CheckpointError`.

    >>> import torch, tempfile
    >>> folder = tempfile.mkdtemp(); m = torch.nn.Linear(2, 2)
    >>> _ = save_checkpoint(folder, "last", m, {"epoch": 2})
    >>> load_checkpoint(folder, "last", torch.nn.Linear(2, 2))["epoch"]
    2
    """
    folder = Path(folder)
    info = checkpoint_info(folder, name)
    if not info["ok"]:
        if info["problem"] == f"there is no {name!r} checkpoint":
            weights_path, state_path = checkpoint_paths(folder, name)
            raise CheckpointError(
                f"no checkpoint {name!r} in {folder} (looked for {weights_path.name} and "
                f"{state_path.name}); pass the run_dir of a run that finished at least one "
                f"epoch ({_recoverable(folder, name)}).")
        raise CheckpointError(
            f"checkpoint {name!r} in {folder} cannot be used: {info['problem']}. What is still "
            f"there: {_recoverable(folder, name)}.")
    if model is not None:
        weights_path, _ = checkpoint_paths(folder, name)
        try:
            tensors = load_file(str(weights_path), device=str(device))
            if info["frozen"]:
                tensors = {**load_file(str(folder / info["frozen"]), device=str(device)),
                           **tensors}
        except Exception as exc:  # noqa: BLE001 - any damage is reported by name
            raise CheckpointError(
                f"{weights_path.name} in {folder} is damaged ({type(exc).__name__}: {exc}). "
                f"{_recoverable(folder, name)}.") from exc
        own = model.state_dict()
        tied = set(own) - set(_unique_tensors(own))
        missing = [k for k in own if k not in tensors and k not in tied]
        unexpected = [k for k in tensors if k not in own]
        bad = [k for k in tensors if k in own and tuple(tensors[k].shape) != tuple(own[k].shape)]
        if missing or unexpected or bad:
            raise CheckpointError(
                f"the weights of checkpoint {name!r} in {folder} do not fit this model "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]}, other shapes {bad[:3]}); "
                "pass the same architecture and number of classes as the run that wrote them.")
        with torch.no_grad():
            model.load_state_dict(tensors, strict=False)
    return {k: (v.to(device) if isinstance(v, torch.Tensor) else v)
            for k, v in info["state"].items()}


def clean_folder(folder: str | os.PathLike) -> list[str]:
    """Remove temporary files a killed writer left behind, and frozen files no checkpoint uses.

    Call it only while holding the run folder (one writer). Returns the names removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for tmp in folder.glob(".*.tmp"):
        try:
            tmp.unlink()
            removed.append(tmp.name)
        except OSError:
            pass
    used = set()
    for name in ("last", "best"):
        weights_path, _ = checkpoint_paths(folder, name)
        if weights_path.exists():
            try:
                used.add(_read_meta(weights_path).get("tlw_frozen") or "")
            except Exception:  # noqa: BLE001 - a damaged file keeps what it may refer to
                return removed
    for frozen in folder.glob("frozen-*.safetensors"):
        if frozen.name not in used:
            frozen.unlink(missing_ok=True)
            removed.append(frozen.name)
    return removed
