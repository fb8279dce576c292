"""A recipe function for tests/test_distributed.py: ``"tests.ddp_recipe:build"``.

Each torchrun worker builds the same small data and model. The model writes the index of every
training image it is given into ``$TLW_TEST_TRACE/seen-rank<R>.txt`` (the index is stored in the
image's third channel), so the test can check what each rank saw. On ranks other than 0 every
attempt to write into the run folder is refused and recorded in ``writes-rank<R>.txt``.
``TLW_TEST_SLEEP`` (seconds) slows each training step down; ``TLW_TEST_KILL`` =
``"<rank>:<n>"`` makes that rank SIGKILL itself at its n-th training forward. Each gradient
all-reduce of DDP is recorded as a line of ``syncs-rank<R>.txt`` (a comm hook).
"""

from __future__ import annotations

import builtins
import io
import os
import signal
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

N_IMAGES, N_VALID_PCT, BATCH = 80, 0.2, 8  # 64 training images: 4 steps of 8 per rank


def make_data(batch_size: int = BATCH):
    import tlwidgets as tlw

    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * (N_IMAGES // 2))
    images = np.zeros((N_IMAGES, 8, 8, 3), dtype=np.uint8)
    base = np.where(labels == 1, 150, 60)[:, None, None]
    images[..., 0] = np.clip(base + rng.normal(0, 40, (N_IMAGES, 8, 8)), 0, 255)
    images[..., 1] = np.clip(base + rng.normal(0, 40, (N_IMAGES, 8, 8)), 0, 255)
    images[..., 2] = np.arange(N_IMAGES, dtype=np.uint8)[:, None, None]  # the image's index
    return tlw.ImageData.from_arrays(images, labels, classes=["dark", "light"],
                                     valid_pct=N_VALID_PCT, batch_size=batch_size)


def decode(x: torch.Tensor, mean: float, std: float) -> list[int]:
    """The indices stored in channel 2 of a normalised batch."""
    return [int(round(float(v))) for v in (x[:, 2, 0, 0] * std + mean) * 255]


class Net(nn.Module):
    """Conv + linear head, no BatchNorm or dropout (so a DDP run and one process with the
    same global batches compute the same thing); channel 2 (the index) is not an input."""

    def __init__(self, mean: float, std: float, trace: str | None = None) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(8, 2)
        self.mean, self.std, self.trace = mean, std, trace
        self.forwards = 0

    def get_classifier(self) -> nn.Module:
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.forwards += 1
            rank = os.environ.get("RANK", "0")
            if self.trace:
                with open(Path(self.trace) / f"seen-rank{rank}.txt", "a") as fh:
                    fh.write(" ".join(map(str, decode(x, self.mean, self.std))) + "\n")
            kill = os.environ.get("TLW_TEST_KILL", "")
            if kill and kill.split(":")[0] == rank and self.forwards == int(kill.split(":")[1]):
                os.kill(os.getpid(), signal.SIGKILL)
            pause = float(os.environ.get("TLW_TEST_SLEEP", "0") or 0)
            if pause:
                time.sleep(pause)
        return self.fc(self.features(x[:, :2]))


def make_model(data, trace: str | None = None) -> Net:
    torch.manual_seed(0)
    return Net(float(data.mean[2]), float(data.std[2]), trace)


def _refuse_writes_into(run_dir: str, record: Path) -> None:
    """Make this process unable to write into ``run_dir``; every attempt is recorded."""
    root = os.path.realpath(run_dir)
    real_open, real_os_open = builtins.open, os.open

    def inside(path) -> bool:
        try:
            p = os.path.realpath(os.fspath(path))
        except TypeError:
            return False
        return p == root or p.startswith(root + os.sep)

    def refuse(what: str, path) -> None:
        with real_open(record, "a") as fh:
            fh.write(f"{what} {path}\n")
        raise PermissionError(f"rank {os.environ.get('RANK')} may not write {path}")

    def guarded_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and set(mode) & set("wax+") \
                and inside(file):
            refuse(f"open({mode!r})", file)
        return real_open(file, mode, *args, **kwargs)

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def guarded_os_open(path, flags, *args, **kwargs):
        if flags & write_flags and inside(path):
            refuse("os.open", path)
        return real_os_open(path, flags, *args, **kwargs)

    def guard2(name):
        real = getattr(os, name)

        def guarded(src, dst, *args, **kwargs):
            if inside(dst) or inside(src):
                refuse(f"os.{name}", dst)
            return real(src, dst, *args, **kwargs)
        return guarded

    def guard1(name):
        real = getattr(os, name)

        def guarded(path, *args, **kwargs):
            # making the folder that exists already (Trainer.run_dir does) writes nothing
            new_dir = name != "mkdir" or not os.path.exists(path)
            if inside(path) and new_dir:
                refuse(f"os.{name}", path)
            return real(path, *args, **kwargs)
        return guarded

    builtins.open = io.open = guarded_open
    os.open = guarded_os_open
    for name in ("replace", "rename", "link"):
        setattr(os, name, guard2(name))
    for name in ("unlink", "remove", "mkdir", "truncate"):
        setattr(os, name, guard1(name))


def _count_gradient_syncs(record: Path) -> None:
    """Write a line to ``record`` each time DDP all-reduces a gradient bucket (a comm hook on
    every DDP wrapper the Trainer makes)."""
    import torch.distributed as dist

    from tlwidgets.training.distributed import Distributed

    real_wrap = Distributed.wrap

    def wrap(self, model, version=None):
        ddp = real_wrap(self, model, version)
        if not getattr(ddp, "_tlw_test_counted", False):
            def hook(state, bucket):
                with open(record, "a") as fh:
                    fh.write(f"{bucket.index()}\n")
                buf = bucket.buffer().div_(dist.get_world_size())
                return dist.all_reduce(buf, async_op=True).get_future().then(
                    lambda fut: fut.value()[0])

            ddp.register_comm_hook(None, hook)
            ddp._tlw_test_counted = True
        return ddp

    Distributed.wrap = wrap


def build(run_dir: str):
    trace = os.environ.get("TLW_TEST_TRACE")
    rank = os.environ.get("RANK", "0")
    if trace:
        _count_gradient_syncs(Path(trace) / f"syncs-rank{rank}.txt")
    if trace and rank != "0":
        _refuse_writes_into(run_dir, Path(trace) / f"writes-rank{rank}.txt")
    data = make_data()
    return make_model(data, trace), data
