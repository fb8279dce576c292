"""Checks made before a run trains a single step: the folder, the disk, the head.

A run that cannot save its work, that would mix two runs in one folder, or whose model cannot
predict the data's classes is refused before it starts, with the way out — not discovered after
an hour of training.

>>> check_head(model, data)          # doctest: +SKIP
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import ConfigError, RunFolderError

__all__ = ["check_run_folder", "check_head", "expected_checkpoint_bytes", "holds_a_run"]


def holds_a_run(run_dir: Path) -> int:
    """The number of epochs a run already wrote in ``run_dir`` (0 when it holds none)."""
    history = run_dir / "history.csv"
    ckpt = run_dir / "checkpoints"
    epochs = 0
    if history.is_file():
        try:
            with open(history, encoding="utf-8", errors="replace") as fh:
                epochs = max(sum(1 for line in fh if line.strip()) - 1, 0)
        except OSError:
            epochs = 0
    if not epochs and any((ckpt / f"last.{ext}").exists() for ext in ("safetensors", "state.pt")):
        epochs = 1
    return epochs


def expected_checkpoint_bytes(model: nn.Module) -> int:
    """About what a checkpoint pair plus the frozen file take: every tensor once, and the
    optimizer's two moments for each trainable one (AdamW), twice (``last`` is replaced by a
    temporary file while the old one still exists)."""
    total = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return total + 2 * (3 * trainable)


def check_run_folder(run_dir: Path, *, fresh: bool, need_bytes: int) -> None:
    """Refuse a run folder that is a file, is read-only, lacks the space for a checkpoint, or
    (``fresh``: a trainer that has not trained or resumed there) already holds another run."""
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(
            f"run_dir {run_dir} is a file, not a folder; pass a folder (or run_dir=None for a new "
            "one under ./runs).")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        probe = run_dir / "checkpoints" / f".write-test-{uuid.uuid4().hex}.tmp"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise RunFolderError(
            f"run_dir {run_dir} cannot be written ({exc.strerror or exc}); pass a folder you can "
            "write to, e.g. run_dir='~/runs/mine' (or run_dir=None for a new one under ./runs)."
        ) from exc
    if fresh:
        epochs = holds_a_run(run_dir)
        if epochs:
            raise RunFolderError(
                f"run_dir {run_dir} already holds a run ({epochs} epoch(s) in history.csv or a "
                "checkpoint): a new Trainer there would mix two runs. Continue it with "
                "tlw.Trainer.resume(run_dir, model, data), or pass a new folder (run_dir=None "
                "makes a fresh one under ./runs).")
    free = shutil.disk_usage(run_dir).free
    if free < need_bytes:
        raise RunFolderError(
            f"run_dir {run_dir} has {free / 1e6:.1f} MB free, and a checkpoint of this model needs "
            f"about {need_bytes / 1e6:.1f} MB; free some space or pass run_dir= on another disk.")


def check_head(model: nn.Module, data: Any) -> None:
    """The model's number of outputs must equal the data's number of classes (a larger head
    trains, then fails in predict and the confusion matrix; a smaller one fails at step 1)."""
    n = len(getattr(data, "classes", []) or [])
    if not n:
        return
    outputs = _outputs(model)
    if outputs is not None and outputs != n:
        raise ConfigError(
            f"the model predicts {outputs} classes but the data has {n} "
            f"({', '.join(map(str, list(data.classes)[:6]))}{', ...' if n > 6 else ''}); make the "
            f"model with tlw.create_model(name, num_classes={n}) (or model.reset_classifier({n}) "
            "on a timm model).")


def _outputs(model: nn.Module) -> int | None:
    get = getattr(model, "get_classifier", None)
    head = None
    if callable(get):
        try:
            head = get()
        except Exception:  # noqa: BLE001 - no head: nothing to check
            head = None
    if isinstance(head, nn.Linear):
        return head.out_features
    if isinstance(head, nn.Conv2d):
        return head.out_channels
    num = getattr(model, "num_classes", None)
    if isinstance(num, int) and num > 0 and head is not None and any(
            True for _ in head.parameters()):
        return num
    return None
